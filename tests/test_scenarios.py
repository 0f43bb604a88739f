"""The scenario registry (cckit/scenarios.py) is the one place a scenario is declared.

Adding a scenario is its registry entry, its procedure class, its notebook and that
notebook's golden copy (docs/architecture.md, "Where things go"); everything else reads the
registry. These tests hold both halves: every entry has what it needs, and nothing else in
cckit names a scenario by string.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from cckit import probe, scenarios
from cckit.errors import InputError
from cckit.procedures.base import WAITS, Procedure
from cckit.scenarios import SCENARIOS

ROOT = Path(__file__).resolve().parent.parent
ALL = list(SCENARIOS.values())


def test_every_notebook_is_registered_and_every_scenario_has_its_files():
    shipped = {p.stem for p in (ROOT / "runbooks").glob("*.ipynb")}
    assert shipped == {*SCENARIOS, scenarios.FLEET_RUNBOOK}
    for name in shipped:
        assert (ROOT / "tests" / "golden" / f"{name}.ipynb").is_file(), name


@pytest.mark.parametrize("sc", ALL, ids=lambda s: s.name)
def test_each_entry_agrees_with_its_procedure_and_notebook(sc):
    cls = sc.procedure_class()
    assert issubclass(cls, Procedure) and callable(cls.plan)
    source = "\n".join("".join(c["source"]) for c in json.loads(sc.notebook.read_text())["cells"])
    assert cls.__name__ in source, f"{sc.notebook.name} does not build {cls.__name__}"
    params = sc.parameters()
    assert ("confirm" in params) == sc.takes_confirm
    if sc.uses_ca:
        assert {"ca", "ca_options"} <= set(params)
    assert not (sc.read_only and sc.takes_confirm)
    assert set(sc.advice or {}) <= set(params)
    assert set(sc.demo or {}) <= set(params)
    assert sc.clients and set(sc.clients) <= set(probe.CLIENTS)
    # a parameter for each bound of a wait its procedure keeps, with the library's default
    assert set(params) & set(WAITS) == set(cls.waits)
    for name in cls.waits:
        assert float(params[name]["default"]) == WAITS[name], name


def test_one_error_for_an_unknown_scenario():
    with pytest.raises(InputError, match=r"unknown scenario 'nope'(.|\n)*use one of preflight"):
        scenarios.get("nope")
    with pytest.raises(InputError, match="unknown scenario"):
        scenarios.runbook_path("nope")


def test_the_cli_the_demo_and_the_advice_read_the_registry():
    from cckit import demo
    from cckit.cli import build_parser
    from cckit.procedures.preflight import Advice

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for command in ("run", "batch"):
        [scenario] = [a for a in sub.choices[command]._actions if a.dest == "scenario"]
        assert list(scenario.choices) == list(SCENARIOS)
    assert [name for name, _ in demo.JOBS] == [s.name for s in ALL if s.demo is not None]
    for sc in ALL:
        advice = Advice(sc.name, ("why",)).with_next("site.yaml", "east")
        if sc.advice is None:
            assert not advice.command
            continue
        assert advice.command.startswith(f"cckit run {sc.name} --site site.yaml")
        assert ("-p confirm east" in advice.command) == sc.takes_confirm
        for k, v in sc.advice.items():
            assert f"-p {k} {v}" in advice.command


def test_fleet_findings_name_the_scenario_that_renews_the_unit():
    from cckit.topology import ECDSA_UNIT, RSA_UNIT

    assert scenarios.renewing(ECDSA_UNIT) is scenarios.CA_SIGNED
    assert scenarios.renewing(RSA_UNIT) is scenarios.RENEW_TOMCAT
    assert scenarios.renewing("tomcat-trust") is None


#: a CertInfo field and status.json key; ``cckit probe --json``'s key for the RSA-only
#: client (issue 23): not the scenarios of those names
FIELD_NAMES = {"self_signed", "rsa_only"}


def _strings(path: Path):
    """Every string constant of a module except docstrings (prose about the module)."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)}
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
            yield n.lineno, n.value


def test_nothing_else_in_cckit_names_a_scenario_by_string():
    word = re.compile(r"(?<![\w-])(" + "|".join(SCENARIOS) + r")(?![\w-])")
    found = []
    for path in sorted((ROOT / "cckit").rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel == Path("cckit/scenarios.py") or "vosmock" in rel.parts:
            continue  # the registry itself; the mock imports nothing from the client
        for line, text in _strings(path):
            if text in FIELD_NAMES:
                continue
            found += [f"{rel}:{line}: {m.group(1)} in {text[:60]!r}" for m in word.finditer(text)]
    assert not found, "name scenarios through cckit.scenarios:\n" + "\n".join(found)


def test_architecture_says_what_adding_a_scenario_touches():
    text = (ROOT / "docs" / "architecture.md").read_text()
    entry = text[text.index("**A new scenario**"):].split("\n- **")[0]
    for needed in ("cckit/scenarios.py", "procedures/", "runbooks/<name>.ipynb",
                   "tests/golden/<name>.ipynb"):
        assert needed in entry, needed
