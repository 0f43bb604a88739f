"""The fleet dashboard: one self-contained HTML file (no network, no external script).

A badge per site (its worst finding), an expiry timeline across sites (inline SVG, days from
the sweep, so it reads the same whatever the date), and the findings, certificates, nodes and
ports as tables a click sorts and a box filters. Tables come from :mod:`cckit.display`;
every value is HTML-escaped (certificate names are anyone's input).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..display import html_table
from .records import CertRow, CsrRow, Finding, NodeRow, PortRow, Severity
from .rules import Policy

if TYPE_CHECKING:
    from .sweep import Sweep

__all__ = ["dashboard_html", "site_badges", "timeline_svg"]

#: the timeline's span, in days from the sweep
BEFORE, AFTER = 60, 395
_TICKS = ((-60, "-60 d"), (0, "today"), (30, "30 d"), (60, "60 d"), (90, "90 d"),
          (180, "6 mo"), (365, "1 y"))
_COLOURS = {"critical": "#b00020", "high": "#e65100", "medium": "#f9a825", "low": "#1565c0",
            "ok": "#2e7d32"}

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:1.6em}
.badges{display:flex;flex-wrap:wrap;gap:.4em}
.badge{border-radius:4px;padding:.15em .5em;color:#fff;font-size:.85em;cursor:pointer;
 border:0}
.sev-critical{background:#b00020}.sev-high{background:#e65100}
.sev-medium{background:#f9a825;color:#222}.sev-low{background:#1565c0}.sev-ok{background:#2e7d32}
.chart{max-height:640px;overflow:auto;border:1px solid #ddd}
table.cckit{border-collapse:collapse;font-size:.8em}
table.cckit th{cursor:pointer;background:#f0f0f0;position:sticky;top:0;white-space:nowrap}
table.cckit td,table.cckit th{border:1px solid #ddd;padding:2px 4px;text-align:left;
 vertical-align:top;overflow-wrap:break-word;max-width:40em}
.tools{margin:.4em 0}
"""

_JS = """
(function(){
  function text(td){return (td && td.textContent || '').trim();}
  function sortBy(table, i, th){
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir > 0 ? 'asc' : 'desc';
    rows.sort(function(a, b){
      var x = text(a.cells[i]), y = text(b.cells[i]), nx = parseFloat(x), ny = parseFloat(y);
      if (!isNaN(nx) && !isNaN(ny) && String(nx) === x && String(ny) === y)
        return (nx - ny) * dir;
      return x.localeCompare(y) * dir;
    });
    rows.forEach(function(r){ body.appendChild(r); });
  }
  function filter(table){
    var box = document.getElementById('filter-' + table.id);
    var sel = document.getElementById('severity-' + table.id);
    var words = (box ? box.value : '').toLowerCase().split(/\\s+/).filter(Boolean);
    var sev = sel ? sel.value : '';
    var shown = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function(r){
      var t = r.textContent.toLowerCase();
      var ok = words.every(function(w){ return t.indexOf(w) >= 0; }) &&
               (!sev || text(r.cells[0]) === sev);
      r.style.display = ok ? '' : 'none'; if (ok) shown++;
    });
    var count = document.getElementById('count-' + table.id);
    if (count) count.textContent = shown + ' of ' + table.tBodies[0].rows.length + ' row(s)';
  }
  var tables = document.querySelectorAll('table.cckit');
  Array.prototype.forEach.call(tables, function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function(th, i){
      th.title = 'click to sort';
      th.addEventListener('click', function(){ sortBy(table, i, th); });
    });
    ['filter-', 'severity-'].forEach(function(p){
      var el = document.getElementById(p + table.id);
      if (el) el.addEventListener('input', function(){ filter(table); });
    });
    filter(table);
  });
  Array.prototype.forEach.call(document.querySelectorAll('.badge[data-site]'), function(b){
    b.addEventListener('click', function(){
      ['findings', 'certificates'].forEach(function(id){
        var box = document.getElementById('filter-' + id);
        if (box) { box.value = b.dataset.site; filter(document.getElementById(id)); }
      });
    });
  });
})();
"""


def _worst(findings: Sequence[Finding]) -> str:
    return min(findings, key=lambda f: f.severity.rank).severity.value if findings else "ok"


def site_badges(sites: Sequence[str], findings: Sequence[Finding]) -> str:
    """One badge per site: its worst finding's severity and how many findings it has."""
    out = []
    for s in sites:
        mine = [f for f in findings if f.site == s]
        worst = _worst(mine)
        label = f"{s} · {len(mine)} {worst}" if mine else f"{s} · ok"
        out.append(f'<button class="badge sev-{worst}" data-site="{html.escape(s)}" '
                   f'title="{len(mine)} finding(s)">{html.escape(label)}</button>')
    return '<div class="badges">' + "".join(out) + "</div>"


