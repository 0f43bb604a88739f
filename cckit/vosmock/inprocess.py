"""Run a mock site in a background thread: `with running_site(dir) as site:`.

What the runbooks' embedded mock and the tests use; `testing.py` adds the tests' own SSH
and TLS helpers on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .site import MockServer, MockSite

TEST_CLI_STARTUP_SECONDS = 0.05  # the CLI's startup delay in tests (real nodes: 8-60 s)


@dataclass(frozen=True)
class NodeInfo:
    name: str
    role: str
    host: str
    ssh_port: int
    web_ports: list[int]
    rest_port: int | None


class FaultControl:
    """Thread-safe fault switches (the in-process twin of the control endpoint)."""

    def __init__(self, running: RunningSite):
        self._r = running

    def set(self, fault: str, value=True, node: str | None = None) -> None:
        self._r.call(self._r.mock.set_fault(fault, value, node))

    def clear(self) -> None:
        self._r.call(self._r.mock.clear_faults())

    def as_dict(self) -> dict:
        return self._r.call(_value(self._r.mock.faults.as_dict))


async def _value(fn):
    return fn()


class _LoopThread:
    """An event loop running in a daemon thread (the mock's loop in tests)."""

    def __init__(self, name: str = "vosmock"):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._boot = None
        self._ready: dict = {}
        self._started = threading.Event()

    def start(self, boot: Callable[[], Awaitable], timeout: float = 300):
        """Run `boot()` on the loop in the thread, then keep the loop running; returns its
        result (or raises its exception, the loop then being closed)."""
        self._boot = boot
        self.thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError("the mock did not start")
        if "error" in self._ready:
            raise self._ready["error"]
        return self._ready["value"]

    def _run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            self._ready["value"] = loop.run_until_complete(self._boot())
        except BaseException as exc:
            self._ready["error"] = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        loop.run_forever()
        # drain what stop() left behind
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


class RunningSite:
    def __init__(
        self,
        mock: MockSite,
        loop: asyncio.AbstractEventLoop,
        thread: threading.Thread,
        site_file: Path,
        *,
        on_stop: Callable[[], None] | None = None,
    ):
        """`on_stop`: what stops the loop once the site is stopped (None: the loop is shared
        and stopped by whoever owns it)."""
        self.mock = mock
        self.loop = loop
        self.thread = thread
        self.site_file = site_file
        self.known_hosts = site_file.with_name(f"{site_file.stem}.known_hosts")
        self.name = mock.name
        self.domain = mock.domain
        self.state_dir = mock.state_dir
        self.username = mock.username
        self.password = mock.password
        self.sftp_username = mock.sftp_username
        self.sftp_password = mock.sftp_password
        self.sftp_port = mock.sftp_port
        self.control_url = f"http://127.0.0.1:{mock.control_port}" if mock.control_enabled else None
        self.nodes = {
            n.name: NodeInfo(n.name, n.role, n.host, n.ssh_port, list(n.web_ports), n.rest_port)
            for n in mock.nodes.values()
        }
        self.cop_files = dict(mock.cop_files)
        self.faults = FaultControl(self)
        self._on_stop = on_stop
        self._stopped = False

    def call(self, coro, timeout: float = 60):
        """Run a coroutine on the mock's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def status(self) -> dict:
        return self.call(_value(self.mock.status))

    def stop(self) -> None:
        """Stop this site (its listeners close; other sites on a shared loop keep running)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            if not self.loop.is_closed():
                self.call(self.mock.stop())
        finally:
            if self._on_stop is not None:
                self._on_stop()


@contextlib.contextmanager
def running_site(
    directory: str | os.PathLike,
    *,
    restart_seconds: float = 0,
    version: str | None = "11.5.1.10000-61",
    site_file: str | os.PathLike | None = None,
    cli_startup_seconds: float = TEST_CLI_STARTUP_SECONDS,
    **options,
) -> Iterator[RunningSite]:
    """Start a site whose state lives in `directory`/state on free ports; yield a RunningSite.

    `options` go to MockSite (lockout_failures, lockout_seconds, include_ou_prompt, control,
    wizard, download_seconds, keyboard_interactive, sftp_max_bytes, ...). The CLI starts in
    `cli_startup_seconds` (a real node takes 8-60 s; tests need not wait that long).
    Starting again on the same directory reuses every key, cert, port and password.
    """
    directory = Path(directory)
    site_file = Path(site_file) if site_file else directory / "site.yaml"
    runner = _LoopThread()

    async def boot():
        mock = MockSite(
            directory / "state",
            version=version,
            restart_seconds=restart_seconds,
            cli_startup_seconds=cli_startup_seconds,
            **options,
        )
        try:
            await mock.start()
        except BaseException:
            await mock.stop()
            raise
        return mock

    mock: MockSite = runner.start(boot, 120)
    path = mock.write_site_file(site_file)
    running = RunningSite(mock, runner.loop, runner.thread, path, on_stop=runner.close)
    try:
        yield running
    finally:
        running.stop()


@contextlib.contextmanager
def running_sites(
    directory: str | os.PathLike,
    n: int,
    *,
    restart_seconds: float = 0,
    version: str | None = "11.5.1.10000-61",
    site_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    cli_startup_seconds: float = TEST_CLI_STARTUP_SECONDS,
    **options,
) -> Iterator[list[RunningSite]]:
    """Start `n` independent sites in ONE background event loop; yield their RunningSites
    (`site-001` ... in order; `.name` on each).

    State: `directory`/state/site-001 ...; site files: `site_dir` (default `directory`)
    /site-001.yaml (+ .known_hosts). Every site gets its own domain (`site-001.<domain>`),
    ports, passwords and keys; `restart_seconds` and `options` (MockSite options: domain,
    base_port (site i from base_port + (i-1)*40), lockout_*, include_ou_prompt, ...) apply to
    every site. `workers`: processes for first-boot key generation (see multi.first_boot).
    A handle's `.stop()` stops that site only; leaving the block stops them all.
    """
    from . import multi

    directory = Path(directory)
    site_dir = Path(site_dir) if site_dir else directory
    multi.ensure_fd_limit(n)
    plans = multi.plan_sites(
        directory / "state",
        n,
        version=version,
        restart_seconds=restart_seconds,
        cli_startup_seconds=cli_startup_seconds,
        **options,
    )
    multi.first_boot(plans, workers)
    runner = _LoopThread("vosmock-sites")

    async def boot():
        server = MockServer(multi.make_sites(plans))
        await server.start()
        return server

    server: MockServer = runner.start(boot)
    handles: list[RunningSite] = []
    try:
        for mock, path in zip(
            server.sites, multi.write_site_files(server.sites, site_dir), strict=True
        ):
            handles.append(RunningSite(mock, runner.loop, runner.thread, path))
        yield handles
    finally:
        try:
            for h in handles:
                h._stopped = True
            runner.call(server.stop())
        finally:
            runner.close()


# ---------------------------------------------------------------------------- outside clients
# Helpers that drive the mock with the real OpenSSH client and `openssl s_client`.
