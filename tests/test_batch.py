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
    assert "uccx-pub: ECDSA uccx1-EC.east.example.com (EC, issuer cckit lab EC issuing CA" \
        in by_site["east"]["presented"]
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert set(summary["site"]) == {"east", "west", "broken"}
    assert (tmp_path / "out" / "summary.html").read_text().count("<tr") == 4
    for site in ("east", "west"):
        assert (tmp_path / "out" / site / "ca_signed.ipynb").exists()
        assert (tmp_path / "out" / site / "ca_signed.html").exists()


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
