"""What the notebook costs: a headless runbook vs papermill on an empty notebook plus the same
procedure as a plain Python script, against fresh VOS mocks. Run on demand:

    .venv/bin/python benchmarks/bench_runbook.py [--repeat 3]

Prints the wall times and the ratio measured in this one run (these machines are noisy:
compare ratios, not seconds).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
import papermill

from cckit.ca import get_adapter
from cckit.headless import run_runbook
from cckit.procedures import SiteSession
from cckit.procedures.ca_signed import CaSigned
from cckit.runbook import Runbook
from cckit.runfolder import RunFolder
from cckit.sites import load_site
from cckit.vosmock.testing import running_site


def headless(tmp: Path) -> float:
    with running_site(tmp / "mock", restart_seconds=0) as m:
        t0 = time.perf_counter()
        outcome = run_runbook("ca_signed", tmp / "run", site_file=m.site_file, progress=False)
        elapsed = time.perf_counter() - t0
    assert outcome.ok, outcome.message
    return elapsed


def empty_notebook(tmp: Path) -> float:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("pass")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    src = tmp / "empty.ipynb"
    nbformat.write(nb, src)
    t0 = time.perf_counter()
    papermill.execute_notebook(str(src), str(tmp / "empty.out.ipynb"), kernel_name="python3",
                               progress_bar=False)
    return time.perf_counter() - t0


def script(tmp: Path) -> float:
    with running_site(tmp / "mock", restart_seconds=0) as m:
        t0 = time.perf_counter()
        site = load_site(m.site_file)
        with SiteSession(site, workdir=tmp / "run") as session:
            rb = Runbook("ca_signed", site, session, RunFolder(tmp / "run"), apply=True)
            before = rb.presented()
            proc = CaSigned(session, get_adapter("lab", directory=tmp / "run" / "lab-ca"))
            proc.plan()
            results = proc.run_all()
            rb.compare(before, rb.presented())
        elapsed = time.perf_counter() - t0
    assert results[-1].ok
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    a, e, s = [], [], []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            for sub in ("a", "e", "s"):
                (d / sub).mkdir()
            a.append(headless(d / "a"))
            e.append(empty_notebook(d / "e"))
            s.append(script(d / "s"))
        print(f"round {i + 1}: headless runbook {a[-1]:.2f} s, empty notebook {e[-1]:.2f} s, "
              f"plain script {s[-1]:.2f} s")
    ma, me, ms = (statistics.median(x) for x in (a, e, s))
    print(f"\nmedian of {args.repeat}: headless ca_signed runbook {ma:.2f} s; "
          f"papermill empty notebook {me:.2f} s + plain script {ms:.2f} s = {me + ms:.2f} s")
    print(f"ratio runbook / (empty notebook + script) = {ma / (me + ms):.2f}")


if __name__ == "__main__":
    main()
