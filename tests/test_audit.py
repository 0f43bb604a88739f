"""cckit.audit: the JSONL operation log and the per-site lock."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from cckit import audit, display
from cckit.audit import AuditLog, operation, read, redact_arguments, site_lock
from cckit.credentials import MASK, Secret
from cckit.errors import InputError, SiteLockedError

ROOT = Path(__file__).resolve().parents[1]
KEY_PEM = ("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n"
           "-----END PRIVATE KEY-----\n")


def _python(code: str, *args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_record_fields_and_jsonl(tmp_path):
    log = AuditLog(tmp_path / "logs" / "audit.jsonl", site="lab")
    log.record("uccx1", "upload_identity", arguments={"unit": "tomcat-ECDSA", "path": tmp_path},
               outcome="ok", before={"tomcat-ECDSA": "AA:BB"}, after={"tomcat-ECDSA": "CC:DD"})
    log.record("uccx2", "generate_csr", arguments={}, outcome="failed", error="boom")
    lines = (tmp_path / "logs" / "audit.jsonl").read_text().splitlines()
    assert len(lines) == 2
    recs = [json.loads(x) for x in lines]
    assert list(recs[0]) == ["time", "started", "site", "node", "operation", "arguments",
                             "outcome", "fingerprints_before", "fingerprints_after", "error"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", recs[0]["time"])
    assert recs[0]["site"] == "lab" and recs[0]["arguments"]["path"] == str(tmp_path)
    assert recs[0]["fingerprints_after"] == {"tomcat-ECDSA": "CC:DD"}
    assert recs[1]["fingerprints_before"] is None and recs[1]["error"] == "boom"
    assert read(tmp_path / "logs" / "audit.jsonl") == recs
    df = display.frame(read(tmp_path / "logs" / "audit.jsonl"), audit.FIELDS)
    assert list(df["node"]) == ["uccx1", "uccx2"] and list(df.columns) == list(audit.FIELDS)


def test_secrets_never_written(tmp_path):
    secret = Secret("hunter2-Zq9")  # a resolved secret: known to redact() from now on
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, site="lab")
    log.record("uccx1", "install_cop", outcome="failed", arguments={
        "user": "admin",
        "password": "hunter2-Zq9",
        "sftp_passwd": "x",
        "token": "tok",
        "cred": secret,
        "note": "used hunter2-Zq9 on the SFTP server",
        "nested": {"secret_value": "s", "list": ["hunter2-Zq9", secret, b"hunter2-Zq9"]},
        "pem": KEY_PEM,
        "bundle": "cert text\n" + KEY_PEM,
    }, error="login with 'hunter2-Zq9' refused", before={"x": "hunter2-Zq9"})
    text = path.read_text()
    assert "hunter2-Zq9" not in text and "PRIVATE KEY" not in text and "MIGHAgEA" not in text
    rec = read(path)[0]
    args = rec["arguments"]
    assert set(args) == {"user", "cred", "note", "nested"}
    assert args["cred"] == MASK and args["note"] == f"used {MASK} on the SFTP server"
    assert args["nested"] == {"list": [MASK, MASK, MASK]}
    assert MASK in rec["error"] and rec["fingerprints_before"] == {"x": MASK}


def test_redact_arguments_keeps_ordinary_values():
    args = {"unit": "tomcat-ECDSA", "key_type": "EC", "key_length": 384, "dry_run": False,
            "hosts": ("a", "b")}
    assert redact_arguments(args) == {"unit": "tomcat-ECDSA", "key_type": "EC",
                                      "key_length": 384, "dry_run": False, "hosts": ["a", "b"]}


def test_threads_write_whole_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, site="lab")
    blob = "x" * 5000

    def work(t: int) -> None:
        for i in range(100):
            log.record(f"n{t}", "op", arguments={"i": i, "blob": blob}, outcome="ok")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    recs = read(path)
    assert len(recs) == 800
    assert all(r["arguments"]["blob"] == blob for r in recs)
    assert {(r["node"], r["arguments"]["i"]) for r in recs} == {
        (f"n{t}", i) for t in range(8) for i in range(100)}


def test_processes_write_whole_lines(tmp_path):
    path = tmp_path / "audit.jsonl"
    code = """
        import sys
        from pathlib import Path
        from cckit.audit import AuditLog
        log = AuditLog(Path(sys.argv[1]), site="lab")
        for i in range(150):
            log.record(sys.argv[2], "op", arguments={"i": i, "blob": "y" * 8000}, outcome="ok")
    """
    procs = [_python(code, str(path), f"p{k}") for k in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    recs = read(path)
    assert len(recs) == 450 and all(len(r["arguments"]["blob"]) == 8000 for r in recs)


def test_operation_context_manager(tmp_path):
    Secret("opensesame-77")
    log = AuditLog(tmp_path / "a.jsonl", site="lab")
    with operation(log, "uccx1", "upload_trust", {"file": "root.pem"}, before={"t": "1"}) as op:
        op.after = {"t": "2"}
    with pytest.raises(RuntimeError, match="opensesame-77"):
        with operation(log, "uccx1", "install_cop", {"password": "opensesame-77"}):
            raise RuntimeError("sftp login opensesame-77 failed")
    ok, failed = read(tmp_path / "a.jsonl")
    assert ok["outcome"] == "ok" and ok["fingerprints_after"] == {"t": "2"}
    assert ok["fingerprints_before"] == {"t": "1"}
    assert failed["outcome"] == "failed" and failed["arguments"] == {}
    assert failed["error"] == f"RuntimeError: sftp login {MASK} failed"
    assert "opensesame-77" not in (tmp_path / "a.jsonl").read_text()


def test_read_tolerates_torn_last_line_only(tmp_path):
    path = tmp_path / "a.jsonl"
    AuditLog(path, site="lab").record("n", "op", arguments={}, outcome="ok")
    with path.open("a") as f:
        f.write('{"time": "2026-')
    assert len(read(path)) == 1
    path.write_text('garbage\n{"a": 1}\n')
    with pytest.raises(InputError, match="line 1"):
        read(path)
    assert read(tmp_path / "missing.jsonl") == []


_HOLD = """
    import sys, time
    from pathlib import Path
    from cckit.audit import site_lock
    with site_lock(Path(sys.argv[1]), sys.argv[2]):
        print("locked", flush=True)
        sys.stdin.read()   # hold until the parent closes stdin
