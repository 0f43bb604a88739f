"""The display layer: notebook tables are written without pandas, and look as before."""

from __future__ import annotations

import subprocess
import sys

from cckit import display
from cckit.results import Action, Outcome, Plan, PlannedCommand, StepResult, TrustRecord

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
    results, plans and record tables render without it; ``.table()`` still gives a frame."""
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
    frame = StepResult("s", "v", [TrustRecord("pub", "CA", Action.UPLOADED, "AB")],
                       Outcome.OK).table()
    assert list(frame["node"]) == ["pub"]
