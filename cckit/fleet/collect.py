"""Read one site, and only read: certificates, CSRs, COPs, what every web port presents.

Each node is reached through :class:`ReadOnlyNode`, which exposes the transport's read
operations and nothing else; on the SSH CLI every command is also checked against the
topology's read-only commands before it is sent (:func:`cckit.topology.read_only_command`).
No site lock is taken and nothing is written to the nodes. A node that cannot be read is a
row with its error; the sweep goes on with the others.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.x509 import verification

from .. import certs, probe, topology
from ..credentials import redact
from ..errors import CckitError, ProcedureError
from ..sites import Node, Site, load_site
from ..vos import NotSupported, Transport, connect
from .records import CertRow, CsrRow, NodeRow, PortRow, SiteInventory, TrustGap

__all__ = ["READ_OPERATIONS", "ReadOnlyError", "ReadOnlyNode", "SweepOptions", "collect_site"]

#: the transport operations an inventory may call
READ_OPERATIONS = frozenset({"version", "list_certificates", "get_certificate", "pending_csr"})
_UNITS = (topology.RSA_UNIT, topology.ECDSA_UNIT)


class ReadOnlyError(ProcedureError):
    """The inventory was about to change a node; nothing was sent."""


class ReadOnlyNode:
    """A transport's read operations, and nothing else.

    Any other attribute is refused; where the transport sends CLI commands (``run``), each
    one is checked before it leaves, so even a read operation cannot send a change.
    """

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._node = transport.node.name
        run = getattr(transport, "run", None)
        if callable(run):
            transport.run = self._checked(run)  # type: ignore[attr-defined]

    def _checked(self, run: Callable[..., str]) -> Callable[..., str]:
        def checked(command: str, *args: Any, **kwargs: Any) -> str:
            if not topology.read_only_command(command):
                raise ReadOnlyError(f"refusing to send {command!r}: the inventory only reads",
                                    node=self._node)
            return run(command, *args, **kwargs)

        return checked

    def __getattr__(self, name: str) -> Any:
        if name in READ_OPERATIONS:
            return getattr(self._transport, name)
        raise ReadOnlyError(f"the inventory may not call {name!r} (it only reads)",
                            node=self._node)

    def close(self) -> None:
        self._transport.close()


@dataclass(frozen=True)
class SweepOptions:
    """How one site is read (picklable: it travels to Dask workers)."""

    now: dt.datetime
    timeout: float = 30.0
    tls_timeout: float = 5.0
    trust_on_first_use: bool = False


@dataclass
class _Node:
    """What was read from one node, with the certificates themselves (never leaves here)."""

    node: Node
    version: str = ""
    cops: tuple[str, ...] = ()
    own: list[tuple[str, str, x509.Certificate]] | None = None  # (unit, file, cert)
    trust: list[tuple[str, str, x509.Certificate]] | None = None
    csrs: dict[str, x509.CertificateSigningRequest] | None = None
    errors: list[str] | None = None

    def note(self, text: str) -> None:
        self.errors = [*(self.errors or []), redact(text)]


def _store(t: ReadOnlyNode, store: str, data: _Node) -> list[tuple[str, str, x509.Certificate]]:
    out = []
    for entry in t.list_certificates(store):
        try:
            cert = entry.certificate or t.get_certificate(store, entry.file)
        except CckitError as e:
            data.note(f"{entry.file}: {e.message}")
            continue
        out.append((entry.unit or store, entry.file, cert))
    return out


def _read_node(site: Site, node: Node, options: SweepOptions) -> _Node:
    data = _Node(node)
    try:
        transport = connect(site, node, trust_on_first_use=options.trust_on_first_use,
                            timeout=options.timeout)
    except CckitError as e:
        data.note(e.message)
        return data
    t = ReadOnlyNode(transport)
    try:
        v = t.version()
        data.version, data.cops = v.version, v.cops
        for store in ("own", "trust"):
            try:
                setattr(data, store, _store(t, store, data))
            except NotSupported as e:
                data.note(f"{store} store not readable over {node.transport}: {e.message}")
        try:
            data.csrs = {u: c for u in _UNITS if (c := t.pending_csr(u)) is not None}
        except NotSupported as e:
            data.note(f"pending CSRs not readable over {node.transport}: {e.message}")
    except CckitError as e:
        data.note(e.message)
    finally:
        t.close()
    return data


def _ports(site_name: str, node: Node, options: SweepOptions) -> list[PortRow]:
    """What each web port shows a browser, an ECDSA-only and an RSA-only client (TLS 1.2
    for the latter two), the node's handshakes at once."""
    sni = None if probe.is_ip(node.fqdn) else node.fqdn
    results = probe.probe_each([(node.address, wp.connect, sni) for wp in node.web_ports],
                               timeout=options.tls_timeout, versions=("1.2",), reuse=True)
    ports = {wp.connect: wp for wp in node.web_ports}
    rows = []
    for r in results:
        c, wp = r.cert, ports[r.port]
        service = node.spec.service_on(wp.port)
        rows.append(PortRow(site_name, node.name, wp.port, wp.service or "", r.client,
                            r.status, c.subject_cn if c else "", c.issuer_cn if c else "",
                            f"{c.key_type} {c.key_detail}".strip() if c else "",
                            c.self_signed if c else None, c.sha256 if c else "",
                            c.signed_with if c else "", service.serves if service else ""))
    return rows


