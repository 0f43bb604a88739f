"""Preflight: reach every node, read versions, COPs and certificates, and advise a scenario.

Read-only. The advisor encodes the procedure's FAQ ("When do you install the UCCX COP? ...
When you have a CA which is capable to sign ECDSA certificates with RSA only").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import CckitError
from ..vos import NotSupported, VersionInfo
from ._common import Plan, SiteSession, StepResult

__all__ = ["Advice", "Preflight", "advise"]

CaCapability = Literal["ec", "rsa-only", "none"]


def reachability(session: SiteSession) -> StepResult:
    """Log in to every node and read ``show version active``."""
    rows, versions, failed = [], {}, 0
    for node in session.nodes:
        try:
            with session.on(node) as t:
                v = t.version()
            versions[node.name] = v
            rows.append({"node": node.name, "role": node.role, "host": node.host,
                         "transport": node.transport, "version": v.version,
                         "installed COPs": ", ".join(v.cops) or "-",
                         "ECDSA used": "yes" if v.uses_ecdsa else "no (11.6+)",
                         "error": ""})
        except CckitError as e:
            failed += 1
            rows.append({"node": node.name, "role": node.role, "host": node.host,
                         "transport": node.transport, "version": None, "installed COPs": None,
                         "ECDSA used": None, "error": e.message})
    verdict = (f"all {len(rows)} node(s) reachable" if not failed
               else f"{failed} of {len(rows)} node(s) NOT reachable: "
               + "; ".join(f"{r['node']}: {r['error']}" for r in rows if r["error"]))
    return StepResult("reachability", verdict, rows, ok=not failed,
                      data={"versions": versions})


def certificates(session: SiteSession) -> StepResult:
    """Own certificates (tomcat, tomcat-ECDSA), pending CSRs, and what the web ports present."""
    rows = []
    for node in session.nodes:
        with session.on(node) as t:
            try:
                own = {e.unit: e for e in t.list_certificates("own")}
                pending = t.pending_csr()
            except NotSupported:  # certmgr REST cannot list own certificates or CSRs
                own, pending = {}, None
        presented = {c: [r for r in session.presented(node, c)] for c in ("ecdsa", "rsa")}
        for unit in ("tomcat", "tomcat-ECDSA"):
            e = own.get(unit)
            client = "ecdsa" if unit == "tomcat-ECDSA" else "rsa"
            shown = {r.cert.subject_cn for r in presented[client] if r.cert}
            rows.append({
                "node": node.name, "unit": unit,
                "stored": e.description if e else
                ("not readable over REST" if node.transport == "rest" else "missing"),
                "pending CSR": ("yes" if pending is not None else "no")
                if unit == "tomcat-ECDSA" else "",
                f"presented to {client} clients": ", ".join(sorted(shown)) or
                ", ".join(sorted({r.status for r in presented[client]})) or "-",
            })
    return StepResult("certificates", f"certificate inventory of {len(session.nodes)} node(s)",
                      rows, data={"rows": rows})


@dataclass(frozen=True)
class Advice:
    scenario: Literal["ca_signed", "self_signed", "rsa_only", "none"]
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"Recommended: {self.scenario}\n" + "\n".join(f"  - {r}" for r in self.reasons)

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{r}</li>" for r in self.reasons)
        return f"<p><b>Recommended scenario: {self.scenario}</b></p><ul>{items}</ul>"


def advise(
    versions: dict[str, VersionInfo],
    *,
    app_certs_ca_signed: bool,
    ca_capability: CaCapability,
    agents_may_accept_certificates: bool = False,
    disable_cops: set[str] | frozenset[str] = frozenset(),
) -> Advice:
    """Which scenario the procedure recommends for this site.

    ``app_certs_ca_signed``: the RSA ``tomcat`` certificates are CA-signed today.
    ``ca_capability``: ``ec`` (the CA signs with an EC key), ``rsa-only`` (it can only sign
    with RSA), ``none`` (no CA). ``disable_cops``: names of ECDSA-disabling COP files.
    """
    reasons: list[str] = []
    if versions and not any(v.uses_ecdsa for v in versions.values()):
        return Advice("none", ("From UCCX 11.6 on, ECDSA is no longer used by the UCCX "
                               "solution: this procedure applies to 11.5 only.",))
    newer = [n for n, v in versions.items() if not v.uses_ecdsa]
    if newer:
        reasons.append(f"{', '.join(newer)} run a release other than 11.5; the procedure "
                       "applies to the 11.5 nodes only")
    installed = {n for n, v in versions.items() if set(v.cops) & set(disable_cops)}
    if installed:
        reasons.append("the ECDSA-disabling COP is already installed on "
                       f"{', '.join(sorted(installed))}: the site is RSA-only there; roll it "
                       "back before a CA-signed ECDSA")
    if ca_capability == "rsa-only":
        reasons.append("the CA can sign ECDSA certificates with RSA only: such a certificate "
                       "is not presented to clients and breaks SocialMiner chat and email "
                       "(CSCvb58580) -> install the COP on UCCX and SocialMiner")
        return Advice("rsa_only", tuple(reasons))
    if app_certs_ca_signed:
        if ca_capability == "ec":
            reasons.append("the application certificates are CA-signed and the CA signs with "
                           "an EC key: get tomcat-ECDSA signed too (the recommended best "
                           "practice); otherwise agents see a self-signed certificate "
                           "their browser rejects")
            return Advice("ca_signed", tuple(reasons))
        reasons.append("the application certificates are CA-signed but no CA can sign the "
                       "ECDSA certificate: agents would be asked to accept a self-signed "
                       "certificate, which the browser then blocks -> RSA-only (COP) until "
                       "an EC CA is available")
        return Advice("rsa_only", tuple(reasons))
    if agents_may_accept_certificates:
        reasons.append("self-signed certificates: push the extra self-signed tomcat-ECDSA "
                       "certificates to agent PCs (GPO/Firefox policy) with the trust bundle")
        return Advice("self_signed", tuple(reasons))
    reasons.append("self-signed certificates and agents must not accept an additional "
                   "certificate -> install the COP so only RSA is offered")
    return Advice("rsa_only", tuple(reasons))


class Preflight:
    """Read-only checks before the window, and the advisor. Changes nothing."""

    def __init__(self, session: SiteSession) -> None:
        self.session = session
        self.versions: dict[str, VersionInfo] = {}
        self.inventory: list[dict] = []

    def plan(self) -> Plan:
        """The read-only commands preflight sends to each node."""
        p = Plan("preflight")
        for node in self.session.nodes:
            p.add(node.name, "reachability", "show version active", "version and installed COPs")
            p.add(node.name, "certificates", "show cert list own; show csr list own",
                  "stored certificates and pending CSRs")
            p.add(node.name, "certificates", f"TLS handshakes to its {len(node.web_ports)} "
                  "web port(s)", "what ECDSA-only and RSA-only clients are shown")
        p.notes.append("Read-only: nothing on any node changes.")
        return p

    def reachability(self) -> StepResult:
        """Log in to every node; versions and installed COPs."""
        r = reachability(self.session)
        self.versions = r.data["versions"]
        return r

    def certificates(self) -> StepResult:
        """Stored certificates, pending CSRs and what the web ports present."""
        r = certificates(self.session)
        self.inventory = r.rows
        return r

    def advise(self, *, ca_capability: CaCapability = "ec",
               app_certs_ca_signed: bool | None = None,
               agents_may_accept_certificates: bool = False) -> Advice:
        """The scenario to run. ``app_certs_ca_signed`` None: read it from the inventory
        (the RSA ``tomcat`` certificates are CA-signed on every node)."""
        if not self.versions:
            self.reachability()
        if app_certs_ca_signed is None:
            if not self.inventory:
                self.certificates()
            tomcat = [r for r in self.inventory if r["unit"] == "tomcat"]
            app_certs_ca_signed = bool(tomcat) and all(
                str(r["stored"]).startswith("Certificate Signed by") for r in tomcat)
        cops = self.session.site.cop_files
        disable = {c for c in (cops.uccx_disable, cops.socialminer_disable) if c}
        return advise(self.versions, app_certs_ca_signed=app_certs_ca_signed,
                      ca_capability=ca_capability,
                      agents_may_accept_certificates=agents_may_accept_certificates,
                      disable_cops=disable)
