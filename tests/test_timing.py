"""Real timing (issue 22): trust reaches the subscriber by replication some time after the
publisher's upload, and Finesse is in service well after its Tomcat answers TLS again.

The mock plays both (``replication_seconds``, ``finesse_ready_seconds``); the procedures
must wait for them, bounded and visibly, and never take both UCCX nodes out of service.
The durations here are the issue's (restart 3 s, replication 8 s, Finesse 10 s) times 0.2,
and the outside watcher polls 0.25 s times 0.2: the same proportions, a fifth of the wait.
"""

from __future__ import annotations

import time

import pytest

from cckit import audit, certs, progress
from cckit.ca import get_adapter
from cckit.errors import AuthenticationError, NodeTimeout, SiteFileError
from cckit.events import OperationEvent
from cckit.orchestration import restart_nodes
from cckit.procedures import SiteSession
from cckit.procedures.ca_signed import CaSigned
from cckit.procedures.rsa_only import RsaOnly
from cckit.results import Action
from cckit.sites import load_site, parse_site
from cckit.vosmock.testing import FinesseWatch, finesse_status, running_site, stored_pem

pytestmark = pytest.mark.timeout(240)

SCALE = 0.2


def _watch(mock, interval: float) -> FinesseWatch:
    return FinesseWatch({n: (mock.nodes[n].web_ports[1], stored_pem(mock.state_dir, n))
                         for n in ("uccx-pub", "uccx-sub")}, interval)


def _state(mock, node: str) -> dict[str, bytes]:
    """What a procedure could change on one mock node (its journal excepted)."""
    root = mock.state_dir / "nodes" / node
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "journal.jsonl"}


# ------------------------------------------------------------------------------ the mock


def test_the_mock_plays_replication_and_finesse_timing(tmp_path):
    with running_site(tmp_path / "m", restart_seconds=0.1, replication_seconds=2,
                      finesse_ready_seconds=2) as mock:
        site = load_site(mock.site_file)
        pub, sub, sm = (site.node(n) for n in ("uccx-pub", "uccx-sub", "sm"))
        finesse = mock.nodes["uccx-sub"].web_ports[1]
        pem = stored_pem(mock.state_dir, "uccx-sub")
        # SystemInfo answers without credentials and with the OS admin's, not with others
        assert finesse_status(finesse, pem) == "IN_SERVICE"
        assert finesse_status(finesse, pem, auth=(mock.username, mock.password)) == "IN_SERVICE"
        assert finesse_status(finesse, pem, auth=(mock.username, "wrong")) == "HTTP 401"
        # the platform Tomcat's port is no Finesse
        assert finesse_status(mock.nodes["uccx-sub"].web_ports[0], pem) == "no status"
        ca = get_adapter("lab", directory=tmp_path / "ca")
        root = ca.chain[-1]
        fp = certs.fingerprint_sha256(root)
        with SiteSession(site, workdir=tmp_path / "run", tls_timeout=3) as s:
            with s.on(pub) as t:
                t.upload_trust(root)
            uploaded = time.monotonic()
            with s.on(sub) as t:
                assert fp not in t.trust_files([root])  # not yet: it replicates
            while True:
                with s.on(sub) as t:
                    if fp in t.trust_files([root]):
                        break
                assert time.monotonic() - uploaded < 30
                time.sleep(0.1)
            assert time.monotonic() - uploaded >= 1.0
            time.sleep(0.3)
            with s.on(sm) as t:
                assert fp not in t.trust_files([root])  # never to SocialMiner
            # Finesse Tomcat's TLS comes back before Finesse is in service
            with s.on(sub) as t:
                t.restart_service("Cisco Finesse Tomcat")
            restarted = time.monotonic()
            assert finesse_status(finesse, pem) == "OUT_OF_SERVICE"
            while finesse_status(finesse, pem) != "IN_SERVICE":
                assert time.monotonic() - restarted < 30
                time.sleep(0.1)
            assert time.monotonic() - restarted >= 1.0
            mock.faults.set("finesse_out_of_service", True, node="uccx-sub")
            assert finesse_status(finesse, pem) == "OUT_OF_SERVICE"
        status = mock.status()
        assert status["faults"]["nodes"]["uccx-sub"]["finesse_out_of_service"] is True


