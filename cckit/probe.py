"""Which certificate does a TLS port present to a browser, an ECDSA-only and an RSA-only client?

A UCCX 11.5 web server holds two identity certificates, ``tomcat`` (RSA) and
``tomcat-ECDSA`` (EC). An ECDSA-only client gets ``tomcat-ECDSA``, an RSA-only client
``tomcat``; a browser offers both, and then the server chooses: per web server instance, as
Cisco 210528 tabulates it (:mod:`cckit.topology`). So the probe handshakes as each kind:

* ``browser``: the stdlib :mod:`ssl` client with its defaults (TLS 1.2 and 1.3, ECDSA and RSA
  cipher suites and signature algorithms, ECDSA first, as Chromium and ``openssl s_client``
  offer them): one handshake at whatever version the server picks; what agents are shown.
* ``ecdsa`` / ``rsa``, TLS 1.2: the stdlib client restricted to ``aECDSA`` or ``aRSA``
  cipher suites.
* ``ecdsa`` / ``rsa``, TLS 1.3: cipher suites do not select the certificate and :mod:`ssl`
  cannot set signature algorithms, so the ``openssl s_client`` binary is run with
  ``-sigalgs``. Without the binary the 1.3 rows say ``not_probed``. (UCCX/SocialMiner 11.x
  serve TLS 1.0-1.2 only, Cisco 201000: their 1.3 rows are refusals.)

The certificate is captured without trusting it (the point is to *see* it); whether the
presented chain is trusted by a CA bundle is then checked separately and reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import re
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.x509 import verification

from .certs import CertInfo, describe, load_certificates, verify_chain
from .errors import CckitError, ProbeError

__all__ = [
    "CLIENTS",
    "VERSIONS",
    "Presented",
    "by_target",
    "main",
    "parse_target",
    "probe",
    "probe_each",
    "probe_many",
]

Client = Literal["browser", "ecdsa", "rsa"]
Status = Literal["ok", "refused", "handshake_failed", "timeout", "unreachable", "not_probed"]

CLIENTS: tuple[Client, ...] = ("browser", "ecdsa", "rsa")
VERSIONS = ("1.2", "1.3")
#: the browser's one handshake, at the version the server picks (``tls_version`` then says
#: which; this when it failed)
ANY_VERSION = "any"
#: each client's name in ``cckit probe --json``
JSON_KEYS: dict[str, str] = {"browser": "browser", "ecdsa": "ecdsa_only", "rsa": "rsa_only"}
#: Statuses meaning the server answered (a refused handshake is still an answer).
REACHED = frozenset({"ok", "handshake_failed"})

#: TLS 1.2 cipher strings: the authentication algorithm decides the certificate.
TLS12_CIPHERS: dict[str, str] = {
    "ecdsa": "aECDSA:!aNULL:!eNULL",
    "rsa": "aRSA:!aNULL:!eNULL",
}
#: TLS 1.3 signature algorithms (``openssl s_client -sigalgs``). ``ECDSA+SHAxxx`` are the
#: curve-bound ecdsa_secp256r1_sha256 / secp384r1_sha384 / secp521r1_sha512 (the three
#: key sizes VOS offers); ``RSA-PSS+SHAxxx`` are rsa_pss_rsae_* (PSS with an ordinary RSA
#: key, what a ``tomcat`` certificate uses); rsa_pss_pss_* covers RSASSA-PSS keys.
TLS13_SIGALGS: dict[str, str] = {
    "ecdsa": "ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512",
    "rsa": "RSA-PSS+SHA256:RSA-PSS+SHA384:RSA-PSS+SHA512:"
           "rsa_pss_pss_sha256:rsa_pss_pss_sha384:rsa_pss_pss_sha512",
}
MAX_WORKERS = 8

_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
_PROTOCOL = re.compile(r"^\s*Protocol\s*:\s*(\S+)", re.M)
_NEW = re.compile(r"^New, (TLSv[\d.]+), Cipher is (\S+)", re.M)
_SSL_ERR = re.compile(r":error:[0-9A-F]+:[^:]*:[^:]*:([^:]+):")


@dataclass(frozen=True)
class Presented:
    """What one (port, client kind, TLS version) handshake showed (a browser's: the
    version negotiated, or ``any`` when it failed).

    ``status``: ``ok`` (a certificate was presented), ``handshake_failed`` (the server
    answered but would not complete a handshake with this client: e.g. no ECDSA
    certificate), ``refused``, ``timeout``, ``unreachable`` (name or route), or
    ``not_probed`` (TLS 1.3 without an ``openssl`` binary). ``trusted`` is ``None`` when
    no CA bundle was given or nothing was presented.
    """

    host: str
    port: int
    client: Client
    tls_version: str
    status: Status
    error: str = ""
    cert: CertInfo | None = None
    chain_length: int = 0
    cipher: str = ""
    trusted: bool | None = None
    trust_reason: str = ""
    #: the presented leaf certificate itself (for trust bundles and exact comparisons)
    leaf: x509.Certificate | None = field(default=None, repr=False, compare=False)

    @property
    def reached(self) -> bool:
        """The server answered (a certificate or a handshake refusal)."""
        return self.status in REACHED

    def as_row(self) -> dict[str, object]:
        c = self.cert
        return {
            "host": self.host,
            "port": self.port,
            "client": self.client,
            "tls": self.tls_version,
            "status": self.status,
            "cn": c.subject_cn if c else None,
            "key": f"{c.key_type} {c.key_detail}" if c else None,
            "issuer": c.issuer_cn if c else None,
            "sha256": c.sha256 if c else None,
            "trusted": self.trusted,
            "detail": self.error or self.trust_reason,
        }


# --------------------------------------------------------------------------- arguments


def parse_target(target: str | tuple[str, int]) -> tuple[str, int]:
    """``host:port``, ``[v6addr]:port`` or a ``(host, port)`` tuple, validated."""
    if isinstance(target, tuple):
        if len(target) != 2:
            raise ProbeError(f"target {target!r} is not a (host, port) pair")
        host, port_text = str(target[0]), str(target[1])
    elif isinstance(target, str):
        text = target.strip()
        m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\w+)|([^:\s\[\]/]+):(\w+)", text)
        if not m:
            raise ProbeError(
                f"target {target!r} is not HOST:PORT",
                hint="write e.g. uccx1.example.com:8443 or [2001:db8::1]:443",
            )
        host = m.group(1) or m.group(3)
        port_text = m.group(2) or m.group(4)
    else:
        raise ProbeError(f"target {target!r} is neither a HOST:PORT string nor a tuple")
    if not host or any(ch.isspace() for ch in host):
        raise ProbeError(f"target {target!r} has no usable host name")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ProbeError(
            f"target {target!r}: port {port_text!r} is not a number from 1 to 65535",
            hint="write e.g. uccx1.example.com:8443",
        )
    return host, int(port_text)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _load_roots(cafile: str | Path | None) -> list[x509.Certificate] | None:
    if cafile is None:
        return None
    return load_certificates(Path(cafile))  # CertificateLoadError names the file


# --------------------------------------------------------------------------- trust


def _trust(
    chain: Sequence[x509.Certificate], roots: list[x509.Certificate] | None
) -> tuple[bool | None, str]:
    """Does the presented chain lead to one of ``roots``? (name matching is not checked)."""
    if roots is None or not chain:
        return None, ""
    leaf, rest = chain[0], list(chain[1:])
    if any(leaf == r for r in roots):
        return True, "the presented certificate itself is in the CA bundle"
    try:
        verified = verify_chain(leaf, roots, rest)
    except verification.VerificationError as e:
        return False, f"no chain from the presented certificate to the CA bundle ({e})"
    anchor = verified[-1].subject.rfc4514_string()
    return True, f"chains to {anchor}"


# --------------------------------------------------------------------------- handshakes


def _tls12(host: str, port: int, client: Client, timeout: float, sni: str | None
           ) -> tuple[Status, str, list[x509.Certificate], str]:
    ctx = _client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS[client])
    status, error, chain, cipher, _ = _handshake(host, port, ctx, timeout, sni)
    return status, error, chain, cipher


def _client_context() -> ssl.SSLContext:
    """The stdlib client's defaults (what it offers), capturing instead of trusting: trust
    is judged separately against the given CA bundle."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def _browser(host: str, port: int, timeout: float, sni: str | None
             ) -> tuple[Status, str, list[x509.Certificate], str, str]:
    """A client offering both RSA and ECDSA, TLS 1.2 and 1.3: the server chooses."""
    return _handshake(host, port, _client_context(), timeout, sni)


