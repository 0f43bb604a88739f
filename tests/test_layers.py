"""No module of cckit imports one above it (docs/architecture.md): between cckit's modules and
packages the imports, late ones inside functions included, form no circle; records never
render themselves; the fleet sweep does not borrow from the batch; the mock imports nothing
from the client."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CCKIT = ROOT / "cckit"


def unit(module: str) -> str:
    """A module's place in the picture: its package below cckit, else itself."""
    parts = module.split(".")
    return ".".join(parts[:2])


def is_module(name: str) -> bool:
    """``name`` is a module or package of cckit (not a name imported from one)."""
    path = CCKIT.parent / name.replace(".", "/")
    return name.startswith("cckit.") and (path.with_suffix(".py").is_file() or path.is_dir())


def imports() -> dict[str, set[str]]:
    """cckit unit -> the cckit units it imports (every import statement, at any depth)."""
    out: dict[str, set[str]] = {}
    for path in CCKIT.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        package = module if rel.name == "__init__" else module.rsplit(".", 1)[0]
        found = out.setdefault(unit(module), set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    target = node.module or ""
                names = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                if is_module(name) and unit(name) not in (unit(module), "cckit"):
                    found.add(unit(name))
    return out


def test_no_module_imports_upward():
    graph = imports()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(u: str) -> None:
        state[u] = 1
        path.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == 1:
                raise AssertionError("a circle of imports: "
                                     + " -> ".join([*path[path.index(v):], v]))
            if v not in state:
                visit(v)
        path.pop()
        state[u] = 2

    for u in sorted(graph):
        if u not in state:
            visit(u)


def test_the_boundaries_the_architecture_draws():
    graph = imports()
    assert "cckit.display" in graph["cckit.runfolder"]  # (the graph sees late imports too)
    assert "cckit.display" not in graph["cckit.results"]  # records don't render themselves
    assert "cckit.batch" not in graph["cckit.fleet"]  # the fleet stands beside the runbooks
    assert graph["cckit.scenarios"] <= {"cckit.errors", "cckit.topology"}
    assert graph["cckit.vosmock"] == set()  # the mock imports nothing from the client
    for above in ("cckit.runbook", "cckit.headless", "cckit.batch", "cckit.cli",
                  "cckit.demo"):
        assert above not in graph["cckit.procedures"] | graph["cckit.fleet"], above


def test_status_json_has_one_writer():
    """Only the run folder names the file (docs/status.md): nothing else can write it."""
    named = sorted(str(path.relative_to(ROOT)) for path in CCKIT.rglob("*.py")
                   if any(isinstance(n, ast.Constant) and n.value == "status.json"
                          for n in ast.walk(ast.parse(path.read_text()))))
    assert named == ["cckit/runfolder.py"]
