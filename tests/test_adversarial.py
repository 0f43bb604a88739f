"""Adversarial tests: bad inputs, faults, interrupts, concurrency, and secrets in every artifact
(failed and interrupted runs included). Every bug found in hardening gets a test here.

Sections: names and paths; secrets; parameters; parsing limits; the site lock; interrupts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cckit._internal.fs import safe_name
from cckit.errors import InputError
from cckit.vosmock import journal
from cckit.vosmock.testing import running_site

from .test_runbooks import assert_no_secret

pytestmark = pytest.mark.timeout(300)


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def shared_mock(tmp_path_factory):
    """One mock site for the tests that only read from it (preflight, plan-only)."""
    with running_site(tmp_path_factory.mktemp("shared") / "mock", restart_seconds=0.1) as m:
        yield m


@pytest.fixture
def mock(tmp_path):
    """A fresh mock site for a test that changes it."""
    with running_site(tmp_path / "mock", restart_seconds=0.1) as m:
        yield m


def site_variant(mock, dest: Path, **changes) -> Path:
    """A copy of ``mock``'s site file at ``dest`` with top-level keys replaced."""
    data = yaml.safe_load(Path(mock.site_file).read_text())
    data["known_hosts"] = str(mock.known_hosts)
    data.update(changes)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest


def cckit(*args: str, env: dict | None = None, timeout: float = 300
          ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cckit", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def files_under(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --------------------------------------------------------------------------- names and paths

HOSTILE_NAMES = ["..", ".", "../ESCAPED", "../../etc/passwd", "/etc/passwd", "a/b", "a\\b",
                 "line\nbreak", "tab\there", "nul\x00byte", "esc\x1b[31m", "-rf", ".hidden",
                 "x" * 300, "ü" * 100, "a b", "CON", "a..b"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_safe_name_stays_in_its_folder(name, tmp_path):
    safe = safe_name(name)
    assert 0 < len(safe) <= 64
    assert "/" not in safe and "\\" not in safe and ".." not in safe
    assert not safe.startswith((".", "-"))
    assert all(32 < ord(c) < 127 for c in safe)
    (tmp_path / safe).mkdir()  # a name the file system takes, directly under the folder
    assert (tmp_path / safe).resolve().parent == tmp_path.resolve()


def test_safe_name_keeps_plain_names_and_never_merges_two():
    for plain in ("uccx-pub", "lab-east", "uccx1.cc.example.com", "site_001"):
        assert safe_name(plain) == plain
    names = [*HOSTILE_NAMES, "a_b", "a b", "a/b ", "x" * 299, "x" * 301]
    assert len({safe_name(n) for n in names}) == len(set(names))
    with pytest.raises(InputError):
        safe_name("  ")


def test_batch_site_named_like_a_path_stays_inside_out(shared_mock, tmp_path):
    import tempfile

    from cckit.batch import plan_batch, run_batch

    absolute = Path(tempfile.mkdtemp(prefix="cckit-")) / "ABSOLUTE"  # short: a valid name
    out = tmp_path / "out"
    # an unrelated file where the escaped record would have gone, holding the password
    victim = tmp_path / "ESCAPED" / "notes.txt"
    victim.parent.mkdir()
    victim.write_text(f"do not touch {shared_mock.password}\n")
    # one batch each: both files describe the same site, which a batch runs only once
    for name, hostile in (("escape", "../ESCAPED"), ("absolute", str(absolute))):
        sites = tmp_path / "sites" / name
        site_variant(shared_mock, sites / f"{name}.yaml", site=hostile)
        [folder] = plan_batch("preflight", sites, out)["output folder"]
        assert Path(folder).parent == out.resolve()
        result = run_batch("preflight", sites, out, concurrency=1, progress=False)
        assert result.ok, result.rows
    assert victim.read_text() == f"do not touch {shared_mock.password}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ESCAPED", "out", "sites"]
    assert len([p for p in out.iterdir() if p.is_dir()]) == 2
    assert not absolute.exists()
    absolute.parent.rmdir()


def test_scrub_touches_only_what_the_run_wrote(shared_mock, tmp_path):
    from cckit.headless import run_runbook

    out = tmp_path / "out"
    out.mkdir()
    unrelated = out / "my-notes.txt"
    unrelated.write_text(f"password is {shared_mock.password}\n")
    outcome = run_runbook("preflight", out, site_file=shared_mock.site_file, progress=False)
    assert outcome.ok, outcome.message
    assert unrelated.read_text() == f"password is {shared_mock.password}\n"
    assert assert_no_secret(out, [shared_mock.password], skip=("my-notes.txt",)) >= 3


# --------------------------------------------------------------------------- secrets


def test_password_pasted_as_the_variable_name_leaks_nowhere(shared_mock, tmp_path):
    """``password: {env: <the password>}``: the name is never echoed, in any artifact."""
    pw = shared_mock.password
    site = site_variant(shared_mock, tmp_path / "site.yaml", credentials={
        "os-admin": {"username": "admin", "password": {"env": pw}},
        "sftp": {"username": "copadmin", "password": {"env": f"{pw}-sftp"}}})
    out = tmp_path / "out"
    r = cckit("run", "preflight", "--site", str(site), "--out", str(out), "-q")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "environment variable named in credentials.os-admin.password is not set" \
        in r.stderr
    assert pw not in r.stdout + r.stderr and "Traceback" not in r.stderr
    assert assert_no_secret(out, [pw]) >= 3  # notebook, HTML, status.json
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "failed" and "named in credentials.os-admin" in status["message"]


def test_secret_reference_targets_never_print(tmp_path):
    from cckit import credentials

    for spec in ({"env": "Hunter2-pasted"}, {"file": "Hunter2-pasted"},
                 {"keyring": {"service": "Hunter2-pasted", "username": "Hunter2-pasted"}}):
        ref, problems = credentials.parse_secret_ref(spec, "credentials.x.password", tmp_path)
        assert not problems
        assert "Hunter2" not in repr(ref) and "Hunter2" not in ref.describe()
        with pytest.raises(credentials.CredentialError) as e:
            credentials.resolve(ref)
        assert "Hunter2" not in str(e.value) and "Hunter2" not in repr(e.value)
        assert "named in credentials.x.password" in str(e.value)
    _, problems = credentials.parse_secret_ref({"Hunter2-pasted": 1}, "credentials.x", None)
    assert problems and "Hunter2" not in problems[0]


@pytest.mark.parametrize("value", [
    "{password: Hunter2-nested}", "{outbox: x, extra: [{token: Hunter2-nested}]}",
    "{site: {api_key: Hunter2-nested}}"])
def test_nested_secret_parameters_are_refused_unseen(value, tmp_path):
    out = tmp_path / "x"
    r = cckit("run", "ca_signed", "--out", str(out), "-p", "ca_options", value)
    assert r.returncode == 1
    assert "passwords are never parameters" in r.stderr
    assert "Hunter2" not in r.stderr + r.stdout and "Traceback" not in r.stderr
    assert not out.exists()  # refused before anything was written


def test_unknown_ca_option_is_one_line_not_a_traceback(tmp_path):
    r = cckit("run", "ca_signed", "--out", str(tmp_path / "x"), "-p", "ca_options",
              "{directry: ca}")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "unknown option directry (its options: directory," in r.stderr
    assert not (tmp_path / "x").exists()


def test_redaction_masks_whole_words_and_says_so():
    from cckit.credentials import MASK, Secret, redact

    Secret("wrong")
    Secret("pass")
    msg = "login as 'admin' refused (wrong password, or account locked)"
    # a short secret is masked only as a whole word, and the mask says what happened
    assert redact("the passwords are wrong") == f"the passwords are {MASK}"
    assert "password" in redact(msg) and MASK == "[secret masked]"
    assert redact("wrongful passage") == "wrongful passage"
    Secret("Tr0ub4dor&3-long")
    assert redact("x=Tr0ub4dor&3-longer") == f"x={MASK}er"  # long ones: anywhere
    # as a notebook (JSON) or the HTML report would hold it
    assert redact(json.dumps("a\"Tr0ub4dor&3-long")) == json.dumps(f"a\"{MASK}")
    assert redact("Tr0ub4dor&amp;3-long") == MASK


def test_too_short_secret_is_refused_at_resolve(tmp_path, monkeypatch):
    from cckit import credentials

    monkeypatch.setenv("CCKIT_ADV_SHORT", "abc")
    ref, _ = credentials.parse_secret_ref({"env": "CCKIT_ADV_SHORT"}, "credentials.x.password")
    with pytest.raises(credentials.CredentialError, match="shorter than 4 characters") as e:
        credentials.resolve(ref)
    assert "abc" not in str(e.value)


def test_one_secret_name_rule_for_logs_and_parameters():
    from cckit import audit, credentials, headless

    assert not hasattr(audit, "SECRET_KEY") and not hasattr(headless, "_SECRETISH")
    for name in ("password", "Passwd", "api-key", "private_key", "token", "credential"):
        assert credentials.looks_secret(name)
    for name in ("site_file", "nodes", "key_size", "ca_options", "bundle_dir", "renew"):
        assert not credentials.looks_secret(name)


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(("args", "expected"), [
    (["-p", "nodes", "uccx-pub"], "bad parameter nodes: expected a list (e.g. -p nodes "),
    (["-p", "apply", "maybe"], "bad parameter apply: expected true or false"),
    (["-p", "key_size", "[384]"], "bad parameter key_size: expected a whole number"),
    (["-p", "ca_options", "{when: 2026-01-01, n: {1: x}}"], "ca_options.n: a key is a whole"),
    (["-p", "nodes", "&a [x]"], "-p nodes: the value is not plain YAML (anchors and aliases"),
    (["-p", "colour", "blue"], "colour: not a parameter of ca_signed (known: apply, artifacts, "
     "ca, ca_options, change, confirm, fresh, hash_algorithm, in_service_timeout, key_size, "
     "nodes, renew, replication_timeout, site_file)"),
])
def test_bad_parameters_are_one_line_errors(args, expected, tmp_path):
    # --plan checks the parameters and touches nothing
    r = cckit("batch", "ca_signed", "--sites", str(tmp_path / "none"), "--out",
              str(tmp_path / "out"), "--plan", *args)
    assert r.returncode == 1, r.stdout + r.stderr
    assert expected in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


def test_yaml_dates_stay_text_and_other_objects_are_refused():
    import datetime as dt

    from cckit.cli import _parse_params
    from cckit.headless import check_parameters

    assert _parse_params([["ca_options", "{valid_from: 2026-01-01}"]]) == {
        "ca_options": {"valid_from": "2026-01-01"}}
    with pytest.raises(InputError, match=r"ca_options\.when: a date is not a parameter value"):
        check_parameters("ca_signed", {"ca_options": {"when": dt.date(2026, 1, 1)}})


# --------------------------------------------------------------------------- parsing limits


BILLION_LAUGHS = """site: laughs
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
nodes: *i
"""


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("text", "expected"), [
    (BILLION_LAUGHS, "anchors and aliases (&name, *name) are not allowed"),
    ("site: deep\nnodes: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 50 levels"),
    ("site: big\n" + "# padding\n" * 120_000, "larger than 1024 KiB"),
])
def test_hostile_site_files_are_refused_quickly(text, expected, tmp_path):
    f = tmp_path / "site.yaml"
    f.write_text(text)
    r = cckit("site", "check", str(f), timeout=15)
    assert r.returncode == 1 and expected in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr) < 2000


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("blob", "expected"), [
    (b"-----BEGIN CERTIFICATE-----\n" * 10_000, "truncated: BEGIN without a matching END"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" * 1001,
     "more than 1000 PEM blocks"),
    (b"-----BEGIN CERTIFICATE-----\n" + b"A" * (5 << 20), "larger than 4 MiB"),
])
def test_hostile_certificate_files_are_refused_quickly(blob, expected, tmp_path):
    import time

    f = tmp_path / "cert.pem"
    f.write_bytes(blob)
    started = time.monotonic()
    r = cckit("cert", "check", str(f), "--csr", str(f), timeout=15)
    assert r.returncode == 1 and expected in r.stderr, r.stderr
    assert time.monotonic() - started < 10 and "Traceback" not in r.stderr