def _handshake(host: str, port: int, ctx: ssl.SSLContext, timeout: float, sni: str | None
               ) -> tuple[Status, str, list[x509.Certificate], str, str]:
    """(status, error, chain, cipher, TLS version "1.2"/"1.3") of one handshake."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return "refused", "connection refused", [], "", ""
    except TimeoutError:
        return "timeout", f"no TCP connection within {timeout:g} s", [], "", ""
    except OSError as e:
        return "unreachable", e.strerror or type(e).__name__, [], "", ""
    try:
        with ctx.wrap_socket(sock, server_hostname=sni) as tls:
            ders = _peer_chain(tls)
            cipher = (tls.cipher() or ("",))[0]
            version = (tls.version() or "").removeprefix("TLSv")
    except TimeoutError:
        return "timeout", f"no TLS handshake within {timeout:g} s", [], "", ""
    except ssl.SSLError as e:
        return ("handshake_failed", (e.reason or str(e)).lower().replace("_", " "), [], "",
                "")
    except OSError as e:
        return ("handshake_failed", f"connection closed during handshake ({e.strerror or e})",
                [], "", "")
    finally:
        sock.close()
    return "ok", "", [x509.load_der_x509_certificate(d) for d in ders], cipher, version


def _peer_chain(tls: ssl.SSLSocket) -> list[bytes]:
    """DER of the presented chain, leaf first (the leaf alone if the chain is unavailable)."""
    getter = getattr(tls, "get_unverified_chain", None)  # Python 3.13+
    if getter is not None:
        return [bytes(d) for d in getter() or []]
    sslobj = getattr(tls, "_sslobj", None)  # 3.10-3.12: same method, not yet public
    if sslobj is not None and hasattr(sslobj, "get_unverified_chain"):
        chain = sslobj.get_unverified_chain() or []
        return [c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain]  # type: ignore[attr-defined]
    leaf = tls.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _tls13(host: str, port: int, client: Client, timeout: float, sni: str | None,
           openssl: str | None) -> tuple[Status, str, list[x509.Certificate], str]:
    exe = shutil.which(openssl) if openssl else None
    if exe is None:
        return "not_probed", "TLS 1.3 not probed: no openssl binary found", [], ""
    connect = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    cmd = [exe, "s_client", "-connect", connect, "-tls1_3",
           "-sigalgs", TLS13_SIGALGS[client], "-showcerts"]
    cmd += ["-servername", sni] if sni else ["-noservername"]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return "timeout", f"no TLS 1.3 handshake within {timeout:g} s", [], ""
    except OSError as e:
        return "not_probed", f"TLS 1.3 not probed: cannot run {exe}: {e.strerror}", [], ""
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    pems = _PEM_CERT.findall(proc.stdout)
    m = _NEW.search(out)
    if pems and m and m.group(1) == "TLSv1.3":
        certs: list[x509.Certificate] = []
        for p in pems:
            c = x509.load_pem_x509_certificate(p)
            if not certs or certs[-1] != c:
                certs.append(c)
        return "ok", "", certs, m.group(2)
    return _classify_s_client_failure(err + out)


def _classify_s_client_failure(text: str) -> tuple[Status, str, list[x509.Certificate], str]:
    low = text.lower()
    if "unknown option" in low:
        return "not_probed", "TLS 1.3 not probed: this openssl does not support -tls1_3", [], ""
    if "connection refused" in low or "errno=111" in low:
        return "refused", "connection refused", [], ""
    if "timed out" in low or "errno=110" in low:
        return "timeout", "connection timed out", [], ""
    if ("bio_lookup" in low or "name or service not known" in low
            or "no route to host" in low or "network is unreachable" in low):
        return "unreachable", "host name not resolved or no route", [], ""
    reasons = _SSL_ERR.findall(text)
    reason = reasons[-1].strip() if reasons else "no certificate presented"
    return "handshake_failed", reason, [], ""


def _one(host: str, port: int, client: Client, version: str, *, timeout: float,
         sni: str | None, roots: list[x509.Certificate] | None,
         openssl: str | None) -> Presented:
    if client == "browser":
        status, error, chain, cipher, negotiated = _browser(host, port, timeout, sni)
        version = negotiated or ANY_VERSION
    elif version == "1.2":
        status, error, chain, cipher = _tls12(host, port, client, timeout, sni)
    else:
        status, error, chain, cipher = _tls13(host, port, client, timeout, sni, openssl)
    if status != "ok":
        return Presented(host, port, client, version, status, error)
    trusted, reason = _trust(chain, roots)
    return Presented(host, port, client, version, "ok", "", describe(chain[0]),
                     len(chain), cipher, trusted, reason, leaf=chain[0])


def _tasks(host: str, port: int, versions: Sequence[str],
           clients: Sequence[str] = CLIENTS) -> list[tuple[str, int, Client, str]]:
    """One handshake per (client, version); the browser's one at any version."""
    bad = [v for v in versions if v not in VERSIONS]
    if bad or not versions:
        raise ProbeError(f"TLS versions must be among {VERSIONS}, not {tuple(versions)!r}")
    if not clients or any(c not in CLIENTS for c in clients):
        raise ProbeError(f"clients must be among {CLIENTS}, not {tuple(clients)!r}")
    return ([(host, port, "browser", ANY_VERSION)] if "browser" in clients else []) + [
        (host, port, c, v) for v in versions for c in clients if c != "browser"]  # type: ignore[misc]


