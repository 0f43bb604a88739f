"""``cckit inventory``: the read-only fleet sweep from the command line (cron, systemd)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser"]


def _thresholds(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted(int(x) for x in text.split(",") if x.strip()))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of days, e.g. 30,60,90") \
            from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("give one to three numbers of days, e.g. 30,60,90")
    return values


def _inventory(args: argparse.Namespace) -> int:
    import pandas as pd

    from .. import display
    from . import Policy, parse_notifier, run_sweep

    notifiers = [parse_notifier(n) for n in args.notify or ()]
    sweep = run_sweep(args.sites, out=args.out,
                      policy=Policy(args.thresholds, args.csr_days),
                      concurrency=args.concurrency, executor=args.executor,
                      notifiers=notifiers, state=args.state, prom_file=args.prom_file,
                      timeout=args.timeout, progress=not args.quiet)
    summary = sweep.summary()
    print(f"[{summary.outcome.value.upper()}] {summary.verdict}")
    if sweep.findings:
        cols = ["severity", "finding", "site", "node", "unit", "about", "runbook"]
        with pd.option_context("display.width", 250, "display.max_colwidth", 60):
            print(display.table(sweep.findings)[cols].to_string(index=False))
    for p in sweep.problems:
        print(f"cckit: notify: {p}", file=sys.stderr)
    if notifiers:
        print(f"{len(sweep.new)} new finding(s) notified to "
              f"{', '.join(n.describe() for n in notifiers)}")
    print(f"dashboard: {sweep.files.get('dashboard.html')}")
    if summary.outcome.value == "failed":
        return 1
    worst = args.fail_on
    if worst and any(f.severity.rank <= _rank(worst) for f in sweep.findings):
        return 4
    return 0


def _rank(severity: str) -> int:
    from .records import Severity

    return Severity(severity).rank


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``cckit inventory ...`` on the main parser's subcommands."""
    p = sub.add_parser(
        "inventory",
        help="read-only certificate inventory of many sites: findings, dashboard, metrics",
        epilog="exit status: 0 swept, 1 a site or node could not be read (or Ctrl-C), "
        "4 a finding at or above --fail-on. Nothing on any node is changed. "
        "Scheduling it: docs/inventory.md")
    p.add_argument("--sites", required=True, nargs="+", metavar="DIR|FILE",
                   help="folders of site files, files listing them, or site files")
    p.add_argument("--out", required=True,
                   help="folder for inventory.csv/.parquet, findings.csv, dashboard.html, "
                   "cckit.prom and the state between sweeps")
    p.add_argument("--concurrency", type=int, default=4, help="sites at once (default 4)")
    p.add_argument("--executor", default="local",
                   help="local (default) or dask://HOST:PORT (the dask extra)")
    p.add_argument("--thresholds", type=_thresholds, default=(30, 60, 90), metavar="D,D,D",
                   help="days left that make an expiry finding high, medium, low "
                   "(default 30,60,90)")
    p.add_argument("--csr-days", type=int, default=30,
                   help="a CSR pending longer than this is a finding (default 30)")
    p.add_argument("--notify", action="append", metavar="webhook=URL|smtp=HOST:PORT?to=ADDR",
                   help="send one message per new finding (repeatable)")
    p.add_argument("--state", help="the file kept between sweeps (default OUT/state.json)")
    p.add_argument("--prom-file", help="also write the Prometheus metrics here (e.g. "
                   "node_exporter's textfile directory/cckit.prom)")
    p.add_argument("--fail-on", choices=("critical", "high", "medium", "low"),
                   help="exit 4 when a finding is this severe or worse")
    p.add_argument("--timeout", type=float, default=30.0, help="SSH timeout per node (s)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_inventory)
