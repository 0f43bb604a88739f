"""The project's own files agree with each other (conda is not on these machines)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_environment_yml_agrees_with_pyproject():
    project = pyproject()
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python"))
    version = python.split("=", 1)[1]
    assert version in SpecifierSet(project["requires-python"]) or \
        f"{version}.0" in SpecifierSet(project["requires-python"])
    assert "pip" in deps
    (pip_section,) = [d["pip"] for d in deps if isinstance(d, dict)]
    (editable,) = pip_section
    m = re.fullmatch(r"-e \.\[([a-z,]+)\]", editable)
    assert m, "environment.yml must install this repo editable with extras: -e .[...]"
    extras = set(m.group(1).split(","))
    assert extras <= set(project["optional-dependencies"]), "unknown extra in environment.yml"
    assert {"test", "lab"} <= extras
    # every conda package other than python/pip must be declared in pyproject too
    declared = {Requirement(r).name.lower() for r in project["dependencies"]}
    for group in project["optional-dependencies"].values():
        declared |= {Requirement(r).name.lower() for r in group}
    for d in deps:
        if isinstance(d, str) and not d.startswith(("python", "pip")):
            name = re.split(r"[<>=! ]", d, maxsplit=1)[0].lower()
            assert name in declared, f"{name} is in environment.yml but not in pyproject.toml"


def test_makefile_installs_the_extras_the_suite_needs():
    mk = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -e '.[test,lab,keyring]'" in mk
    assert "test: setup" in mk


def test_readme_names_the_ci_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test || suite=$?" in ci.splitlines()


def _source_copy(dest: Path) -> Path:
    """The repository as a fresh clone has it: no venv, build dirs or run records, so a stale
    ``build/`` cannot hide a packaging break."""
    junk = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "runs",
                                  "mock-state", "__pycache__", ".*_cache", ".ipynb_checkpoints")
    shutil.copytree(ROOT, dest, ignore=junk)
    return dest


@pytest.mark.slow
def test_the_wheel_ships_every_runbook(tmp_path):
    """sdist, then the wheel from the sdist (as ``python -m build`` does), offline: every
    ``runbooks/*.ipynb`` is in the wheel as ``cckit/_runbooks/``, byte for byte, and an
    install of that wheel finds them there."""
    src = _source_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                            str(dist), str(src)], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    notebooks = sorted((ROOT / "runbooks").glob("*.ipynb"))
    assert notebooks

    (sdist,) = dist.glob("cckit-*.tar.gz")
    with tarfile.open(sdist) as tar:
        in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert {f"runbooks/{nb.name}" for nb in notebooks} <= in_sdist
    assert {"setup.py", "MANIFEST.in"} <= in_sdist

    (wheel,) = dist.glob("cckit-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for nb in notebooks:
            assert zf.read(f"cckit/_runbooks/{nb.name}") == nb.read_bytes(), nb.name
    assert {n.split("/", 1)[0] for n in names} == {"cckit", wheel.name.split("-py")[0]
                                                   + ".dist-info"}

    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-index", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import cckit.scenarios as s; "
             "assert s.__file__.startswith(sys.argv[1]), s.__file__; "
             "print(s.runbook_path('preflight'))")
    env = {k: v for k, v in os.environ.items() if k != "CCKIT_RUNBOOKS"}
    found = subprocess.run([sys.executable, "-c", probe, str(site)], cwd=tmp_path, env=env,
                           check=True, capture_output=True, text=True).stdout.strip()
    assert Path(found) == site / "cckit" / "_runbooks" / "preflight.ipynb"


def test_runbooks_dir_prefers_the_env_then_the_checkout(monkeypatch, tmp_path):
    from cckit.scenarios import runbooks_dir

    monkeypatch.delenv("CCKIT_RUNBOOKS", raising=False)
    assert runbooks_dir() == ROOT / "runbooks"  # a checkout: edits to a notebook count
    monkeypatch.setenv("CCKIT_RUNBOOKS", str(tmp_path))
    assert runbooks_dir() == tmp_path


def test_ci_runs_the_wheel_check_beside_the_suite_and_fails_if_either_fails(tmp_path):
    """.ci/run with stand-ins for both: it waits for both, shows both outputs, and exits
    non-zero when either failed."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert os.access(ROOT / ".ci" / "wheel-check", os.X_OK)
    for suite, wheel in [(0, 0), (1, 0), (0, 3)]:
        root = tmp_path / f"{suite}{wheel}"
        (root / ".ci").mkdir(parents=True)
        (root / ".ci" / "run").write_text(ci)
        (root / ".ci" / "wheel-check").write_text(
            f"#!/bin/sh\necho 'wheel-check: building'\necho wheel-said\nexit {wheel}\n")
        (root / ".ci" / "wheel-check").chmod(0o755)
        (root / "Makefile").write_text(f"test:\n\t@echo suite-said; exit {suite}\n")
        stub = root / "bin"
        stub.mkdir()
        for tool in ("chromium", "certutil", "pebble", "pebble-challtestsrv"):
            (stub / tool).write_text("#!/bin/sh\n")
            (stub / tool).chmod(0o755)
        r = subprocess.run(["bash", str(root / ".ci" / "run")], capture_output=True, text=True,
                           env={**os.environ, "PATH": f"{stub}:{os.environ['PATH']}"},
                           timeout=60)
        assert "suite-said" in r.stdout and "wheel-said" in r.stdout, r.stdout + r.stderr
        assert (r.returncode == 0) == (suite == wheel == 0), (suite, wheel, r.returncode)
