"""The schedule: a step works on every node at once; one node's failure lets the others
finish, starts nothing new, and a rerun resumes; restarts go wave by wave (HA)."""

from __future__ import annotations

import threading

import pytest

from cckit import audit, display
from cckit.ca import get_adapter
from cckit.errors import CckitError, ProcedureError, TransportError
from cckit.orchestration import parallel, restart_nodes, restart_waves
from cckit.procedures.ca_signed import CaSigned
from cckit.results import Action, PlannedCommand

from .test_procedures import mock, session  # noqa: F401  (the same fixtures)

pytestmark = pytest.mark.timeout(240)


class _Node:
    def __init__(self, name):
        self.name = name


def test_parallel_keeps_site_order_and_runs_together():
    nodes = [_Node(n) for n in ("a", "b", "c")]
    barrier = threading.Barrier(3, timeout=10)  # only passes when all three run at once

    def fn(node):
        barrier.wait()
        return node.name

    assert parallel(nodes, fn) == ["a", "b", "c"]


def test_parallel_lets_the_others_finish_and_names_the_failed():
    nodes = [_Node(n) for n in ("a", "b", "c")]
    finished = []

    def fn(node):
        if node.name == "a":
            raise CckitError("a broke", node="a")
        if node.name == "c":
            raise TransportError("c dropped", node="c")
        finished.append(node.name)
        return node.name

    with pytest.raises(ProcedureError) as e:
        parallel(nodes, fn)
    assert "2 nodes failed: a, c" in str(e.value) and finished == ["b"]

    def one_fails(node):
        if node.name == "c":
            raise TransportError("dropped", node="c")
        finished.append(node.name)

    finished.clear()
    with pytest.raises(TransportError):  # one node: its own error type
        parallel(nodes, one_fails)
    assert sorted(finished) == ["a", "b"]


def test_restart_waves_follow_the_ha_rule(session):  # noqa: F811
    waves = [[n.name for n in w] for w in restart_waves(session.nodes)]
    assert len(waves) == 2 and waves[1] == [session.site.publisher.name]
    assert session.site.publisher.name not in waves[0]


def test_restarts_never_take_both_uccx_nodes_down(session, tmp_path):  # noqa: F811
    from cckit import progress

    events = []
    session.events.subscribe(events.append)
    with progress.follow(session.events, step="restart", log_file=tmp_path / "p.log",
                         nodes=[n.name for n in session.nodes],
                         live=False) as board:
        result = restart_nodes(session)
    assert {r.action for r in result.records} == {Action.RESTARTED}
    log = audit.read(session.audit.path)
    pub = session.site.publisher.name
    first_pub = min(i for i, r in enumerate(log) if r["node"] == pub)
    # every wave-0 restart was logged (finished) before the publisher's first started
    assert all(r["node"] != pub for r in log[:first_pub]) and first_pub >= 2
    assert all(r["started"] <= r["time"] for r in log)  # one line: its start and its end
    # the events, as they happened: the publisher goes down only once the others are back
    # (TLS, then Finesse IN_SERVICE on the UCCX subscriber)
    at = {(e.node, e.operation, e.phase): e for e in events}
    for node in session.nodes:
        r = next(r for r in result.records if r.node == node.name)
        assert at[(node.name, "restart", "ended")].elapsed == pytest.approx(
            r.in_service_after or r.serving_after, abs=0.05)
        assert (r.in_service_after is not None) == (node.spec.readiness is not None)
        if node.name != pub:
            last = "wait_in_service" if node.spec.readiness else "wait_serving"
            assert at[(node.name, last, "ended")].time <= at[(pub, "restart", "started")].time
    # the time out of service is measured per node from its first service going down (each
    # service restart takes the mock's 0.2 s), not from the last one's return
    for r in result.records:
        services = len(r.service.split(", "))
        assert r.serving_after >= 0.2 * services, r
    lines = (tmp_path / "p.log").read_text().splitlines()
    assert len(lines) == len(events) and any(
        f"restart: {pub}: restart ended after" in line for line in lines)
    # each node's line: its milestones from the stop
    for n, line in zip(session.nodes, board.lines(), strict=True):
        assert line.startswith(f"{n.name}: stopped \N{RIGHTWARDS ARROW} TLS up after "), line
        assert ("\N{RIGHTWARDS ARROW} in service after " in line) == bool(n.spec.readiness)


