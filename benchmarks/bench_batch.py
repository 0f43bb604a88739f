"""cckit batch over many mock sites with a simulated restart time. Run on demand:

    .venv/bin/python benchmarks/bench_batch.py [--sites 50] [--concurrency 4]
        [--restart-seconds 2] [--scenario ca_signed] [--sample-interval 0.25]
        [--latency cisco --time-scale 0.01] [--mock-process]

Reports (from this one run):
* wall time vs the ideal ceil(sites / concurrency) x one site's time (one site measured
  alone first, on its own fresh mock);
* CPU and peak RSS: this process (papermill driving each run, the HTML, the batch) and the
  papermill kernels apart; with ``--mock-process`` the mock sites run in their own process
  (``cckit mock serve --sites N``), so its CPU (which a real fleet does not cost us) is
  measured apart too instead of being counted as this process's;
* availability: a sampler connects to each running site's UCCX publisher and subscriber
  first web port every interval during the batch (a site runs from its output folder's
  creation until its HTML record is written); any sample where NEITHER accepted a connection is an
  instant with no UCCX node serving (the goal is none). Beside that TLS view, the agents'
  view: the same sample reads both nodes' Finesse SystemInfo (8445); an instant with neither
  IN_SERVICE is one with no agent desktop (the goal is none). The sampler is bounded: it
  stops when the batch ends.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from cckit.batch import run_batch
from cckit.headless import run_runbook
from cckit.sites import load_site
from cckit.vosmock.testing import finesse_pems, finesse_status, running_site, running_sites

#: a site's two UCCX nodes' Finesse: (port, the PEMs to trust, read at each sample)
Finesse = tuple[tuple[int, Callable[[], str]], tuple[int, Callable[[], str]]]


def up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class Sampler(threading.Thread):
    def __init__(self, targets: dict[str, tuple[tuple[str, int], tuple[str, int]]],
                 interval: float, active: Callable[[str], bool] | None = None,
                 finesse: dict[str, Finesse] | None = None) -> None:
        super().__init__(daemon=True)
        self.targets, self.interval = targets, interval
        # the agents' view, where given: each UCCX node's Finesse SystemInfo
        self.finesse = finesse or {}
        self.no_desktop: dict[str, list[float]] = {}  # neither Finesse IN_SERVICE
        self.one_no_desktop = 0
        # which sites to sample now (a batch's running ones: 200 sites sampled all the time
        # were ~800 TLS connections a second into the one mock process)
        self.active = active or (lambda site: True)
        self.stop_event = threading.Event()
        self.samples = 0
        self.both_down: dict[str, list[float]] = {}
        self.one_down = 0
        self.cpu = 0.0  # this thread's CPU seconds (the benchmark's, not the batch's)

    def run(self) -> None:
        start = time.monotonic()
        try:
            self._sample(start)
        finally:
            self.cpu = time.thread_time()

    def _sample(self, start: float) -> None:
        while not self.stop_event.is_set():
            for site, (pub, sub) in self.targets.items():
                if not self.active(site):
                    continue
                p, s = up(*pub), up(*sub)
                self.samples += 1
                if not p and not s:
                    self.both_down.setdefault(site, []).append(time.monotonic() - start)
                elif not (p and s):
                    self.one_down += 1
                if site in self.finesse:
                    ready = [finesse_status(port, pems(), host=host) == "IN_SERVICE"
                             for (port, pems), (host, _) in zip(self.finesse[site],
                                                                 (pub, sub), strict=True)]
                    if not any(ready):
                        self.no_desktop.setdefault(site, []).append(time.monotonic() - start)
                    elif not all(ready):
                        self.one_no_desktop += 1
            self.stop_event.wait(self.interval)


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a running process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_mib(pid: int) -> float:
    """Peak RSS (MiB) of a running process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@contextlib.contextmanager
