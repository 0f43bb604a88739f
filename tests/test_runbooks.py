"""Headless runbooks through papermill (``cckit run``): the record, the secrets, the gate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from cckit.headless import run_runbook
from cckit.vosmock.testing import running_site

# the mock site is a real site to the runbooks: changes need its name as confirmation
CONFIRM = ("-p", "confirm", "vosmock")

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def mock(tmp_path):
    with running_site(tmp_path / "mock", restart_seconds=0.1) as m:
        yield m


def cckit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cckit", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def secrets_of(mock) -> list[str]:
    return [mock.password, mock.sftp_password]


def assert_no_secret(folder: Path, secrets: list[str], *, skip: tuple[str, ...] = ()) -> int:
    """Every file under ``folder`` (text or binary) is free of every secret; returns #files."""
    n = 0
    for path in folder.rglob("*"):
        if not path.is_file() or any(part in skip for part in path.relative_to(folder).parts):
            continue
        data = path.read_bytes()
        for s in secrets:
            assert s.encode() not in data, f"secret found in {path}"
        n += 1
    return n


def node_state(mock) -> dict[str, bytes]:
    """Identities and trust stores of every node (what a refused upload must not change)."""
    out = {}
    for p in sorted(mock.state_dir.rglob("*.pem")):
        rel = p.relative_to(mock.state_dir)
        if "csr" not in str(rel):
            out[str(rel)] = p.read_bytes()
    return out