# --------------------------------------------------------------------------- site files


def _site_with(mutate) -> dict:
    import copy

    from .test_sites import GOOD

    data = copy.deepcopy(GOOD)
    mutate(data)
    return data


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d.update(site="x" * 300), "site file.site: longer than 64 characters"),
    (lambda d: d.update(site="east\nwest"), "site file.site: contains a line break"),
    (lambda d: d["nodes"][0].update(name="pub\x1b[2J"),
     "nodes[0] (unprintable name).name: contains a"),
    (lambda d: d["nodes"][1].update(host="uccx2\r\nshow"), "nodes[1] (sub).host: contains a"),
    (lambda d: d["nodes"][2].update(name="sm\u2028x"), "nodes[2] (unprintable name).name:"),
    (lambda d: d["nodes"][1].update(services=["Cisco Tomcat\nutils system restart"]),
     "nodes[1] (sub).services: expected a list of service names (one line each)"),
    (lambda d: d["credentials"]["os-admin"].update(username="admin\n"),
     "credentials.os-admin.username: contains a line break"),
])
def test_site_check_refuses_control_characters_and_long_names(mutate, expected, tmp_path):
    f = tmp_path / "site.yaml"
    f.write_text(yaml.safe_dump(_site_with(mutate)))
    r = cckit("site", "check", str(f))
    assert r.returncode == 1 and expected in r.stderr, r.stderr
    # every problem is one line: nothing from the value leaks onto a line of its own
    assert all(line.startswith(("cckit: error:", "  - ", "  What to do:"))
               for line in r.stderr.splitlines()), r.stderr


