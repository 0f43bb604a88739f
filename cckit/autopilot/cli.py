"""``cckit renew``: one pass of the renewal autopilot, its dry run, and its status."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from typing import Any

__all__ = ["add_parser"]


def _when(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO time, e.g. "
                                         "2026-03-08T02:30:00-06:00") from None
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (add Z or +01:00)")
    return when.astimezone(dt.UTC)


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _site_lines(sites: list[dict[str, Any]]) -> list[str]:
    lines = []
    width = max((len(s["site"]) for s in sites), default=4)
    for s in sites:
        lines.append(f"{s['site']:<{width}}  {s['state']:<12} {s['message']}")
        for run in s.get("runs") or []:
            lines.append(f"{'':<{width}}  {'':<12} record: {run}")
        for note in s.get("notes") or []:
            lines.append(f"{'':<{width}}  {'':<12} note: {note}")
    return lines


def _status(args: argparse.Namespace) -> int:
    from .renew import read_status, run_pass

    status = read_status(args.state)
    if args.sites:  # what is due now, read live (read-only, nothing written)
        live = run_pass(args.sites, args.state, dry_run=True, now=args.now,
                        concurrency=args.concurrency, timeout=args.timeout)
        status["sites"] = [s.as_json() for s in live.sites]
        status["last_pass"] = live.now.isoformat()
    if args.json:
        print(json.dumps(status, indent=1))
        return 0
    rows = status["attempts"]
    print(f"{len({r['attempt'] for r in rows})} attempt(s) in {args.state}")
    for r in rows:
        print(f"  {r['started'][:19]}  {r['site']}  {r['node']}  {r['unit']}  {r['outcome']}"
              + (f"  {r['old_serial']} -> {r['new_serial']}" if r.get("new_serial") else "")
              + (f"  {r['run']}" if r.get("run") else ""))
    when = status.get("last_pass")
    print(f"\nsites (as seen {'at ' + when if when else 'by no pass yet'}):")
    for line in _site_lines(status["sites"]):
        print(f"  {line}")
    return 0


def _renew(args: argparse.Namespace) -> int:
    from ..errors import InputError, SiteLockedError
    from .renew import run_pass

    if args.status:
        return _status(args)
    if not args.sites:
        raise InputError("--sites is needed for a pass", hint="cckit renew --sites DIR "
                         "--state DIR [--dry-run]; or --status")
    if args.now is not None and not args.dry_run:
        raise InputError("--now only goes with --dry-run or --status: a real pass changes "
                         "sites at the real time, inside their windows")
    # the runs' records name who ran them (a runbook reads CCKIT_OPERATOR)
    os.environ.setdefault("CCKIT_OPERATOR", f"cckit renew ({_user()})")
    try:
        result = run_pass(args.sites, args.state, concurrency=args.concurrency,
                          dry_run=args.dry_run, now=args.now, timeout=args.timeout)
    except SiteLockedError as e:
        print(f"cckit renew: {e.message}; this pass changed nothing", file=sys.stderr)
        return 0
    if args.json:
        print(json.dumps(result.as_json(), indent=1))
    else:
        head = "dry run, nothing changed" if result.dry_run else "pass"
        print(f"cckit renew ({head}) at {result.now:%Y-%m-%d %H:%M} UTC, "
              f"{len(result.sites)} site(s):")
        for line in _site_lines([s.as_json() for s in result.sites]):
            print(f"  {line}")
    if result.interrupted:
        print("cckit renew: interrupted; the running renewals stopped at their step and the "
              "next pass resumes them", file=sys.stderr)
        return 130
    return 1 if result.failed else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``cckit renew ...`` on the main parser's subcommands."""
    p = sub.add_parser(
        "renew",
        help="the renewal autopilot: renew what is due, inside each site's window (one pass)",
        epilog="exit status: 0 nothing failed, 1 an attempt failed, was refused or "
        "interrupted, or a site file is invalid or an enabled site could not be read, 130 "
        "the pass was interrupted. Scheduling it and what it guarantees: "
        "docs/autopilot.md")
    p.add_argument("--sites", nargs="+", metavar="DIR|FILE",
                   help="folders of site files, files listing them, or site files")
    p.add_argument("--state", required=True,
                   help="the autopilot's folder: ledger, run records, CA state, pauses")
    p.add_argument("--concurrency", type=int, default=2, help="sites at once (default 2)")
    p.add_argument("--dry-run", action="store_true",
                   help="say what would be renewed where and when; touch nothing")
    p.add_argument("--status", action="store_true",
                   help="show the ledger and what each site has due (with --sites: read now)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--now", type=_when, metavar="ISO",
                   help="pretend it is this time (with --dry-run or --status only)")
    p.add_argument("--timeout", type=float, default=30.0, help="SSH timeout per node (s)")
    p.set_defaults(func=_renew)
