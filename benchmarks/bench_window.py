"""The maintenance window at its physical limit. Run on demand:

    .venv/bin/python benchmarks/bench_window.py [--time-scale 0.02] [--sample-interval 0.05]

Per scenario (ca_signed with the lab CA, rsa_only disable), against a fresh mock with the
real-node latency profile (``--latency cisco``, every duration x ``--time-scale``):
* the window: wall time of the procedure's steps, logins included;
* its critical path: the longest dependency chain of the latency profile (login -> CSR ->
  trust imports on one node, root first -> identity import -> restart wave 0 -> wave 1; or
  login -> COP download + install -> wave 0 -> wave 1), and the ratio (goal <= 1.1);
* ca_signed's window in Tomcat restart times and in UCCX node restarts (goal <= 2.2,
  SocialMiner present), twice: with a CA the site does not trust yet (root and intermediate
  uploaded in the window), and ``ca_signed_trusted``: a CA already in tomcat-trust (Cisco
  210528: "you can skip this upload of root certificate if the same CA signs the EC
  certificate and you have already done this when you configured the UCCX application
  certificates"), uploaded before the window is timed;
* availability: a sampler connects to the publisher's and the subscriber's first web port
  every interval; an instant with neither accepting is a gap (goal: none). Beside it, the
  agents' view: both nodes' Finesse SystemInfo in the same samples; an instant with neither
  IN_SERVICE leaves agents with no desktop (goal: none);
* the real-timing waits (issue 22): the subscriber's copy of the trust arrives
  ``trust_replication`` after the publisher's import, Finesse is in service ``finesse_ready``
  after its Tomcat; the critical path counts both. ``--without-waits`` sets both to 0 on the
  mock (what it did before), to see what the waits add to the window;
* CPU time (this process + children) and peak RSS of one headless run (papermill + kernel)
  of ca_signed on the same profile.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_batch import Sampler, uccx_views

from cckit import audit
from cckit.ca import get_adapter
from cckit.headless import run_runbook
from cckit.orchestration import restart_waves
from cckit.procedures import SiteSession
from cckit.procedures.ca_signed import CaSigned
from cckit.procedures.rsa_only import RsaOnly
from cckit.results import Action
from cckit.sites import load_site
from cckit.vosmock.latency import PROFILE
from cckit.vosmock.testing import running_site


def restart_seconds(service: str) -> float:
    return PROFILE.get(f"restart:{service}", PROFILE["restart"])


def node_back(node, profile) -> float:
    """Seconds from a node's first service going down until it is back: its services restart
    one by one; its readiness check (Finesse IN_SERVICE) passes ``finesse_ready`` after the
    service it follows is up again, while the others still restart."""
    t = ready = 0.0
    check = node.spec.readiness
    for service in node.restart_services():
        t += restart_seconds(service)
        if check is not None and service == check.service:
            ready = t + profile["finesse_ready"]
    return max(t, ready)


def waves_seconds(nodes, profile) -> float:
    """Each wave as long as its slowest node."""
    return sum(max(node_back(n, profile) for n in wave) for wave in restart_waves(nodes))


def critical_path(scenario: str, nodes, n_trust: int, profile) -> float:
    if scenario == "ca_signed":
        # the subscriber's import waits for the last CA to replicate from the publisher
        head = (PROFILE["cli_startup"] + PROFILE["csr_generate"]
                + n_trust * PROFILE["trust_import"]
                + (profile["trust_replication"] if n_trust else 0) + PROFILE["cert_import"])
    else:
        head = PROFILE["cli_startup"] + PROFILE["cop_download"] + PROFILE["cop_install"]
    return head + waves_seconds(nodes, profile)


def usage() -> tuple[float, int]:
    """CPU seconds (self + waited-for children) and the larger peak RSS (KiB) of the two."""
    me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return (me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime, max(me.ru_maxrss, ch.ru_maxrss))


SCENARIOS = ("ca_signed", "ca_signed_trusted", "rsa_only")


def _trust_beforehand(s: SiteSession, ca) -> None:
    """The CA's chain into tomcat-trust before the window (done with the application
    certificates, 210528), root first, on every trust target."""
    from cckit.procedures.ca_signed import trust_targets

    for node in trust_targets(s):
        with s.on(node) as t:
            for cert in reversed(ca.chain):
                t.upload_trust(cert)


def one_scenario(scenario: str, d: Path, scale: float, interval: float,
                 profile: dict[str, float]) -> None:
    with running_site(d / scenario, restart_seconds=None, cli_startup_seconds=None,
                      latency=profile, time_scale=scale) as mock:
        site = load_site(mock.site_file)
        tls, finesse = uccx_views(site, mock.state_dir)
        sampler = Sampler({site.name: tls}, interval, finesse={site.name: finesse})
        sampler.start()
        with SiteSession(site, workdir=d / f"{scenario}-run", tls_timeout=3) as s:
            ca_signed = scenario.startswith("ca_signed")
            if ca_signed:
                ca = get_adapter("lab", directory=d / f"labca-{scenario}")
                if scenario == "ca_signed_trusted":
                    _trust_beforehand(s, ca)
                proc = CaSigned(s, ca)
            else:
                proc = RsaOnly(s, "disable")
            steps = ([proc.generate_csrs, proc.sign, proc.gate, proc.upload_trust,
                      proc.upload_identities, proc.restart, proc.verify]
                     if ca_signed else [proc.install_cops, proc.restart, proc.verify])
            t0 = time.perf_counter()
            results, spent = [], []
            for fn in steps:  # where the time goes: each step's wall time
                t = time.perf_counter()
                results.append(fn())
                spent.append((fn.__name__, time.perf_counter() - t))
            window = time.perf_counter() - t0
            nodes = s.nodes
            ops = audit.read(s.audit.path)  # the trust beforehand is not an operation
        sampler.stop_event.set()
        sampler.join(30)
    assert results[-1].ok, results[-1]
    n_trust = 0  # the trust imports on one node inside the window (0 when trusted before)
    if ca_signed:
        per_node: dict[str, int] = {}
        for r in results[3].records:
            if r.action is Action.UPLOADED:
                per_node[r.node] = per_node.get(r.node, 0) + 1
        n_trust = max(per_node.values(), default=0)
    cp = critical_path("ca_signed" if ca_signed else scenario, nodes, n_trust, profile) * scale
    tomcat = restart_seconds("Cisco Tomcat") * scale
    node_restart = max(sum(restart_seconds(x) for x in n.restart_services())
                       for n in nodes) * scale  # one UCCX node's services, one by one
    gaps = sum(len(v) for v in sampler.both_down.values())
    no_desktop = sum(len(v) for v in sampler.no_desktop.values())
    print(f"{scenario}: window {window:.2f} s; critical path {cp:.2f} s -> ratio "
          f"{window / cp:.2f} (goal <= 1.1); window = {window / tomcat:.2f} Tomcat restarts "
          f"= {window / node_restart:.2f} node restarts ({node_restart:.2f} s); "
          f"availability: {sampler.samples} samples; TLS view: {sampler.one_down} with one "
          f"UCCX node down, {gaps} with NEITHER serving; agents' view: "
          f"{sampler.one_no_desktop} with one Finesse not IN_SERVICE, {no_desktop} with "
          f"NEITHER in service")
    restart = results[-2].records
    print("  restart: " + "; ".join(
        f"{r.node} TLS up after {r.serving_after:.2f} s"
        + (f", in service after {r.in_service_after:.2f} s" if r.in_service_after else "")
        for r in restart if r.serving_after is not None))
    if ca_signed:
        arrived = [r.arrived_after for r in results[3].records if r.arrived_after is not None]
        if arrived:
            print(f"  trust replicated to the subscriber after {max(arrived):.2f} s")
    # the time inside node operations (the operation log's start and end of each) vs the
    # steps' wall time: the rest is ours (probes, TLS waits, CA signing, hand-offs)
    busy: dict[str, float] = {}
    for r in ops:
        t_end = dt.datetime.fromisoformat(r["time"].replace("Z", "+00:00"))
        t_start = dt.datetime.fromisoformat(r["started"].replace("Z", "+00:00"))
        key = r["operation"]
        busy[key] = max(busy.get(key, 0.0), (t_end - t_start).total_seconds())
    print("  steps: " + ", ".join(f"{n} {t:.2f} s" for n, t in spent))
    print("  longest single node operation per kind: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in busy.items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--time-scale", type=float, default=0.02)
    ap.add_argument("--sample-interval", type=float, default=0.05)
    ap.add_argument("--no-headless", action="store_true")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help=f"comma-separated, of {', '.join(SCENARIOS)}")
    ap.add_argument("--without-waits", action="store_true",
                    help="trust replicates with the import and Finesse is in service with its "
                    "TLS (the mock before issue 22): what the real-timing waits add")
    args = ap.parse_args()
    profile = dict(PROFILE, **({"trust_replication": 0.0, "finesse_ready": 0.0}
                               if args.without_waits else {}))
    print(f"latency profile x {args.time_scale}: {profile}")
    with tempfile.TemporaryDirectory(prefix="cckit-bench-window-") as d:
        d = Path(d)
        for scenario in args.scenarios.split(","):
            one_scenario(scenario, d, args.time_scale, args.sample_interval, profile)
        if args.no_headless:
            return
        cpu0, _ = usage()
        with running_site(d / "headless", restart_seconds=None, cli_startup_seconds=None,
                          latency=profile, time_scale=args.time_scale) as mock:
            t0 = time.perf_counter()
            o = run_runbook("ca_signed", d / "headless-run", site_file=mock.site_file,
                            parameters={"confirm": "vosmock"}, progress=False)
            wall = time.perf_counter() - t0
        cpu1, rss = usage()
        assert o.ok, o.message
        print(f"headless ca_signed (papermill + kernel): wall {wall:.1f} s, CPU {cpu1 - cpu0:.1f}"
              f" s (this process, mock included, + the kernel), peak RSS {rss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
