"""The project's own files agree with each other (conda is not on these machines)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
    assert ci.strip().splitlines()[-1] == "make test"