# --------------------------------------------------------------------------- messages


def test_preflight_says_why_each_node_is_unreachable(shared_mock, tmp_path):
    pwfile = tmp_path / "pw"
    pwfile.write_text(shared_mock.password + "\n")
    pwfile.chmod(0o644)
    site = site_variant(shared_mock, tmp_path / "site.yaml", credentials={
        "os-admin": {"username": "admin", "password": {"file": str(pwfile)}},
        "sftp": {"username": "copadmin", "password": {"file": str(pwfile)}}})
    r = cckit("run", "preflight", "--site", str(site), "--out", str(tmp_path / "out"), "-q")
    assert r.returncode == 1
    line = next(x for x in r.stderr.splitlines() if "NOT reachable" in x)
    for node in ("uccx-pub", "uccx-sub", "sm"):
        assert f"{node}: " in line
    assert line.count("readable by others (mode 0644)") == 3


def test_ssh_black_hole_says_it_timed_out_connecting(tmp_path, capfd):
    import socket

    from cckit.credentials import Secret
    from cckit.errors import ConnectError
    from cckit.sites import Node
    from cckit.vos.ssh import SSHTransport

    with socket.socket() as hole:  # accepts TCP, never says a word
        hole.bind(("127.0.0.1", 0))
        hole.listen(1)
        port = hole.getsockname()[1]
        (tmp_path / "known_hosts").write_text("")
        node = Node("pub", "uccx-publisher", "uccx1", "127.0.0.1", ssh_port=port)
        with pytest.raises(ConnectError) as e:
            SSHTransport(node, "admin", Secret("not-used-here"),
                         known_hosts=tmp_path / "known_hosts", timeout=1)
    assert f"timed out after 1s connecting to 127.0.0.1:{port}" in str(e.value)
    assert "No existing session" not in str(e.value)
    assert "Exception" not in capfd.readouterr().err  # no stray paramiko log line


# --------------------------------------------------------------------------- interrupts


def _pending_keys(session) -> dict[str, str]:
    from cckit import certs

    out = {}
    for node in session.nodes:
        with session.on(node) as t:
            csr = t.pending_csr()
        out[node.name] = certs.public_key_sha256(csr) if csr is not None else None
    return out


@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C as a kernel receives it, a KeyboardInterrupt: a process a shell started in the
    background without job control (a CI runner) inherits SIGINT ignored, and
    ``_thread.interrupt_main()`` then does nothing."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_mid_command_then_rerun_reuses_every_pending_csr(mock, tmp_path, ctrl_c_raises):
    """Ctrl-C (a kernel interrupt) in the middle of a CLI command left the SSH session with
    the rest of that command's output unread; the rerun's 'show csr list own' then read the
    stale output, saw no CSR and generated a new one over the pending CSR."""
    import _thread
    import threading

    from cckit.ca import get_adapter
    from cckit.procedures import SiteSession
    from cckit.procedures.ca_signed import CaSigned
    from cckit.sites import load_site

    ca = get_adapter("lab", directory=tmp_path / "labca")
    with SiteSession(load_site(mock.site_file), workdir=tmp_path / "run", tls_timeout=3) as s:
        CaSigned(s, ca).generate_csrs()
        pending = _pending_keys(s)
        mock.faults.set("slow_output", 1.0, node="uccx-pub")

        def said() -> list[str]:
            return [e["command"] for e in journal.read(mock.state_dir) if e["node"] == "uccx-pub"]

        heard = len(said())
        stop = threading.Event()

        def interrupt_once_received() -> None:
            # Ctrl-C once the node has the command: its lines then come one a second, so the
            # interrupt lands half-way through the output however loaded the machine is
            while not stop.wait(0.02):
                if "show cert list own" in said()[heard:]:
                    if not stop.wait(1.3):  # after its first line, before the rest
                        _thread.interrupt_main()
                    return

        watcher = threading.Thread(target=interrupt_once_received)
        watcher.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                with s.on(s.site.publisher) as t:
                    t.list_certificates("own")  # several slow lines: interrupted half-way
        finally:
            stop.set()
            watcher.join()
        mock.faults.set("slow_output", 0.0, node="uccx-pub")
        r = CaSigned(s, ca).generate_csrs()  # the rerun, in the same kernel
        assert {rec.action.value for rec in r.records} == {"reused pending CSR"}, r.records
        assert _pending_keys(s) == pending


