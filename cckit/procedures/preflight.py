"""Preflight: reach every node, read versions, COPs and certificates, and advise a scenario.

Read-only. The advisor encodes the procedure's FAQ ("When do you install the UCCX COP? ...
When you have a CA which is capable to sign ECDSA certificates with RSA only").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from cryptography.x509.verification import VerificationError

from .. import certs, topology
from ..ca import CertificateAuthority, SigningKey
from ..display import agent_prompts
from ..errors import CckitError
from ..orchestration import parallel
from ..results import (
    DONE,
    Advice,
    CertRecord,
    Outcome,
    Plan,
    PortView,
    StepResult,
    VersionRecord,
)
from ..scenarios import CA_SIGNED, PREFLIGHT, RENEW_TOMCAT, RSA_ONLY, SELF_SIGNED
from ..session import SiteSession
from ..sites import Node
from ..vos import NotSupported
from .base import Procedure, step

__all__ = ["Advice", "Preflight", "advise"]

CaCapability = Literal["ec", "rsa-only", "none"]


#: a renewal is due this many days before the first presented certificate expires
RENEW_BEFORE_DAYS = 30


def advise(
    versions: dict[str, VersionRecord],
    *,
    app_certs_ca_signed: bool,
    ca_capability: CaCapability,
    agents_may_accept_certificates: bool = False,
    disable_cops: set[str] | frozenset[str] = frozenset(),
    ca_key: SigningKey | None = None,
    agents_prompted: Sequence[str] = (),
) -> Advice:
    """Which scenario the procedure recommends for this site.

    ``app_certs_ca_signed``: the RSA ``tomcat`` certificates are CA-signed today.
    ``ca_capability``: ``ec`` (the CA signs with an EC key), ``rsa-only`` (it can only sign
    with RSA), ``none`` (no CA). ``disable_cops``: names of ECDSA-disabling COP files.
    ``ca_key``: the configured CA's probed signing key (it then decides ``ca_capability``).
    ``agents_prompted``: what agents' browsers are shown today that troubles them, in their
    words (:func:`cckit.display.agent_prompts`): the advice starts with it.
    """
    if ca_key is not None:
        ca_capability = "ec" if ca_key.signs_ec else "rsa-only"
    reasons: list[str] = list(agents_prompted)
    if versions and not any(v.ecdsa_in_use for v in versions.values()):
        return Advice(RENEW_TOMCAT.name, (
            "From UCCX 11.6 on, ECDSA is no longer used by the UCCX solution (no tomcat-ECDSA; "
            f"Cisco 118855): renew the RSA tomcat certificate ({RENEW_TOMCAT.name}).",))
    newer = [n for n, v in versions.items() if not v.ecdsa_in_use]
    if newer:
        reasons.append(f"{', '.join(newer)} run a release other than 11.5; the procedure "
                       "applies to the 11.5 nodes only")
    installed = {n for n, v in versions.items()
                 if any(topology.cop_installed(v.cops, c) for c in disable_cops)}
    if installed:
        reasons.append("the ECDSA-disabling COP is already installed on "
                       f"{', '.join(sorted(installed))}: the site is RSA-only there; roll it "
                       "back before a CA-signed ECDSA")
    if ca_capability == "rsa-only":
        if ca_key is not None:
            reasons.append(f"tomcat-ECDSA: {certs.rsa_signed_hint(ca_key)}")
        reasons.append("the CA can sign ECDSA certificates with RSA only: such a certificate "
                       "is not presented to clients and breaks SocialMiner chat and email "
                       "(CSCvb58580) -> install the COP on UCCX and SocialMiner")
        return Advice(RSA_ONLY.name, tuple(reasons))
    if app_certs_ca_signed:
        if ca_capability == "ec":
            reasons.append("the application certificates are CA-signed and the CA signs with "
                           "an EC key: get tomcat-ECDSA signed too (the recommended best "
                           "practice); otherwise agents see a self-signed certificate "
                           "their browser rejects")
            return Advice(CA_SIGNED.name, tuple(reasons))
        reasons.append("the application certificates are CA-signed but no CA can sign the "
                       "ECDSA certificate: agents would be asked to accept a self-signed "
                       "certificate, which the browser then blocks -> RSA-only (COP) until "
                       "an EC CA is available")
        return Advice(RSA_ONLY.name, tuple(reasons))
    if agents_may_accept_certificates:
        reasons.append("self-signed certificates: push the extra self-signed tomcat-ECDSA "
                       "certificates to agent PCs (GPO/Firefox policy) with the trust bundle")
        return Advice(SELF_SIGNED.name, tuple(reasons))
    reasons.append("self-signed certificates and agents must not accept an additional "
                   "certificate -> install the COP so only RSA is offered")
    return Advice(RSA_ONLY.name, tuple(reasons))


class Preflight(Procedure):
    """Read-only checks before the window, and the advisor. Changes nothing."""

    def __init__(self, session: SiteSession) -> None:
        super().__init__(session)
        self.versions: dict[str, VersionRecord] = {}
        self.cert_records: list[CertRecord] = []
        #: what each web port presents to a browser (read by ``certificates``)
        self.browser_views: list[PortView] = []

    def plan(self) -> Plan:
        """The read-only commands preflight sends to each node."""
        s = self.session
        p = Plan(PREFLIGHT.name)
        for node in s.nodes:
            p.add(node.name, "reachability", s.command(node, "version"),
                  "version and installed COPs")
        for node in s.nodes:
            p.add(node.name, "certificates",
                  f"{s.command(node, 'list_own')}; {s.command(node, 'list_csr')}",
                  "stored certificates and pending CSRs", stage=2)
            p.add(node.name, "certificates", f"TLS handshakes to its {len(node.web_ports)} "
                  "web port(s)", "what a browser, ECDSA-only and RSA-only clients are shown",
                  stage=2)
        p.notes.append("Read-only: nothing on any node changes.")
        return p

    @step(changes=False)
    def reachability(self) -> StepResult:
        """Log in to every node and read ``show version active``: versions, installed COPs."""
        def one(node: Node) -> VersionRecord:
            try:
                with self.session.on(node) as t:
                    v = t.version()
                return VersionRecord(node.name, node.role, node.host, node.transport,
                                     v.version, v.cops,
                                     topology.ecdsa_in_use(node.role, v.version))
            except CckitError as e:
                return VersionRecord(node.name, node.role, node.host, node.transport,
                                     None, (), None, e.message)

        # every node at once: a login alone takes 8-60 s on a real node
        records = parallel(self.session.nodes, one)
        self.versions = {r.node: r for r in records if r.version is not None}
        failed = len(records) - len(self.versions)
        verdict = (f"all {len(records)} node(s) reachable" if not failed
                   else f"{failed} of {len(records)} node(s) NOT reachable: "
                   + "; ".join(f"{r.node}: {r.error}" for r in records if r.error))
        return StepResult("reachability", verdict, records,
                          Outcome.FAILED if failed else Outcome.OK)

    @step(changes=False)
    def certificates(self) -> StepResult:
        """Own certificates (tomcat, tomcat-ECDSA), pending CSRs, what the web ports present."""
        s = self.session

        def one(node: Node) -> tuple[list[CertRecord], list[PortView]]:
            records = []
            with s.on(node) as t:
                try:
                    own = {e.unit: e for e in t.list_certificates("own")}
                    pending = t.pending_csr()
                    readable = True
                except NotSupported:  # certmgr REST cannot list own certificates or CSRs
                    own, pending, readable = {}, None, False
            views = s.presented_to([node], ("browser", "ecdsa", "rsa"))
            browser = [v for v in views if v.client == "browser"]
            for unit, client in ((topology.RSA_UNIT, "rsa"), (topology.ECDSA_UNIT, "ecdsa")):
                e = own.get(unit)
                mine = [v for v in views if v.client == client]
                shown = sorted({v.cert.subject_cn for v in mine if v.cert}) or \
                    sorted({v.status for v in mine})
                to_browsers = [v.port_label for v in browser if v.cert is not None
                               and v.cert.key_type == topology.KEY_TYPES[unit]]
                records.append(CertRecord(
                    node.name, unit,
                    e.description if e else ("not readable over REST" if not readable
                                             else "missing"),
                    e.self_signed if e else None, e.signed_by if e else None,
                    (pending is not None) if unit == topology.ECDSA_UNIT and readable else None,
                    f"to {client.upper()} clients: {', '.join(shown) or '-'}",
                    ", ".join(to_browsers) or "no port"))
            return records, browser

        # every node at once (site order kept): CLI reads and TLS handshakes per node
        done = parallel(s.nodes, one)
        records = [r for rs, _ in done for r in rs]
        self.cert_records = records
        self.browser_views = [v for _, vs in done for v in vs]
        prompts = agent_prompts(self.browser_views)
        verdict = (f"stored certificates, pending CSRs and what the ports present, on "
                   f"{len(s.nodes)} node(s); "
                   + ("; ".join(prompts) or "agents' browsers are shown no tomcat-ECDSA they "
                                            "would have to accept"))
        return StepResult("certificates", verdict, records)

    def advise(self, *, ca_capability: CaCapability = "ec",
               app_certs_ca_signed: bool | None = None,
               agents_may_accept_certificates: bool = False,
               ca: CertificateAuthority | None = None) -> Advice:
        """The scenario to run. ``app_certs_ca_signed`` None: read it from the inventory
        (the RSA ``tomcat`` certificates are CA-signed on every node). ``ca``: the configured
        CA, whose signing key is probed (``ca_capability`` then only when it cannot tell)."""
        ca_key = ca.signing_key() if ca is not None else None
        if not self.versions:
            self.reachability()
        done = self._ca_signed_everywhere()
        if done is not None:
            return done
        if app_certs_ca_signed is None:
            if not self.cert_records:
                self.certificates()
            tomcat = [r for r in self.cert_records if r.unit == topology.RSA_UNIT]
            app_certs_ca_signed = bool(tomcat) and all(r.signed_by for r in tomcat)
        cops = self.session.site.cop_files
        disable = set(cops.for_action("disable"))
        site = self.session.site
        if not self.browser_views:
            self.certificates()
        return advise(self.versions, app_certs_ca_signed=app_certs_ca_signed,
                      ca_capability=ca_capability,
                      agents_may_accept_certificates=agents_may_accept_certificates,
                      disable_cops=disable, ca_key=ca_key,
                      agents_prompted=agent_prompts(self.browser_views),
                      ).with_next(str(site.path or "SITE.yaml"), site.name)

    def _ca_signed_everywhere(self) -> Advice | None:
        """A completed CA-signed site: every web port of every 11.5 node presents to an ECDSA
        client a CA-signed EC certificate, signed with EC, whose presented chain verifies to a
        CA in the node's tomcat-trust store. Then nothing is to do until its renewal."""
        s = self.session
        nodes = [n for n in s.nodes if (v := self.versions.get(n.name)) and v.ecdsa_in_use]
        if not nodes or len(self.versions) < len(s.nodes):
            return None
        first: tuple[dt.datetime, str] | None = None
        for node in nodes:
            with s.on(node) as t:
                try:
                    roots = [t.get_certificate("trust", e.file)
                             for e in t.list_certificates("trust")
                             if e.file.startswith(f"{topology.TRUST_UNIT}/")]
                except (NotSupported, CckitError):
                    return None
            for v in s.presented(node, "ecdsa"):
                c = v.cert
                if (v.status != "ok" or c is None or v.leaf is None or c.self_signed
                        or c.key_type != "EC" or c.signed_with != "EC"):
                    return None
                try:
                    certs.verify_chain(v.leaf, roots, [])
                except VerificationError:  # no path to the node's trust store
                    return None
                if first is None or c.not_after < first[0]:
                    first = (c.not_after, f"{node.name} port {v.port_label}")
        if first is None:
            return None
        due = (first[0] - dt.timedelta(days=RENEW_BEFORE_DAYS)).date().isoformat()
        site = s.site
        return Advice(DONE, (
            f"every web port of {', '.join(n.name for n in nodes)} presents a CA-signed "
            "tomcat-ECDSA (EC key, signed with EC) whose chain verifies to the node's "
            "tomcat-trust: nothing to do",
            f"next renewal due {due} ({RENEW_BEFORE_DAYS} days before the first expiry, "
            f"{first[0].date().isoformat()} on {first[1]}): runbooks/{CA_SIGNED.name}.ipynb with "
            f"site_file={str(site.path or 'SITE.yaml')!r}, confirm={site.name!r}, renew=True"))