# ------------------------------------------------------------------------------ chains


def _issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False


def _missing_issuer(leaf: x509.Certificate, trust: Sequence[x509.Certificate]) -> str | None:
    """The CN of the first CA on the way up from ``leaf`` that ``trust`` lacks (None: all
    there, up to a self-signed root)."""
    cur = leaf
    for _ in range(10):
        if cur.issuer == cur.subject and _issued(cur, cur):
            return None
        up = next((t for t in trust if _issued(cur, t)), None)
        if up is None:
            cns = cur.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
            return str(cns[0].value) if cns else cur.issuer.rfc4514_string()
        cur = up
    return None


def chain_status(leaf: x509.Certificate, info: certs.CertInfo,
                 trust: Sequence[x509.Certificate], now: dt.datetime) -> tuple[str, str | None]:
    """(status, missing CA) of ``leaf`` against a tomcat-trust store, by the one chain policy
    (:func:`cckit.certs.verify_chain`). The time is clamped into the leaf's validity: an
    expired identity is an expiry finding, not a broken chain."""
    if info.self_signed:
        return "self-signed", None
    missing = _missing_issuer(leaf, trust)
    if missing is not None:
        return f"incomplete: {missing} missing", missing
    cas = [c for c in trust if certs.is_ca(c)]
    roots = [c for c in cas if c.issuer == c.subject and _issued(c, c)]
    when = min(max(now, info.not_before), info.not_after)
    try:
        certs.verify_chain(leaf, roots, [c for c in cas if c not in roots], when)
        return "complete", None
    except verification.VerificationError as e:
        return f"does not verify: {e}", None


def _eku(cert: x509.Certificate) -> tuple[bool | None, bool | None]:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None, None
    oids = set(eku)
    any_use = x509.oid.ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in oids
    return (any_use or x509.oid.ExtendedKeyUsageOID.SERVER_AUTH in oids,
            any_use or x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH in oids)


# ------------------------------------------------------------------------------ the site


def _cop_actions(site: Site, node: Node) -> dict[str, str]:
    return {f: a for a in ("disable", "rollback") if (f := site.cop_files.for_node(node, a))}


def _ecdsa_cop(site: Site, node: Node, cops: Sequence[str]) -> str:
    """The ECDSA COP in effect by the installed list: the last one listed [assumed]."""
    known = _cop_actions(site, node)
    actions = [a for c in cops if (a := topology.cop_action(c, known))]
    return actions[-1] if actions else ""


def collect_site(site_file: str | Path, options: SweepOptions) -> SiteInventory:
    """Read every node of one site; never raises for a node's failure."""
    started = time.monotonic()
    try:
        site = load_site(site_file)
    except CckitError as e:
        return SiteInventory(Path(site_file).stem, str(site_file), error=redact(str(e)))
    read = [_read_node(site, n, options) for n in site.nodes]
    ports = [p for n in site.nodes for p in _ports(site.name, n, options)]
    now = options.now
    infos: dict[str, certs.CertInfo] = {}

    def info(c: x509.Certificate) -> certs.CertInfo:
        key = certs.fingerprint_sha256(c)
        if key not in infos:
            infos[key] = certs.describe(c, now=now)
        return infos[key]

    shown: dict[tuple[str, str], list[str]] = {}
    for p in ports:
        if p.sha256:
            shown.setdefault((p.node, p.sha256), []).append(f"{p.port} {p.client}")
    trust_of = {d.node.name: [c for _, _, c in d.trust] for d in read if d.trust is not None}
    rows, nodes, csrs, gaps = [], [], [], []
    for d in read:
        n = d.node
        for store, entries in (("own", d.own), ("trust", d.trust)):
            for unit, file, cert in entries or []:
                i = info(cert)
                chain, _ = (chain_status(cert, i, trust_of[n.name], now)
                            if n.name in trust_of else ("trust store not read", None))
                server, client = _eku(cert)
                rows.append(CertRow(
                    site.name, n.name, n.role.value, store, unit, file, i.subject_cn, i.sans,
                    i.issuer_cn, i.serial_hex, i.key_type, i.key_detail, i.key_bits,
                    i.signature_algorithm, i.signed_with, i.not_before, i.not_after,
                    i.days_left, server, client, i.self_signed, i.is_ca, chain, i.sha256,
                    tuple(shown.get((n.name, i.sha256), ())) if store == "own" else ()))
                if store == "own" and not i.self_signed:
                    for other, trust in trust_of.items():
                        _, missing = chain_status(cert, i, trust, now)
                        if missing:
                            gaps.append(TrustGap(site.name, other, n.name, unit,
                                                 i.subject_cn, missing))
        for unit, csr in (d.csrs or {}).items():
            c = certs.describe_csr(csr)
            csrs.append(CsrRow(site.name, n.name, unit, c["cn"], c["key"],
                               c["public_key_sha256"]))
        nodes.append(NodeRow(
            site.name, n.name, n.role.value, n.host, d.version,
            topology.ecdsa_in_use(n.role, d.version) if d.version else None, d.cops,
            _ecdsa_cop(site, n, d.cops), tuple(sorted(d.csrs or ())),
            len(d.own or ()) + len(d.trust or ()),
            "; ".join(d.errors or ())))
    return SiteInventory(site.name, str(site_file), time.monotonic() - started, tuple(nodes),
                         tuple(rows), tuple(ports), tuple(csrs), tuple(gaps))
