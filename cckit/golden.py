"""Regenerate the runbooks' golden outputs against fresh embedded mocks: ``make golden``.

Each notebook is executed in place (its default parameters: the embedded mock), with the
run's artifacts in a temporary folder, and saved with its outputs. nbval then checks every
later run against them (``make test``), with ``runbooks/sanitize.cfg`` for what varies.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from .headless import runbooks_dir
from .procedures import SCENARIOS


def regenerate(names: list[str] | None = None) -> int:
    import nbformat
    from nbclient import NotebookClient

    folder = runbooks_dir()
    with tempfile.TemporaryDirectory(prefix="cckit-golden-") as tmp:
        os.environ["CCKIT_RUNS_DIR"] = str(Path(tmp) / "runs")
        for name in names or (*SCENARIOS, "inventory"):
            path = folder / f"{name}.ipynb"
            nb = nbformat.read(str(path), as_version=4)
            client = NotebookClient(nb, kernel_name="python3", timeout=600,
                                    resources={"metadata": {"path": str(folder)}})
            client.execute()
            for cell in nb.cells:  # keep the diff to what matters
                cell.metadata.pop("execution", None)
            nbformat.write(nb, str(path))
            print(f"regenerated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(regenerate(sys.argv[1:] or None))
