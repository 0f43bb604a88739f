"""For tests: the in-process mock site (:mod:`.inprocess`) and SSH/TLS helpers that talk to
it as an engineer's tools would (``ssh -tt`` with askpass, ``openssl s_client``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .inprocess import (  # noqa: F401  (re-exported for the tests)
    TEST_CLI_STARTUP_SECONDS,
    FaultControl,
    NodeInfo,
    RunningSite,
    running_site,
    running_sites,
)

_ASKPASS = "#!/bin/sh\nprintf '%s\\n' \"$VOSMOCK_ASKPASS_SECRET\"\n"


def _askpass_script() -> str:
    d = Path(tempfile.gettempdir()) / f"vosmock-askpass-{os.getuid()}"
    d.mkdir(mode=0o700, exist_ok=True)
    p = d / "askpass.sh"
    if not p.exists() or p.read_text() != _ASKPASS:
        p.write_text(_ASKPASS)
        p.chmod(0o700)
    return str(p)


def ssh_command(
    port: int, known_hosts: os.PathLike, user: str = "admin", extra: list[str] | None = None
) -> list[str]:
    return [
        "ssh",
        "-tt",
        "-F",
        "/dev/null",
        "-p",
        str(port),
        "-o",
        f"UserKnownHostsFile={known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "GlobalKnownHostsFile=/dev/null",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "NumberOfPasswordPrompts=1",
        "-o",
        "PreferredAuthentications=password,keyboard-interactive",
        "-o",
        "ConnectTimeout=10",
        "-o",
        "LogLevel=ERROR",
        *(extra or []),
        f"{user}@127.0.0.1",
    ]


def ssh_env(password: str) -> dict:
    env = dict(os.environ)
    env.update(
        SSH_ASKPASS=_askpass_script(),
        SSH_ASKPASS_REQUIRE="force",
        DISPLAY="x",
        VOSMOCK_ASKPASS_SECRET=password,
    )
    return env


def clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def run_ssh(
    port: int, known_hosts, password: str, stdin: str, timeout: float = 60, user: str = "admin"
) -> subprocess.CompletedProcess:
    """`ssh -tt` with all of `stdin` piped in at once; output normalised to `\\n`."""
    proc = subprocess.run(
        ssh_command(port, known_hosts, user),
        input=stdin.encode(),
        capture_output=True,
        timeout=timeout,
        env=ssh_env(password),
        check=False,
    )
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        clean(proc.stdout.decode(errors="replace")),
        clean(proc.stderr.decode(errors="replace")),
    )


class SshCli:
    """An expect-style driver around `ssh -tt` (waits for prompts before answering)."""

    def __init__(self, port: int, known_hosts, password: str, user: str = "admin"):
        self.proc = subprocess.Popen(
            ssh_command(port, known_hosts, user),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=ssh_env(password),
        )
        self.buf = ""
        self.pos = 0
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            chunk = self.proc.stdout.read1(65536)
            if not chunk:
                break
            with self._lock:
                self.buf += clean(chunk.decode(errors="replace"))

    def expect(self, pattern: str, timeout: float = 30) -> str:
        """Wait for regex `pattern` after the last match; return the text up to its end."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                m = rx.search(self.buf, self.pos)
                if m:
                    text = self.buf[self.pos : m.end()]
                    self.pos = m.end()
                    return text
                done = self.proc.poll() is not None and not self._reader.is_alive()
                if done or time.monotonic() > deadline:
                    raise TimeoutError(f"{pattern!r} not seen; got:\n{self.buf[self.pos :]}")
            time.sleep(0.02)

    def send(self, text: str) -> None:
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def cmd(self, line: str, timeout: float = 30) -> str:
        """Send a command at the prompt; return its output up to the next `admin:` prompt."""
        self.send(line + "\n")
        out = self.expect(r"(?m)^admin:", timeout)
        return out[: -len("admin:")]

    def login(self, timeout: float = 30) -> str:
        return self.expect(r"(?m)^admin:", timeout)

    def close(self) -> int:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("quit\n")
                    self.proc.stdin.close()
                except OSError:
                    pass
                self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class Presented:
    """What a TLS port presented to a client (None fields when the handshake failed)."""

    ok: bool
    subject_cn: str | None = None
    issuer_cn: str | None = None
    key_type: str | None = None
    pem: bytes | None = None
    output: str = ""


SIGALGS_ECDSA = "ECDSA+SHA256:ECDSA+SHA384"
SIGALGS_RSA = "RSA-PSS+SHA256:RSA+SHA256"