def test_rerun_of_an_interrupted_renewal_does_not_renew_a_node_twice(mock, tmp_path):
    """A renewal (renew=True) stopped after the publisher's new certificate was imported: the
    rerun passes renew=True again, and the publisher (its CSR consumed by the import) got a
    new CSR, a second signature and a second import (with a files CA: a second trip to the
    CA) instead of being recognised as renewed by this run."""
    from cckit import certs
    from cckit.ca import get_adapter
    from cckit.errors import TransportError
    from cckit.procedures import SiteSession
    from cckit.procedures.ca_signed import CaSigned
    from cckit.sites import load_site

    ca = get_adapter("lab", directory=tmp_path / "labca")
    site = load_site(mock.site_file)
    with SiteSession(site, workdir=tmp_path / "first", tls_timeout=3) as s:
        assert CaSigned(s, ca).run_all()[-1].ok
    work = tmp_path / "renewal"
    with SiteSession(site, workdir=work, tls_timeout=3) as s:
        proc = CaSigned(s, ca, renew=True)
        for step in (proc.generate_csrs, proc.sign, proc.gate, proc.upload_trust):
            step()
        mock.faults.set("drop_import", True, node="uccx-sub")
        with pytest.raises(TransportError):
            proc.upload_identities()  # the publisher is renewed, the subscriber is not
        renewed = certs.fingerprint_sha256(proc._stored(site.publisher))
        pending = _pending_keys(s)
        assert pending["uccx-pub"] is None and pending["uccx-sub"] is not None
    with SiteSession(site, workdir=work, tls_timeout=3) as s:  # the rerun: same folder
        rerun = CaSigned(s, ca, renew=True)
        plan = rerun.plan()
        assert not [c for c in plan.commands if c.node == "uccx-pub" and c.step == "generate_csrs"]
        r = rerun.generate_csrs()
        actions = {rec.node: rec.action.value for rec in r.records}
        # the imports run on every node at once: SocialMiner finished its import while the
        # subscriber's dropped; both renewed nodes are left alone, only the subscriber resumes
        assert actions == {"uccx-pub": "already CA-signed", "uccx-sub": "reused pending CSR",
                           "sm": "already CA-signed"}
        assert _pending_keys(s) == pending
        assert rerun.run_all()[-1].ok
        assert certs.fingerprint_sha256(rerun._stored(site.publisher)) == renewed