def test_cisco_profile_carries_the_waits_and_fixtures_stay_instant(tmp_path):
    from cckit.vosmock.cli import _site_options, build_parser
    from cckit.vosmock.latency import PROFILE
    from cckit.vosmock.site import MockSite

    site = MockSite(tmp_path / "a", control=False, latency="cisco", time_scale=0.01)
    assert site.replication_seconds == pytest.approx(PROFILE["trust_replication"] / 100)
    assert site.finesse_ready_seconds == pytest.approx(PROFILE["finesse_ready"] / 100)
    site = MockSite(tmp_path / "b", control=False)
    assert site.replication_seconds == site.finesse_ready_seconds == 0
    args = build_parser().parse_args(
        ["serve", "--state-dir", "x", "--site-file", "y", "--restart-seconds", "3",
         "--replication-seconds", "8", "--finesse-ready-seconds", "10"])
    options = _site_options(args, None)
    assert (options["replication_seconds"], options["finesse_ready_seconds"]) == (8, 10)


# ------------------------------------------------------------------------------ the client


@pytest.mark.slow
def test_one_uccx_node_out_of_service_at_a_time_in_every_scenario(tmp_path):
    """ca_signed, rsa_only and its rollback against real timing, each in one run, while an
    outside watcher reads both UCCX nodes' SystemInfo: one node out during the restarts,
    never both."""
    with running_site(tmp_path / "m", restart_seconds=3 * SCALE,
                      replication_seconds=8 * SCALE, finesse_ready_seconds=10 * SCALE) as mock:
        site = load_site(mock.site_file)
        watch = _watch(mock, 0.25 * SCALE)
        watch.start()
        try:
            with SiteSession(site, workdir=tmp_path / "run", tls_timeout=3) as s:
                ca_signed = CaSigned(s, get_adapter("lab", directory=tmp_path / "ca")).run_all()
                disable = RsaOnly(s, "disable").run_all()
                rollback = RsaOnly(s, "rollback").run_all()
        finally:
            watch.stop()
    for results in (ca_signed, disable, rollback):
        assert all(r.ok for r in results), results[-1]
        restart = {r.node: r for r in results[-2].records}
        assert {r.action for r in restart.values()} == {Action.RESTARTED}
        for name in ("uccx-pub", "uccx-sub"):
            # the five UCCX web services restart one by one (0.6 s each): TLS is up on every
            # port from 3.0 s; Finesse's Tomcat is the 2nd (back at 1.2 s) and in service 2 s
            # later, at 3.2 s: the wave waited for that, not for TLS alone
            assert restart[name].serving_after >= 5 * 3 * SCALE
            assert restart[name].in_service_after >= (2 * 3 + 10) * SCALE
        assert restart["sm"].in_service_after is None and restart["sm"].check == "TLS up"
    trust = {(r.node, r.action): r for r in ca_signed[3].records}
    assert trust[("uccx-sub", Action.REPLICATED)].arrived_after > 0
    assert watch.out["uccx-sub"] > 0 and watch.out["uccx-pub"] > 0, watch.out
    assert watch.both_out == [], f"no Finesse in service at {watch.both_out}"


