"""The runbooks ship clean; their golden outputs live in tests/golden/ (``make golden``)."""

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNBOOKS = sorted((ROOT / "runbooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.stem)
def test_runbooks_ship_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.stem)
def test_golden_copy_has_the_runbooks_cells(path):
    golden = ROOT / "tests" / "golden" / path.name
    assert golden.exists(), f"{golden} missing: run `make golden`"
    ours = [(c.cell_type, c.source) for c in nbformat.read(path, as_version=4).cells]
    theirs = [(c.cell_type, c.source) for c in nbformat.read(golden, as_version=4).cells]
    assert ours == theirs, f"{golden.name} is stale: run `make golden` and review the diff"
