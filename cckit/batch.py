"""One runbook across many sites: a papermill run per site, in parallel, with a summary.

Each site gets its own folder (executed notebook, HTML, operation log, status). One site's
failure never stops the others; Ctrl-C (or SIGTERM) stops starting new sites, lets the
running ones end (a second one interrupts them at their step) and keeps every site's record.
The summary (CSV and HTML) says per site: status, duration, failing step and message, and
what each node's web ports now present.

Where the work runs is a seam: local threads by default (each run is a Jupyter kernel
process anyway), or an existing Dask cluster (``dask://HOST:PORT``, the ``dask`` extra).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._internal.fs import out_folder, safe_name
from .display import frame, write_csv
from .errors import InputError, SiteFileError
from .executors import make_executor
from .headless import (
    RunOutcome,
    check_parameters,
    interrupt_on_signals,
    interrupt_running,
    run_runbook,
)
from .scenarios import get as get_scenario
from .sites import Site, discover_sites, load_site

__all__ = ["BatchResult", "SiteJob", "plan_batch", "run_batch"]


@dataclass(frozen=True)
class SiteJob:
    """One site to run: its name in the batch, site file and output folder."""

    #: the batch's name for it (the site's name; ``<name>-<file stem>`` for a second file
    #: naming the same site)
    name: str
    site_file: Path
    out_dir: Path
    nodes: tuple[str, ...] = ()
    error: str | None = None  # the site file is invalid: not run
    #: the site file read and validated once, handed to the run (None: invalid)
    site: Site | None = field(default=None, compare=False, repr=False)

    @property
    def confirm(self) -> str:
        """What confirms changes on it: the site's own name (not the batch's renamed one)."""
        return self.site.name if self.site is not None else self.name


#: the summary's columns (summary.csv, summary.html, ``cckit batch``'s table)
SUMMARY_COLUMNS = ["site", "scenario", "status", "seconds", "failed step", "message",
                   "presented", "folder"]


@dataclass
class BatchResult:
    scenario: str
    out_dir: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(r["status"] == "ok" for r in self.rows)

    def table(self) -> Any:
        """The summary as a DataFrame (one row per site)."""
        return frame(self.rows, SUMMARY_COLUMNS)


def _jobs(files: Sequence[Path], out: Path) -> list[SiteJob]:
    """One job per site file; each site's folder is a sanitised name directly under ``out``
    (a site named ``../x`` or ``/etc`` cannot put its record anywhere else)."""
    jobs, seen = [], set()
    sites: dict[str, Path] = {}  # identity -> the first file describing that site
    for f in files:
        site: Site | None = None
        try:
            site = load_site(f)
            name, nodes, error = site.name, tuple(n.name for n in site.nodes), None
            first = sites.setdefault(site.identity, f)
            if first != f:  # a copy: the site would be changed twice (or refused as locked)
                error = (f"the same site as {first.name} (the same publisher address and "
                         "port): not run twice")
        except SiteFileError as e:
            name, nodes, error = f.stem, (), "site file is invalid: " + "; ".join(e.problems)
        if name in seen:  # two files for one site name: keep both, by file name
            name = f"{name}-{f.stem}"
        seen.add(name)
        jobs.append(SiteJob(name, f.resolve(), out / safe_name(name), nodes, error, site))
    return jobs


def plan_batch(scenario: str, sites: str | os.PathLike, out: str | os.PathLike,
               parameters: Mapping[str, Any] | None = None) -> Any:
    """What would run where, touching nothing (no node is contacted)."""
    check_parameters(scenario, parameters or {})
    rows = [{"site": j.name, "site file": str(j.site_file), "nodes": ", ".join(j.nodes),
             "output folder": str(j.out_dir),
             "runs": f"no: {j.error}" if j.error else f"{scenario}.ipynb"}
            for j in _jobs(discover_sites(sites), Path(out).resolve())]
    return frame(rows, ["site", "site file", "nodes", "output folder", "runs"])


# --------------------------------------------------------------------------- running


def _run_site(scenario: str, job: SiteJob, parameters: dict[str, Any]) -> RunOutcome:
    params = dict(parameters)
    if "confirm" not in params and get_scenario(scenario).takes_confirm:
        # naming the site in the batch (not --plan) is its explicit go-ahead
        params["confirm"] = job.confirm
    return run_runbook(scenario, job.out_dir, site_file=job.site_file, parameters=params,
                       progress=False, site=job.site)


def _presented(scenario: str, outcome: RunOutcome) -> str:
    """Per node, what each client the scenario shows (the registry's ``clients``) is shown
    at the end: a browser on every web port, the others on the first."""
    clients = get_scenario(scenario).clients
    browser = outcome.browser_view()

    def one(node: str, first: dict[str, str]) -> str:
        return f"{node}: " + "; ".join(
            f"{c.upper()} {first.get(c, '')}" if c != "browser"
            else f"browser {browser.get(node, '')}" for c in clients)

    return " | ".join(one(node, p) for node, p in outcome.first_port().items())


def _row(scenario: str, job: SiteJob, outcome: RunOutcome | None, status: str,
         message: str | None = None, seconds: float = 0.0) -> dict[str, Any]:
    return {
        "site": job.name, "scenario": scenario, "status": status,
        "seconds": round(outcome.seconds if outcome else seconds, 1),
        "failed step": outcome.failed_step if outcome else None,
        "message": (outcome.message if outcome else message) or "",
        "presented": _presented(scenario, outcome) if outcome else "",
        "folder": str(job.out_dir),
    }


def run_batch(
    scenario: str,
    sites: str | os.PathLike,
    out: str | os.PathLike,
    *,
    concurrency: int = 2,
    parameters: Mapping[str, Any] | None = None,
    executor: str | None = None,
    progress: bool = True,
) -> BatchResult:
    """Run ``scenario`` on every site; never raises for a site's failure."""
    if concurrency < 1:
        raise InputError(f"concurrency must be at least 1, not {concurrency}")
    params = dict(parameters or {})
    check_parameters(scenario, params)
    out_dir = out_folder(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = _jobs(discover_sites(sites), out_dir)
    result = BatchResult(scenario, out_dir)
    started = time.monotonic()
    rows: dict[str, dict[str, Any]] = {}
    for j in jobs:
        if j.error:
            rows[j.name] = _row(scenario, j, None, "not run" if j.nodes else
                                "invalid site file", j.error)
    runnable = [j for j in jobs if not j.error]
    ex = make_executor(executor, concurrency)
    bar = _progress(len(jobs), progress, initial=len(jobs) - len(runnable))
    queue = iter(runnable)
    inflight: dict[Any, SiteJob] = {}

    def top_up() -> None:
        while len(inflight) < concurrency:
            j = next(queue, None)
            if j is None:
                return
            inflight[ex.submit(_run_site, scenario, j, params)] = j

    def collect(fut: Any) -> None:
        j = inflight.pop(fut)
        try:
            o = fut.result()
            rows[j.name] = _row(scenario, j, o, o.status)
        except Exception as e:  # one site's crash is that site's failure
            rows[j.name] = _row(scenario, j, None, "failed", f"{type(e).__name__}: {e}")
        bar.update(1)
        bar.set_postfix_str(f"last: {j.name} {rows[j.name]['status']}")

    def drain() -> None:
        while inflight:
            for fut in ex.wait_any(list(inflight)):
                collect(fut)

    try:
        with interrupt_on_signals():  # SIGTERM is handled like Ctrl-C
            try:
                top_up()
                while inflight:
                    for fut in ex.wait_any(list(inflight)):
                        collect(fut)
                    top_up()
            except KeyboardInterrupt:
                result.interrupted = True
                bar.write(f"interrupted: no new site starts; waiting for the {len(inflight)} "
                          "running one(s) to end (interrupt again to stop them now)")
                try:
                    drain()
                except KeyboardInterrupt:  # again: the running sites stop at their step
                    bar.write(f"interrupting {interrupt_running()} running site(s)")
                    drain()
                for j in queue:
                    rows[j.name] = _row(scenario, j, None, "cancelled", "Ctrl-C before it ran")
    finally:
        bar.close()
        with contextlib.suppress(Exception):
            ex.close()
    result.rows = [rows[j.name] for j in jobs if j.name in rows]
    result.seconds = time.monotonic() - started
    write_summary(result)
    return result


def _progress(total: int, enabled: bool, initial: int = 0) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="site", disable=not enabled,
                desc="sites", dynamic_ncols=True)


def write_summary(result: BatchResult) -> tuple[Path, Path]:
    """summary.csv and summary.html in the batch folder."""
    df = result.table()
    csv = write_csv(df, result.out_dir / "summary.csv")
    html = result.out_dir / "summary.html"
    ok = sum(r["status"] == "ok" for r in result.rows)
    title = (f"cckit batch {result.scenario}: {ok} of {len(result.rows)} site(s) ok"
             + (" (interrupted)" if result.interrupted else ""))
    html.write_text(
        f"<!doctype html><meta charset='utf-8'><title>{title}</title><h1>{title}</h1>"
        + df.to_html(index=False, escape=True), encoding="utf-8")
    return csv, html
