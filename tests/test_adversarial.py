"""Adversarial tests: bad inputs, faults, interrupts, concurrency, and secrets in every artifact
(failed and interrupted runs included). Every bug found in hardening gets a test here.

Sections: names and paths; secrets; parameters; parsing limits; the site lock; interrupts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cckit._internal.fs import safe_name
from cckit.errors import InputError
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
    from cckit.batch import plan_batch, run_batch

    sites = tmp_path / "sites"
    site_variant(shared_mock, sites / "escape.yaml", site="../ESCAPED")
    site_variant(shared_mock, sites / "absolute.yaml", site=str(tmp_path / "ABSOLUTE"))
    out = tmp_path / "out"
    for folder in plan_batch("preflight", sites, out)["output folder"]:
        assert Path(folder).parent == out.resolve()
    # an unrelated file where the escaped record would have gone, holding the password
    victim = tmp_path / "ESCAPED" / "notes.txt"
    victim.parent.mkdir()
    victim.write_text(f"do not touch {shared_mock.password}\n")
    result = run_batch("preflight", sites, out, concurrency=1, progress=False)
    assert result.ok, result.rows
    assert victim.read_text() == f"do not touch {shared_mock.password}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ESCAPED", "out", "sites"]
    assert not (tmp_path / "ABSOLUTE").exists()


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
