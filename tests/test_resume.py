"""Resume (issue #11): a rerun from the top continues this site's latest unfinished run
(its folder, the ``files`` CA's inbox), an interrupted run is detected and shown so, a run
it does not continue is marked abandoned; every notebook parameter is in the record, no
secret. No node is contacted: start and the overview only read the site file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cckit import runbook
from cckit.results import Outcome

SITE = {
    "site": "lab-east", "domain": "cc.example.com",
    "credentials": {"os-admin": {"username": "administrator",
                                 "password": {"env": "CCKIT_TEST_PW"}}},
    "nodes": [
        {"name": "pub", "role": "uccx-publisher", "host": "uccx1.cc.example.com",
         "web_ports": [8443]},
        {"name": "sub", "role": "uccx-subscriber", "host": "uccx2.cc.example.com",
         "web_ports": [8443]},
    ],
}


@pytest.fixture
def site_file(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CCKIT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CCKIT_LOCK_DIR", str(tmp_path / "locks"))
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(SITE))
    yield path
    for rb in list(runbook._open.values()):
        rb.session.close()
    runbook._open.clear()


def status(folder: Path) -> dict:
    return json.loads((folder / "status.json").read_text())


def start(site_file: Path, **kw) -> runbook.Runbook:
    return runbook.start("ca_signed", site_file=site_file, confirm="lab-east", **kw)


def die(rb: runbook.Runbook) -> None:
    """What a kernel restart does to a run: its lock is released, nothing more is written."""
    rb.session.close()
    runbook._open.clear()


def test_rerun_after_a_kernel_restart_resumes_the_run_and_its_inbox(site_file):
    first = start(site_file)
    assert status(first.artifacts)["status"] == "running"
    inbox = first.artifacts / "cert-inbox"
    inbox.mkdir()
    (inbox / "signed-pub.cer").write_text("dropped by the CA")
    die(first)
    second = start(site_file)
    assert second.artifacts == first.artifacts
    verdict = second.overview().verdict
    assert "RESUMED the unfinished run in" in verdict and "it was interrupted" in verdict
    assert "fresh = True" in verdict
    # the files CA of the resumed run reads the inbox the INSTRUCTIONS named
    ca = second.ca("files")
    assert ca.inbox == inbox and (ca.inbox / "signed-pub.cer").is_file()
    st = status(second.artifacts)
    assert st["status"] == "running"
    assert [(s["step"], s["outcome"]) for s in st["steps"]] == [
        ("start", "ok"), ("start", "interrupted"), ("start", "ok")]
    assert len(st["record"]["resumed"]) == 1
    assert st["record"]["started"] == first.started.isoformat(timespec="seconds")


def test_the_stop_button_shows_interrupted_and_the_rerun_resumes(site_file):
    rb = start(site_file)
    rb.plan_shown = True

    def restart():
        raise KeyboardInterrupt  # JupyterLab's stop button during a long step

    with pytest.raises(KeyboardInterrupt):
        rb.step(restart)
    st = status(rb.artifacts)
    assert st["status"] == "interrupted" and st["failed_step"] == "restart"
    again = start(site_file)  # the start cell, same kernel
    assert again.artifacts == rb.artifacts
    assert "it was interrupted at restart" in again.overview().verdict
    # the failure before the resume no longer decides the run's state
    assert status(again.artifacts)["status"] == "running"
    assert again.steps[-2].outcome is Outcome.INTERRUPTED


def test_fresh_marks_the_unfinished_run_abandoned_by_the_new_one(site_file):
    first = start(site_file)
    die(first)
    fresh = start(site_file, fresh=True)
    assert fresh.artifacts != first.artifacts
    old = status(first.artifacts)
    assert old["status"] == "abandoned"
    assert old["abandoned_by"] == str(fresh.artifacts.resolve())
    assert "fresh=True" in old["message"]
    assert "marked abandoned" in fresh.overview().verdict
    # a third start resumes the fresh run, not the abandoned one
    die(fresh)
    assert start(site_file).artifacts == fresh.artifacts


def test_a_completed_run_is_never_resumed(site_file):
    first = start(site_file, apply=False)
    first.session.close()
    first.ended = None
    first._record("finish", Outcome.OK, "run complete")
    runbook._open.clear()
    assert status(first.artifacts)["status"] == "complete"
    second = start(site_file, apply=False)
    assert second.artifacts != first.artifacts
    assert status(first.artifacts)["status"] == "complete"


def test_every_notebook_parameter_in_the_record_and_no_secret(site_file):
    """The parameters cell's names, read from the kernel's namespace; a password-like key
    (typed where it does not belong) is masked at any depth."""
    secret = "hunter2-never-in-a-record"
    ns = {"__name__": "__main__", "site_file": str(site_file), "nodes": [], "apply": True,
          "artifacts": "", "confirm": "lab-east", "change": "CHG0042", "ca": "files",
          "ca_options": {"outbox": "out", "password": secret, "nested": {"token": secret}},
          "key_size": 256, "hash_algorithm": "SHA256", "renew": True,
          "admin_password": secret}
    exec("from cckit import runbook\n"  # noqa: S102 (a notebook cell in its namespace)
         "rb = runbook.start('ca_signed', site_file=site_file, nodes=nodes, apply=apply,\n"
         "                   artifacts=artifacts, confirm=confirm, change=change)\n", ns)
    rb = ns["rb"]
    params = status(rb.artifacts)["record"]["parameters"]
    assert {"key_size": "256", "hash_algorithm": "SHA256", "renew": "True",
            "ca": "files", "change": "CHG0042"}.items() <= params.items()
    assert "[secret masked]" in params["ca_options"]
    for path in rb.artifacts.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path


def test_a_run_not_continued_is_marked_abandoned_by_the_later_one(site_file):
    """A plan-only run never continues an applying one: the earlier run is superseded."""
    first = start(site_file)
    die(first)
    plan_only = start(site_file, apply=False)
    assert plan_only.artifacts != first.artifacts
    old = status(first.artifacts)
    assert old["status"] == "abandoned" and "a later run of the same site" in old["message"]
    assert old["abandoned_by"] == str(plan_only.artifacts.resolve())


def test_an_embedded_rehearsal_left_running_is_abandoned_not_resumed(tmp_path, monkeypatch):
    """The embedded mock dies with its kernel: its unfinished run is never resumed, and once
    nobody holds its lock the next rehearsal marks it abandoned."""
    monkeypatch.setenv("CCKIT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("CCKIT_SITE_FILE", raising=False)
    first = runbook.start("preflight")
    first.session.close()
    runbook._open.clear()
    second = runbook.start("preflight")
    try:
        assert second.artifacts != first.artifacts
        assert status(first.artifacts)["status"] == "abandoned"
        assert "RESUMED" not in second.overview().verdict
    finally:
        second.session.close()
        runbook._open.clear()
