"""``make demo``: preflight and the three scenarios, headless, each on a fresh embedded mock."""

from __future__ import annotations

from pathlib import Path

from ._internal.fs import utc_stamp
from .headless import RunOutcome, run_runbook

__all__ = ["run_demo"]

JOBS = [
    ("preflight", {}),
    ("ca_signed", {}),
    ("self_signed", {}),
    ("rsa_only", {"action": "disable"}),
]


def summary_table(outcomes: list[RunOutcome]):
    """One row per node and run: scenario, result, what its first web port now presents."""
    import pandas as pd

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
    return pd.DataFrame(rows)


def run_demo(root: str | Path = "runs") -> int:
    stamp = utc_stamp()
    base = Path(root) / stamp
    outcomes = []
    for scenario, params in JOBS:
        print(f"\n== {scenario} (fresh mock site under {base / scenario})")
        outcomes.append(run_runbook(scenario, base / scenario, parameters=params))
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