def _check_timeout(timeout: float) -> None:
    if not isinstance(timeout, int | float) or timeout <= 0:
        raise ProbeError(f"timeout must be a positive number of seconds, not {timeout!r}")


def probe(
    host: str,
    port: int,
    *,
    cafile: str | Path | None = None,
    timeout: float = 5.0,
    versions: Sequence[str] = VERSIONS,
    server_name: str | None = None,
    openssl: str | None = "openssl",
    clients: Sequence[str] = CLIENTS,
) -> list[Presented]:
    """Handshake with ``host:port`` as a browser, and as an ECDSA-only and an RSA-only
    client per TLS version (the handshakes at once).

    Server behaviour (refusal, handshake failure, timeout) comes back as a
    :class:`Presented` status; only bad arguments raise :class:`ProbeError` (or
    :class:`~cckit.errors.CertificateLoadError` for an unreadable ``cafile``).
    ``server_name`` is the SNI to send (default: ``host`` unless it is an IP address);
    ``clients`` narrows the handshakes, e.g. to ``("browser",)`` or ``("rsa",)``.
    """
    host, port = parse_target((host, port))
    return probe_each([(host, port, server_name)], cafile=cafile, timeout=timeout,
                      versions=versions, openssl=openssl, clients=clients)


def probe_many(
    targets: Iterable[str | tuple[str, int]],
    *,
    cafile: str | Path | None = None,
    timeout: float = 5.0,
    versions: Sequence[str] = VERSIONS,
    server_name: str | None = None,
    openssl: str | None = "openssl",
    max_workers: int = MAX_WORKERS,
    clients: Sequence[str] = CLIENTS,
) -> list[Presented]:
    """:func:`probe` for several ``HOST:PORT`` targets, in parallel (at most ``max_workers``
    handshakes at once); results keep the order of ``targets``."""
    parsed = [parse_target(t) for t in targets]  # fail on a bad target before any traffic
    return probe_each([(h, p, server_name) for h, p in parsed], cafile=cafile,
                      timeout=timeout, versions=versions, openssl=openssl,
                      max_workers=max_workers, clients=clients)


