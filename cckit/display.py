"""Records -> tables, HTML and text: the one place that decides how results look.

Notebooks, the HTML report and the CLI all show :mod:`results` records through here, so a
column name or a badge is written once; records never render themselves (a notebook shows
them through the IPython formatters :func:`use_ipython` registers). :func:`frame` is the one
place a pandas DataFrame is built, :func:`write_csv` the one CSV writer. Nothing here is read
back by code that decides.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import html as _html
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from . import topology
from .certs import CertInfo
from .results import (
    Advice,
    OperationRecord,
    Outcome,
    Plan,
    PlannedCommand,
    PortChange,
    PortView,
    StepRecord,
    StepResult,
    VerifyRecord,
)

__all__ = ["agent_prompts", "badge_text", "browser_text", "cell", "frame", "html",
           "html_table", "presented_table", "presented_text", "table", "text", "use_ipython",
           "write_csv"]

# Left/top-aligned cells (!important beats JupyterLab's right-aligned tables). Long
# fingerprints wrap at the break points _breakable() gives them instead of widening the page;
# words never break inside (``overflow-wrap: anywhere`` let a narrow column show "generate d").
_STYLE = ("<style>table.cckit td, table.cckit th {text-align: left !important; "
          "vertical-align: top !important;} table.cckit td {overflow-wrap: break-word;}"
          " .cckit-nobr {white-space: nowrap;}"
          " .cckit-badge {font-weight: bold; padding: 0 .3em; border-radius: 3px;}"
          " .cckit-ok {background: #d4edda;} .cckit-failed {background: #f8d7da;}"
          " .cckit-other {background: #e2e3e5;}</style>")

_NOTHING = {"handshake_failed": "nothing offered (handshake refused)",
            "refused": "port closed", "timeout": "no answer"}
#: each TLS client's column: a browser offers RSA and ECDSA (the server chooses)
CLIENT_LABELS = {"browser": "browser", "ecdsa": "ECDSA client", "rsa": "RSA client"}


def badge_text(outcome: Outcome) -> str:
    return outcome.value.upper()


def _badge_html(outcome: Outcome) -> str:
    kind = {Outcome.OK: "ok", Outcome.FAILED: "failed"}.get(outcome, "other")
    return f'<span class="cckit-badge cckit-{kind}">{badge_text(outcome)}</span>'


def _line(cn: str, key_type: str, self_signed: bool, issuer: str) -> str:
    """A presented certificate in one line (tables and ``status.json`` readers alike)."""
    return f"{cn} ({key_type}, {'self-signed' if self_signed else 'issuer ' + str(issuer)})"


def _cert(c: CertInfo | None, status: str) -> str:
    if c is None:
        return _NOTHING.get(status, status)
    return _line(c.subject_cn, c.key_type, c.self_signed, c.issuer_cn)


def presented_text(entry: dict[str, Any]) -> str:
    """A ``status.json`` ``presented`` entry as one line (schema 1)."""
    if not entry.get("cn"):
        return _NOTHING.get(entry.get("status", ""), entry.get("status", ""))
    return _line(entry["cn"], entry["key_type"], entry["self_signed"], entry["issuer"])


def browser_text(entries: Iterable[Mapping[str, Any]]) -> str:
    """What a browser is shown on one node's web ports, in one line, from ``status.json``'s
    ``presented`` entries: each certificate (key type; self-signed or its issuer) with the
    ports it is shown on, e.g. ``EC (issuer lab EC) on 12015, RSA (self-signed) on
    8443/8445/8444/7443`` (a summary's one line per node; the tables show every port)."""
    groups: dict[str, list[str]] = {}
    for e in entries:
        status = e.get("status", "")
        signer = "self-signed" if e.get("self_signed") else f"issuer {e.get('issuer')}"
        what = f"{e['key_type']} ({signer})" if e.get("cn") else _NOTHING.get(status, status)
        groups.setdefault(what, []).append(str(e["port"]))
    return ", ".join(f"{what} on {'/'.join(ports)}" for what, ports in groups.items())


def agent_prompts(views: Iterable[PortView]) -> list[str]:
    """In agents' words, what their browsers are shown today that troubles them
    (:func:`cckit.topology.browser_problem`): one line per problem, naming the gadgets and
    the ports (from the ``browser`` views)."""
    groups: dict[str, dict[str, list[str]]] = {}
    views = list(views)
    # where the RSA certificates browsers are shown are CA-signed, a self-signed one is blocked
    blocked = any(v.client == "browser" and v.cert is not None and v.cert.key_type == "RSA"
                  and not v.cert.self_signed for v in views)
    for v in views:
        c = v.cert
        problem = (topology.browser_problem(c.key_type, c.self_signed, c.signed_with)
                   if v.client == "browser" and c is not None else None)
        if problem:
            gadget = v.serves or v.service or "web port"
            groups.setdefault(problem, {}).setdefault(gadget, []).append(f"{v.node} {v.port}")
    lines = []
    for problem, per in groups.items():
        where = " and ".join(f"{g} ({', '.join(ps)})" for g, ps in per.items())
        effect = ("it should not be presented at all; on SocialMiner it breaks chat and "
                  "email (CSCvb58580)" if "RSA" in problem else
                  "their browsers block it (the other web certificates are CA-signed)"
                  if blocked else "agents are asked to accept it there")
        lines.append(f"today agents' browsers are shown {problem} in {where}: {effect}")
    return lines


def cell(value: Any) -> Any:
    """One value as a table shows it: no None/NaN, enums by value, tuples joined."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float):
        return f"{value:.1f} s"
    if isinstance(value, CertInfo):
        return _cert(value, "ok")
    if isinstance(value, tuple | list):
        return "; ".join(str(cell(v)) for v in value)
    return value


def _verify_row(r: VerifyRecord) -> dict[str, Any]:
    v = r.view
    return {"node": v.node, "port": v.port_label, "client": v.client,
            "presented": _cert(v.cert, v.status), "expected": r.expected,
            "as expected": cell(r.ok), "sha256": cell(v.sha256)}


def _port_row(v: PortView) -> dict[str, Any]:
    return {"node": v.node, "port": v.port_label, "client": v.client,
            "presented": _cert(v.cert, v.status), "sha256": cell(v.sha256)}


def _change_row(c: PortChange) -> dict[str, Any]:
    b, a = c.before, c.after
    return {"node": a.node, "port": a.port_label, "client": a.client,
            "before": _cert(b.cert, b.status) if b else "", "after": _cert(a.cert, a.status),
            "sha256 before": cell(b.sha256) if b else "", "sha256 after": cell(a.sha256),
            "changed": cell(c.changed)}


def _when(iso: str) -> str:
    """An ISO time as a table shows it: UTC, to the second, one unbroken word."""
    try:
        when = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _step_row(r: StepRecord) -> dict[str, Any]:
    return {"time": _when(r.time), "step": r.step, "outcome": cell(r.outcome),
            "message": r.message}


_ROWS: dict[type, Callable[[Any], dict[str, Any]]] = {VerifyRecord: _verify_row,
                                                      PortView: _port_row,
                                                      PortChange: _change_row,
                                                      StepRecord: _step_row}


def _row(record: Any) -> dict[str, Any]:
    special = _ROWS.get(type(record))
    if special:
        return special(record)
    if isinstance(record, dict):
        return {k: cell(v) for k, v in record.items()}
    return {f.metadata.get("label", f.name): cell(getattr(record, f.name))
            for f in dataclasses.fields(record)}


#: a table before it is shown: its column labels and one row of cells per record
Grid = tuple[list[str], list[dict[str, Any]]]


def _grid(records: Sequence[Any], cls: type | None = None) -> Grid:
    rows = [_row(r) for r in records]
    if not rows and cls is not None and dataclasses.is_dataclass(cls):
        return [f.metadata.get("label", f.name) for f in dataclasses.fields(cls)], []
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return list(columns), rows


def _presented_grid(views: Iterable[PortView]) -> Grid:
    """One row per (node, port), a column per client; the browser's certificate is one of
    the other two, so only theirs show a fingerprint."""
    views = list(views)
    rows = {(v.node, v.port): {"node": v.node, "port": v.port_label} for v in views}
    order = list(CLIENT_LABELS)
    columns: dict[str, None] = dict.fromkeys(("node", "port"))
    for v in sorted(views, key=lambda v: order.index(v.client) if v.client in order else 9):
        row = rows[(v.node, v.port)]
        label = CLIENT_LABELS.get(v.client, f"{v.client.upper()} client")
        row[label] = _cert(v.cert, v.status)
        columns.setdefault(label)
        if v.client != "browser":
            row[f"{label.split()[0]} sha256"] = cell(v.sha256)
            columns.setdefault(f"{label.split()[0]} sha256")
    return list(columns), list(rows.values())


def _data(value: Any) -> Any:
    """A value as a data column holds it: enums by value, tuples and lists joined."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return "; ".join(str(_data(v)) for v in value)
    return value


def _data_row(record: Any) -> Mapping[str, Any]:
    if isinstance(record, Mapping):
        return record
    as_row = getattr(record, "as_row", None)
    if callable(as_row):
        return as_row()
    return {f.name: _data(getattr(record, f.name)) for f in dataclasses.fields(record)}


def frame(records: Iterable[Any], columns: Sequence[str] | type | None = None) -> Any:
    """The one table helper: records as a pandas DataFrame of their values (not their display
    text), for analysis and files. A record is a mapping, has ``as_row()``, or is a dataclass
    (its fields by name, enums by value, tuples joined). ``columns``: the column names, or a
    dataclass whose fields they are (default: every key, in first-seen order)."""
    import pandas as pd

    rows = [_data_row(r) for r in records]
    if isinstance(columns, type):
        columns = [f.name for f in dataclasses.fields(columns)]
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows for k in row))
    return pd.DataFrame([[row.get(c) for c in columns] for row in rows], columns=list(columns))


