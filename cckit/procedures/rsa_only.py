"""RSA-only: install the COP that stops ECDSA being offered (``disable``), or roll it back.

The procedure's FAQ: the ECDSA certificate stays in the keystore, but is no longer offered to
clients. Install once per node (``show version active`` lists installed COPs, so a rerun
skips it), restart Tomcat in HA-safe order, then check no web port offers ECDSA.
"""

from __future__ import annotations

from ..audit import operation
from ..errors import InputError
from ..inventory import Node
from ._common import Plan, SiteSession, StepResult, port_label, restart_nodes, restart_order

__all__ = ["RsaOnly"]

ACTIONS = ("disable", "rollback")


def _cop(session: SiteSession, node: Node, action: str) -> str:
    if action not in ACTIONS:
        raise InputError(f"action must be disable or rollback, not {action!r}")
    cop = session.site.cop_files.for_node(node, action)
    if not cop:
        family = "uccx" if node.is_uccx else "socialminer"
        raise InputError(
            f"the site file names no {family}_{action} COP file", node=node.name,
            file=str(session.site.path) if session.site.path else None,
            hint=f"add cop_files.{family}_{action} (the .cop.sgn name from Cisco) to the site "
            "file",
        )
    if session.site.cop_repository is None:
        raise InputError("the site file has no cop_repository (the SFTP server with the COPs)",
                         hint="add cop_repository: {host, port, directory, credential}")
    return cop


def _plan(session: SiteSession, action: str = "disable") -> Plan:
    """The commands this would send, read-only (installed COPs are looked up, not changed)."""
    p = Plan(f"rsa_only ({action})")
    repo = session.site.cop_repository
    for node in session.nodes:
        cop = _cop(session, node, action)
        with session.on(node) as t:
            installed = t.version().has_cop(cop)
        if installed:
            p.notes.append(f"{node.name}: {cop} already installed; skipped")
            continue
        p.add(node.name, "install_cops", "utils system upgrade initiate",
              f"SFTP {repo.host}:{repo.port}{repo.directory} -> {cop}")
    for node in restart_order(session.nodes):
        p.add(node.name, "restart", "utils service restart Cisco Tomcat",
              "the COP takes effect after Tomcat restarts (subscriber first)")
    return p


def _install_cops(session: SiteSession, action: str = "disable") -> StepResult:
    """Install the disable (or rollback) COP on every node, skipping where installed."""
    repo = session.site.cop_repository
    rows = []
    for node in session.nodes:
        cop = _cop(session, node, action)
        assert repo is not None
        user, password = session.site.credentials[repo.credential].resolve(node=node.name)
        with session.on(node) as t:
            if t.version().has_cop(cop):
                rows.append({"node": node.name, "cop": cop, "action": "already installed"})
                continue
            with operation(session.audit, node.name, "install_cop",
                           {"file": cop, "server": f"{repo.host}:{repo.port}",
                            "directory": repo.directory, "user": user}):
                t.install_cop(cop, repo, user, password)
        rows.append({"node": node.name, "cop": cop, "action": "installed"})
    n = sum(r["action"] == "installed" for r in rows)
    return StepResult("install_cops", f"{action} COP installed on {n} node(s), "
                      f"{len(rows) - n} already had it", rows, data={"changed": n > 0})


def _restart(session: SiteSession, action: str = "disable", *, service: str = "Cisco Tomcat",
            timeout: float = 600) -> StepResult:
    """Restart Tomcat in HA-safe order, skipping nodes that already behave as wanted."""
    want_ecdsa = action == "rollback"
    return restart_nodes(session, service=service, timeout=timeout,
                         skip=lambda n: bool(n.web_ports)
                         and _offers_ecdsa(session, n) == want_ecdsa)


def _offers_ecdsa(session: SiteSession, node: Node) -> bool:
    return any(r.cert is not None and r.cert.key_type == "EC"
               for r in session.presented(node, "ecdsa"))


def _verify(session: SiteSession, action: str = "disable") -> StepResult:
    """``disable``: no port offers an ECDSA certificate (RSA clients still get RSA).
    ``rollback``: every port offers ECDSA again."""
    rows, bad = [], 0
    for node in session.nodes:
        for r in session.presented(node, "ecdsa"):
            ec = r.cert is not None and r.cert.key_type == "EC"
            ok = ec if action == "rollback" else not ec
            bad += not ok
            gets = r.status if r.cert is None else f"{r.cert.key_type} {r.cert.subject_cn}"
            rows.append({"node": node.name, "port": port_label(node, r.port),
                         "ecdsa client gets": gets,
                         "as wanted": "yes" if ok else "NO"})
    want = "offers ECDSA again" if action == "rollback" else "offers no ECDSA certificate"
    verdict = f"every port {want}" if not bad else f"{bad} port(s) do not: {want}"
    return StepResult("verify", verdict, rows, ok=not bad)


class RsaOnly:
    """The RSA-only procedure (``action`` ``disable``) or its rollback, one method per step."""

    def __init__(self, session: SiteSession, action: str = "disable") -> None:
        if action not in ACTIONS:
            raise InputError(f"action must be disable or rollback, not {action!r}")
        self.session = session
        self.action = action

    def plan(self) -> Plan:
        """The commands this would send, read-only (installed COPs are looked up)."""
        return _plan(self.session, self.action)

    def install_cops(self) -> StepResult:
        """Install the COP on every node, skipping where ``show version active`` lists it."""
        return _install_cops(self.session, self.action)

    def restart(self, *, service: str = "Cisco Tomcat", timeout: float = 600) -> StepResult:
        """Restart Tomcat in HA-safe order where the COP is not yet in effect."""
        return _restart(self.session, self.action, service=service, timeout=timeout)

    def verify(self) -> StepResult:
        """disable: no port offers ECDSA; rollback: every port offers ECDSA again."""
        return _verify(self.session, self.action)

    def run_all(self) -> list[StepResult]:
        return [self.install_cops(), self.restart(), self.verify()]
