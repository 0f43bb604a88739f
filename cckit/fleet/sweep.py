"""A read-only sweep of many sites: collect in parallel, find, remember, alert, write.

Sites are read at most ``concurrency`` at once on local threads or on an existing Dask
cluster (``dask://HOST:PORT``, the executors of :mod:`cckit.batch`); findings, the state
between sweeps, alerts and the files are made here, once every site is in. One site's
failure is that site's finding; Ctrl-C stops starting new sites and keeps what finished.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..executors import make_executor
from ..results import Outcome as _Outcome
from ..results import StepResult, col
from ..sites import discover_sites
from .alerts import Notifier, SweepState, notify
from .collect import SweepOptions, collect_site
from .records import CertRow, CsrRow, Finding, NodeRow, PortRow, Severity, SiteInventory
from .rules import Policy, findings

__all__ = ["SiteRow", "Sweep", "run_sweep", "site_files"]

DEFAULT_POLICY = Policy()


def site_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Site files from folders, list files and single site files (``.yaml``/``.yml``)."""
    out: list[Path] = []
    for p in map(Path, paths):
        out += [p] if p.is_file() and p.suffix in (".yaml", ".yml") else discover_sites(p)
    if not out:
        raise InputError("no site files given", hint="--sites FOLDER or FILE ...")
    return list(dict.fromkeys(f.resolve() for f in out))


@dataclass(frozen=True)
class SiteRow:
    site: str = col("site")
    nodes: int = col("nodes")
    failed: int = col("nodes not read")
    certificates: int = col("certificates")
    findings: int = col("findings")
    worst: str = col("worst")


@dataclass(repr=False)
class Sweep:
    """One sweep's records, findings and files."""

    sites: list[SiteInventory]
    findings: list[Finding]
    new: list[Finding]
    csrs: list[CsrRow]
    policy: Policy
    now: dt.datetime
    seconds: float = 0.0
    interrupted: bool = False
    problems: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def certs(self) -> list[CertRow]:
        return [c for s in self.sites for c in s.certs]

    @property
    def nodes(self) -> list[NodeRow]:
        return [n for s in self.sites for n in s.nodes]

    @property
    def ports(self) -> list[PortRow]:
        return [p for s in self.sites for p in s.ports]

    def severity_counts(self) -> dict[str, int]:
        return {s.value: sum(f.severity is s for f in self.findings) for s in Severity}

    def frame(self, what: str = "certificates") -> Any:
        """A typed DataFrame: certificates, nodes, ports, csrs or findings."""
        from .report import frame

        records, cls = {"certificates": (self.certs, CertRow), "nodes": (self.nodes, NodeRow),
                        "ports": (self.ports, PortRow), "csrs": (self.csrs, CsrRow),
                        "findings": (self.findings, Finding)}[what]
        return frame(records, cls)

    # -- shown (notebook cells): StepResults, through cckit.display
    def summary(self) -> StepResult:
        rows = []
        for s in self.sites:
            mine = [f for f in self.findings if f.site == s.site]
            rows.append(SiteRow(s.site, len(s.nodes), sum(bool(n.error) for n in s.nodes),
                                len(s.certs), len(mine),
                                min(mine, key=lambda f: f.severity.rank).severity.value
                                if mine else "ok"))
        counts = ", ".join(f"{n} {s}" for s, n in self.severity_counts().items() if n)
        failed = sum(r.failed for r in rows) + sum(bool(s.error) for s in self.sites)
        verdict = (f"{len(self.sites)} site(s), {len(self.nodes)} node(s), {len(self.certs)} "
                   f"certificate(s) in {self.seconds:.1f} s; {len(self.findings)} finding(s)"
                   + (f" ({counts})" if counts else "") + f", {len(self.new)} new"
                   + (f"; {failed} node(s) or site(s) not read" if failed else "")
                   + ("; INTERRUPTED" if self.interrupted else ""))
        return StepResult("inventory", verdict, rows,
                          _Outcome.FAILED if failed or self.interrupted else _Outcome.OK)

    def findings_result(self, *, new_only: bool = False) -> StepResult:
        shown = self.new if new_only else self.findings
        return StepResult("findings", f"{len(shown)} {'new ' if new_only else ''}finding(s), "
                          "worst first, each with the runbook that fixes it", shown)

    def identities(self) -> StepResult:
        own = [c for c in self.certs if c.store == "own"]
        return StepResult("identities", f"{len(own)} identity certificate(s) (own store); "
                          "the trust stores are in the files", own)

    def timeline(self) -> Any:
        from .dashboard import timeline_svg

        return _Svg(timeline_svg(self.certs, [s.site for s in self.sites], self.policy))

    def files_result(self) -> StepResult:
        return StepResult("files", f"{len(self.files)} file(s) written",
                          [{"file": k, "path": str(v)} for k, v in self.files.items()])


