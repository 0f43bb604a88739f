"""The run folder: the one writer of status.json (typed, versioned), its layout, resume and
abandon, a killed run settled, and this kernel's run refused clearly when there is none.
No node is contacted."""

from __future__ import annotations

import json

import pytest

from cckit import runbook
from cckit.errors import ProcedureError
from cckit.results import Outcome, StepRecord
from cckit.runfolder import STATUS_SCHEMA, RunFolder, RunStatus, State


def step(name: str, outcome: Outcome = Outcome.OK, message: str = "") -> StepRecord:
    return StepRecord("2026-11-28T15:33:13+00:00", name, outcome, message)


def test_layout_is_runs_scenario_time_and_a_second_in_the_same_second(tmp_path):
    a = RunFolder.new("ca_signed", tmp_path, stamp="20261128T153313Z")
    b = RunFolder.new("ca_signed", tmp_path, stamp="20261128T153313Z")
    assert a.path == tmp_path / "ca_signed" / "20261128T153313Z" and a.path.is_dir()
    assert b.path == tmp_path / "ca_signed" / "20261128T153313Z-2"


def test_status_is_typed_versioned_and_reads_back(tmp_path):
    folder = RunFolder(tmp_path / "run")
    steps = [step("start"), step("plan"), step("sign", Outcome.WAITING, "CA has 1 of 3")]
    status = RunStatus.of_steps("ca_signed", steps, site="east", site_file="/x/east.yaml")
    assert (status.status, status.failed_step) == (State.WAITING, "sign")
    folder.write(status)
    data = json.loads(folder.status_file.read_text())
    assert data["schema"] == STATUS_SCHEMA and data["status"] == "waiting"
    assert data["site_file"] == "/x/east.yaml" and "abandoned_by" not in data
    again = RunFolder(folder.path).read()
    assert again == status
    # a resumed run: what failed before its latest start no longer decides its state
    resumed = RunStatus.of_steps("ca_signed", [*steps, step("start"), step("gate")])
    assert resumed.status is State.RUNNING and resumed.failed_step is None
    done = RunStatus.of_steps("ca_signed", [*steps, step("start"), step("finish")])
    assert done.status is State.COMPLETE


def test_a_killed_run_is_settled_and_a_stop_with_no_status_still_has_a_schema(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.write(RunStatus.of_steps("rsa_only", [step("start"), step("install_cops")]))
    assert folder.settle_killed()
    status = folder.read()
    assert status.status is State.INTERRUPTED
    assert status.message == "interrupted: the run was killed after step install_cops"
    assert not folder.settle_killed()  # nothing running any more
    empty = RunFolder(tmp_path / "empty")
    empty.record_stop(State.FAILED, "cell 3", "the kernel died", scenario="preflight")
    data = json.loads(empty.status_file.read_text())
    assert data["schema"] == STATUS_SCHEMA and data["scenario"] == "preflight"
    assert data["status"] == "failed" and data["failed_step"] == "cell 3"


def test_unfinished_runs_newest_first_and_abandoned_by_the_next(tmp_path):
    old = RunFolder.new("ca_signed", tmp_path, stamp="20261128T100000Z")
    new = RunFolder.new("ca_signed", tmp_path, stamp="20261128T110000Z")
    done = RunFolder.new("ca_signed", tmp_path, stamp="20261128T120000Z")
    other = RunFolder.new("ca_signed", tmp_path, stamp="20261128T130000Z")
    for f, site, last in ((old, "east", "gate"), (new, "east", "sign"), (done, "east", "finish"),
                          (other, "west", "plan")):
        f.write(RunStatus.of_steps("ca_signed", [step("start"), step(last)], site=site))
    assert [f.path for f in RunFolder.unfinished("ca_signed", "east", tmp_path)] == \
        [new.path, old.path]
    old.abandon(new, "a later run of the same site replaced it")
    status = old.read()
    assert status.status is State.ABANDONED and status.abandoned_by == str(new.path.resolve())
    assert status.message.startswith("abandoned (interrupted before): a later run")
    assert [f.path for f in RunFolder.unfinished("ca_signed", "east", tmp_path)] == [new.path]


def test_no_run_in_this_process_is_one_clear_refusal(monkeypatch):
    monkeypatch.setattr(runbook, "_latest", None)
    monkeypatch.setattr(runbook, "_start_failure", None)
    with pytest.raises(ProcedureError, match="no run is open in this kernel") as e:
        from cckit.runbook import rb  # noqa: F401
    assert "run the notebook from the top" in str(e.value)
    assert "the parameters cell has not run" in str(e.value)
    # the parameters cell ran (its names are in the kernel): the start cell is the first
    monkeypatch.setattr(runbook, "_user_namespace", lambda: {"site_file": ""})
    with pytest.raises(ProcedureError, match=r"the start cell \('The site'\) has not run"):
        runbook.current()
    monkeypatch.setattr(runbook, "_start_failure", "site file x not found")
    with pytest.raises(ProcedureError, match="the latest start cell failed"):
        runbook.current()
