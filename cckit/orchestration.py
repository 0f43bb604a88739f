"""HA-safe restarts: the order comes from the topology, the waiting from the nodes.

The rule (topology.restart_waves): never both nodes of an HA pair out of service at once.
The subscribers (and SocialMiner, a separate application) restart first; the publishers
only once every node of the first wave is back for its users: serving TLS again, then
passing its role's readiness check (on UCCX, Finesse IN_SERVICE: TLS comes back minutes
before agents have a desktop). Inside a wave the nodes restart at once (one thread per
node, each on its own transport).

Trust uploaded on a publisher reaches its subscribers by replication, some time later:
:func:`wait_replicated` polls them, bounded, before anything needs it there.

:func:`parallel` is the schedule's building block: one operation per node, all at once
(bounded by ``max_workers``), results in site order whatever the completion order. A node
that fails lets the others' in-flight operations finish; nothing further is started for it
(the caller raises before the next step), and a rerun resumes through each step's
idempotency.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from cryptography import x509

from . import certs, topology
from .audit import operation
from .errors import CckitError, NodeTimeout, ProcedureError
from .results import Action, RestartRecord, StepResult, TrustRecord
from .session import SiteSession
from .sites import Node

__all__ = ["in_schedule_order", "parallel", "restart_nodes", "restart_order", "restart_waves",
           "wait_replicated"]

T = TypeVar("T")

#: At most this many nodes of one site are worked on at once (one SSH session per node).
MAX_WORKERS = 8


def parallel(nodes: Sequence[Node], fn: Callable[[Node], T], *,
             max_workers: int = MAX_WORKERS) -> list[T]:
    """``fn(node)`` for every node at once; the results in the order of ``nodes``.

    Every started call runs to its end. When some fail, one error is raised after all have
    finished: the node's own error when one node failed; else one error naming every failed
    node and each one's message, of their type when they share one (a
    :class:`ProcedureError` otherwise)."""
    nodes = list(nodes)
    if len(nodes) <= 1 or max_workers <= 1:
        results, failed = [], []
        for n in nodes:
            try:
                results.append(fn(n))
            except CckitError as e:
                failed.append((n, e))
        if failed:
            _raise(failed)
        return results
    with ThreadPoolExecutor(max_workers=min(max_workers, len(nodes)),
                            thread_name_prefix="cckit-node") as pool:
        futures = [pool.submit(fn, n) for n in nodes]
        outcomes = [(n, f.exception()) for n, f in zip(nodes, futures, strict=True)]
    failed = [(n, e) for n, e in outcomes if e is not None]
    if failed:
        _raise(failed)
    return [f.result() for f in futures]


def _raise(failed: list[tuple[Node, BaseException]]) -> None:
    if len(failed) == 1:
        raise failed[0][1]
    for _, e in failed:  # anything but a CckitError is a bug: let it through as it is
        if not isinstance(e, CckitError):
            raise e
    first = failed[0][1]
    assert isinstance(first, CckitError)
    message = (f"{len(failed)} nodes failed: {', '.join(n.name for n, _ in failed)} ("
               + "; ".join(f"{n.name}: {getattr(e, 'message', e)}" for n, e in failed) + ")")
    hint = ((first.hint + "; " if first.hint else "") + "the other nodes finished their "
            "operation; fix the cause and rerun the step (finished work is skipped)")
    cls = type(first)
    err: CckitError = ProcedureError(message, hint=hint)
    if all(type(e) is cls for _, e in failed):  # one cause on every node: keep its type
        try:
            err = cls(message, hint=hint)
        except TypeError:  # a type with its own signature (GateError): the generic one
            pass
    raise err from first


def in_schedule_order(records: Sequence[Mapping], nodes: Sequence[Node]) -> list[Mapping]:
    """Operation-log records (dicts with ``node`` and ``operation``) in a deterministic order:
    each run of one operation (one parallel step) by node, site order (restarts: wave order),
    each node's own records kept in the order they happened. The log itself stays in
    completion order."""
    site = {n.name: i for i, n in enumerate(nodes)}
    waves = {n.name: i for i, n in enumerate(restart_order(nodes))}
    out: list[Mapping] = []
    group: list[Mapping] = []
    for rec in [*records, None]:
        if group and (rec is None or rec.get("operation") != group[0].get("operation")):
            order = waves if group[0].get("operation") == "restart_service" else site
            out.extend(sorted(group, key=lambda r: order.get(r.get("node"), len(order))))
            group = []
        if rec is not None:
            group.append(rec)
    return out


def restart_waves(nodes: Sequence[Node]) -> list[list[Node]]:
    """The nodes grouped in HA waves (site order within a wave)."""
    by_name = {n.name: n for n in nodes}
    return [[by_name[name] for name in wave]
            for wave in topology.restart_waves((n.name, n.role) for n in nodes) if wave]



def restart_order(nodes: Sequence[Node]) -> list[Node]:
    """The nodes wave by wave (site order within a wave)."""
    return [n for wave in restart_waves(nodes) for n in wave]


#: default bounds of the waits below (seconds): a real cluster replicates trust within
#: minutes, and Finesse can take many minutes to be in service after its Tomcat is back
REPLICATION_TIMEOUT = 600.0
IN_SERVICE_TIMEOUT = 900.0


def restart_nodes(session: SiteSession, expected: Mapping[str, str] | None = None, *,
                  timeout: float = 600,
                  skip: Callable[[Node], bool] | None = None,
                  max_workers: int = MAX_WORKERS, unit: str = topology.ECDSA_UNIT,
                  client: str = "ecdsa",
                  in_service_timeout: float = IN_SERVICE_TIMEOUT) -> StepResult:
    """Restart each node's services in HA-safe waves (the nodes of a wave at once), every
    node of a wave back for its users before the next wave goes down: serving TLS on every
    web port, then passing its role's readiness check (topology: on UCCX, Finesse's
    SystemInfo says IN_SERVICE, within ``in_service_timeout``). The services restarted are
    those whose ports present the changed unit (topology, or the site file's
    ``services:``). With ``expected[node]`` (sha256), a service whose ports all present it
    to an ECDSA client already is left alone (a rerun resumes where a restart stopped); a
    node is skipped when ``skip(node)`` says so. A node left alone is still checked before
    the next wave: a rerun after a node that never came in service must not take its HA
    partner down. A failed node's wave finishes; the next wave never starts.
    ``unit``/``client``: the changed unit and the TLS client that sees it (``rsa`` for
    ``tomcat``)."""

    def checked(node: Node) -> topology.ReadinessCheck | None:
        # the site file lists the ports this machine reaches; without the check's port the
        # check is not made (and the record says so)
        check = node.spec.readiness
        return check if check and check.port in {wp.port for wp in node.web_ports} else None

    def in_service(node: Node) -> float | None:
        check = checked(node)
        if check is None:
            return None
        start = time.monotonic()
        with session.events.span(node.name, "wait_in_service", check.label):
            session.wait_in_service(node, timeout=in_service_timeout)
        return time.monotonic() - start

    def ready_when(node: Node) -> str:
        check = node.spec.readiness
        if check is None or not node.web_ports:
            return "TLS up" if node.web_ports else ""
        if checked(node) is None:
            return (f"TLS up ({check.name} not checked: {check.port} is not among the "
                    "node's web_ports)")
        return f"TLS up, {check.label}"

    def one(node: Node) -> RestartRecord:
        services = node.restart_services(unit)
        left_alone = None
        if expected is not None and node.name in expected and node.web_ports:
            stale = {v.service for v in session.presented(node, client)
                     if v.sha256 != expected[node.name]}
            if not stale:
                left_alone = Action.SKIPPED_PRESENTING
            elif not node.services:  # the site file's list is restarted as written
                services = tuple(s for s in services if s in stale) or services
        if left_alone is None and skip is not None and skip(node):
            left_alone = Action.SKIPPED_IN_EFFECT
        if left_alone is not None:
            return RestartRecord(node.name, left_alone, in_service_after=in_service(node),
                                 check=ready_when(node))
        # The node's time out of service: from its first service going down until every
        # web port completes a TLS handshake again, then until it passes its readiness
        # check (measured here, while the wave runs).
        start = time.monotonic()
        serving = ready = None
        with session.events.span(node.name, "restart", ", ".join(services)):
            for service in services:
                with session.on(node) as t, operation(session.audit, node.name,
                                                      "restart_service", {"service": service}):
                    t.restart_service(service, timeout=timeout)
            if node.web_ports:
                with session.events.span(node.name, "wait_serving", "TLS on "
                                         + ", ".join(str(wp.port) for wp in node.web_ports)):
                    session.wait_serving(node, timeout=timeout)
                serving = time.monotonic() - start
                if in_service(node) is not None:
                    ready = time.monotonic() - start
        return RestartRecord(node.name, Action.RESTARTED, ", ".join(services), serving, ready,
                             ready_when(node))

    done: dict[str, RestartRecord] = {}
    for wave in restart_waves(session.nodes):  # a failed wave raises: the next never starts
        done.update((r.node, r) for r in parallel(wave, one, max_workers=max_workers))
    records = [done[n.name] for n in restart_order(session.nodes)]
    return StepResult.tally("restart", records, Action.RESTARTED,
                            "{n} node(s) restarted in HA-safe order, {rest} skipped")


def wait_replicated(session: SiteSession, wanted: Mapping[str, Sequence[x509.Certificate]],
                    *, timeout: float = REPLICATION_TIMEOUT) -> list[TrustRecord]:
    """Wait until each node of ``wanted`` (name -> CA certificates it needs) holds them in
    its tomcat-trust, the nodes at once: they receive trust by replication from their
    publisher (topology), asynchronously. One record per node and certificate:
    ``REPLICATED`` with the seconds it took to arrive (from the first poll), or
    ``ALREADY_PRESENT``. Raises :class:`NodeTimeout` (nothing changed on the node) naming
    the node, the missing CA, the time waited and what to do."""
    site = session.site

    def one(node: Node) -> list[TrustRecord]:
        needed = {certs.fingerprint_sha256(c): c for c in wanted[node.name]}
        source = site.trust_source(node)
        src = source.name if source else "its publisher"
        seen: dict[str, str | None] = {}  # trust file -> sha256: each file is read once

        def missing(*, every_file: bool = False) -> list[x509.Certificate]:
            # one listing a poll; only the files named for a needed CA are read, the
            # others once, before the wait is declared lost
            with session.on(node) as t:
                have = t.trust_files(needed.values(), seen=seen, named_only=not every_file)
            return [c for fp, c in needed.items() if fp not in have]

        start, pause = time.monotonic(), 0.25
        lacking = missing()
        first = set(map(certs.fingerprint_sha256, lacking))
        with session.events.span(node.name, "wait_replication", f"tomcat-trust from {src}"):
            while lacking:
                waited = time.monotonic() - start
                if waited > timeout:
                    lacking = missing(every_file=True)
                    if not lacking:
                        break
                    names = ", ".join(repr(certs.describe(c).subject_cn) for c in lacking)
                    raise NodeTimeout(
                        f"tomcat-trust still lacks {names} after {waited:.0f} s of waiting "
                        f"for it to replicate from {src}", node=node.name,
                        unit="tomcat-trust",
                        hint=f"nothing was changed on {node.name}. Check the cluster's "
                        f"replication ('utils dbreplication runtimestate' on {src}); once "
                        f"'show cert list trust' on {node.name} lists the CA, rerun this step: "
                        "it resumes at this wait and uploads nothing twice (to wait longer, "
                        "raise replication_timeout: the parameters cell, or -p "
                        "replication_timeout SECONDS)")
                time.sleep(pause)
                pause = min(pause * 2, 1.0)  # a poll is one listing command
                lacking = missing()
        arrived = time.monotonic() - start
        return [TrustRecord(node.name, certs.describe(c).subject_cn, Action.REPLICATED, fp,
                            arrived) if fp in first else
                TrustRecord(node.name, certs.describe(c).subject_cn, Action.ALREADY_PRESENT, fp)
                for fp, c in needed.items()]

    nodes = [site.node(name) for name in wanted]
    return [r for rs in parallel(nodes, one) for r in rs]
