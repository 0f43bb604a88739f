"""Is a restarted node back for its users? One read of its readiness check (topology).

On a UCCX node that is Finesse's ``GET https://<node>:8445/finesse/api/SystemInfo``: its
``<status>`` says ``IN_SERVICE`` only once Finesse has reached CTI and its notification
service, well after Cisco Finesse Tomcat answers TLS again [doc: Finesse developer guide,
SystemInfo, "Failure Scenarios"]. Agents have a desktop on that node only from then on.

The TLS session is authenticated before anything is sent: the node presents its RSA
``tomcat`` certificate to an RSA-only client, and that certificate must be the one the node
stores, read over its SSH session (whose host key the site's known_hosts vouches for). So a
credential, when the site file names one (``finesse: {credential: ...}``), only ever goes to
the node itself. Without one the request carries none: what the Finesse desktop itself
asks before anyone signs in [doc: public Finesse clients poll SystemInfo unauthenticated].
A 401 is never retried: Finesse blocks a user after five bad passwords [doc: Finesse
developer guide 12.5(1), "Cisco Finesse Serviceability APIs"].
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import re
import socket
import ssl
from dataclasses import dataclass

from .credentials import Secret
from .errors import AuthenticationError, HostKeyError
from .topology import ReadinessCheck

__all__ = ["Answer", "read"]

#: TLS 1.2 with RSA authentication only: the server must present its RSA ``tomcat``
_RSA_ONLY = "aRSA:!aNULL:!eNULL"
#: a SystemInfo document is a few KiB; never read more than this
_MAX_BODY = 256 * 1024
_STATUS = re.compile(rb"<status>\s*([A-Za-z_]+)\s*</status>")
_REASON = re.compile(rb"<statusReason>\s*([^<]{0,200}?)\s*</statusReason>")


@dataclass(frozen=True)
class Answer:
    """One read of a readiness check: ``status`` as the node said it (``IN_SERVICE``,
    ``OUT_OF_SERVICE``, ``HTTP 503``, ``no answer``), ``ready`` when it is the check's."""

    status: str
    ready: bool
    detail: str = ""

    def __str__(self) -> str:
        return self.status + (f" ({self.detail})" if self.detail else "")


def read(address: str, port: int, check: ReadinessCheck, *, pin_sha256: str,
         server_name: str | None = None, host_header: str | None = None,
         auth: tuple[str, Secret] | None = None, timeout: float = 5.0,
         node: str | None = None) -> Answer:
    """GET ``check.path`` on ``address:port`` once.

    ``pin_sha256``: the SHA-256 (colon hex, as :func:`cckit.certs.fingerprint_sha256`) the
    presented RSA certificate must have; another one raises :class:`HostKeyError` before any
    request is sent. A refused or silent port, a TLS failure or an HTTP error is an
    :class:`Answer` that is not ready; a 401 raises :class:`AuthenticationError`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # No CA decides here: the certificate is compared with the node's own, byte for byte.
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(_RSA_ONLY)
    try:
        raw = socket.create_connection((address, port), timeout=timeout)
    except OSError as e:
        return Answer("no answer", False, _why(e))
    try:
        tls = ctx.wrap_socket(raw, server_hostname=server_name)
    except (OSError, ssl.SSLError) as e:
        raw.close()
        return Answer("no answer", False, f"TLS: {_why(e)}")
    try:
        der = tls.getpeercert(binary_form=True) or b""
        got = hashlib.sha256(der).hexdigest().upper()
        want = pin_sha256.replace(":", "").upper()
        if got != want:
            raise HostKeyError(
                f"port {port} presents an RSA certificate (sha256 {_colon(got)[:23]}...) that "
                "is not the tomcat certificate the node stores", node=node,
                hint="the service behind that port was not restarted since tomcat last "
                "changed: restart it on the node (utils service restart ...) and rerun; "
                "nothing was sent to it")
        conn = http.client.HTTPConnection(address, port, timeout=timeout)
        conn.sock = tls  # the authenticated session
        headers = {"Host": host_header or f"{server_name or address}:{port}",
                   "Accept": "application/xml"}
        if auth is not None:
            user, password = auth
            token = base64.b64encode(f"{user}:{password.reveal()}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        try:
            conn.request("GET", check.path, headers=headers)
            resp = conn.getresponse()
            body = resp.read(_MAX_BODY)
        except (OSError, http.client.HTTPException) as e:
            return Answer("no answer", False, _why(e))
    finally:
        tls.close()
    if resp.status == 401:
        raise AuthenticationError(
            f"{check.name}: GET {check.path} refused the credential (HTTP 401)", node=node,
            hint="check finesse.credential in the site file (Finesse blocks a user for 5 "
            "minutes after 5 bad passwords: it is not retried), or remove it to ask "
            "without one")
    if resp.status != 200:
        return Answer(f"HTTP {resp.status}", False, resp.reason or "")
    m = _STATUS.search(body)
    if not m:
        return Answer("no status", False, f"{check.path} answered without <status>")
    status = m.group(1).decode()
    reason = _REASON.search(body)
    return Answer(status, status == check.ready,
                  reason.group(1).decode(errors="replace") if reason else "")


def _why(e: BaseException) -> str:
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(e, ssl.SSLError):
        return (e.reason or str(e)).lower().replace("_", " ")
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def _colon(hexdigits: str) -> str:
    return ":".join(hexdigits[i:i + 2] for i in range(0, len(hexdigits), 2))