def tls_probe(port: int, sigalgs: str | None, tls: str = "1.2", timeout: float = 20
              ) -> Presented:
    """`openssl s_client` with only `sigalgs` (None: its defaults, offering RSA and ECDSA as
    a browser does): which certificate does the port present? TLS 1.2 by default, the
    highest UCCX/SocialMiner 11.x serve (Cisco 201000); ``tls`` "any": let them agree."""
    from cryptography import x509

    from . import pki

    args = [
        shutil.which("openssl") or "openssl",
        "s_client",
        "-connect",
        f"127.0.0.1:{port}",
        *(["-sigalgs", sigalgs] if sigalgs else []),
        *({"1.3": ["-tls1_3"], "1.2": ["-tls1_2"]}.get(tls, [])),
    ]
    proc = subprocess.run(args, input=b"", capture_output=True, timeout=timeout, check=False)
    out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    certs = pki.split_pem_certs(out.encode())
    if not certs:
        return Presented(False, output=out)
    cert = x509.load_pem_x509_certificate(certs[0])
    return Presented(
        True,
        pki.cn_of(cert.subject),
        pki.cn_of(cert.issuer),
        pki.key_type_name(cert.public_key()),
        certs[0],
        out,
    )


# ---------------------------------------------------------------------------- the agents' view
# Finesse's SystemInfo as an outside watcher reads it (what agents' desktops depend on): an
# RSA-only TLS 1.2 client that trusts only the node's own tomcat certificate.


def stored_pem(state_dir: os.PathLike, node: str, unit: str = "tomcat") -> str:
    """The certificate `node` stores for `unit` (its PEM), from the site's state dir."""
    return (Path(state_dir) / "nodes" / node / "own" / unit / f"{unit}.pem").read_text()


def finesse_pems(state_dir: os.PathLike, node: str) -> str:
    """The RSA certificates `node`'s Finesse may present: the `tomcat` it stores and the one
    its Finesse listener presents now (they differ between an import and the restart)."""
    active = (Path(state_dir) / "nodes" / node / "active-services" / "cisco-finesse-tomcat"
              / "tomcat" / "tomcat.pem")
    return stored_pem(state_dir, node) + (active.read_text() if active.exists() else "")


def finesse_status(port: int, cadata: str, *, host: str = "127.0.0.1",
                   auth: tuple[str, str] | None = None, timeout: float = 2.0) -> str:
    """`GET /finesse/api/SystemInfo` once: its `<status>` (IN_SERVICE, OUT_OF_SERVICE), or
    `HTTP <code>`, or `down` when the port does not complete TLS with the node's tomcat."""
    import base64
    import socket
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # 127.0.0.1; the certificate itself is what is trusted
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    ctx.load_verify_locations(cadata=cadata)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("aRSA:!aNULL:!eNULL")
    head = "GET /finesse/api/SystemInfo HTTP/1.1\r\nHost: finesse\r\nConnection: close\r\n"
    if auth is not None:
        head += "Authorization: Basic " + base64.b64encode(":".join(auth).encode()).decode() \
            + "\r\n"
    data = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                ctx.wrap_socket(raw) as tls:
            tls.sendall((head + "\r\n").encode())
            while chunk := tls.recv(65536):
                data += chunk
    except (OSError, ssl.SSLError):
        return "down"
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    if not m or m.group(1) != b"200":
        return f"HTTP {m.group(1).decode() if m else '?'}"
    s = re.search(rb"<status>([A-Z_]+)</status>", data)
    return s.group(1).decode() if s else "no status"


class FinesseWatch(threading.Thread):
    """Polls Finesse on several UCCX nodes every `interval` seconds until `stop()`:
    `targets` maps a name to (port, the PEM(s) to trust, or a function giving them at each
    sample). Per sample, the nodes not IN_SERVICE: `.out[name]` counts a node's samples
    out, `.both_out` those with none in service (agents with no desktop), `.samples` all."""

    def __init__(self, targets: dict[str, tuple[int, str | Callable[[], str]]],
                 interval: float = 0.25, host: str = "127.0.0.1"):
        super().__init__(daemon=True, name="finesse-watch")
        self.targets, self.interval, self.host = targets, interval, host
        self.samples = 0
        self.out = {name: 0 for name in targets}
        self.both_out: list[float] = []  # when (seconds since the start)
        self._halt = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self._halt.is_set():
            down = [name for name, (port, pem) in self.targets.items()
                    if finesse_status(port, pem() if callable(pem) else pem,
                                      host=self.host) != "IN_SERVICE"]
            self.samples += 1
            for name in down:
                self.out[name] += 1
            if down and len(down) == len(self.targets):
                self.both_out.append(time.monotonic() - start)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(30)
