"""The cckit command line, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from .certfactory import make_csr, make_intermediate, make_root, pem, rsa_key, sign_csr


def cckit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cckit", *args], capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def files(tmp_path):
    root = make_root("CLI EC Root")
    inter = make_intermediate(root, "CLI EC Issuing")
    _, csr = make_csr()
    (tmp_path / "csr.pem").write_bytes(csr.public_bytes(Encoding.PEM))
    (tmp_path / "leaf.pem").write_bytes(pem(sign_csr(inter, csr)))
    (tmp_path / "fullchain.pem").write_bytes(pem(sign_csr(inter, csr), inter.cert, root.cert))
    (tmp_path / "root.pem").write_bytes(pem(root.cert))
    (tmp_path / "inter.pem").write_bytes(pem(inter.cert))
    rsa_root = make_root("CLI RSA Root", key=rsa_key())
    (tmp_path / "rsa-signed.pem").write_bytes(pem(sign_csr(rsa_root, csr)))
    (tmp_path / "rsa-root.pem").write_bytes(pem(rsa_root.cert))
    return tmp_path


def test_cert_check_ok_with_separate_chain(files):
    r = cckit("cert", "check", str(files / "leaf.pem"), "--csr", str(files / "csr.pem"),
              "--chain", str(files / "root.pem"), "--chain", str(files / "inter.pem"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(r.stdout.strip().splitlines()) == 1
    assert r.stdout.startswith("OK tomcat-ECDSA uccx1-EC.cc.example.com")
    assert "chain verified to 'CLI EC Root'" in r.stdout


def test_cert_check_ok_with_bundled_chain(files):
    r = cckit("cert", "check", str(files / "fullchain.pem"), "--csr", str(files / "csr.pem"))
    assert r.returncode == 0, r.stdout + r.stderr


def test_cert_check_without_chain_says_so(files):
    r = cckit("cert", "check", str(files / "leaf.pem"), "--csr", str(files / "csr.pem"))
    assert r.returncode == 0 and "chain not checked" in r.stdout


def test_cert_check_refuses_with_every_reason(files):
    r = cckit("cert", "check", str(files / "rsa-signed.pem"), "--csr", str(files / "csr.pem"),
              "--chain", str(files / "inter.pem"))
    assert r.returncode == 1
    assert r.stdout.splitlines()[0].endswith("for tomcat-ECDSA (2 reasons):")
    assert "signed it with RSA" in r.stdout and "RSA-only" in r.stdout
    assert "chain incomplete: no root CA" in r.stdout


def test_cert_check_bad_input_is_a_clear_error(files):
    (files / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n")
    r = cckit("cert", "check", str(files / "key.pem"), "--csr", str(files / "csr.pem"))
    assert r.returncode == 1
    assert "private key" in r.stderr and "key.pem" in r.stderr and "MIIB" not in r.stderr
    assert "Traceback" not in r.stderr


def test_cert_show(files):
    r = cckit("cert", "show", str(files / "fullchain.pem"))
    assert r.returncode == 0
    assert "CLI EC Issuing" in r.stdout and "secp384r1" in r.stdout


def test_site_check_reports_problems(tmp_path):
    (tmp_path / "s.yaml").write_text("site: x\nnodes: []\n")
    r = cckit("site", "check", str(tmp_path / "s.yaml"))
    assert r.returncode == 1 and "at least the UCCX publisher" in r.stderr


def test_lab_copies_every_runbook_and_passes_the_options(tmp_path, monkeypatch):
    """``cckit lab`` (what ``make lab ARGS=...`` runs): fresh copies of every runbook, never
    the shipped ones; the port, browser, root and extra options reach JupyterLab; its
    kernels learn the launch folder (relative site files) and where run folders go."""
    from cckit.cli import build_parser, lab_command
    from cckit.scenarios import FLEET_RUNBOOK, SCENARIOS

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CCKIT_RUNS_DIR", raising=False)
    args = build_parser().parse_args(["lab", "--port", "9999", "--no-browser",
                                      "--allow-root"])
    cmd, env, folder = lab_command(args, ["--ServerApp.token=x"])
    assert folder.parent == tmp_path / "runs" / "lab"
    assert sorted(p.stem for p in folder.glob("*.ipynb")) == sorted([*SCENARIOS, FLEET_RUNBOOK])
    assert cmd[1:4] == ["-m", "jupyter", "lab"] and f"--ServerApp.root_dir={folder}" in cmd
    assert {"--port=9999", "--no-browser", "--allow-root"} <= set(cmd)
    assert cmd[-1] == "--ServerApp.token=x"
    assert env["CCKIT_LAUNCH_DIR"] == str(tmp_path)
    assert env["CCKIT_RUNS_DIR"] == str(tmp_path / "runs")
    # a folder given again keeps the engineer's copies
    (folder / "preflight.ipynb").write_text("{}")
    lab_command(build_parser().parse_args(["lab", "--dir", str(folder)]))
    assert (folder / "preflight.ipynb").read_text() == "{}"
    r = cckit("lab", "--help")
    assert r.returncode == 0 and "--no-browser" in r.stdout and "--allow-root" in r.stdout