def table(records: Sequence[Any], cls: type | None = None) -> Any:
    """A DataFrame of records as a notebook shows them (columns from the field labels)."""
    columns, rows = _grid(records, cls)
    return frame(({c: row.get(c, "") for c in columns} for row in rows), columns)


def presented_table(views: Iterable[PortView]) -> Any:
    """One row per (node, port): what a browser, an ECDSA-only and an RSA-only client are
    shown."""
    columns, rows = _presented_grid(views)
    return frame(({c: row.get(c, "") for c in columns} for row in rows), columns)


#: a CSV cell starting so is a formula to a spreadsheet (a site named "=HYPERLINK(...)")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def write_csv(df: Any, path: Path) -> Path:
    """``df`` as CSV at ``path``; a text cell a spreadsheet would run as a formula is written
    as text, with a leading apostrophe."""
    safe = df.copy()
    for c in safe.columns:
        if safe[c].dtype == object or str(safe[c].dtype).startswith(("string", "str")):
            safe[c] = safe[c].map(
                lambda v: f"'{v}" if isinstance(v, str) and v.startswith(_FORMULA) else v)
    path.parent.mkdir(parents=True, exist_ok=True)
    safe.to_csv(path, index=False)
    return path


def html_table(records: Sequence[Any], cls: type | None = None, *,
               table_id: str | None = None) -> str:
    """Records as one escaped HTML table (for pages outside a notebook, e.g. a dashboard)."""
    return _grid_html(_grid(records, cls), table_id=table_id)