def _start_run(mock, out: Path, *extra: str, after: str = "gate",
               site: Path | None = None) -> subprocess.Popen:
    """``cckit run ca_signed`` on ``mock`` (or ``site``; the publisher slowed down), returned
    once the status says step ``after`` is done."""
    import time

    mock.faults.set("slow_output", 0.05, node="uccx-pub")
    p = subprocess.Popen([sys.executable, "-m", "cckit", "run", "ca_signed", "--site",
                          str(site or mock.site_file), "--out", str(out), "-q",
                          "-p", "confirm", "vosmock", *extra],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    status = out / "status.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if any(s["step"] == after for s in json.loads(status.read_text())["steps"]):
                break
        except (OSError, ValueError, KeyError):
            pass
        assert p.poll() is None, p.communicate()
        time.sleep(0.05)
    time.sleep(0.3)  # into the next step
    return p


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "kernel killed"])
def test_interrupted_run_is_recorded_as_interrupted_with_its_step(how, mock, tmp_path):
    import os
    import signal

    out = tmp_path / "run"
    p = _start_run(mock, out)
    if how == "kernel killed":
        for child in _children(p.pid):
            os.kill(child, signal.SIGKILL)
    else:
        p.send_signal(getattr(signal, how))
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stdout + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cckit: "), stderr  # one line, no traceback
    assert " at step " in lines[0] and "rerun the same command" in lines[0]
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "interrupted" and status["failed_step"] not in (None, "gate")
    assert status["failed_step"] in lines[0]
    assert "DeadKernelError" not in stderr + stdout
    assert assert_no_secret(out, [mock.password, mock.sftp_password]) >= 4
    # the rerun resumes: every pending CSR is reused, the run completes
    mock.faults.set("slow_output", 0.0, node="uccx-pub")
    r = cckit("run", "ca_signed", "--site", str(mock.site_file), "--out", str(out), "-q",
              "-p", "confirm", "vosmock")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads((out / "status.json").read_text())["status"] == "complete"
    ops = [json.loads(x) for x in (out / "operations.jsonl").read_text().splitlines()]
    assert sum(o["operation"] == "generate_csr" and o["outcome"] == "ok" for o in ops) == 3
    assert assert_no_secret(out, [mock.password, mock.sftp_password]) >= 6


@pytest.mark.slow
def test_killed_run_is_recorded_as_interrupted_by_the_next(mock, tmp_path):
    out = tmp_path / "run"
    p = _start_run(mock, out)
    p.kill()  # SIGKILL: nothing of cckit runs any more; the kernel follows its parent
    p.communicate(timeout=60)
    assert json.loads((out / "status.json").read_text())["status"] == "running"
    mock.faults.set("slow_output", 0.0, node="uccx-pub")
    r = cckit("run", "ca_signed", "--site", str(mock.site_file), "--out", str(out), "-q",
              "-p", "confirm", "vosmock")
    assert r.returncode == 0, r.stdout + r.stderr
    [kept] = out.glob("status.2*.json")  # the killed run's status, kept beside its notebook
    old = json.loads(kept.read_text())
    assert old["status"] == "interrupted" and "killed after step gate" in old["message"]
    assert len(list(out.glob("ca_signed.2*.ipynb"))) == 1


def test_an_interrupt_while_the_kernel_starts_stops_the_run_before_its_first_step(
        shared_mock, tmp_path):
    """The window's end (or Ctrl-C) while the kernel is still starting: SIGINT then would
    kill the half-started kernel ("Kernel died before replying to kernel_info", a raw
    RuntimeError out of the run, no record). The run stops before its first cell instead,
    recorded interrupted, its kernel shut down cleanly."""
    import threading
    import time

    from cckit import headless

    out = tmp_path / "run"
    ended: dict = {}

    def run() -> None:
        try:
            ended["outcome"] = headless.run_runbook("preflight", out,
                                                    site_file=shared_mock.site_file,
                                                    progress=False)
        except BaseException as e:  # the test reports it
            ended["error"] = e

    t = threading.Thread(target=run)
    t.start()
    deadline = time.monotonic() + 60
    launched = None
    while launched is None and time.monotonic() < deadline and t.is_alive():
        with headless._running_lock:
            launched = next((k for k in headless._running
                             if getattr(getattr(k.km, "provisioner", None), "pid", None)), None)
        time.sleep(0.001)
    assert launched is not None and launched.cell is None, "the kernel was not caught starting"
    assert headless.interrupt_run(out)
    t.join(120)
    assert not t.is_alive()
    assert "error" not in ended, ended.get("error")
    outcome = ended["outcome"]
    assert outcome.status == "interrupted" and "kernel" not in (outcome.message or ""), outcome
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "interrupted" and not status["steps"], status
    assert "KeyboardInterrupt" not in (out / "kernel.log").read_text()
    assert outcome.html is not None and outcome.html.exists()


# --------------------------------------------------------------------------- the site lock


def test_site_identity_is_the_publisher_whatever_the_file(shared_mock, tmp_path):
    from cckit.sites import load_site

    a = load_site(site_variant(shared_mock, tmp_path / "a" / "site.yaml"))
    b = load_site(site_variant(shared_mock, tmp_path / "b" / "other-name.yaml",
                               site="renamed"))
    assert a.identity == b.identity == load_site(shared_mock.site_file).identity
    nodes = yaml.safe_load(Path(shared_mock.site_file).read_text())["nodes"]
    nodes[0]["ssh_port"] += 1
    nodes[1]["ssh_port"] += 1  # keep the endpoints unique
    c = load_site(site_variant(shared_mock, tmp_path / "c" / "site.yaml", nodes=nodes))
    assert c.identity != a.identity