@dataclass(frozen=True)
class _Svg:
    svg: str

    def _repr_html_(self) -> str:
        return self.svg

    def __repr__(self) -> str:
        return "expiry timeline (SVG)"


def _collect(paths: Sequence[Path], options: SweepOptions, concurrency: int,
             executor: str | None, progress: bool) -> tuple[list[SiteInventory], bool]:
    """Every site's inventory, at most ``concurrency`` in flight; (inventories, interrupted)."""
    from tqdm import tqdm

    ex = make_executor(executor, concurrency)
    done: dict[Path, SiteInventory] = {}
    pending = iter(paths)
    inflight: dict[Any, Path] = {}
    bar = tqdm(total=len(paths), unit="site", desc="sweep", disable=not progress)
    interrupted = False

    def harvest(fut: Any) -> None:
        path = inflight.pop(fut)
        try:
            done[path] = fut.result()
        except Exception as e:  # a crash reading one site is that site's finding
            done[path] = SiteInventory(path.stem, str(path), error=f"{type(e).__name__}: {e}")
        bar.update(1)

    try:
        try:
            while True:
                while len(inflight) < concurrency and (p := next(pending, None)) is not None:
                    inflight[ex.submit(collect_site, str(p), options)] = p
                if not inflight:
                    break
                for fut in ex.wait_any(list(inflight)):
                    harvest(fut)
        except KeyboardInterrupt:
            interrupted = True
            while inflight:
                for fut in ex.wait_any(list(inflight)):
                    harvest(fut)
    finally:
        bar.close()
        ex.close()
    return [done[p] for p in paths if p in done], interrupted


def run_sweep(
    sites: Sequence[str | os.PathLike],
    *,
    out: str | os.PathLike | None = None,
    policy: Policy = DEFAULT_POLICY,
    concurrency: int = 4,
    executor: str | None = None,
    notifiers: Sequence[Notifier] = (),
    state: str | os.PathLike | None = None,
    prom_file: str | os.PathLike | None = None,
    now: dt.datetime | None = None,
    timeout: float = 30.0,
    tls_timeout: float = 5.0,
    progress: bool = False,
) -> Sweep:
    """Sweep every site (read-only); with ``out``, write the files there. ``state``: the
    file kept between sweeps (default ``out``/state.json; none without ``out``)."""
    if concurrency < 1:
        raise InputError(f"concurrency must be at least 1, not {concurrency}")
    paths = site_files(sites)
    now = now or dt.datetime.now(dt.UTC)
    started = time.monotonic()
    options = SweepOptions(now=now, timeout=timeout, tls_timeout=tls_timeout)
    inventories, interrupted = _collect(paths, options, concurrency, executor, progress)
    out_dir = Path(out).resolve() if out else None
    state_path = Path(state) if state else (out_dir / "state.json" if out_dir else None)
    memory = SweepState.load(state_path) if state_path else None
    csrs = [c for s in inventories for c in s.csrs]
    if memory is not None:
        csrs = memory.csr_ages(csrs, now)
    found = sorted((f for s in inventories for f in findings(
        s, policy, [c for c in csrs if c.site == s.site])),
        key=lambda f: (f.severity.rank, f.site, f.node, f.code.value, f.subject))
    new = memory.new(found, retry_unsent=bool(notifiers)) if memory is not None else found
    sent, problems = notify(notifiers, new)
    if memory is not None:
        memory.update(found, sent if notifiers else set(), now)
        memory.save()
    result = Sweep(inventories, found, new, csrs, policy, now,
                   time.monotonic() - started, interrupted, problems)
    if out_dir is not None:
        from .report import write_outputs

        write_outputs(result, out_dir, prom_file=Path(prom_file) if prom_file else None)
    return result
