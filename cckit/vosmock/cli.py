"""`python -m cckit.vosmock serve ...` (also wired as `cckit mock serve`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from pathlib import Path

from .site import MockSite


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vosmock", description="Simulated UCCX 11.5 site (VOS mock)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve", help="serve one site (or --sites N) on 127.0.0.1 until Ctrl-C / SIGTERM"
    )
    serve.add_argument("--state-dir", required=True, help="where keys, certs, CSRs, COPs persist")
    serve.add_argument(
        "--site-file",
        required=True,
        help="site file (YAML) to write when ready; with --sites: a directory for "
        "site-001.yaml, ...",
    )
    serve.add_argument(
        "--sites",
        type=int,
        default=None,
        metavar="N",
        help="serve N independent sites in this process (site-001 ... in STATE_DIR/site-001 ...)",
    )
    serve.add_argument(
        "--base-port",
        type=int,
        default=None,
        help="fixed port layout from N (default: free ports, kept across restarts); "
        "with --sites, site i starts at N + (i-1)*40",
    )
    serve.add_argument(
        "--restart-seconds",
        type=float,
        default=None,
        help="how long a service restart (stop plus start) or a reboot takes, 0 allowed "
        "(default 5, or the --latency profile's); scaled by --time-scale",
    )
    serve.add_argument(
        "--replication-seconds",
        type=float,
        default=None,
        metavar="S",
        help="trust imported (or deleted) on the publisher reaches the subscriber S seconds "
        "later, never SocialMiner (default 0, or the --latency profile's); scaled by "
        "--time-scale",
    )
    serve.add_argument(
        "--finesse-ready-seconds",
        type=float,
        default=None,
        metavar="S",
        help="Finesse's SystemInfo (8445, UCCX nodes) says OUT_OF_SERVICE until S seconds "
        "after Cisco Finesse Tomcat's TLS is up again (default 0, or the --latency "
        "profile's); scaled by --time-scale",
    )
    serve.add_argument(
        "--latency",
        choices=("none", "cisco"),
        default="none",
        help="none: CSRs, imports and installs are instant (default); cisco: a real node's "
        "durations for every operation (cckit/vosmock/latency.py, with their sources)",
    )
    serve.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every duration by this (0.01: a 3-minute restart takes 1.8 s)",
    )
    serve.add_argument("--version", default=None, help="VOS version (default 11.5.1.10000-61)")
    serve.add_argument("--control-port", type=int, default=None, help="control endpoint port")
    serve.add_argument(
        "--site",
        default=None,
        help="site name (first boot only; default vosmock; not with --sites)",
    )
    serve.add_argument("--domain", default="cc.example.com", help="DNS domain (first boot only)")
    serve.add_argument("--product", choices=("uccx", "cucm"), default="uccx",
                       help="uccx: publisher, subscriber, SocialMiner; cucm: publisher, "
                       "subscriber (first boot only)")
    serve.add_argument("--lockout-failures", type=int, default=5)
    serve.add_argument("--lockout-seconds", type=float, default=300.0)
    serve.add_argument(
        "--include-ou-prompt",
        action="append",
        default=None,
        metavar="NODE",
        help="node(s) whose `set csr gen` asks `Include OU in CSR (yes|no)?`",
    )
    serve.add_argument(
        "--cop-file",
        action="append",
        default=None,
        metavar="KEY=NAME",
        help="COP file name on the SFTP repository (first boot only); KEY is one of "
        "uccx_disable, uccx_rollback, socialminer_disable, socialminer_rollback",
    )
    serve.add_argument(
        "--seed",
        default=None,
        metavar="DEFECTS",
        help="certificate defects applied at first boot: fleet (one per site across "
        "--sites) or names, comma-separated (see seed.py)",
    )
    serve.add_argument(
        "--wizard",
        action="append",
        default=None,
        metavar="[NODE=]VARIANT",
        help="COP wizard variant of every node, or of NODE: 11.5, 12.5-publisher, "
        "12.5-subscriber, open-session, remembered-defaults, slow-download, unknown-question "
        "(default: by version and role)",
    )
    serve.add_argument(
        "--cli-startup-seconds",
        type=float,
        default=None,
        help="time from login to the first admin: prompt (default 8; real nodes: 8-60 s)",
    )
    serve.add_argument(
        "--download-seconds",
        type=float,
        default=None,
        help="how long the slow-download wizard (or any, with --latency cisco) downloads "
        "(default 30)",
    )
    serve.add_argument(
        "--keyboard-interactive",
        action="append",
        default=None,
        metavar="NODE",
        help="node(s) whose SSH offers keyboard-interactive authentication only ('all': every "
        "node)",
    )
    serve.add_argument(
        "--sftp-max-mb",
        type=float,
        default=64,
        help="largest file the SFTP repository accepts, in MiB",
    )
    serve.add_argument("-v", "--verbose", action="store_true")
    return parser


class _Usage(Exception):
    pass


def _cop_files(args) -> dict | None:
    if not args.cop_file:
        return None
    from .site import DEFAULT_COP_FILES

    cop_files = dict(DEFAULT_COP_FILES)
    for item in args.cop_file:
        key, _, name = item.partition("=")
        if key not in cop_files or not name.endswith(".cop.sgn") or "/" in name:
            raise _Usage(f"bad --cop-file {item!r}")
        cop_files[key] = name
    return cop_files


def _wizard(args) -> str | dict | None:
    from .node import WIZARDS

    if not args.wizard:
        return None
    every, per_node = None, {}
    for item in args.wizard:
        node, _, variant = item.rpartition("=")
        if variant not in WIZARDS:
            raise _Usage(f"bad --wizard {item!r}: the variant is one of {', '.join(WIZARDS)}")
        if node:
            per_node[node] = variant
        else:
            every = variant
    if not per_node:
        return every
    from .site import PRODUCT_NODE_SPECS

    specs = PRODUCT_NODE_SPECS[getattr(args, "product", "uccx")]
    unknown = set(per_node) - {spec.name for spec in specs}
    if unknown:
        raise _Usage(f"bad --wizard: unknown node(s) {', '.join(sorted(unknown))}")
    return {spec.name: per_node.get(spec.name, every) for spec in specs
            if per_node.get(spec.name, every)}


def _site_options(args, cop_files) -> dict:
    """The MockSite options one site and many sites share."""
    kbd = args.keyboard_interactive
    return {
        "wizard": _wizard(args),
        "cli_startup_seconds": args.cli_startup_seconds,
        "download_seconds": args.download_seconds,
        "keyboard_interactive": True if kbd and "all" in kbd else (kbd or False),
        "sftp_max_bytes": int(args.sftp_max_mb * 1024 * 1024),
        "base_port": args.base_port,
        "domain": args.domain,
        "version": args.version,
        "restart_seconds": args.restart_seconds,
        "replication_seconds": args.replication_seconds,
        "finesse_ready_seconds": args.finesse_ready_seconds,
        "latency": args.latency,
        "time_scale": args.time_scale,
        "lockout_failures": args.lockout_failures,
        "lockout_seconds": args.lockout_seconds,
        "include_ou_prompt": args.include_ou_prompt,
        "cop_files": cop_files,
        "product": args.product,
        "seed": args.seed,
    }


def _install_stop(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def _serve(args) -> int:
    if args.base_port is not None and not 1 <= args.base_port <= 65535 - 40:
        print("vosmock: --base-port out of range", file=sys.stderr)
        return 2
    try:
        options = _site_options(args, _cop_files(args))
    except _Usage as exc:
        print(f"vosmock: {exc}", file=sys.stderr)
        return 2
    site = MockSite(
        args.state_dir, site=args.site or "vosmock", control_port=args.control_port, **options
    )
    stop = asyncio.Event()
    _install_stop(stop)
    try:
        await site.start()
    except OSError as exc:
        print(f"vosmock: cannot listen: {exc}", file=sys.stderr)
        await site.stop()
        return 1
    try:
        path = site.write_site_file(args.site_file)
        ssh = "/".join(str(n.ssh_port) for n in site.nodes.values())
        print(
            f"vosmock: site {site.name!r} up on 127.0.0.1 (ssh {ssh}, sftp {site.sftp_port}, "
            f"control http://127.0.0.1:{site.control_port}); site file {path}",
            flush=True,
        )
        await stop.wait()
    finally:
        await site.stop()
    return 0


def _prepare_many(args):
    """Sync part of `serve --sites N`: fd limit, plan (ports), first boot (key generation)."""
    from . import multi

    if args.sites < 1:
        raise _Usage("--sites must be at least 1")
    if args.site is not None:
        raise _Usage("--site cannot be combined with --sites (sites are named site-001, ...)")
    if args.control_port is not None:
        raise _Usage("--control-port cannot be combined with --sites (each site has its own)")
    site_dir = Path(args.site_file)
    if site_dir.exists() and not site_dir.is_dir():
        raise _Usage(f"--site-file {site_dir} must be a directory with --sites")
    multi.ensure_fd_limit(args.sites)
    plans = multi.plan_sites(args.state_dir, args.sites, **_site_options(args, _cop_files(args)))
    t0 = time.monotonic()
    booted = multi.first_boot(plans)
    return plans, booted, time.monotonic() - t0


async def _serve_many(args, plans, booted: int, boot_seconds: float) -> int:
    from . import multi
    from .site import MockServer

    t0 = time.monotonic()
    stop = asyncio.Event()
    _install_stop(stop)
    server = MockServer(multi.make_sites(plans))
    try:
        await server.start()
    except OSError as exc:
        print(f"vosmock: cannot listen: {exc}", file=sys.stderr)
        return 1
    try:
        paths = multi.write_site_files(server.sites, args.site_file)
        first, last = server.sites[0].name, server.sites[-1].name
        print(
            f"vosmock: {len(server.sites)} sites up on 127.0.0.1 ({first} .. {last}; state "
            f"{Path(args.state_dir).resolve()}; first boot of {booted} in {boot_seconds:.1f}s, "
            f"started in {time.monotonic() - t0:.1f}s); site files {paths[0].name} .. "
            f"{paths[-1].name} in {paths[0].parent}",
            flush=True,
        )
        await stop.wait()
    finally:
        await server.stop()
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.seed:
        from .seed import defects_for

        try:
            defects_for("site-001", args.seed)
        except ValueError as exc:
            print(f"vosmock: {exc}", file=sys.stderr)
            return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        if args.sites is None:
            return asyncio.run(_serve(args))
        from .multi import SiteSetupError

        # SIGTERM during first boot: unwind like Ctrl-C (the key-generation pool shuts down)
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            prepared = _prepare_many(args)
        except _Usage as exc:
            print(f"vosmock: {exc}", file=sys.stderr)
            return 2
        except SiteSetupError as exc:
            print(f"vosmock: {exc}", file=sys.stderr)
            return 1
        finally:
            signal.signal(signal.SIGTERM, previous)
        return asyncio.run(_serve_many(args, *prepared))
    except KeyboardInterrupt:  # pragma: no cover
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
