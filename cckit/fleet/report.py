"""The sweep's files: typed tables (CSV, Parquet), and a Prometheus text file.

The tables are the records' fields as columns, typed (datetimes, integers, booleans), for
pandas, a spreadsheet or a warehouse. ``inventory.parquet`` needs ``pyarrow`` (the
``parquet`` extra); without it the CSV is the whole record and the outcome says so. CSV cells
that a spreadsheet would run as a formula (a certificate's CN is input from anyone) get a
leading ``'``. The Prometheus file follows the text exposition format, for node_exporter's
textfile collector (written atomically, as the collector requires).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import display
from .._internal.fs import atomic_write
from .records import CertRow, CsrRow, Finding, NodeRow, PortRow, Severity

if TYPE_CHECKING:
    from .sweep import Sweep

__all__ = ["frame", "prometheus_text", "write_outputs", "write_table"]

def frame(records: Sequence[Any], cls: type) -> Any:
    """A typed DataFrame: one row per record, one column per field (its name)."""
    return display.frame(records, cls)


def write_table(df: Any, path: Path, *, parquet: bool = False) -> list[Path]:
    """``path`` as CSV, and beside it ``.parquet`` when asked and pyarrow is there."""
    written = [display.write_csv(df, path)]
    if parquet:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            return written
        pq = path.with_suffix(".parquet")
        df.to_parquet(pq, index=False)
        written.append(pq)
    return written


# ------------------------------------------------------------------------------ Prometheus


def _label(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _labels(**kw: str) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in kw.items()) + "}"


def prometheus_text(certs: Sequence[CertRow], findings: Sequence[Finding], *,
                    now: dt.datetime, seconds: float, nodes_ok: int, nodes_failed: int) -> str:
    """The metrics of one sweep (text exposition format 0.0.4)."""
    lines = [
        "# HELP cckit_certificate_expiry_seconds The certificate's notAfter, as a Unix time "
        "(alert on it minus time()).",
        "# TYPE cckit_certificate_expiry_seconds gauge",
    ]
    series: dict[str, float] = {}
    for c in certs:
        key = _labels(site=c.site, node=c.node, unit=c.unit, serial=c.serial)
        value = c.not_after.timestamp()
        series[key] = min(value, series.get(key, value))  # one series per label set
    lines += [f"cckit_certificate_expiry_seconds{k} {v:.0f}" for k, v in series.items()]
    counts: dict[str, int] = {}
    for f in findings:
        key = _labels(severity=f.severity.value, code=f.code.value, site=f.site, node=f.node,
                      unit=f.unit)
        counts[key] = counts.get(key, 0) + 1
    lines += [
        "# HELP cckit_finding Findings of the last sweep (count per label set).",
        "# TYPE cckit_finding gauge",
        *(f"cckit_finding{k} {v}" for k, v in counts.items()),
        "# HELP cckit_findings Findings of the last sweep per severity.",
        "# TYPE cckit_findings gauge",
        *(f"cckit_findings{_labels(severity=s.value)} "
          f"{sum(f.severity is s for f in findings)}" for s in Severity),
        "# HELP cckit_sweep_nodes Nodes of the last sweep, read or not.",
        "# TYPE cckit_sweep_nodes gauge",
        f'cckit_sweep_nodes{{status="ok"}} {nodes_ok}',
        f'cckit_sweep_nodes{{status="failed"}} {nodes_failed}',
        "# HELP cckit_sweep_duration_seconds How long the last sweep took.",
        "# TYPE cckit_sweep_duration_seconds gauge",
        f"cckit_sweep_duration_seconds {seconds:.3f}",
        "# HELP cckit_last_sweep_timestamp_seconds When the last sweep ran (Unix time).",
        "# TYPE cckit_last_sweep_timestamp_seconds gauge",
        f"cckit_last_sweep_timestamp_seconds {now.timestamp():.0f}",
    ]
    return "\n".join(lines) + "\n"


def write_prometheus(text: str, path: Path) -> Path:
    atomic_write(path, text.encode())
    return path


def write_outputs(sweep: Sweep, out: Path, *, prom_file: Path | None = None) -> dict[str, Path]:
    """Every file of a sweep in ``out``; also records them in ``sweep.files``."""
    from .dashboard import dashboard_html

    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for name, records, cls, parquet in (
            ("inventory", sweep.certs, CertRow, True), ("findings", sweep.findings, Finding, False),
            ("nodes", sweep.nodes, NodeRow, False), ("ports", sweep.ports, PortRow, False),
            ("csrs", sweep.csrs, CsrRow, False)):
        for p in write_table(frame(records, cls), out / f"{name}.csv", parquet=parquet):
            files[p.name] = p
    page = out / "dashboard.html"
    atomic_write(page, dashboard_html(sweep).encode())
    files[page.name] = page
    nodes_failed = sum(bool(n.error) and not n.version for n in sweep.nodes)
    text = prometheus_text(sweep.certs, sweep.findings, now=sweep.now, seconds=sweep.seconds,
                           nodes_ok=len(sweep.nodes) - nodes_failed, nodes_failed=nodes_failed)
    for p in dict.fromkeys([out / "cckit.prom", *([prom_file] if prom_file else [])]):
        files[str(p) if p.parent != out else p.name] = write_prometheus(text, p)
    sweep.files = files
    return files