def test_a_copied_site_file_is_locked_too_and_the_lock_names_its_holder(
        shared_mock, tmp_path, monkeypatch):
    import os
    import socket

    from cckit.errors import SiteLockedError
    from cckit.procedures import SiteSession
    from cckit.sites import load_site

    monkeypatch.setenv("CCKIT_LOCK_DIR", str(tmp_path / "locks"))
    first = load_site(site_variant(shared_mock, tmp_path / "a" / "site.yaml"))
    copy = load_site(site_variant(shared_mock, tmp_path / "b" / "site.yaml"))
    with SiteSession(first, workdir=tmp_path / "run-a"):
        with pytest.raises(SiteLockedError) as e:
            SiteSession(copy, workdir=tmp_path / "run-b")
    text = str(e.value)
    assert f"pid {os.getpid()} on {socket.gethostname()} since 20" in text
    assert f"run folder {tmp_path / 'run-a'}" in text
    # one per-user lock folder; nothing next to the site files
    assert [p.name for p in (tmp_path / "locks").iterdir()] == [f"site-{first.identity}.lock"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["site.yaml"]
    with SiteSession(copy, workdir=tmp_path / "run-b"):  # free again
        pass


def test_run_refused_by_the_lock_touches_no_other_runs_folder(shared_mock, tmp_path):
    from cckit.audit import site_lock
    from cckit.sites import load_site

    busy = tmp_path / "busy"  # the other run's folder, with its record so far
    busy.mkdir()
    (busy / "preflight.ipynb").write_text("{}")
    (busy / "status.json").write_text('{"status": "running"}')
    before = files_under(busy)
    copy = site_variant(shared_mock, tmp_path / "copy" / "site.yaml")
    site = load_site(shared_mock.site_file)
    with site_lock(None, site.name, key=site.identity, run=busy):
        for out in (busy, tmp_path / "mine"):
            r = cckit("run", "preflight", "--site", str(copy), "--out", str(out), "-q")
            assert r.returncode == 1, r.stdout + r.stderr
            assert "is locked by another cckit run: pid" in r.stderr
            assert f"run folder {busy}" in r.stderr and "Traceback" not in r.stderr
            assert files_under(busy) == before
            assert not (tmp_path / "mine").exists()


def test_two_runs_never_share_a_run_folder(shared_mock, tmp_path):
    from cckit.audit import folder_lock

    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    before = files_under(out)
    with folder_lock(out, site="another"):
        r = cckit("run", "preflight", "--site", str(shared_mock.site_file), "--out", str(out),
                  "-q")
    assert r.returncode == 1 and f"the run folder {out} is in use by another cckit run" \
        in r.stderr, r.stderr
    assert files_under(out) == before


@pytest.mark.slow
def test_concurrent_runs_of_copies_of_one_site(mock, tmp_path):
    a, b = (site_variant(mock, tmp_path / d / "site.yaml") for d in ("a", "b"))
    first = _start_run(mock, tmp_path / "run-a", after="plan", site=a)
    r = cckit("run", "preflight", "--site", str(b), "--out", str(tmp_path / "run-b"), "-q")
    assert r.returncode == 1 and "is locked by another cckit run" in r.stderr, r.stderr
    assert f"run folder {tmp_path / 'run-a'}" in r.stderr
    assert not (tmp_path / "run-b").exists()
    mock.faults.set("slow_output", 0.0, node="uccx-pub")
    stdout, stderr = first.communicate(timeout=180)
    assert first.returncode == 0, stdout + stderr


@pytest.mark.slow
def test_batch_sigterm_stops_new_sites_and_a_second_interrupts_the_running_one(tmp_path):
    import signal
    import time

    import pandas as pd

    from cckit.vosmock.testing import running_sites

    def status_of(site: str) -> dict:
        try:
            return json.loads((out / site / "status.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait_for(check) -> None:
        deadline = time.monotonic() + 120
        while not check():
            assert time.monotonic() < deadline, "timed out"
            assert proc.poll() is None, ("the batch ended first", *proc.communicate(),
                                         {s: status_of(s) for s in ("site-001", "site-002")})
            time.sleep(0.05)

    with running_sites(tmp_path / "mock", 3, restart_seconds=0.1,
                       site_dir=tmp_path / "sites") as sites:
        sites[1].faults.set("slow_output", 0.2, node="uccx-pub")
        out = tmp_path / "out"
        proc = subprocess.Popen(
            [sys.executable, "-m", "cckit", "batch", "preflight", "--sites",
             str(tmp_path / "sites"), "--out", str(out), "--concurrency", "1", "-q"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: bool(status_of("site-002").get("steps")))
        proc.send_signal(signal.SIGTERM)  # like Ctrl-C: site-002 goes on, nothing starts
        time.sleep(1.0)
        assert status_of("site-002")["status"] == "running"
        proc.send_signal(signal.SIGTERM)  # again: the running site stops at its step
        stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stdout + stderr
    assert "(interrupted)" in stdout and "Traceback" not in stderr
    summary = pd.read_csv(out / "summary.csv")
    status = dict(zip(summary["site"], summary["status"], strict=True))
    assert status == {"site-001": "ok", "site-002": "interrupted", "site-003": "cancelled"}
    assert status_of("site-002")["status"] == "interrupted"
    assert status_of("site-002")["failed_step"] in ("reachability", "certificates")


def test_out_that_is_a_file_is_an_error_not_a_traceback(tmp_path):
    f = tmp_path / "afile"
    f.write_text("mine")
    for args in (("run", "preflight"), ("batch", "preflight", "--sites", str(tmp_path))):
        r = cckit(*args, "--out", str(f), "-q")
        assert r.returncode == 1 and "is a file, not a folder" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and f.read_text() == "mine"


def test_batch_summary_csv_does_not_carry_formulas(shared_mock, tmp_path):
    import csv

    from cckit.batch import run_batch

    sites = tmp_path / "sites"
    site_variant(shared_mock, sites / "evil.yaml", site='=HYPERLINK("http://x","y")')
    result = run_batch("preflight", sites, tmp_path / "out", progress=False)
    assert result.ok, result.rows
    with (tmp_path / "out" / "summary.csv").open() as f:
        [row] = list(csv.DictReader(f))
    assert row["site"] == '\'=HYPERLINK("http://x","y")'


def test_one_lock_folder_whatever_the_session_sets(tmp_path, monkeypatch):
    from cckit.audit import default_lock_dir

    monkeypatch.delenv("CCKIT_LOCK_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    without = default_lock_dir()
    (tmp_path / "run").mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))  # a login shell has it
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    assert default_lock_dir() == without == tmp_path / ".cache" / "cckit" / "locks"
    monkeypatch.setenv("CCKIT_LOCK_DIR", str(tmp_path / "mine"))
    assert default_lock_dir() == tmp_path / "mine"


def test_batch_runs_a_site_once_even_from_two_files(shared_mock, tmp_path):
    from cckit.batch import plan_batch, run_batch

    sites = tmp_path / "sites"
    site_variant(shared_mock, sites / "east.yaml", site="east")
    site_variant(shared_mock, sites / "east-copy.yaml", site="east-again")
    plan = plan_batch("preflight", sites, tmp_path / "out")
    runs = dict(zip(plan["site"], plan["runs"], strict=True))
    assert runs["east-again"] == "preflight.ipynb"  # the first file, in name order
    assert runs["east"].startswith("no: the same site as east-copy.yaml")
    result = run_batch("preflight", sites, tmp_path / "out", concurrency=2, progress=False)
    status = {r["site"]: r["status"] for r in result.rows}
    assert status == {"east-again": "ok", "east": "not run"}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["fifo", "big", "device"])
def test_a_password_file_that_is_not_one_is_refused_quickly(kind, tmp_path):
    import os

    from cckit import credentials

    path = {"fifo": tmp_path / "pw", "big": tmp_path / "pw", "device": Path("/dev/zero")}[kind]
    if kind == "fifo":
        os.mkfifo(path, 0o600)  # reading it would block for ever
    elif kind == "big":
        path.write_bytes(b"x" * (1 << 20))
        path.chmod(0o600)
    ref, _ = credentials.parse_secret_ref({"file": str(path)}, "credentials.x.password")
    with pytest.raises(credentials.CredentialError,
                       match=r"named in credentials\.x\.password is not a password file"):
        credentials.resolve(ref)
