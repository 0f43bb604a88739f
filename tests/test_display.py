"""How records look in a notebook: words stay whole, only the columns that mean something."""

from __future__ import annotations

import re

from cckit import display
from cckit.procedures.renew_tomcat import RenewTomcat
from cckit.results import PortChange, PortView, StepResult
from cckit.runbook import PRESENTED_TO

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


def test_renew_tomcat_shows_only_the_rsa_client():
    """renew_tomcat's nodes (11.6+) have no tomcat-ECDSA: its port views are for the client
    the procedure verifies with, and a one-client before/after has no client column."""
    assert PRESENTED_TO["renew_tomcat"] == (RenewTomcat.client,)

    view = PortView("uccx-pub", 8443, "Cisco Tomcat", "rsa", "refused", None)
    one = StepResult("before/after", "v", [PortChange(view, view)])
    assert "client" not in display._frame(one).columns
    two = StepResult("before/after", "v", [
        PortChange(None, PortView("sm", 443, None, c, "refused", None)) for c in ("ecdsa", "rsa")])
    assert "client" in display._frame(two).columns
    table = display._frame(StepResult("presented", "v", [view]))
    assert list(table.columns) == ["node", "port", "RSA client", "RSA sha256"]
