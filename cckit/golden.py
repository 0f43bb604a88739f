"""Regenerate the runbooks' golden outputs against fresh embedded mocks: ``make golden``.

Each runbook in ``runbooks/`` (which ship clean, without outputs) is executed with its
default parameters (the embedded mock), with the run's artifacts in a temporary folder, and
saved with its outputs as ``tests/golden/<name>.ipynb``. nbval then checks every later run of
those copies against them (``make test``), with ``runbooks/sanitize.cfg`` for what varies;
``tests/test_golden.py`` checks that each copy's cells are still the runbook's.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from .scenarios import FLEET_RUNBOOK, SCENARIOS, runbooks_dir

#: where the golden copies live (a checkout only: they are not part of the package)
GOLDEN = Path(__file__).resolve().parent.parent / "tests" / "golden"


def regenerate(names: list[str] | None = None, target: Path = GOLDEN) -> int:
    import nbformat
    from nbclient import NotebookClient

    folder = runbooks_dir()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cckit-golden-") as tmp:
        os.environ["CCKIT_RUNS_DIR"] = str(Path(tmp) / "runs")
        for name in names or (*SCENARIOS, FLEET_RUNBOOK):
            path = folder / f"{name}.ipynb"
            nb = nbformat.read(str(path), as_version=4)
            client = NotebookClient(nb, kernel_name="python3", timeout=600,
                                    resources={"metadata": {"path": str(folder)}})
            client.execute()
            for cell in nb.cells:  # keep the diff to what matters
                cell.metadata.pop("execution", None)
            nbformat.write(nb, str(target / path.name))
            print(f"regenerated {target / path.name} from {path}")
    return 0


if __name__ == "__main__":
    sys.exit(regenerate(sys.argv[1:] or None))