@pytest.mark.slow
def test_run_ca_signed_writes_the_record_and_no_secret(mock, tmp_path):
    out = tmp_path / "run"
    r = cckit("run", "ca_signed", "--site", str(mock.site_file), *CONFIRM,
              "--out", str(out), "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ca_signed: OK" in r.stdout
    assert "without encryption" not in r.stderr  # the kernel's transport warning is filtered
    for name in ("ca_signed.ipynb", "ca_signed.html", "operations.jsonl", "status.json"):
        assert (out / name).exists(), name
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "complete" and status["failed_step"] is None
    assert status["schema"] == 1
    ecdsa = [p for p in status["presented"] if p["client"] == "ecdsa"]
    assert {p["cn"] for p in ecdsa} == {
        "uccx1-EC.cc.example.com", "uccx2-EC.cc.example.com", "sm1-EC.cc.example.com"}
    assert {(p["port"], p["service"]) for p in ecdsa} >= {(8443, "Cisco Tomcat"),
                                                         (8445, "Cisco Finesse Tomcat")}
    # what agents' browsers are shown now: the CA-signed tomcat-ECDSA on Live Data and chat
    # (Cisco 210528), the RSA tomcat elsewhere; `cckit probe --json` says the same
    assert_browsers(status["presented"], mock, ca_signed=True)
    nb = nbformat.read(out / "ca_signed.ipynb", as_version=4)
    assert nb.metadata.papermill.parameters["site_file"] == str(mock.site_file)
    html = (out / "ca_signed.html").read_text()
    assert "every port presents the CA-signed tomcat-ECDSA certificate" in html
    assert "rb.step(" not in html  # code hidden for auditors
    # the audit record: one summary at the top, a real title, A4 landscape print CSS
    rec = status["record"]
    assert rec["operator"] and rec["cckit_version"] and rec["seconds"] > 0
    assert rec["parameters"]["confirmed"] == "True" and rec["ended"]
    assert set(rec["node_versions"]) == {"uccx-pub", "uccx-sub", "sm"}
    assert "<title>cckit ca_signed on vosmock: complete</title>" in html
    assert html.index("Audit record") < html.index("every port presents")
    assert "size: A4 landscape" in html
    ops = [json.loads(x) for x in (out / "operations.jsonl").read_text().splitlines()]
    assert {o["operation"] for o in ops} >= {"generate_csr", "upload_trust", "upload_identity",
                                             "restart_service"}
    assert assert_no_secret(out, secrets_of(mock)) >= 5


@pytest.mark.slow
def test_gate_failure_stops_at_the_gate_then_a_good_ca_completes(mock, tmp_path):
    before = node_state(mock)
    bad = tmp_path / "bad"
    r = cckit("run", "ca_signed", "--site", str(mock.site_file), *CONFIRM,
              "--out", str(bad), "-q",
              "-p", "ca_options", "{algorithm: rsa}")
    assert r.returncode == 1
    assert "failed at step gate" in r.stderr
    assert "signed it with RSA" in r.stderr and "rsa_only" in r.stderr
    assert "Traceback" not in r.stderr
    assert node_state(mock) == before  # no identity, no trust changed
    nb = nbformat.read(bad / "ca_signed.ipynb", as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "GateError"
    assert len(errors[0]["traceback"]) == 1  # one clean message, not a wall of traceback
    assert_no_secret(bad, secrets_of(mock))
    # the same site, a good CA: the pending CSRs are reused and the run completes
    good = tmp_path / "good"
    r = cckit("run", "ca_signed", "--site", str(mock.site_file), *CONFIRM,
              "--out", str(good), "-q")
    assert r.returncode == 0, r.stderr
    gen = next(c for c in nbformat.read(good / "ca_signed.ipynb", as_version=4).cells
           if c.cell_type == "code" and 'rb.step("generate_csrs")' in c.source)
    # the step's result (the live progress display before it is empty once the step ends)
    html = "".join(o["data"]["text/html"] for o in gen.outputs if o.get("data"))
    assert "".join(gen.outputs[0]["data"]["text/plain"]) == ""
    assert "0 generated, 3 reused" in html
    assert_no_secret(good, secrets_of(mock))


@pytest.mark.slow
def test_rsa_only_and_rollback_headless(mock, tmp_path):
    r = cckit("run", "rsa_only", "--site", str(mock.site_file), *CONFIRM,
              "--out", str(tmp_path / "d"),
              "-q")
    assert r.returncode == 0, r.stderr
    status = json.loads((tmp_path / "d" / "status.json").read_text())
    ecdsa = [p for p in status["presented"] if p["client"] == "ecdsa"]
    assert ecdsa and all(p["status"] == "handshake_failed" for p in ecdsa)
    browser = [p for p in status["presented"] if p["client"] == "browser"]
    assert len(browser) == 12 and {p["key_type"] for p in browser} == {"RSA"}  # no ECDSA
    r = cckit("run", "rsa_only", "--site", str(mock.site_file), *CONFIRM,
              "--out", str(tmp_path / "r"),
              "-q", "-p", "action", "rollback")
    assert r.returncode == 0, r.stderr
    status = json.loads((tmp_path / "r" / "status.json").read_text())
    ecdsa = [p for p in status["presented"] if p["client"] == "ecdsa"]
    assert ecdsa and all(p["key_type"] == "EC" and p["self_signed"] for p in ecdsa)
    assert_browsers(status["presented"], mock, ca_signed=False)
    assert_no_secret(tmp_path, secrets_of(mock), skip=("mock",))


#: where agents' browsers are shown tomcat-ECDSA (Cisco 210528): Live Data, chat and email
AGENTS_ECDSA = {("uccx-pub", 12015), ("uccx-sub", 12015), ("sm", 7443)}


def assert_browsers(presented: list[dict], mock, *, ca_signed: bool) -> None:
    """status.json's browser entries and `cckit probe --json`: tomcat-ECDSA (CA-signed or
    self-signed) on Live Data and chat only, the RSA tomcat on the other ports."""
    ecdsa = {(p["node"], p["port"]): p for p in presented if p["client"] == "ecdsa"}
    browser = {(p["node"], p["port"]): p for p in presented if p["client"] == "browser"}
    assert len(browser) == 12 == len(ecdsa)
    for key, p in browser.items():
        if key in AGENTS_ECDSA:
            assert p["sha256"] == ecdsa[key]["sha256"] and p["self_signed"] is not ca_signed
        else:
            assert p["key_type"] == "RSA", key
    doc = yaml.safe_load(mock.site_file.read_text())
    local = {(n["name"], real): port for n in doc["nodes"]
             for real, port in n["web_ports"].items()}
    r = cckit("probe", "--json", *(f"127.0.0.1:{port}" for port in local.values()))
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    for key, port in local.items():
        assert got[f"127.0.0.1:{port}"]["browser"]["sha256"] == browser[key]["sha256"], key


def test_plan_only_changes_nothing(mock, tmp_path):
    before = {p: p.read_bytes() for p in mock.state_dir.rglob("*") if p.is_file()
              and "host_key" not in p.name and p.name != "journal.jsonl"}
    outcome = run_runbook("ca_signed", tmp_path / "plan", site_file=mock.site_file,
                          parameters={"apply": False}, progress=False)
    assert outcome.ok, outcome.message
    after = {p: p.read_bytes() for p in mock.state_dir.rglob("*") if p.is_file()
             and "host_key" not in p.name and p.name != "journal.jsonl"}
    assert after == before
    steps = {s["step"]: s["outcome"] for s in
             json.loads((tmp_path / "plan" / "status.json").read_text())["steps"]}
    assert steps["plan"] == "ok" and steps["upload_identities"] == "plan only"


def test_embedded_mock_run_and_its_secrets(tmp_path):
    out = tmp_path / "embedded"
    outcome = run_runbook("preflight", out, progress=False)
    assert outcome.ok, outcome.message
    pw = (out / "mock" / "state" / "secrets" / "os-admin.password").read_text().strip()
    # the embedded mock's own state holds its password by design; the record does not
    assert assert_no_secret(out, [pw], skip=("mock",)) >= 4


def test_parameters_never_carry_secrets(tmp_path):
    r = cckit("run", "preflight", "--out", str(tmp_path / "x"), "-p", "password", "hunter2")
    assert r.returncode == 1
    assert "passwords are never parameters" in r.stderr and "hunter2" not in r.stderr
    r = cckit("run", "preflight", "--out", str(tmp_path / "x"), "-p", "colour", "blue")
    assert r.returncode == 1 and "not a parameter of preflight" in r.stderr
    assert not (tmp_path / "x").exists()


def test_start_cell_run_twice_in_one_kernel(mock, tmp_path):
    from cckit import runbook
    from cckit.errors import SiteLockedError
    from cckit.procedures import SiteSession
    from cckit.sites import load_site

    first = runbook.start("preflight", site_file=mock.site_file, artifacts=tmp_path / "a")
    second = runbook.start("preflight", site_file=mock.site_file, artifacts=tmp_path / "b")
    assert second.overview().ok
    # the earlier run's connections and lock are gone; the new one holds the lock
    assert first.session._conns == {}
    with pytest.raises(SiteLockedError):
        SiteSession(load_site(mock.site_file), workdir=tmp_path / "c")
    second.finish()
    SiteSession(load_site(mock.site_file), workdir=tmp_path / "d").close()


@pytest.mark.slow
def test_files_ca_waits_then_resumes(mock, tmp_path):
    from cryptography.hazmat.primitives.serialization import Encoding

    from cckit.ca import get_adapter
    from cckit.certs import load_csr

    out = tmp_path / "run"
    args = ("run", "ca_signed", "--site", str(mock.site_file), *CONFIRM,
              "--out", str(out), "-q",
            "-p", "ca", "files")
    r = cckit(*args)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "waiting for the CA at step sign" in r.stderr and "Run the same command" in r.stderr
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "waiting" and status["failed_step"] == "sign"
    outbox = out / "csr-outbox"
    assert sorted(p.name for p in outbox.glob("*.csr")) == ["sm.csr", "uccx-pub.csr",
                                                              "uccx-sub.csr"]
    assert "sign with an EC key" in (outbox / "INSTRUCTIONS.txt").read_text()
    # the CA answers: full chains, any file names, into the inbox
    lab = get_adapter("lab", directory=tmp_path / "enterprise-ca")
    for f in outbox.glob("*.csr"):
        csr = load_csr(f)
        lab.submit(f.stem, csr)
        s = lab.collect(f.stem, csr)
        (out / "cert-inbox" / f"signed-{f.stem}.cer").write_bytes(
            b"".join(c.public_bytes(Encoding.PEM) for c in (s.certificate, *s.chain)))
    r = cckit(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "complete"
    ecdsa = [p for p in status["presented"] if p["client"] == "ecdsa"]
    assert ecdsa and all(p["issuer"].startswith("cckit lab EC issuing CA") for p in ecdsa)
    # the first (waiting) run's record is kept beside the second
    assert len(list(out.glob("ca_signed.*.ipynb"))) == 1
    assert len(list(out.glob("ca_signed.*.html"))) == 1
