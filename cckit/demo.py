"""``make demo``: preflight and the three scenarios, headless, each on a fresh embedded mock."""

from __future__ import annotations

from pathlib import Path

from ._internal.fs import utc_stamp
from .display import frame
from .headless import RunOutcome, run_runbook
from .probe import CLIENTS
from .runfolder import RunFolder
from .scenarios import SCENARIOS
from .scenarios import get as get_scenario

__all__ = ["run_demo"]

#: (scenario, parameters): the scenarios whose registry entry puts them in the demo
JOBS = [(s.name, dict(s.demo)) for s in SCENARIOS.values() if s.demo is not None]


#: each client's column: what a browser is shown on every web port (one line per node), what
#: the node's first web port presents to an ECDSA-only and to an RSA-only client
_COLUMNS = {"browser": "browser is shown", "ecdsa": "ECDSA client gets", "rsa": "RSA client gets"}


def summary_table(outcomes: list[RunOutcome]):
    """One row per node and run: scenario, result, and what each client its scenario shows
    (the registry's ``clients``) is shown at the end."""
    columns = [_COLUMNS[c] for c in CLIENTS
               if any(c in get_scenario(o.scenario).clients for o in outcomes)]
    rows = []
    for o in outcomes:
        shows = get_scenario(o.scenario).clients
        per_node, browser = o.first_port(), o.browser_view()
        if not per_node:
            rows.append({"scenario": o.scenario, "node": "-", "result": o.status,
                         **dict.fromkeys(columns, "")})
        for node, p in per_node.items():
            rows.append({"scenario": o.scenario, "node": node,
                         "result": o.status if o.ok else f"FAILED at {o.failed_step}",
                         **{_COLUMNS[c]: "" if c not in shows else
                            browser.get(node, "") if c == "browser" else p.get(c, "")
                            for c in CLIENTS if _COLUMNS[c] in columns}})
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
