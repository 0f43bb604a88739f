"""How records look in a notebook: words stay whole, only the columns that mean something,
and the tables are written without pandas (which looked the same and cost a kernel a quarter
of its CPU)."""

from __future__ import annotations

import re
import subprocess
import sys

from cckit import display
from cckit.procedures.renew_tomcat import RenewTomcat
from cckit.results import (
    Action,
    Plan,
    PlannedCommand,
    PortChange,
    PortView,
    StepResult,
    TrustRecord,
)
from cckit.scenarios import RENEW_TOMCAT

FP = ":".join(["AB"] * 32)  # a SHA-256 fingerprint as VOS shows it


def test_words_stay_whole_and_long_values_break_at_separators():
    """In JupyterLab a fingerprint column squeezed "generated" into "generate|d" (any letter
    could break); now only long tokens get break points, and names keep their hyphen."""
    assert display._breakable("generated") == "generated"
    assert display._breakable("uccx-pub") == '<span class="cckit-nobr">uccx-pub</span>'
    assert display._breakable(FP).count("<wbr>") == 31
    hexkey = "0123456789abcdef" * 4
    assert display._breakable(hexkey).split("<wbr>") == ["0123456789abcdef"] * 4
    assert display._breakable("a <b> & c") == "a &lt;b&gt; &amp; c"
    assert display._breakable("tomcat-trust/<issuer>.pem") == \
        "tomcat-<wbr>trust/<wbr>&lt;issuer&gt;.<wbr>pem"
    page = display.html(StepResult("s", "v <x>", [{"node": "uccx-pub", "sha256": FP,
                                                   "why": "<script>"}]))
    assert "<script>" not in page and "&lt;script&gt;" in page and "v &lt;x&gt;" in page
    assert "overflow-wrap: anywhere" not in page
    text = re.sub(r"<[^>]+>", "", page.split("</style>")[1])
    assert FP in text  # what a reader copies is the fingerprint, unchanged


def test_renew_tomcat_shows_only_the_rsa_client_and_a_browser():
    """renew_tomcat's nodes (11.6+) have no tomcat-ECDSA: its port views are for the client
    the procedure verifies with and a browser, and a one-client before/after has no client
    column."""
    assert RENEW_TOMCAT.clients == ("browser", RenewTomcat.client)

    view = PortView("uccx-pub", 8443, "Cisco Tomcat", "rsa", "refused", None)
    one = StepResult("before/after", "v", [PortChange(view, view)])
    assert "client" not in display._result_grid(one)[0]
    two = StepResult("before/after", "v", [
        PortChange(None, PortView("sm", 443, None, c, "refused", None)) for c in ("ecdsa", "rsa")])
    assert "client" in display._result_grid(two)[0]
    columns, _ = display._result_grid(StepResult("presented", "v", [view]))
    assert columns == ["node", "port", "RSA client", "RSA sha256"]
    # a browser's column first; its certificate is one of the others: no fingerprint of its own
    browser = PortView("uccx-pub", 12015, "Cisco Unified CCX Socket.IO Service", "browser",
                       "refused", None, serves="Live Data")
    columns, rows = display._result_grid(StepResult("presented", "v", [view, browser]))
    assert columns == ["node", "port", "browser", "RSA client", "RSA sha256"]
    assert [r["port"] for r in rows] == ["8443 (Cisco Tomcat)", "12015 (Live Data)"]


ROWS = [{"node": "uccx-pub", "value": "a < b & 'c'"}, {"node": "sm", "extra": 'x "y"'}]


def test_html_is_what_pandas_wrote_with_blanks_for_missing_cells():
    grid = display._grid(ROWS)
    ours = display._grid_html(grid, table_id="t")
    frame = display.table(ROWS)
    assert ours == frame.to_html(index=False, escape=True, classes="cckit", border=0,
                                 table_id="t")
    assert "NaN" not in ours and "&lt;" in ours  # escaped, and a missing cell is blank