def timeline_svg(certs: Sequence[CertRow], sites: Sequence[str], policy: Policy) -> str:
    """Expiry across sites: a lane per site, a dot per certificate at its days left."""
    identities = {c.sha256 for c in certs if c.store == "own"}
    left, width, lane, top = 140, 760, 14, 28
    height = top + lane * max(1, len(sites)) + 24

    def x(days: int) -> float:
        return left + (min(max(days, -BEFORE), AFTER) + BEFORE) * width / (BEFORE + AFTER)

    parts = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}"'
             f' height="{height}" role="img" aria-label="certificate expiry by site">',
             '<style>text{font:11px sans-serif}</style>']
    for days, label in _TICKS:
        parts.append(f'<line x1="{x(days):.1f}" y1="{top - 6}" x2="{x(days):.1f}" '
                     f'y2="{height - 20}" stroke="{"#444" if days == 0 else "#ccc"}" '
                     f'stroke-dasharray="{"" if days == 0 else "3,3"}"/>')
        parts.append(f'<text x="{x(days):.1f}" y="{top - 10}" text-anchor="middle">'
                     f'{label}</text>')
    for i, site in enumerate(sites):
        y = top + lane * i + lane / 2
        parts.append(f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{html.escape(site)}</text>')
        seen = set()
        for c in certs:
            if c.site != site or c.sha256 in seen or (c.store == "trust"
                                                      and c.sha256 in identities):
                continue
            seen.add(c.sha256)
            sev = policy.expiry_severity(c.days_left)
            colour = _COLOURS[sev.value if sev else "ok"]
            clamped = not -BEFORE <= c.days_left <= AFTER
            title = (f"{site} {c.node} {c.unit} {c.subject}: {c.days_left} d left "
                     f"(not after {c.not_after:%Y-%m-%d %H:%M} UTC)")
            parts.append(
                f'<circle class="cert" cx="{x(c.days_left):.1f}" cy="{y:.1f}" '
                f'r="{4 if c.store == "own" else 3}" fill="{"none" if clamped else colour}" '
                f'stroke="{colour}"><title>{html.escape(title)}</title></circle>')
    parts.append(f'<text x="{left}" y="{height - 6}">filled: within the span; hollow: '
                 f'beyond it; large: identities, small: trust</text>')
    return "".join(parts) + "</svg>"


def _section(title: str, table_id: str, records: Sequence, cls: type, *,
             severity: bool = False) -> str:
    tools = (f'<div class="tools"><input id="filter-{table_id}" placeholder="filter" '
             f'size="30"> ')
    if severity:
        opts = "".join(f'<option value="{s.value}">{s.value}</option>' for s in Severity)
        tools += (f'<select id="severity-{table_id}"><option value="">any severity</option>'
                  f"{opts}</select> ")
    tools += f'<span id="count-{table_id}"></span></div>'
    return (f"<section><h2>{html.escape(title)}</h2>{tools}"
            f"{html_table(records, cls, table_id=table_id)}</section>")


def dashboard_html(sweep: Sweep) -> str:
    """The whole page, for a browser."""
    findings = sweep.findings
    sites = [s.site for s in sweep.sites]
    head = (f"{len(sites)} site(s), {len(sweep.nodes)} node(s), {len(sweep.certs)} "
            f"certificate(s); {len(findings)} finding(s) "
            f"({', '.join(f'{n} {s}' for s, n in sweep.severity_counts().items() if n)})")
    body = [
        f"<h1>cckit certificate inventory</h1><p>Swept {sweep.now:%Y-%m-%d %H:%M} UTC in "
        f"{sweep.seconds:.1f} s: {html.escape(head)}.</p>",
        f'<section id="sites"><h2>Sites</h2>{site_badges(sites, findings)}</section>',
        '<section><h2>Expiry timeline</h2><div class="chart">'
        f"{timeline_svg(sweep.certs, sites, sweep.policy)}</div></section>",
        _section("Findings", "findings", findings, Finding, severity=True),
        _section("Certificates", "certificates", sweep.certs, CertRow),
        _section("Pending CSRs", "csrs", sweep.csrs, CsrRow),
        _section("Nodes", "nodes", sweep.nodes, NodeRow),
        _section("Web ports", "ports", sweep.ports, PortRow),
    ]
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<title>cckit certificate inventory</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}<script>{_JS}</script>"
            "</body></html>\n")
