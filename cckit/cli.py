"""The ``cckit`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import CckitError


def _cert_check(args: argparse.Namespace) -> int:
    from . import certs

    certificates = certs.load_certificates(Path(args.cert))
    leaf, bundled_chain = certs.split_leaf_and_chain(certificates)
    csr = certs.load_csr(Path(args.csr))
    chain: list | None = None
    if args.chain:
        chain = bundled_chain + [c for f in args.chain
                                 for c in certs.load_certificates(Path(f))]
    elif bundled_chain:
        chain = bundled_chain
    result = certs.check_signed_certificate(leaf, csr, chain, unit=args.unit)
    if result.ok:
        print(result.summary())
        return 0
    print(f"REFUSED {args.cert} for {args.unit} ({len(result.reasons)} reason"
          f"{'s' if len(result.reasons) != 1 else ''}):")
    for r in result.reasons:
        print(f"  - {r}")
    return 1


def _cert_show(args: argparse.Namespace) -> int:
    import pandas as pd

    from . import certs
    from .display import frame

    rows = [{"file": f, **certs.describe(c).as_row()}
            for f in args.files for c in certs.load_certificates(Path(f))]
    cols = ["file", "subject_cn", "issuer_cn", "key_type", "key_detail", "signed_with",
            "not_after", "days_left", "self_signed", "is_ca", "sha256"]
    with pd.option_context("display.width", 250, "display.max_colwidth", 100):
        print(frame(rows, cols).to_string(index=False))
    return 0


def _site_check(args: argparse.Namespace) -> int:
    from .sites import load_site

    site = load_site(args.site)
    print(f"OK site {site.name}: " + ", ".join(f"{n.name} ({n.role}, {n.host})"
                                             for n in site.nodes))
    return 0


def _parse_params(pairs: list[list[str]] | None) -> dict:
    """``-p NAME VALUE`` pairs, each VALUE read as YAML (plain data: no aliases, dates kept
    as text). The value is never shown in an error: it may be a pasted password."""
    import yaml

    from ._internal import yamlsafe
    from .errors import InputError

    out = {}
    for name, value in pairs or []:
        try:
            out[name] = yamlsafe.load(value) if value != "" else ""
        except yaml.YAMLError as e:
            raise InputError(f"-p {name}: the value is not plain YAML "
                             f"({getattr(e, 'problem', None) or 'unreadable'})",
                             hint="quote it, e.g. -p NAME \"'text'\"") from None
    return out


def _run(args: argparse.Namespace) -> int:
    from .headless import run_runbook

    outcome = run_runbook(args.scenario, args.out, site_file=args.site,
                          parameters=_parse_params(args.param), progress=not args.quiet)
    print(f"{args.scenario}: {outcome.status.upper()} in {outcome.seconds:.1f} s")
    print(f"  notebook   {outcome.notebook}")
    if outcome.html:
        print(f"  html       {outcome.html}")
    log = outcome.out_dir / "operations.jsonl"
    if log.exists():
        print(f"  operations {log}")
    step = f" at step {outcome.failed_step}" if outcome.failed_step else ""
    if outcome.status == "waiting":
        print(f"cckit: the run is waiting for the CA{step}:\n{outcome.message}\n"
              "Run the same command again once the CA has answered.", file=sys.stderr)
        return 3
    if outcome.status == "interrupted":
        print(f"cckit: {outcome.message}", file=sys.stderr)
        return 130
    if not outcome.ok:
        print(f"cckit: the run failed{step}:\n{outcome.message}", file=sys.stderr)
        return 1
    return 0


def _batch(args: argparse.Namespace) -> int:
    import pandas as pd

    from .batch import plan_batch, run_batch

    params = _parse_params(args.param)
    if args.plan:
        with pd.option_context("display.width", 250, "display.max_colwidth", 80):
            print(plan_batch(args.scenario, args.sites, args.out, params).to_string(index=False))
        print("\nNothing was run. Per-site command plans: add -p apply false.")
        return 0
    result = run_batch(args.scenario, args.sites, args.out, concurrency=args.concurrency,
                       parameters=params, executor=args.executor, progress=not args.quiet)
    table = result.table()[["site", "status", "seconds", "failed step", "message"]]
    with pd.option_context("display.width", 250, "display.max_colwidth", 90):
        print(table.to_string(index=False))
    ok = sum(r["status"] == "ok" for r in result.rows)
    print(f"\n{ok} of {len(result.rows)} site(s) ok in {result.seconds:.1f} s"
          + (" (interrupted)" if result.interrupted else ""))
    print(f"summary: {result.out_dir / 'summary.csv'} and {result.out_dir / 'summary.html'}")
    return 0 if result.ok else 1


def _demo_plan() -> str:
    from .scenarios import SCENARIOS

    first, *rest = [s.name for s in SCENARIOS.values() if s.demo is not None]
    return (
        "cckit demo: the main job, against the embedded VOS mock (nothing leaves 127.0.0.1)\n"
        f"  1. run the {first} runbook headless on a simulated UCCX 11.5 site (publisher,\n"
        "     subscriber, SocialMiner), in runs/<scenario>/<UTC time>/\n"
        f"  2. run the {', '.join(rest)} runbooks the same way, each on a fresh mock site\n"
        "  3. print a summary table (scenario, nodes, result, what each port presents) and where\n"
        "     the HTML reports are\n")


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    print(_demo_plan())
    return run_demo(args.out)


def lab_command(args: argparse.Namespace, jupyter_args: Sequence[str] = ()
                ) -> tuple[list[str], dict[str, str], Path]:
    """What ``cckit lab`` runs: fresh copies of every runbook in a new folder (the shipped
    ones never change), and JupyterLab on it, its kernels told where the user launched from
    (relative site files resolve there: :func:`cckit.sites.resolve_site_file`) and where
    run folders go. Returns the command, its environment and the folder."""
    import os
    import shutil

    from ._internal.fs import utc_stamp
    from .scenarios import FLEET_RUNBOOK, SCENARIOS, runbook_path

    here = Path.cwd()
    folder = Path(args.dir).resolve() if args.dir else here / "runs" / "lab" / utc_stamp()
    folder.mkdir(parents=True, exist_ok=True)
    for name in (*SCENARIOS, FLEET_RUNBOOK):
        target = folder / f"{name}.ipynb"
        if not target.exists():  # a folder given again keeps the engineer's copies
            shutil.copyfile(runbook_path(name), target)
    env = dict(os.environ, CCKIT_LAUNCH_DIR=str(here))
    env.setdefault("CCKIT_RUNS_DIR", str(here / "runs"))
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={folder}",
           f"--port={args.port}", f"--ip={args.ip}"]
    if args.no_browser:
        cmd.append("--no-browser")
    if args.allow_root:
        cmd.append("--allow-root")
    return [*cmd, *jupyter_args], env, folder


def _lab(args: argparse.Namespace, jupyter_args: Sequence[str] = ()) -> int:
    import os

    cmd, env, folder = lab_command(args, jupyter_args)
    print(f"lab: working copies of the runbooks in {folder} (relative site files resolve "
          f"against {env['CCKIT_LAUNCH_DIR']}; run folders go to {env['CCKIT_RUNS_DIR']})",
          flush=True)
    try:
        os.execvpe(cmd[0], cmd, env)  # noqa: S606 - this interpreter, no shell
    except OSError as e:
        print(f"cckit: error: cannot start JupyterLab ({e.strerror}): install the lab extra "
              "(make setup does)", file=sys.stderr)
        return 1
    return 0  # pragma: no cover - exec does not return


def _mock(argv: list[str]) -> int:
    from .vosmock.cli import main as mock_main

    return mock_main(argv)


def build_parser() -> argparse.ArgumentParser:
    from .scenarios import SCENARIOS

    scenarios = "; ".join(f"{s.name}: {s.title}" for s in SCENARIOS.values())

    p = argparse.ArgumentParser(
        prog="cckit",
        description="ECDSA (tomcat-ECDSA) certificates on UCCX 11.5 and SocialMiner.",
    )
    p.add_argument("--version", action="version", version=f"cckit {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    cert = sub.add_parser("cert", help="check and inspect certificate files").add_subparsers(
        dest="cert_command", required=True)
    chk = cert.add_parser(
        "check",
        help="check a signed certificate before the window: exit 0 and OK, or 1 and reasons",
    )
    chk.add_argument("cert", help="the certificate the CA returned (PEM/DER/PKCS#7; may "
                     "include the chain)")
    chk.add_argument("--csr", required=True, help="the CSR downloaded from the node")
    chk.add_argument("--chain", action="append", metavar="FILE",
                     help="root and intermediate CA certificates (repeatable)")
    chk.add_argument("--unit", default="tomcat-ECDSA", choices=["tomcat-ECDSA", "tomcat"])
    chk.set_defaults(func=_cert_check)
    show = cert.add_parser("show", help="describe the certificates in files")
    show.add_argument("files", nargs="+")
    show.set_defaults(func=_cert_show)

    site = sub.add_parser("site", help="site files").add_subparsers(dest="site_command",
                                                                    required=True)
    sc = site.add_parser("check", help="validate a site file")
    sc.add_argument("site")
    sc.set_defaults(func=_site_check)

    run = sub.add_parser(
        "run", help="run a runbook headless (papermill): notebook, HTML, log",
        epilog="exit status: 0 done, 1 failed (the failing step's message is printed), "
        "3 waiting for the CA (rerun the same command once it has answered)")
    run.add_argument("scenario", choices=list(SCENARIOS), help=scenarios)
    run.add_argument("--site", help="site file (default: the embedded VOS mock)")
    run.add_argument("--out", required=True, help="folder for this run's record")
    run.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="a runbook parameter (VALUE is YAML: 384, false, [a, b])")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_run)

    batch = sub.add_parser("batch", help="run a runbook on many sites, with a summary")
    batch.add_argument("scenario", choices=list(SCENARIOS), help=scenarios)
    batch.add_argument("--sites", required=True,
                       help="a folder of site files, or a file listing them (one per line)")
    batch.add_argument("--out", required=True, help="folder for the batch (one sub-folder a site)")
    batch.add_argument("--concurrency", type=int, default=2, help="sites at once (default 2)")
    batch.add_argument("-p", "--param", nargs=2, action="append", metavar=("NAME", "VALUE"),
                       help="a runbook parameter for every site (VALUE is YAML)")
    batch.add_argument("--executor", default="local",
                       help="local (default) or dask://HOST:PORT (the dask extra)")
    batch.add_argument("--plan", action="store_true", help="show what would run where; run nothing")
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    batch.set_defaults(func=_batch)

    from .fleet.cli import add_parser as add_inventory

    add_inventory(sub)

    lab = sub.add_parser(
        "lab", help="JupyterLab on fresh copies of the runbooks (runs/lab/<UTC time>/)",
        epilog="arguments after -- go to jupyter lab as they are (e.g. -- --ServerApp.token=X)")
    lab.add_argument("--port", type=int, default=8888, help="default 8888")
    lab.add_argument("--ip", default="127.0.0.1", help="address to listen on (default "
                     "127.0.0.1)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser")
    lab.add_argument("--allow-root", action="store_true", help="let JupyterLab run as root")
    lab.add_argument("--dir", help="the folder of the copies (default: a new "
                     "runs/lab/<UTC time>/); copies already there are kept")
    lab.set_defaults(func=_lab)

    from .autopilot.cli import add_parser as add_renew

    add_renew(sub)

    demo = sub.add_parser("demo", help="run the main job against the embedded VOS mock")
    demo.add_argument("--out", default="runs", help="where run folders go (default: runs/)")
    demo.set_defaults(func=_demo)

    sub.add_parser("mock", help="the VOS mock (cckit mock serve --help)", add_help=False)
    sub.add_parser("probe", help="which certificate a TLS port presents to a browser, to "
                   "ECDSA-only and to RSA-only clients (cckit probe --help)", add_help=False)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ._internal.imports import skip_iri_format_checker

    skip_iri_format_checker()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["mock"]:
        return _mock(argv[1:])
    if argv[:1] == ["probe"]:
        from .probe import main as probe_main

        return probe_main(argv[1:])
    extra: list[str] = []
    if argv[:1] == ["lab"] and "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1:]
    args = build_parser().parse_args(argv)
    try:
        if args.func is _lab:
            return _lab(args, extra)
        return int(args.func(args) or 0)
    except CckitError as e:
        print(f"cckit: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cckit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
