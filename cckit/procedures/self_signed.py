"""Self-signed tomcat-ECDSA: nothing changes on the servers; agent PCs must trust the certs.

The procedure: "If the UCCX or SocialMiner use self-signed certificates, the agents need to be
advised to accept the certificate warning ... use a group policy or package manager, or
install them individually in the browser of each agent PC." This collects the self-signed
certificates the nodes' web ports present to a browser -- the tomcat-ECDSA where Live Data
(12015) and chat and email (SocialMiner 7443) are served (Cisco 210528), and with
``include_rsa`` the RSA tomcat of the other ports -- and writes the trust bundle the desktop
team deploys, naming the ports each one is shown on.
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
        #: sha256 -> where browsers are shown it ("uccx-pub 12015 (Live Data), ...")
        self.shown_on: dict[str, str] = {}

    def plan(self) -> Plan:
        p = Plan(SELF_SIGNED.name)
        for node in self.session.nodes:
            p.add(node.name, "collect",
                  f"TLS handshakes to its {len(node.web_ports)} web port(s)",
                  "read-only: see which certificate each port presents to a browser")
        p.notes.append("No command changes any server in this scenario.")
        return p

    @step(changes=False)
    def collect(self) -> StepResult:
        """The self-signed certificates the nodes' web ports present to agents' browsers."""
        s = self.session
        views = s.presented_to(s.nodes, ("browser", "ecdsa", "rsa") if self.include_rsa
                               else ("browser", "ecdsa"))
        found: dict[str, tuple[str, x509.Certificate]] = {}
        shown: dict[str, list[str]] = {}
        for v in views:
            c = v.cert
            if (v.client != "browser" or c is None or v.leaf is None or not c.self_signed
                    or (c.key_type != "EC" and not self.include_rsa)):
                continue
            found.setdefault(c.sha256, (v.node, v.leaf))
            shown.setdefault(c.sha256, []).append(f"{v.node} {v.port_label}")
        self.certificates = list(found.values())
        self.shown_on = {sha: ", ".join(where) for sha, where in shown.items()}
        verdict = (f"{len(found)} distinct self-signed certificate(s) shown to browsers, on "
                   + "; ".join(self.shown_on.values()) if found
                   else "no self-signed certificate shown to browsers (nothing for agents to "
                        "trust)")
        return StepResult("collect", verdict, views,
                          Outcome.OK if found else Outcome.NOTHING_TO_DO)

    @step(changes=False)
    def build_bundle(self) -> StepResult:
        """PEM/DER files, GPO PowerShell script, Firefox policy, NSS commands, README."""
        if not self.certificates:
            self.collect()
        bundle = build_trust_bundle(self.certificates, self.out_dir, site=self.session.site.name,
                                    shown_on=self.shown_on)
        return StepResult("build_bundle", f"trust bundle for {len(bundle.rows)} certificate(s) "
                          f"in {bundle.out_dir}", tuple(bundle.rows))

    def run_all(self) -> list[StepResult]:
        return [self.collect(), self.build_bundle()]
