"""The renewal autopilot end to end (issue 25) against mock sites whose publisher's
tomcat-ECDSA is CA-signed and expires in 20 days (`--seed expiring`): one pass renews only
the site whose window is open, a second renews nothing; the gate's refusal uploads nothing,
backs off and alerts once; an interrupted renewal is resumed by the next pass in its folder;
a locked site is skipped and recorded; a paused site is not even read."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cckit import probe, topology
from cckit.audit import site_lock
from cckit.autopilot.ledger import Ledger
from cckit.autopilot.renew import pause_file, read_status, run_pass
from cckit.runfolder import RunFolder, State
from cckit.scenarios import CA_SIGNED
from cckit.sites import load_site
from cckit.vosmock import journal
from cckit.vosmock.testing import running_sites
from tests import test_sweep

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
#: a local webhook receiver: (url, the JSON bodies received)
webhook = test_sweep.webhook

ROOT = Path(__file__).resolve().parent.parent
#: every day, all day (in the tests that are not about windows)
ALWAYS = [{"start": "00:00", "end": "24:00", "tz": "UTC"}]


def cckit_here(capsys, *args: str) -> tuple[int, str]:
    """``cckit ARGS`` in this process (no interpreter to start; the test of a pass as a
    process of its own, stopped by SIGTERM, is the interrupted renewal's): exit status,
    stdout."""
    from cckit.cli import main

    capsys.readouterr()
    code = main(list(args))
    return code, capsys.readouterr().out


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """Four mock UCCX 11.5 sites, each publisher's tomcat-ECDSA EC-CA-signed with 20 days
    left, for the tests that do not stop a run: each uses its own site, or only reads one."""
    root = tmp_path_factory.mktemp("autopilot")
    with running_sites(root / "mock", 4, seed="expiring", site_dir=root / "files",
                       restart_seconds=0.2) as running:
        yield {s.name: s for s in running}


@pytest.fixture(scope="module")
def slow_sites(tmp_path_factory):
    """Two more, whose restarts take 2 s each: time to stop a run during one."""
    root = tmp_path_factory.mktemp("autopilot-slow")
    with running_sites(root / "mock", 2, seed="expiring", site_dir=root / "files",
                       restart_seconds=2) as running:
        yield {s.name: s for s in running}


def place(site, folder: Path, autopilot: dict | None) -> Path:
    """``site``'s site file in ``folder`` with ``autopilot`` as its block (None: none)."""
    data = yaml.safe_load(site.site_file.read_text())
    data["known_hosts"] = str(site.known_hosts)
    if autopilot is not None:
        data["autopilot"] = autopilot
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{site.name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def window(tz: str, from_hours: float, to_hours: float) -> list[dict]:
    """A daily window from now + ``from_hours`` to now + ``to_hours``, on ``tz``'s clock."""
    now = dt.datetime.now(dt.UTC)

    def at(h: float) -> str:
        return (now + dt.timedelta(hours=h)).astimezone(dt.UTC).astimezone(
            __import__("zoneinfo").ZoneInfo(tz)).strftime("%H:%M")
    return [{"start": at(from_hours), "end": at(to_hours), "tz": tz}]


def node_files(site) -> dict[str, bytes]:
    """Every file of the site's nodes but the journal (what a change would change)."""
    return {str(p.relative_to(site.state_dir)): p.read_bytes()
            for p in sorted(site.state_dir.rglob("*"))
            if p.is_file() and p.name != journal.JOURNAL}


def presented(site, node: str, client: str = "ecdsa") -> set[str]:
    """The SHA-256 of what each web port of ``node`` presents to a ``client``-only client."""
    n = load_site(site.site_file).node(node)
    return {r.cert.sha256 for wp in n.web_ports
            for r in probe.probe(n.address, wp.connect, versions=("1.2",), clients=(client,),
                                 server_name=n.fqdn) if r.cert}


def rows(state: Path) -> list[dict]:
    return read_status(state)["attempts"]


# ------------------------------------------------------------------------------ the issue's test


def test_one_pass_renews_the_open_site_only_and_a_second_renews_nothing(sites, tmp_path,
                                                                       capsys, monkeypatch):
    folder, state = tmp_path / "sites", tmp_path / "state"
    on = {"enabled": True, "ca": "lab", "renew_before": "30d"}
    open_site, closed_site, off_site = sites["site-001"], sites["site-002"], sites["site-003"]
    place(open_site, folder, {**on, "windows": window("America/Chicago", -1, 3)})
    place(closed_site, folder, {**on, "windows": window("Asia/Tokyo", 6, 8)})
    place(off_site, folder, None)
    old = presented(open_site, "uccx-pub")
    untouched = {s.name: node_files(s) for s in (closed_site, off_site)}
    heard = {s.name: len(journal.read(s.state_dir)) for s in (closed_site, off_site)}

    # a dry run says what would happen where and when, and writes nothing at all
    code, out = cckit_here(capsys, "renew", "--sites", str(folder), "--state", str(state),
                           "--dry-run", "--json")
    assert code == 0, out
    seen = {s["site"]: s for s in json.loads(out)["sites"]}
    assert [seen[n]["state"] for n in ("site-001", "site-002", "site-003")] == [
        "would-renew", "closed", "off"]
    assert seen["site-002"]["due"][0]["nodes"] == ["uccx-pub"]
    nxt = dt.datetime.fromisoformat(seen["site-002"]["window"]["next_start"])
    assert dt.timedelta(hours=5) < nxt - dt.datetime.now(dt.UTC) < dt.timedelta(hours=8)
    assert not state.exists()

    # unset, restored after the test: the command names the autopilot as its runs' operator
    monkeypatch.setenv("CCKIT_OPERATOR", "")
    monkeypatch.delenv("CCKIT_OPERATOR")
    code, out = cckit_here(capsys, "renew", "--sites", str(folder), "--state", str(state),
                           "--json")
    assert code == 0, out
    seen = {s["site"]: s for s in json.loads(out)["sites"]}
    assert [seen[n]["state"] for n in ("site-001", "site-002", "site-003")] == [
        "renewed", "closed", "off"]
    [row] = rows(state)
    assert (row["site"], row["node"], row["unit"], row["scenario"], row["outcome"]) == (
        "site-001", "uccx-pub", "tomcat-ECDSA", "ca_signed", "renewed")
    assert row["old_sha256"] in old and row["new_sha256"] != row["old_sha256"]
    assert row["new_not_after"] > row["old_not_after"]
    # its ECDSA ports present the new certificate
    assert presented(open_site, "uccx-pub") == {row["new_sha256"]}
    run = Path(row["run"])
    assert run.relative_to(state / "runs").parts[:2] == ("site-001", "ca_signed")
    assert {p.name for p in run.iterdir()} >= {"ca_signed.ipynb", "ca_signed.html",
                                               "operations.jsonl", "status.json",
                                               "transcripts"}
    status = RunFolder(run).read()
    assert status.status is State.COMPLETE
    assert status.record["operator"].startswith("cckit renew (")
    # the others: nothing changed; the closed site only read, the one without autopilot
    # not even contacted
    for s in (closed_site, off_site):
        assert node_files(s) == untouched[s.name]
    said = [e["command"] for e in journal.read(closed_site.state_dir)][heard["site-002"]:]
    assert said and all(topology.read_only_command(c) for c in said), said
    assert len(journal.read(off_site.state_dir)) == heard["site-003"]

    renewed = node_files(open_site)
    code, out = cckit_here(capsys, "renew", "--sites", str(folder), "--state", str(state),
                           "--json")
    assert code == 0, out
    seen = {s["site"]: s for s in json.loads(out)["sites"]}
    assert seen["site-001"]["state"] == "nothing-due" and seen["site-002"]["state"] == "closed"
    assert rows(state) == [row]  # no attempt added
    assert node_files(open_site) == renewed

    code, out = cckit_here(capsys, "renew", "--state", str(state), "--status", "--json")
    assert code == 0, out
    shown = json.loads(out)
    assert [{k: a[k] for k in ("site", "node", "unit", "outcome", "run")}
            for a in shown["attempts"]] == [
        {"site": "site-001", "node": "uccx-pub", "unit": "tomcat-ECDSA", "outcome": "renewed",
         "run": str(run)}]
    by_site = {s["site"]: s for s in shown["sites"]}
    assert by_site["site-002"]["due"][0]["scenario"] == "ca_signed"
    assert by_site["site-002"]["window"]["next_start"] == seen["site-002"]["window"][
        "next_start"]
    code, text = cckit_here(capsys, "renew", "--state", str(state), "--status")
    assert "site-001  uccx-pub  tomcat-ECDSA  renewed" in text
    assert "site-002  closed" in text and "next window" in text


# ------------------------------------------------------------------------------ failures


def test_a_refused_certificate_is_never_uploaded_backs_off_and_alerts_once(sites, tmp_path,
                                                                           webhook):
    """A CA that signs the ECDSA certificate with RSA (the lab CA told to): the gate refuses
    it, nothing is uploaded, the site backs off and the team hears of it once."""
    site = sites["site-004"]
    url, received = webhook
    path = place(site, tmp_path / "sites", {
        "enabled": True, "ca": "lab", "ca_options": {"algorithm": "rsa"},
        "windows": ALWAYS, "notify": [f"webhook={url}"]})
    before = presented(site, "uccx-pub")
    heard = len(journal.read(site.state_dir))
    state = tmp_path / "state"
    result = run_pass([path], state)
    [view] = result.sites
    assert view.state == "refused" and result.failed
    [row] = rows(state)
    assert (row["outcome"], row["failed_step"]) == ("refused", "gate")
    assert "signed with RSA" in row["message"] and row["new_sha256"] == row["old_sha256"]
    # nothing uploaded: no import reached the node, every port presents what it did
    said = [e["command"] for e in journal.read(site.state_dir)][heard:]
    assert not [c for c in said if c.startswith("set cert import")], said
    ops = [json.loads(x) for x in (Path(row["run"]) / "operations.jsonl").read_text()
           .splitlines()]
    assert [o["operation"] for o in ops] == ["generate_csr"]
    assert presented(site, "uccx-pub") == before
    # one alert, naming the attempt and its record
    [alert] = received
    assert alert["outcome"] == "refused" and alert["site"] == "site-004"
    assert alert["run"] == row["run"] and "refused" in alert["text"]
    # the next pass, at once: backing off, no attempt, no second alert
    again = run_pass([path], state)
    assert again.sites[0].state == "backoff" and not again.failed
    assert dt.datetime.fromisoformat(again.sites[0].backoff_until) == dt.datetime.fromisoformat(
        row["ended"]) + dt.timedelta(hours=1)
    assert len(rows(state)) == 1 and len(received) == 1


def _wait_for(predicate, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _uploaded(state: Path) -> bool:
    for log in state.glob("runs/*/*/*/operations.jsonl"):
        if any(json.loads(x).get("operation") == "upload_identity"
               and json.loads(x).get("outcome") == "ok"
               for x in log.read_text().splitlines() if x.strip()):
            return True
    return False


def test_an_interrupted_renewal_is_resumed_by_the_next_pass(slow_sites, tmp_path):
    """SIGTERM (a systemd stop, a reboot) after the new certificate was imported: the run
    stops at its step, the ledger says interrupted; the next pass resumes the same run in its
    folder and finishes it, without a second certificate."""
    site = slow_sites["site-001"]
    path = place(site, tmp_path / "sites", {"enabled": True, "ca": "lab", "windows": ALWAYS})
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-m", "cckit.cli", "renew", "--sites", str(path),
                             "--state", str(state)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: _uploaded(state))
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    [row] = rows(state)
    assert row["outcome"] == "interrupted", row
    run = Path(row["run"])
    assert RunFolder(run).read().status is State.INTERRUPTED
    # an older run of the site left unfinished (an earlier autopilot's): the run folder's rule
    # resumes the latest and marks this one abandoned by it
    older = RunFolder.new(CA_SIGNED.name, root=run.parent.parent, stamp="20260101T000000Z")
    older.start(CA_SIGNED.name, site=load_site(path), site_file=path, apply=True)

    result = run_pass([path], state)
    assert result.sites[0].state == "renewed", result.sites[0]
    gone = older.read()
    assert gone.status is State.ABANDONED and gone.abandoned_by == str(run.resolve())
    first, second = rows(state)
    assert second["resumes"] == first["attempt"] and second["run"] == str(run)
    assert second["outcome"] == "renewed" and second["old_sha256"] == first["old_sha256"]
    # one certificate imported, before the interruption; the resume restarted and verified
    ops = [json.loads(x) for x in (run / "operations.jsonl").read_text().splitlines()]
    imported = [o for o in ops if o["operation"] == "upload_identity" and o["outcome"] == "ok"]
    assert len(imported) == 1
    assert imported[0]["fingerprints_after"]["tomcat-ECDSA"] == second["new_sha256"]
    assert presented(site, "uccx-pub") == {second["new_sha256"]}
    # each attempt left its executed notebook in the folder
    assert len(list(run.glob("ca_signed*.ipynb"))) == 2


def test_a_renewal_still_running_at_the_window_end_is_stopped_there(slow_sites, tmp_path,
                                                                   monkeypatch):
    """A run outlasting its estimate is interrupted at the window's end (no step starts
    after it), recorded interrupted, and left for the next window to resume."""
    from cckit.autopilot import renew
    from cckit.autopilot.windows import Interval

    site = slow_sites["site-002"]
    path = place(site, tmp_path / "sites", {"enabled": True, "ca": "lab", "windows": ALWAYS})
    closes = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=6)
    monkeypatch.setattr(renew, "current", lambda windows, now: Interval(
        closes - dt.timedelta(hours=1), closes))
    monkeypatch.setattr(renew, "expected_duration", lambda *a, **k: dt.timedelta())
    result = run_pass([path], tmp_path / "state")
    assert result.sites[0].state == "interrupted" and result.failed
    [row] = rows(tmp_path / "state")
    assert row["outcome"] == "interrupted"
    assert row["message"].startswith("stopped at the end of the window")
    assert "the next window resumes it" in row["message"]
    status = json.loads((Path(row["run"]) / "status.json").read_text())
    assert status["status"] == "interrupted"
    # nothing ran after the end: the last operation began before it
    ops = [json.loads(x) for x in (Path(row["run"]) / "operations.jsonl").read_text()
           .splitlines()] if (Path(row["run"]) / "operations.jsonl").exists() else []
    assert all(dt.datetime.fromisoformat(o["started"].replace("Z", "+00:00")) < closes
               + dt.timedelta(seconds=1) for o in ops)


def test_a_locked_site_is_skipped_a_paused_one_not_read_a_killed_attempt_settled(sites,
                                                                                 tmp_path):
    site = sites["site-003"]  # the site without autopilot of the first test: only read here
    path = place(site, tmp_path / "sites", {"enabled": True, "ca": "lab", "windows": ALWAYS})
    state = tmp_path / "state"
    identity = load_site(path).identity
    # another run (an engineer's notebook) holds the site
    with site_lock(None, site.name, key=identity, run=tmp_path / "engineer"):
        result = run_pass([path], state)
    [view] = result.sites
    assert view.state == "locked" and not result.failed
    assert "locked by another cckit run" in view.message and str(os.getpid()) in view.message
    [row] = rows(state)
    assert row["outcome"] == "locked" and row["run"] is None
    assert not (state / "runs").exists()

    # paused: not even read
    heard = len(journal.read(site.state_dir))
    pause_file(state, site.name).parent.mkdir(parents=True, exist_ok=True)
    pause_file(state, site.name).write_text("change freeze until Monday\n")
    view = run_pass([path], state).sites[0]
    assert view.state == "paused" and "change freeze until Monday" in view.message
    assert len(journal.read(site.state_dir)) == heard
    pause_file(state, site.name).unlink()
    view = run_pass([place(site, tmp_path / "off", {"enabled": False, "ca": "lab"})],
                    state).sites[0]
    assert view.state == "off" and len(journal.read(site.state_dir)) == heard

    # an autopilot killed mid-run (its row still running, its run folder unlocked, its
    # status as headless writes it before the kernel starts): the next pass records it
    # interrupted in both, even with the window closed
    folder = RunFolder.new(CA_SIGNED.name, root=state / "runs" / site.name)
    folder.start(CA_SIGNED.name, site=load_site(path), site_file=path, apply=True)
    folder = folder.path
    led = Ledger(state / "ledger.sqlite")
    led.begin(attempt="killed", site=site.name, site_key=identity, site_file=str(path),
              scenario="ca_signed", unit="tomcat-ECDSA", old=[], nodes=["uccx-pub"],
              run=str(folder), started=dt.datetime.now(dt.UTC), parameters={})
    led.close()
    closed = place(site, tmp_path / "closed", {"enabled": True, "ca": "lab",
                                               "windows": window("UTC", 5, 6)})
    view = run_pass([closed], state).sites[0]
    assert view.state == "closed" and "resumes attempt killed" in view.message, view
    killed = [r for r in rows(state) if r["attempt"] == "killed"]
    assert killed[0]["outcome"] == "interrupted" and "killed or crashed" in killed[0]["message"]
    assert RunFolder(folder).read().status is State.INTERRUPTED


def test_a_pass_stopped_by_an_error_of_its_own_does_not_wait_on_its_runs(monkeypatch):
    """Anything but SIGTERM/Ctrl-C stopping the pass's thread (a bug, a test's timeout)
    interrupts the runs and returns at once: it never sits joining a run nobody waits for."""
    import concurrent.futures as cf
    import threading
    from types import SimpleNamespace

    from cckit.autopilot import renew, runner

    release = threading.Event()
    interrupted = []
    monkeypatch.setattr(runner, "interrupt_all", lambda: interrupted.append(1) or 0)

    def boom(*a, **k):
        raise RuntimeError("the pass's own bug")

    monkeypatch.setattr(cf, "wait", boom)
    p = SimpleNamespace(site=lambda path: release.wait(60), stop=threading.Event(),
                        now=dt.datetime.now(dt.UTC), dry_run=False)
    t = time.monotonic()
    try:
        with pytest.raises(RuntimeError, match="own bug"):
            renew._sweep(p, [Path("a.yaml")], 1)
        assert time.monotonic() - t < 10 and p.stop.is_set() and interrupted
    finally:
        release.set()