def test_a_failed_import_lets_the_others_finish_and_the_rerun_resumes(session, mock,  # noqa: F811
                                                                     tmp_path):
    ca = get_adapter("lab", directory=tmp_path / "labca")
    proc = CaSigned(session, ca)
    for step in (proc.generate_csrs, proc.sign, proc.gate, proc.upload_trust):
        step()
    mock.faults.set("drop_import", True, node="uccx-sub")
    with pytest.raises(TransportError):
        proc.upload_identities()
    ok = {r["node"] for r in audit.read(session.audit.path)
          if r["operation"] == "upload_identity" and r["outcome"] == "ok"}
    assert ok == {n.name for n in session.nodes} - {"uccx-sub"}
    with pytest.raises(ProcedureError):  # nothing that depends on it starts
        proc.restart()
    mock.faults.clear()
    rerun = CaSigned(session, ca)
    assert {r.action for r in rerun.generate_csrs().records} <= {Action.REUSED,
                                                                 Action.ALREADY_CA_SIGNED}
    results = rerun.run_all()
    identities = {r.node: r.action for r in results[4].records}
    assert identities["uccx-sub"] is Action.IMPORTED
    assert results[-1].ok, results[-1]


def test_two_nodes_failing_at_once_name_both(session, mock, tmp_path):  # noqa: F811
    ca = get_adapter("lab", directory=tmp_path / "labca")
    proc = CaSigned(session, ca)
    for step in (proc.generate_csrs, proc.sign, proc.gate, proc.upload_trust):
        step()
    mock.faults.set("drop_import", True, node="uccx-sub")
    mock.faults.set("drop_import", True, node="uccx-pub")
    with pytest.raises(TransportError) as e:  # the same cause on both: its type, both named
        proc.upload_identities()
    assert "uccx-pub" in str(e.value) and "uccx-sub" in str(e.value)
    mock.faults.clear()
    assert CaSigned(session, ca).run_all()[-1].ok


def test_latency_profile_and_time_scale(tmp_path):
    from cckit.vosmock import latency
    from cckit.vosmock.site import MockSite

    site = MockSite(tmp_path / "a", control=False, latency="cisco", time_scale=0.01)
    assert site.restart_for("Cisco Tomcat") == pytest.approx(1.8)
    assert site.delay("csr_generate") == pytest.approx(latency.PROFILE["csr_generate"] / 100)
    assert site.cli_startup_seconds == pytest.approx(0.08)
    # an explicit --restart-seconds still sets every restart; no profile: instant CSRs
    site = MockSite(tmp_path / "b", control=False, restart_seconds=2, time_scale=0.5)
    assert site.restart_for("Cisco Tomcat") == site.restart_for("Cisco Finesse Tomcat") == 1
    assert site.delay("csr_generate") == 0 and not site.profiled
    with pytest.raises(ValueError):
        latency.resolve({"nonsense": 1})


def test_operation_log_shown_in_schedule_order(session):  # noqa: F811
    from cckit.orchestration import in_schedule_order

    pub, sub = session.site.publisher.name, session.site.subscribers[0].name
    logged = [{"node": "sm", "operation": "generate_csr"},
              {"node": pub, "operation": "generate_csr"},
              {"node": sub, "operation": "generate_csr"},
              {"node": pub, "operation": "restart_service", "n": 1},
              {"node": sub, "operation": "restart_service"},
              {"node": pub, "operation": "restart_service", "n": 2}]
    shown = [(r["node"], r["operation"], r.get("n")) for r in
             in_schedule_order(logged, session.nodes)]
    assert shown == [(pub, "generate_csr", None), (sub, "generate_csr", None),
                     ("sm", "generate_csr", None), (sub, "restart_service", None),
                     (pub, "restart_service", 1), (pub, "restart_service", 2)]


def test_the_plan_shows_the_schedule(session, tmp_path):  # noqa: F811
    proc = CaSigned(session, get_adapter("lab", directory=tmp_path / "labca"))
    plan = proc.plan()
    pub, sub = session.site.publisher.name, session.site.subscribers[0].name
    stage = {(c.step, c.node): c.stage for c in plan.commands}
    assert {stage[("generate_csrs", n.name)] for n in session.nodes} == {1}
    # the subscriber's trust arrives by replication: polled after the publisher's upload,
    # before any identity upload
    assert stage[("upload_trust", pub)] == 2 and stage[("upload_trust", sub)] == 3
    assert stage[("upload_identities", sub)] == 4
    assert stage[("restart", sub)] == stage[("restart", "sm")] == 5
    assert stage[("restart", pub)] == 6
    lines = plan.schedule()
    assert lines[0].startswith("stage 1: generate_csrs on ") and lines[0].endswith("at once")
    assert lines[2] == f"stage 3: upload_trust on {sub}"
    assert lines[-1] == f"stage 6: restart on {pub}"
    assert "Schedule stage 5: restart on" in display.text(plan)
    assert "stage" in display.table(plan.commands, PlannedCommand).columns


def test_preflight_reads_every_node_at_once(session):  # noqa: F811
    from cckit.procedures.preflight import Preflight

    barrier = threading.Barrier(len(session.nodes), timeout=20)
    connect = session.transport

    def transport(node):  # passes only when every node's read has started
        barrier.wait()
        return connect(node)

    session.transport = transport
    proc = Preflight(session)
    assert proc.reachability().ok
    barrier.reset()
    assert len(proc.certificates().records) == 2 * len(session.nodes)
