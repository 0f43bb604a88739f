"""cckit batch: many sites, one papermill run each, a summary; local threads and Dask."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pandas as pd
import pytest

from cckit.batch import plan_batch, run_batch
from cckit.errors import InputError
from cckit.sites import discover_sites
from cckit.vosmock.testing import running_site

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def two_sites(tmp_path):
    """Two independent mock sites and a folder holding their site files."""
    folder = tmp_path / "sites"
    folder.mkdir()
    with contextlib.ExitStack() as stack:
        mocks = []
        for name in ("east", "west"):
            m = stack.enter_context(running_site(
                tmp_path / name, restart_seconds=0.1, site=name, domain=f"{name}.example.com",
                site_file=folder / f"{name}.yaml"))
            mocks.append(m)
        yield folder, mocks


def test_discover_sites_from_folder_and_list(tmp_path, two_sites):
    folder, _ = two_sites
    assert [p.name for p in discover_sites(folder)] == ["east.yaml", "west.yaml"]
    listing = tmp_path / "sites.txt"
    listing.write_text("# our sites\nsites/west.yaml\n\nsites/east.yaml  # the other one\n")
    assert [p.name for p in discover_sites(listing)] == ["west.yaml", "east.yaml"]
    with pytest.raises(InputError, match="no site files"):
        discover_sites(tmp_path / "sites" / "..")  # tmp_path: no yaml at top level
    with pytest.raises(InputError, match="neither a folder"):
        discover_sites(tmp_path / "nope")


def test_plan_touches_nothing(tmp_path, two_sites):
    folder, _ = two_sites
    (folder / "broken.yaml").write_text("site: broken\nnodes: []\n")
    df = plan_batch("ca_signed", folder, tmp_path / "out")
    assert list(df["site"]) == ["broken", "east", "west"]
    assert df.loc[0, "runs"].startswith("no: site file is invalid")
    assert not (tmp_path / "out").exists()


def test_batch_one_failure_does_not_stop_the_others(tmp_path, two_sites):
    folder, mocks = two_sites
    (folder / "broken.yaml").write_text("site: broken\nnodes: []\n")
    mocks[1].faults.set("down", True, node="uccx-pub")  # west cannot be reached
    result = run_batch("ca_signed", folder, tmp_path / "out", concurrency=2, progress=False)
    by_site = {r["site"]: r for r in result.rows}
    assert by_site["east"]["status"] == "ok", by_site["east"]
    assert by_site["west"]["status"] == "failed"
    assert by_site["west"]["failed step"] and "uccx-pub" in by_site["west"]["message"]
    assert by_site["broken"]["status"] == "invalid site file"
    assert not result.ok
    # per node, each client ca_signed shows: a browser on every web port (the CA-signed
    # tomcat-ECDSA on Live Data and chat, Cisco 210528), an ECDSA and an RSA client on the first
    presented = dict(part.split(": ", 1) for part in by_site["east"]["presented"].split(" | "))
    ca = "issuer cckit lab EC issuing CA (lab)"
    assert presented["uccx-pub"] == (
        f"browser RSA (self-signed) on 8443/8445/8444/7443, EC ({ca}) on 12015; "
        f"ECDSA uccx1-EC.east.example.com (EC, {ca}); RSA uccx1.east.example.com (RSA, "
        "self-signed)")
    assert presented["sm"].startswith(
        f"browser RSA (self-signed) on 443, EC ({ca}) on 7443; ECDSA sm1-EC."), presented["sm"]
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert set(summary["site"]) == {"east", "west", "broken"}
    assert (tmp_path / "out" / "summary.html").read_text().count("<tr") == 4
    for site in ("east", "west"):
        assert (tmp_path / "out" / site / "ca_signed.ipynb").exists()
        assert (tmp_path / "out" / site / "ca_signed.html").exists()


@pytest.mark.slow
def test_batch_cli_exit_status(tmp_path, two_sites):
    folder, _ = two_sites
    r = subprocess.run([sys.executable, "-m", "cckit", "batch", "preflight", "--sites",
                        str(folder), "--out", str(tmp_path / "out"), "--concurrency", "2", "-q"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 of 2 site(s) ok" in r.stdout
    (folder / "broken.yaml").write_text("site: broken\nnodes: []\n")
    r = subprocess.run([sys.executable, "-m", "cckit", "batch", "preflight", "--sites",
                        str(folder), "--out", str(tmp_path / "out2"), "-q"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "2 of 3 site(s) ok" in r.stdout


@pytest.mark.slow
def test_batch_on_a_dask_local_cluster(tmp_path, two_sites):
    distributed = pytest.importorskip("distributed")
    folder, _ = two_sites
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address.replace("tcp://", "dask://")
        result = run_batch("preflight", folder, tmp_path / "out", executor=address,
                           progress=False)
    assert result.ok, result.rows
    assert {r["site"] for r in result.rows} == {"east", "west"}


@pytest.mark.slow
def test_ctrl_c_keeps_finished_records_and_starts_nothing_new(tmp_path):
    import json
    import signal
    import time

    from cckit.vosmock.testing import running_sites

    with running_sites(tmp_path / "mock", 3, restart_seconds=0.1,
                       site_dir=tmp_path / "sites"):
        out = tmp_path / "out"
        proc = subprocess.Popen(
            [sys.executable, "-m", "cckit", "batch", "preflight", "--sites",
             str(tmp_path / "sites"), "--out", str(out), "--concurrency", "1", "-q"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        first = out / "site-001" / "status.json"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if first.exists() and json.loads(first.read_text())["status"] == "complete":
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stdout + stderr
    assert "(interrupted)" in stdout
    summary = pd.read_csv(out / "summary.csv")
    status = dict(zip(summary["site"], summary["status"], strict=True))
    assert status["site-001"] == "ok"
    assert status["site-003"] == "cancelled"  # never started
    assert status["site-002"] in ("ok", "cancelled")  # running when interrupted: it finished
    assert (out / "site-001" / "preflight.html").exists()


def test_batch_leaves_the_working_directory_alone(tmp_path, two_sites):
    import os

    folder, _ = two_sites
    before = os.getcwd()
    result = run_batch("preflight", folder, tmp_path / "out", concurrency=2, progress=False)
    assert result.ok
    assert os.getcwd() == before  # papermill's cwd= would chdir the process from threads


def test_a_renamed_duplicate_site_name_is_confirmed_by_its_own_name(tmp_path, monkeypatch):
    """Two site files for two sites that share a name: the batch runs the second as
    ``east-<file stem>`` (its folder and row), but the go-ahead it gives that run is the
    site's own name, which is what the run checks (the batch's label was refused: issue 24).
    No node is contacted: the jobs, then the run's start, read the site files only."""
    import yaml

    from cckit import batch, runbook

    monkeypatch.setenv("CCKIT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("CCKIT_LOCK_DIR", str(tmp_path / "locks"))
    folder = tmp_path / "sites"
    folder.mkdir()
    for stem, host in (("east", "uccx1.east.example.com"), ("east2", "uccx1.dr.example.com")):
        (folder / f"{stem}.yaml").write_text(yaml.safe_dump({
            "site": "east", "domain": "example.com",
            "credentials": {"os-admin": {"username": "administrator",
                                         "password": {"env": "CCKIT_TEST_PW"}}},
            "nodes": [{"name": "pub", "role": "uccx-publisher", "host": host}]}))
    jobs = batch._jobs(discover_sites(folder), tmp_path / "out")
    assert [(j.name, j.error) for j in jobs] == [("east", None), ("east-east2", None)]
    given = {}
    monkeypatch.setattr(batch, "run_runbook", lambda scenario, out, *, parameters, site_file,
                        **kw: given.setdefault(site_file.name, parameters))
    for job in jobs:
        batch._run_site("ca_signed", job, {})
    assert given == {"east.yaml": {"confirm": "east"}, "east2.yaml": {"confirm": "east"}}
    # what the renamed site's run accepts: its own name, not the batch's label
    rb = runbook.start("ca_signed", site_file=jobs[1].site_file, confirm=jobs[1].confirm,
                       artifacts=tmp_path / "run")
    try:
        assert rb.confirmed()
        rb.confirm = jobs[1].name
        assert not rb.confirmed()
    finally:
        rb.session.close()
        runbook._open.clear()
