"""HA-safe restarts: the order comes from the topology, the waiting from TLS probes.

The rule (topology.restart_waves): never both nodes of an HA pair down at once. The
subscribers (and SocialMiner, a separate application) restart first; the publishers only
once every node of the first wave serves TLS again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from . import topology
from .audit import operation
from .inventory import Node
from .results import Action, Outcome, RestartRecord, StepResult
from .session import SiteSession

__all__ = ["restart_nodes", "restart_order"]


def restart_order(nodes: Sequence[Node]) -> list[Node]:
    """The nodes wave by wave (site order within a wave)."""
    by_name = {n.name: n for n in nodes}
    return [by_name[name] for wave in topology.restart_waves((n.name, n.role) for n in nodes)
            for name in wave]


def restart_nodes(session: SiteSession, expected: Mapping[str, str] | None = None, *,
                  timeout: float = 600,
                  skip: Callable[[Node], bool] | None = None) -> StepResult:
    """Restart each node's services in HA-safe order, each node serving TLS again before the
    next goes down: the services whose ports present the changed unit (topology, or the
    site file's ``services:``). With ``expected[node]`` (sha256), a service whose ports all
    present it to an ECDSA client already is left alone (a rerun resumes where a restart
    stopped); a node is skipped when ``skip(node)`` says so."""
    records = []
    for node in restart_order(session.nodes):
        services = node.restart_services()
        if expected is not None and node.name in expected and node.web_ports:
            stale = {v.service for v in session.presented(node, "ecdsa")
                     if v.sha256 != expected[node.name]}
            if not stale:
                records.append(RestartRecord(node.name, Action.SKIPPED_PRESENTING))
                continue
            if not node.services:  # the site file's list is restarted as written
                services = tuple(s for s in services if s in stale) or services
        if skip is not None and skip(node):
            records.append(RestartRecord(node.name, Action.SKIPPED_IN_EFFECT))
            continue
        for service in services:
            with session.on(node) as t, operation(session.audit, node.name, "restart_service",
                                                  {"service": service}):
                t.restart_service(service, timeout=timeout)
        waited = session.wait_serving(node, timeout=timeout) if node.web_ports else None
        records.append(RestartRecord(node.name, Action.RESTARTED, ", ".join(services), waited))
    n = sum(r.action is Action.RESTARTED for r in records)
    return StepResult("restart", f"{n} node(s) restarted in HA-safe order, "
                      f"{len(records) - n} skipped", records,
                      Outcome.OK if n else Outcome.NOTHING_TO_DO)