def mock_process(d: Path, n: int, *serve_args: str) -> Iterator[tuple[list[Path], dict]]:
    """``n`` mock sites served by ``cckit mock serve`` (with ``serve_args``) in a process of
    its own; yields the site files and a dict filled with the mock's CPU seconds and peak
    RSS when the block ends."""
    mock = subprocess.Popen(
        [sys.executable, "-m", "cckit", "mock", "serve", "--sites", str(n),
         "--state-dir", str(d / "state"), "--site-file", str(d / "sites"), *serve_args],
        stdout=subprocess.PIPE, text=True)
    stats: dict = {}
    try:
        line = mock.stdout.readline()
        assert "sites up" in line, line
        yield sorted((d / "sites").glob("*.yaml")), stats
        stats.update(cpu=_proc_cpu(mock.pid), rss_mib=vm_hwm_mib(mock.pid))
    finally:
        mock.send_signal(signal.SIGINT)
        mock.wait(60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--restart-seconds", type=float, default=2.0)
    ap.add_argument("--scenario", default="ca_signed")
    ap.add_argument("--sample-interval", type=float, default=0.25)
    ap.add_argument("--latency", choices=("none", "cisco"), default="none",
                    help="cisco: the real-node latency profile (then --restart-seconds is "
                    "ignored), scaled by --time-scale")
    ap.add_argument("--time-scale", type=float, default=1.0)
    ap.add_argument("--mock-process", action="store_true",
                    help="serve the mock sites from a process of their own (its CPU apart)")
    args = ap.parse_args()
    mock_options = ({"latency": "cisco", "time_scale": args.time_scale,
                     "restart_seconds": None, "cli_startup_seconds": None}
                    if args.latency == "cisco" else {"restart_seconds": args.restart_seconds})

    with tempfile.TemporaryDirectory(prefix="cckit-bench-batch-") as d:
        d = Path(d)
        with running_site(d / "one", **mock_options) as one:
            t0 = time.perf_counter()
            o = run_runbook(args.scenario, d / "one-run", site_file=one.site_file,
                            parameters={"confirm": "vosmock"}, progress=False)
            single = time.perf_counter() - t0
        assert o.ok, o.message
        print(f"one site alone: {single:.1f} s")

        t0 = time.perf_counter()
        mock_stats: dict = {}
        with contextlib.ExitStack() as stack:
            if args.mock_process:
                serve = (["--latency", "cisco", "--time-scale", str(args.time_scale)]
                         if args.latency == "cisco"
                         else ["--restart-seconds", str(args.restart_seconds)])
                files, mock_stats = stack.enter_context(
                    mock_process(d / "mock", args.sites, *serve))
            else:
                sites = stack.enter_context(running_sites(
                    d / "mock", args.sites, site_dir=d / "sites", **mock_options))
                files = [s.site_file for s in sites]
            sites_dir = files[0].parent
            print(f"{args.sites} mock sites up in {time.perf_counter() - t0:.1f} s")
            targets, finesse = {}, {}
            for f in files:
                site = load_site(f)
                targets[site.name], finesse[site.name] = uccx_views(site, d / "mock" / "state"
                                                                    / site.name)
            out = d / "out"
            sampler = Sampler(targets, args.sample_interval, active=lambda site: (
                (out / site).is_dir() and not (out / site / f"{args.scenario}.html").exists()),
                finesse=finesse)
            sampler.start()
            cpu0, own0 = _cpu(), _cpu(children=False)
            t0 = time.perf_counter()
            result = run_batch(args.scenario, sites_dir, out,
                               concurrency=args.concurrency, progress=True)
            wall = time.perf_counter() - t0
            cpu, own = _cpu() - cpu0, _cpu(children=False) - own0
            sampler.stop_event.set()
            sampler.join(30)

    ok = sum(r["status"] == "ok" for r in result.rows)
    ideal = math.ceil(args.sites / args.concurrency) * single
    print(f"\n{ok} of {len(result.rows)} site(s) ok")
    for r in result.rows:
        if r["status"] != "ok":
            print(f"  {r['site']}: {r['status']} at {r.get('failed step') or '?'}: "
                  f"{r.get('message', '')}")
    print(f"wall {wall:.1f} s; ideal ceil({args.sites}/{args.concurrency}) x {single:.1f} s = "
          f"{ideal:.1f} s; ratio wall/ideal = {wall / ideal:.2f}")
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(f"CPU {cpu:.1f} s for {args.sites} sites = {cpu / args.sites:.2f} s per site (this "
          f"process with the mock, + papermill kernels); peak RSS of one process "
          f"{peak / 1024:.0f} MiB")
    print(f"  of this process's, the availability sampler's thread: {sampler.cpu:.1f} s")
    print(f"  of which the kernels (papermill children: kernel start, imports, the cells) "
          f"{cpu - own:.1f} s = {(cpu - own) / args.sites:.2f} s per site; this process "
          f"(papermill driving, nbconvert HTML, the batch"
          f"{'' if args.mock_process else ', every mock site SSH/TLS server'}) "
          f"{own:.1f} s")
    if mock_stats:
        print(f"  the mock process (not ours: {args.sites} sites' SSH/TLS servers): "
              f"{mock_stats['cpu']:.1f} CPU-s, peak RSS {mock_stats['rss_mib']:.0f} MiB")
    print(f"availability: {sampler.samples} samples of (publisher, subscriber) port 1 every "
          f"{args.sample_interval} s per site; samples with exactly one UCCX node down: "
          f"{sampler.one_down}; instants with NEITHER serving: "
          f"{sum(len(v) for v in sampler.both_down.values())} "
          f"(sites: {', '.join(sorted(sampler.both_down)) or 'none'})")
    print(f"agents' view (Finesse SystemInfo of both UCCX nodes, same samples): exactly one "
          f"not IN_SERVICE: {sampler.one_no_desktop}; NEITHER in service (no desktop): "
          f"{sum(len(v) for v in sampler.no_desktop.values())} "
          f"(sites: {', '.join(sorted(sampler.no_desktop)) or 'none'})")


def uccx_views(site, state_dir: Path) -> tuple[tuple[tuple[str, int], tuple[str, int]],
                                                Finesse]:
    """A mock site's two UCCX nodes as the sampler reads them: (address, first web port)
    for the TLS view, (Finesse port, its PEMs) for the agents' view."""
    pub, sub = site.publisher, site.subscribers[0]

    def finesse(node):
        port = next(wp.connect for wp in node.web_ports if wp.port == 8445)
        return port, lambda: finesse_pems(state_dir, node.name)

    return (((pub.address, pub.web_ports[0].connect), (sub.address, sub.web_ports[0].connect)),
            (finesse(pub), finesse(sub)))


def _cpu(*, children: bool = True) -> float:
    me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + ((ch.ru_utime + ch.ru_stime) if children else 0.0)


if __name__ == "__main__":
    main()
