"""Start Debian's pebble (a real ACME test server) and pebble-challtestsrv (its DNS) for tests.

Both on free loopback ports from a temporary config; pebble's TLS certificate for the ACME
and management endpoints comes from a test root made here (``ca_bundle`` then names it: TLS
stays verified). ``PEBBLE_VA_NOSLEEP=1`` drops pebble's random validation delay and
``-dnsserver`` points its DNS-01 look-ups at challtestsrv.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography import x509

from cckit._internal import x509build

from . import certfactory as cf

PEBBLE = shutil.which("pebble") or "/usr/bin/pebble"
CHALLTESTSRV = shutil.which("pebble-challtestsrv") or "/usr/bin/pebble-challtestsrv"


def installed() -> bool:
    return os.access(PEBBLE, os.X_OK) and os.access(CHALLTESTSRV, os.X_OK)


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited: {log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args[0]} did not listen on {port}")


@dataclass
class Pebble:
    directory: str
    management: str
    challtestsrv: str
    dns: str
    ca_bundle: Path
    root_file: Path

    def set_txt(self, name: str, value: str) -> None:
        r = requests.post(f"{self.challtestsrv}/set-txt",
                          json={"host": name.rstrip(".") + ".", "value": value}, timeout=10)
        r.raise_for_status()


@contextlib.contextmanager
def running_pebble(directory: Path) -> Iterator[Pebble]:
    directory.mkdir(parents=True, exist_ok=True)
    acme, mgmt, dns, chall, http01, tls01 = _free_ports(6)
    root = cf.make_root("pebble test TLS root")
    key = cf.ec_key()
    now = dt.datetime.now(dt.UTC)
    tls = x509build.leaf_certificate(
        x509build.name("localhost"), key.public_key(), issuer=(root.key, root.cert.subject),
        sans=x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                          x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        not_before=now - dt.timedelta(hours=1), not_after=now + dt.timedelta(days=2))
    (directory / "tls.pem").write_bytes(cf.pem(tls))
    (directory / "tls.key").write_bytes(cf.key_pem(key))
    (directory / "tls-root.pem").write_bytes(root.pem)
    (directory / "pebble.json").write_text(json.dumps({"pebble": {
        "listenAddress": f"127.0.0.1:{acme}", "managementListenAddress": f"127.0.0.1:{mgmt}",
        "certificate": str(directory / "tls.pem"), "privateKey": str(directory / "tls.key"),
        "httpPort": http01, "tlsPort": tls01, "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}))
    # deterministic: no validation delay, no reused authorizations, no rejected nonces
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_AUTHZREUSE": "0",
           "PEBBLE_WFE_NONCEREJECT": "0"}
    procs: list[subprocess.Popen] = []
    try:
        clog = directory / "challtestsrv.log"
        procs.append(subprocess.Popen(
            [CHALLTESTSRV, "-dns01", f"127.0.0.1:{dns}", "-management", f"127.0.0.1:{chall}",
             "-http01", "", "-https01", "", "-tlsalpn01", ""],
            stdout=clog.open("wb"), stderr=subprocess.STDOUT, env=env))
        _wait_port(chall, procs[-1], clog)
        plog = directory / "pebble.log"
        procs.append(subprocess.Popen(
            [PEBBLE, "-config", str(directory / "pebble.json"), "-dnsserver",
             f"127.0.0.1:{dns}"], stdout=plog.open("wb"), stderr=subprocess.STDOUT, env=env,
            cwd=directory))
        _wait_port(acme, procs[-1], plog)
        _wait_port(mgmt, procs[-1], plog)
        bundle = str(directory / "tls-root.pem")
        roots = requests.get(f"https://localhost:{mgmt}/roots/0", verify=bundle, timeout=10)
        roots.raise_for_status()
        (directory / "pebble-root.pem").write_bytes(roots.content)
        yield Pebble(f"https://localhost:{acme}/dir", f"https://localhost:{mgmt}",
                     f"http://127.0.0.1:{chall}", f"127.0.0.1:{dns}",
                     directory / "tls-root.pem", directory / "pebble-root.pem")
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
