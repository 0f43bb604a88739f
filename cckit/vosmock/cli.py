"""`python -m cckit.vosmock serve ...` (also wired as `cckit mock serve`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from .site import MockSite


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vosmock", description="Simulated UCCX 11.5 site (VOS mock)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve one site on 127.0.0.1 until Ctrl-C / SIGTERM")
    serve.add_argument("--state-dir", required=True, help="where keys, certs, CSRs, COPs persist")
    serve.add_argument("--site-file", required=True, help="site file (YAML) to write when ready")
    serve.add_argument(
        "--base-port",
        type=int,
        default=None,
        help="fixed port layout from N (default: free ports, kept across restarts)",
    )
    serve.add_argument(
        "--restart-seconds",
        type=float,
        default=5.0,
        help="how long a Tomcat or system restart takes (0 allowed)",
    )
    serve.add_argument("--version", default=None, help="VOS version (default 11.5.1.10000-61)")
    serve.add_argument("--control-port", type=int, default=None, help="control endpoint port")
    serve.add_argument("--site", default="vosmock", help="site name (first boot only)")
    serve.add_argument("--domain", default="cc.example.com", help="DNS domain (first boot only)")
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
    serve.add_argument("-v", "--verbose", action="store_true")
    return parser


async def _serve(args) -> int:
    if args.base_port is not None and not 1 <= args.base_port <= 65535 - 40:
        print("vosmock: --base-port out of range", file=sys.stderr)
        return 2
    cop_files = None
    if args.cop_file:
        from .site import DEFAULT_COP_FILES

        cop_files = dict(DEFAULT_COP_FILES)
        for item in args.cop_file:
            key, _, name = item.partition("=")
            if key not in cop_files or not name.endswith(".cop.sgn") or "/" in name:
                print(f"vosmock: bad --cop-file {item!r}", file=sys.stderr)
                return 2
            cop_files[key] = name
    site = MockSite(
        args.state_dir,
        site=args.site,
        domain=args.domain,
        version=args.version,
        base_port=args.base_port,
        control_port=args.control_port,
        restart_seconds=args.restart_seconds,
        lockout_failures=args.lockout_failures,
        lockout_seconds=args.lockout_seconds,
        include_ou_prompt=args.include_ou_prompt,
        cop_files=cop_files,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:  # pragma: no cover
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