def test_replication_that_never_arrives_fails_bounded_and_the_rerun_resumes(tmp_path):
    with running_site(tmp_path / "m", restart_seconds=0.1, replication_seconds=0.3) as mock:
        site = load_site(mock.site_file)
        ca = get_adapter("lab", directory=tmp_path / "ca")
        with SiteSession(site, workdir=tmp_path / "run", tls_timeout=3) as s:
            proc = CaSigned(s, ca)
            proc.set_waits(replication_timeout=1.5)
            for step in (proc.generate_csrs, proc.sign, proc.gate):
                step()
            mock.faults.set("replication_stalled", True, node="uccx-sub")
            before = _state(mock, "uccx-sub")
            lines: list[str] = []
            t0 = time.monotonic()
            with progress.follow(s.events, live=False) as board:
                s.events.subscribe(lambda e: lines.append("\n".join(board.lines(e.time + 2))))
                with pytest.raises(NodeTimeout) as e:
                    proc.upload_trust()
            assert time.monotonic() - t0 < 15
            text = str(e.value)
            assert "[node uccx-sub, unit tomcat-trust]" in text
            assert "cckit lab EC issuing CA (lab)" in text and "replicate from uccx-pub" in text
            assert "s of waiting" in text and "rerun this step" in text
            assert "-p replication_timeout SECONDS" in text  # how to wait longer
            assert any("waiting for tomcat-trust to replicate to uccx-sub: " in x for x in lines)
            assert _state(mock, "uccx-sub") == before  # nothing changed on the subscriber
            assert mock.status()["nodes"]["uccx-sub"]["trust_held"] == 2
            # the cluster's replication resumes: the held CAs arrive; the step resumes at
            # its wait (uploading nothing twice), and the run completes
            mock.faults.clear()
            again = proc.upload_trust()
            actions = {(r.node, r.action) for r in again.records}
            assert ("uccx-pub", Action.UPLOADED) not in actions
            assert {a for n, a in actions if n == "uccx-sub"} <= {Action.REPLICATED,
                                                                  Action.ALREADY_PRESENT}
            for step in (proc.upload_identities, proc.restart, proc.verify):
                assert step().ok


def test_a_node_never_in_service_stops_the_schedule_and_a_rerun_checks_it_again(tmp_path):
    with running_site(tmp_path / "m", restart_seconds=0.1) as mock:
        site = load_site(mock.site_file)
        with SiteSession(site, workdir=tmp_path / "run", tls_timeout=3) as s:
            proc = RsaOnly(s, "disable")
            proc.set_waits(in_service_timeout=1.0)
            proc.install_cops()
            mock.faults.set("finesse_out_of_service", True, node="uccx-sub")
            with pytest.raises(NodeTimeout) as e:
                proc.restart()
            assert "[node uccx-sub]" in str(e.value)
            assert "Finesse did not say IN_SERVICE" in str(e.value)
            assert "OUT_OF_SERVICE" in str(e.value)
            assert "within 1 s" in str(e.value) and "-p in_service_timeout" in str(e.value)

            def restarted(node):
                return [r for r in audit.read(s.audit.path)
                        if r["operation"] == "restart_service" and r["node"] == node]

            assert restarted("uccx-sub") and not restarted("uccx-pub")  # never touched
            # a rerun leaves the subscriber alone (the COP is in effect there) but checks it
            # again: still out of service, so the publisher still is not touched
            with pytest.raises(NodeTimeout):
                proc.restart()
            assert not restarted("uccx-pub")
            mock.faults.clear()
            result = proc.restart()
            actions = {r.node: r.action for r in result.records}
            assert actions["uccx-sub"] is Action.SKIPPED_IN_EFFECT
            assert actions["uccx-pub"] is Action.RESTARTED
            sub = next(r for r in result.records if r.node == "uccx-sub")
            assert sub.in_service_after is not None and sub.check.endswith("Finesse IN_SERVICE")
            assert proc.verify().ok


