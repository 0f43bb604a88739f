"""A nightly fleet sweep over many seeded mock sites: wall time and memory. Run on demand:

    .venv/bin/python benchmarks/bench_inventory.py [--sites 200] [--concurrency 8]

The mock serves the sites in its own process (`cckit mock serve --sites N --seed fleet`), so
the sweep's peak memory (this process) and the mock's (its VmHWM) are measured apart. The
sweep is the whole `cckit inventory` work: every node over SSH, every web port to ECDSA-only
and RSA-only clients, findings, state, and every file (CSV, Parquet, dashboard, Prometheus).
"""

from __future__ import annotations

import argparse
import collections
import resource
import tempfile
import time
from pathlib import Path

from bench_batch import mock_process

from cckit.fleet import run_sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--base-port", type=int, default=20000,
                    help="the mock's fixed port layout (below the ephemeral range, so that "
                    "other programs' connections cannot take a site's port)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="cckit-bench-inventory-") as d:
        d = Path(d)
        t0 = time.perf_counter()
        with mock_process(d, args.sites, "--seed", "fleet", "--restart-seconds", "0",
                          "--base-port", str(args.base_port)) as (_, mock_stats):
            print(f"mock: {args.sites} seeded sites up in {time.perf_counter() - t0:.1f} s")
            t1 = time.perf_counter()
            sweep = run_sweep([d / "sites"], out=d / "out", concurrency=args.concurrency)
            wall = time.perf_counter() - t1
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        mock_peak = mock_stats["rss_mib"]
        codes = collections.Counter(f.code.value for f in sweep.findings)
        failed = [n for n in sweep.nodes if n.error]
        size = (d / "out" / "dashboard.html").stat().st_size / 1e6
        print(f"sweep: {len(sweep.sites)} sites, {len(sweep.nodes)} nodes "
              f"({len(failed)} not read), {len(sweep.certs)} certificates, "
              f"{len(sweep.ports)} handshakes, {len(sweep.findings)} findings in {wall:.1f} s "
              f"(concurrency {args.concurrency}; {wall / len(sweep.sites):.2f} s a site)")
        print(f"memory: sweep process peak RSS {peak:.0f} MiB; mock process peak "
              f"{mock_peak:.0f} MiB; dashboard.html {size:.1f} MB")
        print("findings by code: " + ", ".join(f"{k} {v}" for k, v in sorted(codes.items())))


if __name__ == "__main__":
    main()