"""


def test_lock_conflict_between_processes(tmp_path):
    holder = _python(_HOLD, str(tmp_path), "Lab Site")
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SiteLockedError) as ei:
            with site_lock(tmp_path, "Lab Site"):
                pytest.fail("acquired a held lock")
        text = str(ei.value)
        assert f"pid {holder.pid}" in text and "Lab Site" in text
        assert "What to do" in text and ei.value.file.endswith(".lock")
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert holder.returncode == 0, holder.stderr.read()
    with site_lock(tmp_path, "Lab Site") as me:  # free again
        assert me.pid == os.getpid()


def test_lock_of_dead_process_does_not_block(tmp_path):
    code = """
        import os, sys
        from pathlib import Path
        from cckit.audit import site_lock
        cm = site_lock(Path(sys.argv[1]), sys.argv[2])
        cm.__enter__()
        os._exit(0)   # dies holding the lock, without any cleanup
    """
    p = _python(code, str(tmp_path), "lab")
    p.communicate(timeout=30)
    assert p.returncode == 0
    lockfile = tmp_path / "lab.lock"
    assert f'"pid": {p.pid}' in lockfile.read_text()  # stale holder info left behind
    with site_lock(tmp_path, "lab") as me:
        assert f'"pid": {me.pid}' in lockfile.read_text()
    assert lockfile.read_text() == ""  # holder info cleared on release


def test_lock_released_after_exception(tmp_path):
    with pytest.raises(ValueError, match="step failed"):
        with site_lock(tmp_path, "lab"):
            with pytest.raises(SiteLockedError):  # held: even this process cannot nest
                with site_lock(tmp_path, "lab"):
                    pass
            raise ValueError("step failed")
    with site_lock(tmp_path, "lab"):
        pass


def test_lock_names_are_sanitised(tmp_path):
    with site_lock(tmp_path / "locks", "../../evil site"):
        pass
    [lock] = (tmp_path / "locks").iterdir()
    assert lock.name.startswith("evil_site-") and lock.suffix == ".lock"
