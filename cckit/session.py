"""One run against one site: connections, the operation log, the site lock, TLS probes.

Everything a session opens is held by one :class:`contextlib.ExitStack`, so closing the
session (or leaving its ``with`` block) releases the lock and every connection, in reverse
order, whatever failed on the way.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from . import certs, readiness
from . import probe as _probe
from .audit import AuditLog, site_lock
from .errors import NodeTimeout, TransportError
from .results import PortView
from .sites import Node, Site, WebPort
from .vos import Transport, connect, transport_class

__all__ = ["SiteSession"]


class SiteSession:
    """Connections open lazily and are reopened after a dropped session, so a step that
    failed half-way can simply be called again."""

    def __init__(
        self,
        site: Site,
        *,
        workdir: str | Path,
        nodes: Sequence[str] | None = None,
        trust_on_first_use: bool = False,
        timeout: float = 30.0,
        lock_dir: str | Path | None = None,
        tls_timeout: float = 5.0,
        connect: Callable[[Site, Node], Transport] | None = None,
    ) -> None:
        """``connect`` opens a node's transport (default: as the site file says, over the
        network; tests pass ``cckit.vos.fake.connector``)."""
        self.site = site
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.nodes = site.select(nodes)
        self.timeout = timeout
        self.tls_timeout = tls_timeout
        self.trust_on_first_use = trust_on_first_use
        self._connect = connect
        self.audit = AuditLog(self.workdir / "operations.jsonl", site=site.name)
        #: what each node is doing as it happens (progress lines listen here)
        self.events = self.audit.events
        self._conns: dict[str, Transport] = {}
        # Steps work on several nodes at once (orchestration.parallel): one transport per
        # node, opened once; this lock guards the dict (a node's operations stay on its
        # own thread and transport).
        self._conns_lock = threading.RLock()
        self._node_locks: dict[str, threading.Lock] = {}
        self._stack = contextlib.ExitStack()
        # one lock per site identity in the user's lock folder, whichever copy of the
        # site file names it (docs/security.md)
        self._stack.enter_context(site_lock(Path(lock_dir) if lock_dir else None, site.name,
                                            key=site.identity, run=self.workdir))
        self._stack.callback(self._close_connections)

    # -- lifetime
    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> SiteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _close_connections(self) -> None:
        with self._conns_lock:
            names = list(self._conns)
        for name in names:
            self.drop_name(name)

    # -- connections
    def transport(self, node: Node) -> Transport:
        with self._conns_lock:
            node_lock = self._node_locks.setdefault(node.name, threading.Lock())
        with node_lock:  # one login per node, even when two threads ask at once
            with self._conns_lock:
                t = self._conns.get(node.name)
            if t is None:
                t = (self._connect(self.site, node) if self._connect else
                     connect(self.site, node, trust_on_first_use=self.trust_on_first_use,
                             timeout=self.timeout, transcript_dir=self.workdir / "transcripts"))
                with self._conns_lock:
                    self._conns[node.name] = t
        return t

    def drop(self, node: Node) -> None:
        self.drop_name(node.name)

    def drop_name(self, name: str) -> None:
        with self._conns_lock:
            t = self._conns.pop(name, None)
        if t is not None:
            with contextlib.suppress(Exception):
                t.close()

    def command(self, node: Node, operation: str, **args: str) -> str:
        """How ``node``'s transport words ``operation`` (for plans; nothing is sent)."""
        return transport_class(node).command(operation, **args)

    @contextlib.contextmanager
    def on(self, node: Node) -> Iterator[Transport]:
        """The node's transport; a broken session is dropped so the next call reconnects,
        and so is one a Ctrl-C cut off mid-command (the rest of its output unread would be
        taken for the next command's)."""
        try:
            yield self.transport(node)
        except (TransportError, KeyboardInterrupt):
            self.drop(node)
            raise

    # -- TLS
    def presented(self, node: Node, client: str = "ecdsa", *, cafile: Path | None = None
                  ) -> list[PortView]:
        """What each of the node's web ports presents to a ``client`` (``browser``: offering
        RSA and ECDSA, the server chooses; ``ecdsa``/``rsa``: that key type only, TLS 1.2)."""
        return self.presented_to([node], (client,), cafile=cafile)

    def presented_all(self, clients: Sequence[str] = _probe.CLIENTS) -> list[PortView]:
        """Every port of every node of the session, to each of ``clients`` (a browser,
        ECDSA-only and RSA-only unless narrowed), node by node, client by client."""
        return self.presented_to(self.nodes, clients)

    def presented_to(self, nodes: Sequence[Node], clients: Sequence[str], *,
                     cafile: Path | None = None) -> list[PortView]:
        """Every port of ``nodes`` to each of ``clients``, the handshakes at once (a real
        node answers each in milliseconds; a probe costs a window nothing)."""
        ports = [(node, wp) for node in nodes for wp in node.web_ports]
        results = _probe.probe_each([(n.address, wp.connect, _sni(n)) for n, wp in ports],
                                    timeout=self.tls_timeout, versions=("1.2",),
                                    cafile=cafile, clients=clients, reuse=True)
        views = {(n.name, wp.port, r.client): self._view(n, wp, r)
                 for (n, wp), rs in zip(ports, _chunks(results, len(clients)), strict=True)
                 for r in rs}
        return [views[(n.name, wp.port, c)] for n in nodes for c in clients
                for wp in n.web_ports]

    @staticmethod
    def _view(node: Node, wp: WebPort, r: _probe.Presented) -> PortView:
        service = node.spec.service_on(wp.port)
        return PortView(node.name, wp.port, wp.service, r.client, r.status, r.cert, r.leaf,
                        serves=service.serves if service else None)

    def wait_serving(self, node: Node, *, timeout: float = 600.0) -> float:
        """Wait until every web port of ``node`` completes a TLS handshake; seconds waited."""
        start = time.monotonic()
        while True:
            # serving = a browser completes a handshake on every web port
            results = [r for wp in node.web_ports
                       for r in _probe.probe(node.address, wp.connect, timeout=self.tls_timeout,
                                             versions=("1.2",), server_name=_sni(node),
                                             clients=("browser",))]
            if results and all(r.status == "ok" for r in results):
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise NodeTimeout(
                    f"web ports {[wp.port for wp in node.web_ports]} not serving TLS after "
                    f"{timeout:.0f}s", node=node.name,
                    hint="check 'utils service list' on the node; Cisco Tomcat must be STARTED",
                )
            time.sleep(0.1)  # a wave waits on this: poll often (a TLS handshake is cheap)

    def wait_in_service(self, node: Node, *, timeout: float = 900.0) -> float:
        """Wait until ``node`` passes its role's readiness check (topology; on UCCX:
        Finesse's SystemInfo says IN_SERVICE); seconds waited. No check: 0.

        Polled often at first, then every second. Raises :class:`NodeTimeout` naming the last
        answer when ``timeout`` runs out."""
        check = node.spec.readiness
        if check is None:
            return 0.0
        with self.on(node) as t:  # the pin: the tomcat the node stores, read over SSH
            pin = certs.fingerprint_sha256(t.get_certificate("own", "tomcat/tomcat.pem"))
        cred = self.site.finesse_credential
        auth = self.site.credentials[cred].resolve(node=node.name) if cred else None
        wp = next((w for w in node.web_ports if w.port == check.port), None)
        start, pause = time.monotonic(), 0.25
        while True:
            answer = readiness.read(node.address, wp.connect if wp else check.port, check,
                                    pin_sha256=pin, server_name=_sni(node),
                                    host_header=f"{node.fqdn}:{check.port}", auth=auth,
                                    timeout=self.tls_timeout, node=node.name)
            waited = time.monotonic() - start
            if answer.ready:
                return waited
            if waited > timeout:
                raise NodeTimeout(
                    f"{check.name} did not say {check.ready} (GET {check.path} on port "
                    f"{check.port}) within {timeout:.0f} s after the restart; last answer: "
                    f"{answer}", node=node.name,
                    hint="no other node was restarted after it, so agents keep the other "
                    f"UCCX node; check {check.service} and what it depends on ('utils service "
                    "list': Cisco Unified CCX Engine, Notification Service), and once the "
                    "node says IN_SERVICE rerun the restart step: it resumes with the next "
                    "wave (to wait longer, raise in_service_timeout: the parameters cell, or "
                    "-p in_service_timeout SECONDS)")
            time.sleep(pause)
            pause = min(pause * 2, 1.0)  # a poll is one HTTPS GET


def _chunks(items: Sequence[_probe.Presented], n: int) -> Iterator[Sequence[_probe.Presented]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _sni(node: Node) -> str | None:
    """The node's name as browsers send it (never an IP address)."""
    return None if _probe.is_ip(node.fqdn) else node.fqdn