def test_text_table_lines_up_and_an_empty_plan_keeps_its_columns():
    text = display._grid_text(display._grid(ROWS))
    lines = text.splitlines()
    assert lines[0].split() == ["node", "value", "extra"]
    assert "NaN" not in text and len(lines[0]) == len(lines[2])  # columns line up
    assert display._grid(Plan("x").commands, PlannedCommand)[0] == [
        "stage", "node", "step", "command", "why"]


def test_showing_results_does_not_import_pandas():
    """pandas (numpy, pyarrow) cost a quarter of a runbook kernel's CPU: a notebook's step
    results, plans and record tables render without it; ``display.table`` still gives a
    frame."""
    code = (
        "import sys\n"
        "from cckit import display\n"
        "from cckit.results import *\n"
        "r = StepResult('upload_trust', 'v', [TrustRecord('pub', 'CA', Action.UPLOADED, 'AB')],"
        " Outcome.OK)\n"
        "p = Plan('ca_signed'); p.add('pub', 'upload_trust', 'set cert import trust tomcat',"
        " 'why', stage=2)\n"
        "out = display.html(r) + display.text(r) + display.html(p) + display.text(p)\n"
        "assert 'set cert import trust tomcat' in out and 'UPLOADED' in out.upper()\n"
        "print('pandas' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    assert r.stdout.strip() == "False"
    frame = display.table([TrustRecord("pub", "CA", Action.UPLOADED, "AB")])
    assert list(frame["node"]) == ["pub"]


def _entry(node, port, client, cn=None, key="RSA", self_signed=True, issuer=None,
           status="ok"):
    return {"node": node, "port": port, "service": None, "client": client, "status": status,
            "cn": cn, "issuer": issuer or cn, "key_type": key if cn else None,
            "self_signed": self_signed if cn else None, "sha256": None}


def test_the_demo_summary_shows_each_scenario_s_clients_one_line_per_node(tmp_path):
    """The demo's table and the batch's presented column: one line per node, a column per
    client the scenario shows (the registry's ``clients``): a browser on every web port (what
    agents are shown), the others on the first; a client the scenario does not show is empty,
    never guessed."""
    from cckit import batch, demo
    from cckit.headless import RunOutcome

    ec = dict(key="EC", self_signed=False, issuer="lab EC")
    presented = [_entry("uccx-pub", 8443, "browser", "uccx1"),
                 _entry("uccx-pub", 12015, "browser", "uccx1-EC", **ec),
                 _entry("uccx-pub", 8445, "browser", status="refused"),
                 _entry("uccx-pub", 8443, "ecdsa", "uccx1-EC", **ec),
                 _entry("uccx-pub", 8443, "rsa", "uccx1")]
    ca = RunOutcome("ca_signed", tmp_path, "ok", tmp_path / "x.ipynb", presented=presented)
    renew = RunOutcome("renew_tomcat", tmp_path, "ok", tmp_path / "y.ipynb",
                       presented=[e for e in presented if e["client"] != "ecdsa"])
    pre = RunOutcome("preflight", tmp_path, "ok", tmp_path / "z.ipynb")
    assert ca.browser_view() == {
        "uccx-pub": "RSA (self-signed) on 8443, EC (issuer lab EC) on 12015, port closed on 8445"}
    rows = demo.summary_table([pre, ca, renew]).to_dict("records")
    assert list(rows[0]) == ["scenario", "node", "result", "browser is shown",
                             "ECDSA client gets", "RSA client gets"]
    assert rows[0]["node"] == "-" and rows[0]["browser is shown"] == ""
    assert rows[1]["browser is shown"] == ca.browser_view()["uccx-pub"]
    assert rows[1]["ECDSA client gets"] == "uccx1-EC (EC, issuer lab EC)"
    assert rows[2]["ECDSA client gets"] == "" and rows[2]["RSA client gets"] == \
        "uccx1 (RSA, self-signed)"
    assert batch._presented("renew_tomcat", renew) == (
        "uccx-pub: browser RSA (self-signed) on 8443, EC (issuer lab EC) on 12015, port "
        "closed on 8445; RSA uccx1 (RSA, self-signed)")
    # the registry's clients decide, not what status.json happens to hold
    assert "ECDSA" not in batch._presented("renew_tomcat", ca)
