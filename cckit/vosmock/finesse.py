"""Finesse on a UCCX node's 8445: the SystemInfo answer and its in-service clock.

[doc] Cisco Finesse developer guide: ``GET /finesse/api/SystemInfo`` answers a
``<SystemInfo>`` document whose ``<status>`` is ``IN_SERVICE`` or ``OUT_OF_SERVICE``
(SystemInfo, SystemInfo.Statuses); Finesse is out of service while a dependency (CTI, the
notification service) is not up, "when the system is just starting up" (desktop API
errors), and a client recovers by polling SystemInfo for IN_SERVICE ("Failure Scenarios").
[assumed] how long that takes after Cisco Finesse Tomcat's TLS is back: the site's
``finesse_ready_seconds`` (latency profile ``finesse_ready``); the mock says
``OUT_OF_SERVICE`` until then.

[doc] Public Finesse clients ask SystemInfo without credentials (the desktop does, before
anyone signs in); the serviceability chapter (12.5(1)) takes HTTP Basic, and blocks a user
for 5 minutes after 5 bad passwords. The mock answers a request without an Authorization
header, or with the site's OS admin credential; any other credential gets Finesse's 401
``ApiErrors`` document [doc: Cisco Finesse API Errors] and counts toward that block.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import re
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .node import MockNode

SERVICE = "Cisco Finesse Tomcat"
SYSTEM_INFO = "/finesse/api/SystemInfo"
LOCKOUT_FAILURES, LOCKOUT_SECONDS = 5, 300.0

_REQUEST_LINE = re.compile(rb"^([A-Z]+) (\S+) HTTP/1\.[01]\r?\n")
_AUTH = re.compile(rb"^authorization:[ \t]*basic[ \t]+(\S+)[ \t]*\r?$", re.I | re.M)


def restarted(node: MockNode) -> None:
    """Cisco Finesse Tomcat's TLS is up again: in service ``finesse_ready_seconds`` later."""
    node.finesse_ready_at = time.monotonic() + node.site.finesse_ready_seconds


def status(node: MockNode) -> str:
    if node.faults.finesse_out_of_service or time.monotonic() < node.finesse_ready_at:
        return "OUT_OF_SERVICE"
    return "IN_SERVICE"


def answer(node: MockNode, port: int, request: bytes) -> bytes | None:
    """The HTTP response to ``request`` on the local ``port``, when it is Finesse's
    SystemInfo on a UCCX node; None for anything else (the plain Tomcat answer)."""
    if port not in node.web_ports or node.web_service(node.web_ports.index(port)) != SERVICE:
        return None
    m = _REQUEST_LINE.match(request)
    if not m or m.group(2).split(b"?", 1)[0] != SYSTEM_INFO.encode():
        return None
    if m.group(1) != b"GET":
        return _response(405, "Method Not Allowed", b"", "text/plain")
    user = _refused_user(node, request)
    if user is not None:
        body = ("<ApiErrors><ApiError><ErrorType>Authentication Failure</ErrorType>"
                "<ErrorMessage>UNAUTHORIZED</ErrorMessage>"
                f"<ErrorData>{_xml(user)}</ErrorData></ApiError></ApiErrors>").encode()
        return _response(401, "Unauthorized", body, "application/xml",
                         'WWW-Authenticate: Basic realm="Cisco Finesse"\r\n')
    return _response(200, "OK", system_info(node).encode(), "application/xml")


def _refused_user(node: MockNode, request: bytes) -> str | None:
    """None when the request may read SystemInfo; else the user name it tried."""
    m = _AUTH.search(request.split(b"\r\n\r\n", 1)[0])
    if m is None:
        return None  # no credential: allowed
    try:
        user, _, password = base64.b64decode(m.group(1), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, password = "?", None
    now = time.monotonic()
    ok = (password is not None and now >= node.finesse_locked_until
          and hmac.compare_digest(f"{user}\0{password}".encode(),
                                  f"{node.site.username}\0{node.site.password}".encode()))
    if ok:
        node.finesse_failures = 0
        return None
    node.finesse_failures += 1
    if node.finesse_failures >= LOCKOUT_FAILURES:
        node.finesse_failures = 0
        node.finesse_locked_until = now + LOCKOUT_SECONDS
    return user


def system_info(node: MockNode) -> str:
    """The SystemInfo document [doc: its structure, Finesse developer guide]."""
    pub = next((n for n in node.cluster() if n.role.endswith("-publisher")), node)
    sub = next((n for n in node.cluster() if n.role.endswith("-subscriber")), node)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<SystemInfo>'
            f"<currentTimestamp>{now}</currentTimestamp>"
            "<deploymentType>UCCX</deploymentType>"
            f"<primaryNode><host>{_xml(pub.host)}</host></primaryNode>"
            f"<secondaryNode><host>{_xml(sub.host)}</host></secondaryNode>"
            f"<status>{status(node)}</status>"
            "<systemAuthMode>NON_SSO</systemAuthMode><timezoneOffset>0</timezoneOffset>"
            f"<uri>{SYSTEM_INFO}</uri><xmppDomain>{_xml(pub.host)}</xmppDomain>"
            f"<xmppPubSubDomain>pubsub.{_xml(pub.host)}</xmppPubSubDomain></SystemInfo>\n")


def _response(code: int, reason: str, body: bytes, content_type: str,
              extra: str = "") -> bytes:
    return (f"HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\n{extra}"
            f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def _xml(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