def probe_each(
    targets: Sequence[tuple[str, int, str | None]],
    *,
    cafile: str | Path | None = None,
    timeout: float = 5.0,
    versions: Sequence[str] = VERSIONS,
    openssl: str | None = "openssl",
    max_workers: int = MAX_WORKERS,
    clients: Sequence[str] = CLIENTS,
    reuse: bool = False,
) -> list[Presented]:
    """Every handshake of :func:`probe` for each ``(host, port, server_name)``, at most
    ``max_workers`` at once; results in the order of ``targets``, then of :func:`probe`.
    ``server_name`` None: the host unless it is an IP address.

    ``reuse``: where the browser's handshake was TLS 1.2, the TLS 1.2 view of the client
    of the key type it was shown is that handshake's (``cipher`` says the browser's): a web
    server holds one certificate per key type (a VOS keystore: ``tomcat``, ``tomcat-ECDSA``;
    an OpenSSL context: one per type), so an ECDSA-only client is shown the very EC chain a
    browser was. The other key type is still asked for. One handshake in three saved."""
    checked = [(*parse_target((h, p)), sni) for h, p, sni in targets]
    _check_timeout(timeout)
    if max_workers < 1:
        raise ProbeError(f"max_workers must be at least 1, not {max_workers!r}")
    roots = _load_roots(cafile)
    tasks = [(t, sni or (None if is_ip(h) else h))
             for h, p, sni in checked for t in _tasks(h, p, versions, clients)]
    if not tasks:
        return []

    def run(task: tuple[tuple[str, int, Client, str], str | None]) -> Presented:
        (h, p, c, v), sni = task
        return _one(h, p, c, v, timeout=timeout, sni=sni, roots=roots, openssl=openssl)

    with ThreadPoolExecutor(max_workers=min(max_workers, len(tasks)),
                            thread_name_prefix="cckit-probe") as pool:
        if not (reuse and "browser" in clients):
            return list(pool.map(run, tasks))
        first = [i for i, (t, _) in enumerate(tasks) if t[2] == "browser"]
        done = dict(zip(first, pool.map(run, [tasks[i] for i in first]), strict=True))
        shown = {(r.host, r.port): r for r in done.values()
                 if r.status == "ok" and r.tls_version == "1.2" and r.cert is not None}
        rest = []
        for i, ((h, p, c, v), _) in enumerate(tasks):
            b = shown.get((h, p))
            if i in done:
                continue
            if b is not None and v == "1.2" and b.cert.key_type == _KEY_TYPE[c]:
                done[i] = dataclasses.replace(b, client=c)
            else:
                rest.append(i)
        done.update(zip(rest, pool.map(run, [tasks[i] for i in rest]), strict=True))
        return [done[i] for i in range(len(tasks))]