def test_the_finesse_credential_by_reference(tmp_path):
    with running_site(tmp_path / "m", restart_seconds=0.1) as mock:
        base = load_site(mock.site_file)
        wrong = tmp_path / "wrong.password"
        wrong.write_text("not-the-password\n")
        wrong.chmod(0o600)
        import yaml

        data = yaml.safe_load(mock.site_file.read_text())
        data["finesse"] = {"credential": "os-admin"}
        site = parse_site(data, base_dir=mock.site_file.parent)
        assert site.finesse_credential == "os-admin" and base.finesse_credential is None
        with SiteSession(site, workdir=tmp_path / "ok", tls_timeout=3) as s:
            result = restart_nodes(s, in_service_timeout=5)
            assert all(r.action is Action.RESTARTED for r in result.records)
        data["credentials"]["finesse"] = {"username": "finadmin",
                                          "password": {"file": str(wrong)}}
        data["finesse"] = {"credential": "finesse"}
        site = parse_site(data, base_dir=mock.site_file.parent)
        with SiteSession(site, workdir=tmp_path / "bad", tls_timeout=3) as s:
            t0 = time.monotonic()
            with pytest.raises(AuthenticationError) as e:
                s.wait_in_service(site.node("uccx-sub"), timeout=30)
            assert time.monotonic() - t0 < 10  # refused once, never retried
            assert "HTTP 401" in str(e.value) and "not-the-password" not in str(e.value)
        for bad, message in (({"credential": "nobody"}, "no credential named 'nobody'"),
                             ({"password": "x"}, "unknown key 'password'"),
                             ("os-admin", "expected {credential: NAME}")):
            data["finesse"] = bad
            with pytest.raises(SiteFileError) as e:
                parse_site(data, base_dir=mock.site_file.parent)
            assert message in str(e.value)


def test_progress_reads_as_the_waits_and_the_milestones():
    board = progress.ProgressBoard(["uccx-sub", "uccx-pub"])

    def ev(node, op, phase, t, elapsed=None, detail=""):
        board(OperationEvent(node, op, phase, 1000.0 + t, elapsed, detail))

    ev("uccx-sub", "wait_replication", "started", 0, detail="tomcat-trust from uccx-pub")
    assert board.lines(1012.2)[0].startswith(
        "uccx-sub: waiting for tomcat-trust to replicate to uccx-sub: 12 s")
    ev("uccx-sub", "wait_replication", "ended", 14, 14.0, "tomcat-trust from uccx-pub")
    assert board.lines(1015)[0].startswith(
        "uccx-sub: tomcat-trust replicated to uccx-sub after 14.0 s")
    ev("uccx-sub", "restart", "started", 20, detail="Cisco Tomcat")
    ev("uccx-sub", "restart_service", "started", 20, detail="Cisco Tomcat")
    assert "stopped (restarting Cisco Tomcat: 3 s)" in board.lines(1023)[0]
    ev("uccx-sub", "restart_service", "ended", 60, 40.0, "Cisco Tomcat")
    ev("uccx-sub", "wait_serving", "started", 60, detail="TLS on 8443")
    assert "stopped \N{RIGHTWARDS ARROW} waiting for TLS: 1 s" in board.lines(1061)[0]
    ev("uccx-sub", "wait_serving", "ended", 62, 2.0, "TLS on 8443")
    ev("uccx-sub", "wait_in_service", "started", 62, detail="Finesse IN_SERVICE")
    assert ("stopped \N{RIGHTWARDS ARROW} TLS up after 42.0 s \N{RIGHTWARDS ARROW} waiting for "
            "Finesse IN_SERVICE: 12 s") in board.lines(1074)[0]
    ev("uccx-sub", "wait_in_service", "ended", 80, 18.0, "Finesse IN_SERVICE")
    ev("uccx-sub", "restart", "ended", 80, 60.0, "Cisco Tomcat")
    assert board.lines(1090)[0].startswith(
        "uccx-sub: stopped \N{RIGHTWARDS ARROW} TLS up after 42.0 s \N{RIGHTWARDS ARROW} in "
        "service after 60.0 s")


def test_a_node_whose_web_ports_leave_finesse_out_is_not_checked_and_says_so(tmp_path):
    import yaml

    with running_site(tmp_path / "m", restart_seconds=0.1) as mock:
        data = yaml.safe_load(mock.site_file.read_text())
        for node in data["nodes"]:
            node["web_ports"].pop(8445, None)
        site = parse_site(data, base_dir=mock.site_file.parent)
        mock.faults.set("finesse_out_of_service", True)
        with SiteSession(site, workdir=tmp_path / "run", tls_timeout=3) as s:
            result = restart_nodes(s, in_service_timeout=1)
    records = {r.node: r for r in result.records}
    assert records["uccx-sub"].in_service_after is None
    assert records["uccx-sub"].check == (
        "TLS up (Finesse not checked: 8445 is not among the node's web_ports)")
    assert records["sm"].check == "TLS up"


