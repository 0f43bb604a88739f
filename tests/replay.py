"""A tiny SSH server that replays a recorded VOS CLI session (tests/transcripts/*.txt).

It plays the node's side of a transcript (format: cckit.vos.transcript) to whoever logs in:
the text the node printed, then, for each input the transcript records, it waits for that
input from the client, checks it and prints what the node printed next. Any other input
(an extra blank line, a wrong answer, a command too many) is a mismatch: recorded in
``errors``, shown to the client and the session is closed. ``%% pause`` lines are
replayed scaled by ``time_scale`` (capped at ``max_pause``) so tests stay fast.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import asyncssh

from cckit.vos.transcript import Record, parse
from cckit.vosmock.session import accept_repeated_userauth_requests

KEYS = {"space": " ", "q": "q"}


class _Mismatch(Exception):
    pass


class _Session(asyncssh.SSHServerSession):
    def __init__(self, server: ReplayServer):
        self.server = server
        self.chan = None
        self.buf = ""
        self.more = asyncio.Event()
        self.eof = False

    # asyncssh callbacks
    def connection_made(self, chan) -> None:
        self.chan = chan

    def pty_requested(self, term_type, term_size, term_modes) -> bool:
        return True

    def shell_requested(self) -> bool:
        return True

    def session_started(self) -> None:
        self.server.tasks.add(asyncio.get_running_loop().create_task(self._play()))

    def data_received(self, data: str, datatype) -> None:
        self.buf += data
        self.more.set()

    def eof_received(self) -> bool:
        self.eof = True
        self.more.set()
        return True

    def connection_lost(self, exc) -> None:
        self.eof = True
        self.more.set()

    # input
    async def _wait(self) -> None:
        if self.eof:
            raise EOFError
        self.more.clear()
        await self.more.wait()

    async def read_line(self) -> str:
        while True:
            for i, ch in enumerate(self.buf):
                if ch in "\r\n":
                    line = self.buf[:i]
                    skip = 2 if self.buf[i : i + 2] == "\r\n" else 1
                    self.buf = self.buf[i + skip :]
                    return line
            await self._wait()

    async def read_key(self) -> str:
        while not self.buf:
            await self._wait()
        key, self.buf = self.buf[0], self.buf[1:]
        return key

    # output
    def write(self, text: str) -> None:
        self.chan.write(text.replace("\n", "\r\n"))

    async def _play(self) -> None:
        try:
            for rec in self.server.records:
                await self._step(rec)
            self.server.done = True
            while True:  # past the end: only quit/exit (what close() sends) is expected
                line = await self.read_line()
                if line.strip() in ("quit", "exit"):
                    break
                raise _Mismatch(f"input after the end of the transcript: {line!r}")
        except EOFError:
            pass
        except _Mismatch as exc:
            self.server.errors.append(str(exc))
            self.write(f"\n*** replay mismatch: {exc}\n")
        finally:
            self.chan.exit(0)

    async def _step(self, rec: Record) -> None:
        self.server.position += 1
        if rec.kind == "out":
            self.write(rec.value)
        elif rec.kind == "pause":
            await asyncio.sleep(min(rec.seconds * self.server.time_scale, self.server.max_pause))
        elif rec.kind == "key":
            got = await self.read_key()
            want = KEYS.get(rec.value)
            if got != want and not (rec.value == "enter" and got in "\r\n"):
                raise _Mismatch(f"expected the key {rec.value}, got {got!r}")
        elif rec.secret:
            await self.read_line()
        elif rec.certificate_body:  # base64 lines up to (not including) the END line
            while True:
                line = await self.read_line()
                if line.startswith("-----END "):
                    self.buf = line + "\n" + self.buf
                    return
                if not line or line.startswith("-----"):
                    raise _Mismatch(f"expected a certificate body line, got {line!r}")
        else:
            got = await self.read_line()
            if got.rstrip() != rec.value.rstrip():
                raise _Mismatch(f"expected {rec.value!r}, got {got!r}")


class _Auth(asyncssh.SSHServer):
    def __init__(self, server: ReplayServer):
        self.server = server

    def connection_made(self, conn) -> None:
        accept_repeated_userauth_requests(conn)  # as OpenSSH: one request per auth method

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return self.server.auth == "password"

    def validate_password(self, username: str, password: str) -> bool:
        return password == self.server.password

    def kbdint_auth_supported(self) -> bool:
        return self.server.auth == "keyboard-interactive"

    def get_kbdint_challenge(self, username, lang, submethods):
        return "", "", "", [("Password: ", False)]

    def validate_kbdint_response(self, username, responses) -> bool:
        return list(responses) == [self.server.password]

    def session_requested(self):
        return _Session(self.server)


class ReplayServer:
    """``with ReplayServer(path_or_text, known_hosts=path) as srv:`` -> ``srv.port``."""

    def __init__(self, transcript: str | Path, *, known_hosts: Path, password: str,
                 auth: str = "password", time_scale: float = 0.0, max_pause: float = 1.0):
        text = transcript.read_text() if isinstance(transcript, Path) else transcript
        self.records = parse(text)
        self.known_hosts = known_hosts
        self.password = password
        self.auth = auth
        self.time_scale = time_scale
        self.max_pause = max_pause
        self.errors: list[str] = []
        self.done = False
        self.position = 0
        self.tasks: set[asyncio.Task] = set()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        self.port = self._call(self._start())
        return self

    def __exit__(self, *exc) -> None:
        self._call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    async def _start(self) -> int:
        key = asyncssh.generate_private_key("ssh-ed25519")
        self._acceptor = await asyncssh.listen(
            "127.0.0.1", 0, server_factory=lambda: _Auth(self), server_host_keys=[key],
            line_editor=False,
        )
        port = self._acceptor.sockets[0].getsockname()[1]
        public = key.export_public_key("openssh").decode().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
        return port

    async def _stop(self) -> None:
        self._acceptor.close()
        await self._acceptor.wait_closed()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