#: the key type of the certificate each single-type client is shown
_KEY_TYPE = {"ecdsa": "EC", "rsa": "RSA"}


# --------------------------------------------------------------------------- command line


def format_table(results: Sequence[Presented]) -> str:
    """A plain-text table for a terminal."""
    header = ("TARGET", "CLIENT", "TLS", "STATUS", "CN", "KEY", "ISSUER", "TRUSTED", "SHA256")
    rows = []
    for r in results:
        c = r.cert
        trusted = "-" if r.trusted is None else ("yes" if r.trusted else "NO")
        rows.append((
            f"{r.host}:{r.port}", r.client, r.tls_version,
            r.status if r.status == "ok" else f"{r.status} ({r.error})",
            c.subject_cn if c else "", f"{c.key_type} {c.key_detail}" if c else "",
            c.issuer_cn if c else "", trusted if c else "", c.sha256[:23] + "…" if c else "",
        ))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip()
             for row in (header, *rows)]
    untrusted = [r for r in results if r.trusted is False]
    for r in untrusted:
        lines.append(f"{r.host}:{r.port} {r.client} TLS {r.tls_version}: {r.trust_reason}")
    return "\n".join(lines)


def _target(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def by_target(results: Iterable[Presented]) -> dict[str, dict[str, dict[str, object]]]:
    """``cckit probe --json``: per ``HOST:PORT``, what ``browser``, ``ecdsa_only`` and
    ``rsa_only`` clients are shown, each ``{key_type: "EC"|"RSA"|null, sha256, subject,
    issuer, trusted, tls, status}`` (null when nothing was presented). An ECDSA-only or
    RSA-only client's entry is its handshake at the highest TLS version that presented a
    certificate (else its first: TLS 1.2)."""
    chosen: dict[str, dict[str, Presented]] = {}
    for r in results:
        seen = chosen.setdefault(_target(r.host, r.port), {})
        old = seen.get(r.client)
        if old is None or (r.status == "ok" and (old.status != "ok"
                                                or r.tls_version > old.tls_version)):
            seen[r.client] = r
    out: dict[str, dict[str, dict[str, object]]] = {}
    for target, per in chosen.items():
        out[target] = {}
        for client, key in JSON_KEYS.items():
            r = per.get(client)
            if r is None:
                continue
            c = r.cert
            out[target][key] = {
                "key_type": c.key_type if c else None,
                "sha256": c.sha256 if c else None,
                "subject": r.leaf.subject.rfc4514_string() if r.leaf is not None else None,
                "issuer": c.issuer if c else None,
                "trusted": r.trusted if c else None,
                "tls": r.tls_version if r.status == "ok" else None,
                "status": r.status,
            }
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``cckit probe HOST:PORT [HOST:PORT...] [--cafile F] [--timeout S] [--json]``.

    Exit 0 when every handshake reached the server (a handshake refusal counts as reached:
    it is an answer), 1 otherwise, 2 on bad arguments.
    """
    parser = argparse.ArgumentParser(
        prog="cckit probe",
        description="Show which certificate each port presents to a browser (a client "
                    "offering RSA and ECDSA: the server chooses), to an ECDSA-only and to an "
                    "RSA-only TLS client (TLS 1.2 and 1.3).",
    )
    parser.add_argument("targets", nargs="+", metavar="HOST:PORT")
    parser.add_argument("--cafile", type=Path, help="CA bundle (PEM) to judge trust against")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per handshake")
    parser.add_argument("--servername", help="SNI to send (default: the host name)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object: per HOST:PORT, what a browser, an "
                             "ECDSA-only and an RSA-only client are shown")
    args = parser.parse_args(argv)
    try:
        results = probe_many(args.targets, cafile=args.cafile, timeout=args.timeout,
                             server_name=args.servername)
    except CckitError as e:  # a bad target (ProbeError) or an unreadable --cafile
        print(f"cckit probe: {e}", file=sys.stderr)
        return 2
    print(json.dumps(by_target(results), indent=2) if args.json else format_table(results))
    skipped = [r for r in results if r.status == "not_probed"]
    if skipped:
        print(f"note: {skipped[0].error}", file=sys.stderr)
    return 0 if all(r.reached or r.status == "not_probed" for r in results) else 1
