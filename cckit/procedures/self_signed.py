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

from ..clienttrust import build_trust_bundle
from ..results import Outcome, Plan, StepResult
from ..scenarios import SELF_SIGNED
from ..session import SiteSession
from .base import Procedure, step

__all__ = ["SelfSigned"]


class SelfSigned(Procedure):
    """The self-signed procedure: collect what the nodes present, build the trust bundle."""

    def __init__(self, session: SiteSession, out_dir: str | Path, *,
                 include_rsa: bool = False) -> None:
        super().__init__(session)
        self.out_dir = Path(out_dir)
        self.include_rsa = include_rsa
        self.certificates: list[tuple[str, x509.Certificate]] = []

    def plan(self) -> Plan:
        p = Plan(SELF_SIGNED.name)
        for node in self.session.nodes:
            p.add(node.name, "collect",
                  f"TLS handshakes to its {len(node.web_ports)} web port(s)",
                  "read-only: see which certificate each port presents to an ECDSA client")
        p.notes.append("No command changes any server in this scenario.")
        return p

    @step(changes=False)
    def collect(self) -> StepResult:
        """The self-signed certificates each node's web ports present to agents' browsers."""
        s = self.session
        views, found, seen = [], [], set()
        for node in s.nodes:
            for client in ("ecdsa", "rsa") if self.include_rsa else ("ecdsa",):
                for v in s.presented(node, client):
                    views.append(v)
                    if v.cert is None or not v.cert.self_signed or v.sha256 in seen:
                        continue
                    seen.add(v.sha256)
                    found.append((node.name, v.leaf))
        self.certificates = found
        verdict = (f"{len(found)} distinct self-signed certificate(s) presented" if found
                   else "no self-signed certificate presented (nothing for agents to trust)")
        return StepResult("collect", verdict, views,
                          Outcome.OK if found else Outcome.NOTHING_TO_DO)

    @step(changes=False)
    def build_bundle(self) -> StepResult:
        """PEM/DER files, GPO PowerShell script, Firefox policy, NSS commands, README."""
        if not self.certificates:
            self.collect()
        bundle = build_trust_bundle(self.certificates, self.out_dir, site=self.session.site.name)
        return StepResult("build_bundle", f"trust bundle for {len(bundle.rows)} certificate(s) "
                          f"in {bundle.out_dir}", tuple(bundle.rows))

    def run_all(self) -> list[StepResult]:
        return [self.collect(), self.build_bundle()]
