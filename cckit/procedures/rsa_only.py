"""RSA-only: install the COP that stops ECDSA being offered (``disable``), or roll it back.

The procedure's FAQ: the ECDSA certificate stays in the keystore, but is no longer offered to
clients. Install once per node (``show version active`` lists installed COPs, so a rerun
skips it), restart in HA-safe order, then check no web port offers ECDSA.
"""

from __future__ import annotations

from .. import topology
from ..audit import operation
from ..errors import InputError
from ..orchestration import parallel, restart_nodes, restart_waves
from ..results import Action, CopRecord, Outcome, Plan, StepResult, VerifyRecord
from ..scenarios import RSA_ONLY
from ..session import SiteSession
from ..sites import Node
from .base import Procedure, step

__all__ = ["RsaOnly"]

ACTIONS = ("disable", "rollback")


class RsaOnly(Procedure):
    """The RSA-only procedure (``action`` ``disable``) or its rollback, one method per step."""

    waits = ("in_service_timeout",)

    def __init__(self, session: SiteSession, action: str = "disable") -> None:
        if action not in ACTIONS:
            raise InputError(f"action must be disable or rollback, not {action!r}")
        super().__init__(session)
        self.action = action

    def _cop(self, node: Node) -> str:
        site = self.session.site
        cop = site.cop_files.for_node(node, self.action)
        if not cop:
            family = node.spec.cop_family
            if family is None:
                raise InputError(f"{node.spec.label} has no ECDSA-disabling COP",
                                 node=node.name, hint="leave this node out (nodes parameter)")
            raise InputError(
                f"the site file names no {family}_{self.action} COP file", node=node.name,
                file=str(site.path) if site.path else None,
                hint=f"add cop_files.{family}_{self.action} (the .cop.sgn name from Cisco) to "
                "the site file",
            )
        if site.cop_repository is None:
            raise InputError("the site file has no cop_repository (the SFTP server with the "
                             "COPs)", hint="add cop_repository: {host, port, directory, "
                             "credential}")
        return cop

    def _installed(self, node: Node, cop: str) -> bool:
        with self.session.on(node) as t:
            return t.version().has_cop(cop)

    def plan(self) -> Plan:
        """The commands this would send, read-only (installed COPs are looked up)."""
        s = self.session
        p = Plan(f"{RSA_ONLY.name} ({self.action})")
        repo = s.site.cop_repository
        for node in s.nodes:
            cop = self._cop(node)
            if self._installed(node, cop):
                p.notes.append(f"{node.name}: {cop} already installed; skipped")
                continue
            assert repo is not None
            p.add(node.name, "install_cops", s.command(node, "install_cop"),
                  f"SFTP {repo.host}:{repo.port}{repo.directory} -> {cop}")
        for wave, nodes in enumerate(restart_waves(s.nodes)):
            for node in nodes:
                for service in node.restart_services():
                    p.add(node.name, "restart", s.command(node, "restart", service=service),
                          "the COP takes effect after the restart (subscriber first; the "
                          "publisher once it is back: TLS, then Finesse IN_SERVICE, at most "
                          f"{self.in_service_timeout:.0f} s)",
                          stage=2 + wave)
        return p

    @step()
    def install_cops(self) -> StepResult:
        """Install the COP on every node, skipping where ``show version active`` lists it."""
        s = self.session
        repo = s.site.cop_repository

        def one(node: Node) -> CopRecord:
            cop = self._cop(node)
            assert repo is not None
            if self._installed(node, cop):
                return CopRecord(node.name, cop, Action.ALREADY_INSTALLED)
            user, password = s.site.credentials[repo.credential].resolve(node=node.name)
            with s.on(node) as t, operation(s.audit, node.name, "install_cop",
                                            {"file": cop, "server": f"{repo.host}:{repo.port}",
                                             "directory": repo.directory, "user": user}):
                t.install_cop(cop, repo, user, password)
            return CopRecord(node.name, cop, Action.INSTALLED)

        # Every node at once: a download and install takes a node a minute or more.
        records = parallel(s.nodes, one)
        return StepResult.tally("install_cops", records, Action.INSTALLED,
                                f"{self.action} COP installed on {{n}} node(s), {{rest}} "
                                "already had it")

    @step(after=("install_cops",))
    def restart(self, *, timeout: float = 600) -> StepResult:
        """Restart in HA-safe order where the COP is not yet in effect."""
        want_ecdsa = self.action == "rollback"
        return restart_nodes(self.session, timeout=timeout,
                             skip=lambda n: bool(n.web_ports)
                             and self._offers_ecdsa(n) == want_ecdsa,
                             in_service_timeout=self.in_service_timeout)

    def _offers_ecdsa(self, node: Node) -> bool:
        return any(v.cert is not None and v.cert.key_type == "EC"
                   for v in self.session.presented(node, "ecdsa"))

    @step(after=("restart",))
    def verify(self) -> StepResult:
        """disable: no port shows ECDSA to anyone (an ECDSA-only client gets nothing, a
        browser RSA); rollback: every port offers ECDSA again, and a browser is shown it
        where its web server chooses tomcat-ECDSA (Cisco 210528: Live Data, chat)."""
        rollback = self.action == "rollback"
        s = self.session
        nodes = {n.name: n for n in s.nodes}
        views = s.presented_to(s.nodes, ("ecdsa", "browser"))
        ecdsa = {(v.node, v.port): v for v in views if v.client == "ecdsa"}
        records = []
        for v in views:
            ec = v.cert is not None and v.cert.key_type == "EC"
            if not rollback:
                records.append(VerifyRecord(v, "no ECDSA", not ec))
                continue
            if v.client == "ecdsa":
                records.append(VerifyRecord(v, "ECDSA", ec))
                continue
            e = ecdsa[(v.node, v.port)].cert
            state = (topology.EcdsaState.of(e.self_signed, e.signed_with) if e is not None
                     and e.key_type == "EC" else topology.EcdsaState.NOT_OFFERED)
            unit = nodes[v.node].spec.to_browser(v.port, state) or topology.RSA_UNIT
            want_ec = unit == topology.ECDSA_UNIT
            records.append(VerifyRecord(v, f"{unit}, as Cisco 210528 says", ec == want_ec))
        bad = sum(not r.ok for r in records)
        want = ("offers ECDSA again (browsers: where 210528 says)" if rollback
                else "shows no ECDSA certificate to any client")
        verdict = f"every port {want}" if not bad else f"{bad} port view(s) do not: {want}"
        return StepResult("verify", verdict, records, Outcome.FAILED if bad else Outcome.OK)

    def run_all(self) -> list[StepResult]:
        return [self.install_cops(), self.restart(), self.verify()]
