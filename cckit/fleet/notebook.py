"""What ``runbooks/inventory.ipynb`` calls: pick the sites (or an embedded seeded mock fleet),
sweep them, show the results through :mod:`cckit.display`."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import display
from .._internal.fs import utc_stamp
from ..results import StepResult
from .alerts import parse_notifier
from .rules import Policy
from .sweep import Sweep, run_sweep, site_files

__all__ = ["Target", "start"]

_mocks = contextlib.ExitStack()
atexit.register(_mocks.close)


@dataclass
class Target:
    """The sites a notebook sweeps and where its files go."""

    sites: list[Path]
    out: Path
    state: Path | None = None
    embedded: bool = False

    def overview(self) -> StepResult:
        what = ("an embedded fleet of VOS mock sites, seeded with one of each finding"
                if self.embedded else f"{len(self.sites)} site file(s)")
        return StepResult("sites", f"{what}; files in {self.out}",
                          [{"site file": p.name, "folder": str(p.parent)} for p in self.sites])

    def sweep(self, *, thresholds: Sequence[int] = (30, 60, 90), csr_days: int = 30,
              concurrency: int = 4, executor: str = "local",
              notify: Sequence[str] = ()) -> Sweep:
        """Read every site (nothing on any node changes) and write the files."""
        return run_sweep(self.sites, out=self.out, state=self.state,
                         policy=Policy(tuple(thresholds), csr_days), concurrency=concurrency,
                         executor=executor, notifiers=[parse_notifier(n) for n in notify])


def start(sites: Sequence[str | os.PathLike] = (), *, out: str | os.PathLike = "",
          state: str | os.PathLike = "", mock_sites: int | None = None) -> Target:
    """The sites to sweep; none: start an embedded seeded mock fleet under ``out``/mock
    (``mock_sites`` sites, default one per seeded defect and a clean one)."""
    display.use_ipython()
    runs = Path(os.environ.get("CCKIT_RUNS_DIR") or "runs")
    folder = Path(out) if out else runs / "inventory" / utc_stamp()
    folder.mkdir(parents=True, exist_ok=True)
    embedded = not sites
    if embedded:
        from ..vosmock.seed import DEFECTS
        from ..vosmock.testing import running_sites

        n = mock_sites or len(DEFECTS) + 1
        for attempt in range(3):  # a free port taken meanwhile by another program: anew
            try:
                _mocks.enter_context(running_sites(
                    folder / "mock", n, restart_seconds=0, seed="fleet",
                    site_dir=folder / "mock" / "sites", workers=1))
                break
            except OSError:
                shutil.rmtree(folder / "mock", ignore_errors=True)
                if attempt == 2:
                    raise
        sites = [folder / "mock" / "sites"]
    return Target(site_files(sites), folder, Path(state) if state else None, embedded)
