"""``make demo``: preflight and the three scenarios, headless, each on a fresh embedded mock."""

from __future__ import annotations

from pathlib import Path

from ._internal.fs import utc_stamp
from .display import frame
from .headless import RunOutcome, run_runbook
from .runfolder import RunFolder
from .scenarios import SCENARIOS

__all__ = ["run_demo"]

#: (scenario, parameters): the scenarios whose registry entry puts them in the demo
JOBS = [(s.name, dict(s.demo)) for s in SCENARIOS.values() if s.demo is not None]


def summary_table(outcomes: list[RunOutcome]):
    """One row per node and run: scenario, result, what its first web port now presents."""
    rows = []
    for o in outcomes:
        per_node = o.first_port()
        if not per_node:
            rows.append({"scenario": o.scenario, "node": "-", "result": o.status,
                         "ECDSA client gets": "", "RSA client gets": ""})
        for node, p in per_node.items():
            rows.append({"scenario": o.scenario, "node": node,
                         "result": o.status if o.ok else f"FAILED at {o.failed_step}",
                         "ECDSA client gets": p.get("ecdsa", ""),
                         "RSA client gets": p.get("rsa", "")})
    return frame(rows)


def run_demo(root: str | Path = "runs") -> int:
    stamp = utc_stamp()
    outcomes = []
    for scenario, params in JOBS:  # runs/<scenario>/<UTC time>/, as interactive runs
        folder = RunFolder.new(scenario, root, stamp).path
        print(f"\n== {scenario} (fresh mock site under {folder})")
        outcomes.append(run_runbook(scenario, folder, parameters=params))
    import pandas as pd

    with pd.option_context("display.width", 250, "display.max_colwidth", 70):
        print("\n" + summary_table(outcomes).to_string(index=False))
    print("\nAudit reports (HTML, code hidden):")
    for o in outcomes:
        print(f"  {o.scenario:12} {o.html}")
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        print(f"\n{o.scenario} FAILED at {o.failed_step}: {o.message}")
    return 1 if failed else 0