# Notebook outputs are written here, not by pandas: importing pandas (numpy, pyarrow) was a
# quarter of the CPU a headless run's kernel spends (benchmarks/README.md).
def _grid_html(grid: Grid, *, table_id: str | None = None,
               cell_html: Callable[[Any], str] | None = None) -> str:
    """The table as pandas' ``to_html`` writes it; each cell through ``cell_html`` (escaped
    text by default)."""
    columns, rows = grid

    def esc(x: str) -> str:
        return _html.escape(x, quote=False)

    show = cell_html or (lambda v: esc(str(v)))
    ident = f' id="{esc(table_id)}"' if table_id else ""
    head = "".join(f"\n      <th>{esc(str(c))}</th>" for c in columns)
    body = "".join(
        "\n    <tr>" + "".join(f"\n      <td>{show(row.get(c, ''))}</td>"
                              for c in columns) + "\n    </tr>"
        for row in rows)
    return (f'<table class="dataframe cckit"{ident}>\n  <thead>\n'
            f'    <tr style="text-align: right;">{head}\n    </tr>\n  </thead>\n'
            f"  <tbody>{body}\n  </tbody>\n</table>")


def _grid_text(grid: Grid) -> str:
    columns, rows = grid
    cells = [[str(c) for c in columns]] + [[str(row.get(c, "")) for c in columns]
                                           for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join(" ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)).rstrip()
                     for r in cells)


#: a token (no whitespace) longer than this may break: after a separator, or in chunks
_LONG = 24
_CHUNK = 16


def _breakable(value: Any) -> str:
    """One cell as escaped HTML in which words and names stay whole ("generated",
    "uccx-pub") and long tokens (fingerprints, hex keys, paths) break only after ``:/._,-``
    or every 16 characters, so no column is squeezed to a few letters."""
    out = []
    for token in re.split(r"(\s+)", str(value)):
        if len(token) > _LONG:
            pieces = [p[i:i + _CHUNK] for p in re.split(r"(?<=[:/._,-])", token)
                      for i in range(0, len(p), _CHUNK)]
            out.append("<wbr>".join(_html.escape(p) for p in pieces if p))
        elif "-" in token:  # a hyphen is a line break opportunity: not inside a name
            out.append(f'<span class="cckit-nobr">{_html.escape(token)}</span>')
        else:
            out.append(_html.escape(token))
    return "".join(out)


def _html_table(grid: Grid) -> str:
    return _STYLE + _grid_html(grid, cell_html=_breakable)


def html(obj: StepResult | Plan | Advice) -> str:
    if isinstance(obj, Advice):
        e = _html.escape
        items = "".join(f"<li>{e(r)}</li>" for r in obj.reasons)
        nxt = (f"<p><b>{e(obj.next_step)}</b><br>or headless: <code>{e(obj.command)}</code>"
               "</p>" if obj.next_step else "")
        return f"<p><b>{e(obj.headline)}</b></p><ul>{items}</ul>{nxt}"
    if isinstance(obj, Plan):
        out = (f"<p><b>Plan for {_html.escape(obj.procedure)}</b>: "
               f"{len(obj.commands)} command(s), nothing sent yet</p>")
        if obj.commands:
            out += ("<p>Schedule: " + "<br>".join(_html.escape(s) for s in obj.schedule())
                    + "</p>" + _html_table(_grid(obj.commands, PlannedCommand)))
        return out + "".join(f"<p>Note: {_html.escape(n)}</p>" for n in obj.notes)
    out = (f"<p>{_badge_html(obj.outcome)} <b>{_html.escape(obj.step)}</b>: "
           f"{_html.escape(obj.verdict)}</p>")
    if obj.records:
        out += _html_table(_result_grid(obj))
    return out


def _by_port(records: Sequence[VerifyRecord | PortChange]) -> list[Any]:
    """Each port's views together (node and port in the order first seen), so what a
    browser and the other clients are shown on one port read side by side."""
    def port(r: VerifyRecord | PortChange) -> tuple[str, int]:
        v = r.view if isinstance(r, VerifyRecord) else r.after
        return v.node, v.port

    first: dict[tuple[str, int], int] = {}
    for r in records:
        first.setdefault(port(r), len(first))
    return sorted(records, key=lambda r: first[port(r)])


def _result_grid(result: StepResult) -> Grid:
    records = result.records
    if records and all(isinstance(r, PortView) for r in records):
        return _presented_grid(records)
    if records and all(isinstance(r, VerifyRecord | PortChange) for r in records):
        records = _by_port(records)
    columns, rows = _grid(records)
    if (all(isinstance(r, PortChange) for r in result.records)
            and len({r.after.client for r in result.records}) == 1):
        columns.remove("client")  # one kind of client: the verdict names it
    return columns, rows


def text(obj: StepResult | Plan | Advice) -> str:
    if isinstance(obj, Advice):
        lines = [obj.headline, *(f"  - {r}" for r in obj.reasons)]
        if obj.next_step:
            lines += [obj.next_step, f"  or headless: {obj.command}"]
        return "\n".join(lines)
    if isinstance(obj, Plan):
        out = f"Plan for {obj.procedure}: {len(obj.commands)} command(s)"
        if obj.commands:
            out += "".join(f"\nSchedule {s}" for s in obj.schedule())
            out += "\n" + _grid_text(_grid(obj.commands, PlannedCommand))
        return out + "".join(f"\nNote: {n}" for n in obj.notes)
    out = f"[{badge_text(obj.outcome)}] {obj.step}: {obj.verdict}"
    if obj.records:
        out += "\n" + _grid_text(_result_grid(obj))
    return out


def use_ipython() -> None:
    """In a notebook kernel, show steps, plans and advice through :func:`html` (IPython's
    HTML formatter); their plain text stays their one-line ``repr``. Nothing happens outside
    IPython, and nothing is imported for it."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["text/html"]
    for cls in (StepResult, Plan, Advice):
        formatter.for_type(cls, html)


# --------------------------------------------------------------------------- the report

#: the auditor's HTML prints on A4 landscape without losing a column: tables take the page
#: width with fixed layout and wrap long values (fingerprints, paths) instead of widening it
REPORT_CSS = """<style>
@page { size: A4 landscape; margin: 10mm; }
body { max-width: 100%; }
.jp-Notebook, .jp-Cell, .jp-OutputArea-output { max-width: 100% !important; }
.jp-OutputArea-output { overflow-x: visible !important; }
.jp-RenderedHTMLCommon table { table-layout: fixed; width: 100% !important; }
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { overflow-wrap: anywhere;
  word-break: break-word; white-space: normal !important; }
pre { white-space: pre-wrap !important; overflow-wrap: anywhere; }
.cckit-record { border: 1px solid #999; padding: .5em 1em; margin: 1em 0; }
.cckit-record table { table-layout: fixed; width: 100%; border-collapse: collapse; }
.cckit-record td, .cckit-record th { text-align: left; vertical-align: top; padding: 1px 6px;
  overflow-wrap: anywhere; font-size: 90%; }
@media print {
  body, .jp-Notebook { padding: 0 !important; margin: 0 !important; font-size: 9pt; }
  .jp-Cell { break-inside: auto; }
  tr { break-inside: avoid; }
}
</style>"""


def record_html(status: dict[str, Any], operations: Sequence[OperationRecord] = ()) -> str:
    """The summary at the top of the report: who, when, what, on which versions, and every
    change with its fingerprints before and after (from ``status.json`` and the op log)."""
    rec = status.get("record") or {}
    e = _html.escape
    rows = [("run", f"{status.get('scenario')} on site {status.get('site')}: "
                    f"{str(status.get('status', '')).upper()}"),
            ("operator", rec.get("operator", "")), ("change", rec.get("change") or "none"),
            ("started", rec.get("started", "")), ("ended", rec.get("ended") or ""),
            ("duration", f"{rec['seconds']:.0f} s" if rec.get("seconds") is not None else ""),
            ("cckit", rec.get("cckit_version", "")),
            ("node versions", ", ".join(f"{n} {v}" for n, v in
                                        (rec.get("node_versions") or {}).items())),
            ("parameters", ", ".join(f"{k}={v}" for k, v in
                                     (rec.get("parameters") or {}).items()))]
    if status.get("failed_step"):
        rows.append(("failed step", f"{status['failed_step']}: {status.get('message')}"))
    body = "".join(f"<tr><th style='width:9em'>{e(k)}</th><td>{e(str(v))}</td></tr>"
                   for k, v in rows)
    ops = "".join(
        f"<tr><td>{e(o.time)}</td><td>{e(o.node)}</td><td>{e(o.operation)}</td>"
        f"<td>{e(o.subject)}</td><td>{e(o.outcome)}</td><td>{e('; '.join(o.before))}</td>"
        f"<td>{e('; '.join(o.after))}</td></tr>" for o in operations)
    changes = ("<p>No state-changing operation.</p>" if not operations else
               "<table><colgroup><col style='width:12%'><col style='width:7%'>"
               "<col style='width:10%'><col style='width:13%'><col style='width:6%'>"
               "<col style='width:26%'><col style='width:26%'></colgroup><tr><th>time</th>"
               "<th>node</th><th>operation</th><th>on</th><th>outcome</th>"
               f"<th>before</th><th>after</th></tr>{ops}</table>")
    return (f"<div class='cckit-record'><h2>Audit record</h2><table>{body}</table>"
            f"<h3>Changes ({len(operations)})</h3>{changes}</div>")


def report_html(body: str, *, title: str, record: str = "") -> str:
    """nbconvert's HTML with a real title, the print CSS and the record at the top."""
    body = re.sub(r"<title>.*?</title>", f"<title>{_html.escape(title)}</title>", body,
                  count=1, flags=re.S)
    body = body.replace("</head>", REPORT_CSS + "</head>", 1)
    if record:
        body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + record, body, count=1)
    return body
