"""Many independent sites in one process (`serve --sites N`, `inprocess.running_sites`).

Site i (1-based) of N is named `site-001` ... (at least 3 digits), lives in `<root>/site-001`,
uses the domain `site-001.<domain>` (so host names differ across sites) and its own ports:
with `base_port` B the fixed layout of a single site from B + (i-1)*SITE_PORT_STRIDE; without
it, free ports handed out jointly (so no two sites get the same one) on first boot and kept in
each site's `site.json` afterwards.

First boot is dominated by key generation (per node RSA-2048 + EC P-384 + ed25519, ~0.15 s a
site); when several sites need it, it runs in a process pool (one worker per CPU), which writes
the state directories; the event-loop process then only loads them.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .site import (
    NODE_SPECS,
    PORTS_PER_SITE,
    PRODUCT_NODE_SPECS,
    MockSite,
    free_port_map,
    free_ports,
)
from .store import read_json

SITE_PORT_STRIDE = 40  # base-port layout: site i uses B + (i-1)*40 .. + 31
# file descriptors: listeners per site (SSH, web, REST, SFTP, control) and room for connections
FDS_PER_SITE_MIN = PORTS_PER_SITE + 4
FDS_PER_SITE = 48
FDS_BASE = 256
POOL_MIN_SITES = 4  # fewer sites to first-boot than this: generate keys in-process


class SiteSetupError(RuntimeError):
    pass


def site_name(i: int, n: int) -> str:
    return f"site-{i:0{max(3, len(str(n)))}d}"


def ensure_fd_limit(n_sites: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE (up to the hard limit) if it is short for `n_sites`.

    Returns (soft limit now, descriptors wanted). Raises SiteSetupError when even the hard
    limit is below what the listening sockets alone need."""
    want = FDS_BASE + FDS_PER_SITE * n_sites
    need = FDS_BASE + FDS_PER_SITE_MIN * n_sites
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        target = hard if hard != resource.RLIM_INFINITY else max(want, soft)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            try:  # e.g. an "unlimited" hard limit above the kernel's nr_open
                resource.setrlimit(resource.RLIMIT_NOFILE, (max(want, soft), hard))
            except (ValueError, OSError):
                pass
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < need:
        raise SiteSetupError(
            f"{n_sites} sites need at least {need} file descriptors ({want} recommended) but "
            f"the limit is {soft} (hard limit {hard}); raise it (ulimit -n / limits.conf) "
            "or serve fewer sites"
        )
    return soft, want


def plan_sites(
    root: str | os.PathLike,
    n: int,
    *,
    base_port: int | None = None,
    domain: str = "cc.example.com",
    **options,
) -> list[tuple[Path, dict]]:
    """(state dir, MockSite keyword arguments) for sites 1..n under `root`.

    Sites without a saved port assignment (and no `base_port`) get distinct free ports that
    avoid every port the other sites already saved."""
    if n < 1:
        raise SiteSetupError("the number of sites must be at least 1")
    if "control_port" in options and options["control_port"] is not None:
        raise SiteSetupError("control_port cannot be given for many sites (each has its own)")
    options.pop("control_port", None)
    options.pop("site", None)
    if base_port is not None and not (
        1 <= base_port and base_port + (n - 1) * SITE_PORT_STRIDE + PORTS_PER_SITE < 65536
    ):
        raise SiteSetupError(f"--base-port {base_port} leaves no room for {n} sites")
    root = Path(root).resolve()
    plans: list[tuple[Path, dict]] = []
    fresh: list[int] = []
    taken: set[int] = set()
    for i in range(1, n + 1):
        name = site_name(i, n)
        state_dir = root / name
        kwargs = dict(options, site=name, domain=f"{name}.{domain}")
        if base_port is not None:
            kwargs["base_port"] = base_port + (i - 1) * SITE_PORT_STRIDE
        else:
            saved = (read_json(state_dir / "site.json", {}) or {}).get("ports")
            if saved:
                taken.update(_ports_of(saved))
            else:
                fresh.append(len(plans))
        plans.append((state_dir, kwargs))
    if fresh:
        pool = iter(free_ports(PORTS_PER_SITE * len(fresh), exclude=taken))
        for k in fresh:
            specs = PRODUCT_NODE_SPECS[plans[k][1].get("product", "uccx")]
            plans[k][1]["ports"] = free_port_map(pool, specs)
    return plans


def _ports_of(ports: dict) -> list[int]:
    out = [ports.get("sftp"), ports.get("control")]
    for p in (ports.get("nodes") or {}).values():
        out += [p.get("ssh"), p.get("rest"), *(p.get("web") or [])]
    return [x for x in out if isinstance(x, int)]


def needs_first_boot(state_dir: Path) -> bool:
    if not (state_dir / "site.json").exists():
        return True
    return any(not (state_dir / "nodes" / s.name / "node.json").exists() for s in NODE_SPECS)


def _first_boot(state_dir: str, kwargs: dict) -> str:
    MockSite(state_dir, **kwargs)  # generates and persists keys, certs, passwords, ports
    return state_dir


def first_boot(plans: list[tuple[Path, dict]], workers: int | None = None) -> int:
    """Create the state of every planned site that has none yet; returns how many.

    `workers`: processes for key generation (None: one per CPU when at least
    POOL_MIN_SITES sites need it; 0 or 1: in this process)."""
    todo = [(str(d), kw) for d, kw in plans if needs_first_boot(d)]
    if not todo:
        return 0
    if workers is None:
        workers = (os.cpu_count() or 1) if len(todo) >= POOL_MIN_SITES else 1
    workers = min(workers, len(todo))
    if workers <= 1:
        for d, kw in todo:
            _first_boot(d, kw)
        return len(todo)
    # spawn: safe from a process that already runs threads (tests, the event loop thread)
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as ex:
        for fut in [ex.submit(_first_boot, d, kw) for d, kw in todo]:
            fut.result()
    return len(todo)


def make_sites(plans: list[tuple[Path, dict]]) -> list[MockSite]:
    """The MockSite objects (loads the state; call on the event loop's thread)."""
    return [MockSite(d, **kw) for d, kw in plans]


def write_site_files(sites: list[MockSite], directory: str | os.PathLike) -> list[Path]:
    """`<directory>/<site name>.yaml` (+ `.known_hosts`) for every site."""
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    return [s.write_site_file(directory / f"{s.name}.yaml") for s in sites]