# --------------------------------------------------------------------------- the bounds


@pytest.mark.parametrize(("scenario", "params", "expected"), [
    ("ca_signed", {"replication_timeout": 0}, "bad parameter replication_timeout: expected a "
     "number of seconds above 0 (e.g. -p replication_timeout 600), got 0 or less"),
    ("rsa_only", {"in_service_timeout": -5}, "in_service_timeout: expected a number of seconds "
     "above 0 (e.g. -p in_service_timeout 900), got 0 or less"),
    ("renew_tomcat", {"in_service_timeout": float("inf")}, "got no finite number"),
    ("ca_signed", {"in_service_timeout": "ten"}, "in_service_timeout: expected a number"),
    ("rsa_only", {"replication_timeout": 60}, "replication_timeout: not a parameter of rsa_only"),
])
def test_a_bad_wait_bound_is_one_line_before_anything_runs(scenario, params, expected):
    from cckit.errors import InputError
    from cckit.headless import check_parameters

    with pytest.raises(InputError) as e:
        check_parameters(scenario, params)
    assert expected in str(e.value)
    check_parameters(scenario, {"in_service_timeout": 1200, **(
        {"replication_timeout": 90.5} if scenario != "rsa_only" else {})})


def test_a_procedure_takes_only_its_own_waits_and_only_seconds(tmp_path):
    from cckit import runbook
    from cckit.errors import InputError

    proc = RsaOnly(None, "disable")  # type: ignore[arg-type]  (no node is asked)
    with pytest.raises(InputError, match="replication_timeout: RsaOnly has no such wait"):
        proc.set_waits(replication_timeout=60)
    with pytest.raises(InputError, match="in_service_timeout: expected a number of seconds "
                                         "above 0"):
        proc.set_waits(in_service_timeout=float("nan"))
    assert proc.in_service_timeout == 900  # refused: unchanged
    proc.set_waits(in_service_timeout=30)
    assert proc.in_service_timeout == 30.0
    # a start with a bad bound refuses before anything starts (no mock, no run folder)
    with pytest.raises(InputError, match="bad parameter in_service_timeout"):
        runbook.start("rsa_only", artifacts=tmp_path / "run", waits={"in_service_timeout": 0})
    assert not (tmp_path / "run").exists()


def test_cckit_run_passes_the_bounds_to_the_procedure_and_the_record(tmp_path):
    """``cckit run ca_signed -p replication_timeout 120``: the plan the run shows keeps the
    bound, and the record has it; a bound of 0 stops the command before any kernel."""
    import json
    import re
    import subprocess
    import sys

    import nbformat

    def cckit(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cckit", *args], capture_output=True,
                              text=True, timeout=200)

    bad = cckit("run", "ca_signed", "--out", str(tmp_path / "bad"), "-q",
                "-p", "replication_timeout", "0")
    assert bad.returncode == 1 and "bad parameter replication_timeout" in bad.stderr
    assert "Traceback" not in bad.stderr and not (tmp_path / "bad" / "ca_signed.ipynb").exists()
    out = tmp_path / "run"
    r = cckit("run", "ca_signed", "--out", str(out), "-q", "-p", "apply", "false",
              "-p", "replication_timeout", "120", "-p", "in_service_timeout", "300")
    assert r.returncode == 0, r.stdout + r.stderr
    status = json.loads((out / "status.json").read_text())
    assert status["record"]["parameters"]["replication_timeout"] == "120.0"
    assert status["record"]["parameters"]["in_service_timeout"] == "300.0"
    nb = nbformat.read(out / "ca_signed.ipynb", as_version=4)
    [plan] = [c for c in nb.cells if c.cell_type == "code" and "rb.plan(proc)" in c.source]
    shown = re.sub(r"<span[^>]*>|</span>|<wbr>", "", "".join(
        o.get("data", {}).get("text/html", "") for o in plan.outputs))
    assert "replicated from uccx-pub (at most 120 s)" in shown, shown
    assert "Finesse IN_SERVICE, at most 300 s" in shown, shown
