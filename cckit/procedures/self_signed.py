"""Self-signed tomcat-ECDSA: nothing changes on the servers; agent PCs must trust the certs.

The procedure: "If the UCCX or SocialMiner use self-signed certificates, the agents need to be
advised to accept the certificate warning ... use a group policy or package manager, or
install them individually in the browser of each agent PC." This collects the self-signed
certificate each node's web ports present to an ECDSA client (what the agents' browsers
see), and writes the trust bundle the desktop team deploys.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from ..clienttrust import TrustBundle, build_trust_bundle
from ._common import Plan, SiteSession, StepResult, port_label

__all__ = ["SelfSigned"]


def _plan(session: SiteSession) -> Plan:
    p = Plan("self_signed")
    for node in session.nodes:
        p.add(node.name, "collect", f"TLS handshakes to its {len(node.web_ports)} web port(s)",
              "read-only: see which certificate each port presents to an ECDSA client")
    p.notes.append("No command changes any server in this scenario.")
    return p


def _collect(session: SiteSession, *, include_rsa: bool = False) -> StepResult:
    """The self-signed certificates the nodes present (ECDSA, and RSA if ``include_rsa``)."""
    found: list[tuple[str, x509.Certificate]] = []
    rows, seen = [], set()
    clients = ("ecdsa", "rsa") if include_rsa else ("ecdsa",)
    for node in session.nodes:
        for client in clients:
            for r in session.presented(node, client):
                rows.append({"node": node.name, "port": port_label(node, r.port), "client": client,
                             "status": r.status,
                             "cn": r.cert.subject_cn if r.cert else None,
                             "self-signed": r.cert.self_signed if r.cert else None,
                             "sha256": r.cert.sha256 if r.cert else None})
                if r.cert is None or not r.cert.self_signed or r.cert.sha256 in seen:
                    continue
                seen.add(r.cert.sha256)
                found.append((node.name, r.leaf))
    verdict = (f"{len(found)} distinct self-signed certificate(s) presented"
               if found else "no self-signed certificate presented (nothing for agents to trust)")
    return StepResult("collect", verdict, rows, data={"certificates": found})


def _build_bundle(session: SiteSession, certificates: list[tuple[str, x509.Certificate]],
                  out_dir: str | Path) -> StepResult:
    """Write PEM/DER files, a GPO PowerShell script, a Firefox policy, NSS commands, README."""
    bundle: TrustBundle = build_trust_bundle(certificates, Path(out_dir), site=session.site.name)
    rows = [dict(r) for r in bundle.rows]
    return StepResult("build_bundle", f"trust bundle for {len(rows)} certificate(s) in "
                      f"{bundle.out_dir}", rows, data={"bundle": bundle})


class SelfSigned:
    """The self-signed procedure: collect what the nodes present, build the trust bundle."""

    def __init__(self, session: SiteSession, out_dir: str | Path, *,
                 include_rsa: bool = False) -> None:
        self.session = session
        self.out_dir = Path(out_dir)
        self.include_rsa = include_rsa
        self.certificates: list[tuple[str, x509.Certificate]] = []

    def plan(self) -> Plan:
        return _plan(self.session)

    def collect(self) -> StepResult:
        """The self-signed certificates each node's web ports present to agents' browsers."""
        r = _collect(self.session, include_rsa=self.include_rsa)
        self.certificates = r.data["certificates"]
        return r

    def build_bundle(self) -> StepResult:
        """PEM/DER files, GPO PowerShell script, Firefox policy, NSS commands, README."""
        if not self.certificates:
            self.collect()
        return _build_bundle(self.session, self.certificates, self.out_dir)

    def run_all(self) -> list[StepResult]:
        return [self.collect(), self.build_bundle()]
