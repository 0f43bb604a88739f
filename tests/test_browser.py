"""JupyterLab in a real browser (Playwright driving Debian's chromium, nothing downloaded).

JupyterLab is started as an engineer does, with ``cckit lab`` (fresh copies of the runbooks).
One runbook (preflight, the cheapest) is run with Run > Run All Cells and must end with no
error output and its record written; ca_signed and renew_tomcat are stepped cell by cell
with Shift+Enter as a new user would, mistakes included; a headless run's HTML report must
fit an A4 landscape page's width when printed. Screenshots go to docs/img/ when
CCKIT_SCREENSHOTS is set. Skipped when chromium or playwright is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: A4 landscape (297 mm) less 10 mm margins each side, at CSS's 96 px per inch
A4_LANDSCAPE_PX = round((297 - 20) / 25.4 * 96)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed"),
]
playwright_api = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shots() -> Path | None:
    if not os.environ.get("CCKIT_SCREENSHOTS"):
        return None
    folder = ROOT / "docs" / "img"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser():
    with playwright_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def lab(tmp_path):
    root = tmp_path / "lab"
    port, token = free_port(), "cckit-test-token"
    cmd = [sys.executable, "-m", "cckit", "lab", "--no-browser", f"--port={port}",
           f"--dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    cmd += ["--", f"--IdentityProvider.token={token}", "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    # no "get notified about Jupyter news?" toast over the screenshots (and no request)
    settings = tmp_path / "lab-settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
     ).write_text(json.dumps({"fetchNews": "false"}))
    env = dict(os.environ, CCKIT_RUNS_DIR=str(tmp_path / "runs"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"),
               JUPYTERLAB_SETTINGS_DIR=str(settings))
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            # where it says it serves: when another process took the free port in the
            # meantime, Jupyter moves to the next one ("The port ... is already in use")
            served = re.findall(r"http://127\.0\.0\.1:(\d+)/lab",
                                (tmp_path / "lab.log").read_text())
            url = f"http://127.0.0.1:{served[-1] if served else port}"
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)  # noqa: S310
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("JupyterLab did not start: " + (tmp_path / "lab.log").read_text())
                time.sleep(0.5)
        yield url, token, root
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def open_notebook(browser, url: str, token: str, name: str):
    """A page with ``name`` open in JupyterLab and its kernel idle (the engineer's view)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/lab/tree/{name}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    dialog = page.locator(".jp-Dialog button.jp-mod-accept")  # "Select Kernel", if asked
    try:
        dialog.click(timeout=10_000)
    except playwright_api.TimeoutError:
        pass
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=60_000)
    return page


def run_all_done(page, cells: int) -> None:
    page.wait_for_function(
        "(n) => { const p = [...document.querySelectorAll('.jp-InputArea-prompt')];"
        " return p.length > 0 && p.every(e => !e.textContent.includes('[*]'))"
        " && p.filter(e => /\\[\\d+\\]/.test(e.textContent)).length >= n; }",
        arg=cells, timeout=120_000)


def menu(page, top: str, item: str) -> None:
    page.click(f".lm-MenuBar-itemLabel:text-is('{top}')", timeout=10_000)
    page.click(f".lm-Menu-itemLabel:text-is('{item}')", timeout=10_000)


def no_error_cell(page) -> None:
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
                          ", .jp-RenderedText[data-mime-type='application/vnd.jupyter.error']")
    assert errors.count() == 0, errors.all_inner_texts()


def test_jupyterlab_runs_a_runbook_without_error(browser, lab):
    url, token, root = lab
    tracked = (ROOT / "runbooks" / "preflight.ipynb").read_bytes()
    page = open_notebook(browser, url, token, "preflight.ipynb")
    menu(page, "Run", "Run All Cells")
    run_all_done(page, 5)
    no_error_cell(page)
    if (folder := shots()) is not None:
        page.locator(".jp-CodeCell").nth(-2).scroll_into_view_if_needed()
        page.screenshot(path=str(folder / "jupyterlab-preflight.png"))
    assert (ROOT / "runbooks" / "preflight.ipynb").read_bytes() == tracked
    # the record of an interactive run: the finish cell wrote it, with every output the
    # kernel showed (its own summary too), without a save or a second call; said once
    [run] = list((root.parent / "runs" / "preflight").iterdir())
    text = page.locator(".jp-Notebook").inner_text()
    assert text.count("record:") == 1 and "without this run's outputs" not in text
    copy = (run / "preflight.ipynb").read_text()
    assert "read only, nothing changed" in copy and "READ-ONLY" in copy
    assert "Recommended scenario" in copy and "Traceback" not in copy
    assert (run / "preflight.html").is_file()
    assert "without this run" not in (run / "preflight.html").read_text()
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "complete" and status["record"]["parameters"]["ca_capability"]
    # a kernel restart, then everything again from the top: a new run (the embedded mock
    # restarts fresh), no error cell
    menu(page, "Kernel", "Restart Kernel and Run All Cells…")
    page.locator(".jp-Dialog button.jp-mod-accept").click(timeout=10_000)
    page.wait_for_function("() => [...document.querySelectorAll('.jp-InputArea-prompt')]"
                           ".some(e => e.textContent.includes('[*]'))", timeout=30_000)
    run_all_done(page, 5)
    no_error_cell(page)
    runs = sorted((root.parent / "runs" / "preflight").iterdir())
    assert len(runs) == 2 and run in runs
    if folder is not None:
        page.locator(".jp-CodeCell").nth(-2).scroll_into_view_if_needed()
        page.screenshot(path=str(folder / "jupyterlab-preflight-rerun.png"))


def test_report_html_fits_an_a4_page(browser, tmp_path):
    from cckit.headless import run_runbook

    outcome = run_runbook("ca_signed", tmp_path / "run", progress=False)
    assert outcome.status == "ok", outcome.message
    page = browser.new_page(viewport={"width": A4_LANDSCAPE_PX, "height": 800})
    page.emulate_media(media="print")
    page.goto(outcome.html.as_uri())
    assert page.title() == "cckit ca_signed on vosmock: complete"
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= A4_LANDSCAPE_PX, f"the report is {width} px wide, A4 gives {A4_LANDSCAPE_PX}"
    wide = page.evaluate(
        f"() => [...document.querySelectorAll('table')].filter("
        f"t => t.getBoundingClientRect().right > {A4_LANDSCAPE_PX}).length")
    assert wide == 0
    if (folder := shots()) is not None:
        page.screenshot(path=str(folder / "report-a4.png"), full_page=False)
        pdf_page = browser.new_page()
        pdf_page.goto(outcome.html.as_uri())
        pdf_page.pdf(path=str(tmp_path / "report.pdf"), format="A4", landscape=True)


def test_the_stop_button_during_the_restart_then_run_all_resumes(browser, lab, tmp_path):
    """ca_signed on a (mock) real site with slow Tomcat restarts: the stop button during the
    restart cell leaves the run `interrupted`, not `running`; Run All from the top resumes
    that run in its folder and completes it."""
    import nbformat

    from cckit.vosmock.testing import running_site

    url, token, root = lab
    with running_site(tmp_path / "vosmock", restart_seconds=4) as mock:
        nb = nbformat.read(ROOT / "runbooks" / "ca_signed.ipynb", as_version=4)
        params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        params.source += f"\nsite_file = {str(mock.site_file)!r}\nconfirm = 'vosmock'\n"
        nbformat.write(nb, str(root / "ca_signed.ipynb"))
        page = open_notebook(browser, url, token, "ca_signed.ipynb")
        menu(page, "Run", "Run All Cells")
        runs = root.parent / "runs" / "ca_signed"
        deadline = time.monotonic() + 120
        while True:  # the restart cell is running: its step is not recorded yet
            files = list(runs.glob("*/status.json"))
            steps = [s["step"] for s in json.loads(files[0].read_text())["steps"]] \
                if files else []
            if "upload_identities" in steps:
                break
            assert time.monotonic() < deadline, steps
            time.sleep(0.2)
        time.sleep(1)
        page.click("button[data-command='notebook:interrupt-kernel'], "
                   "jp-button[data-command='notebook:interrupt-kernel']", timeout=10_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=120_000)
        [run] = list(runs.iterdir())
        status = json.loads((run / "status.json").read_text())
        assert status["status"] == "interrupted" and status["failed_step"] == "restart", status
        # one line, not a wall of traceback
        # (the cell's outputs: the live progress display, then the error)
        out = page.locator(".jp-CodeCell:has-text('rb.step(\"restart\")') "
                           ".jp-Cell-outputArea").first
        out.scroll_into_view_if_needed()
        assert "StepInterrupted: restart interrupted" in out.text_content()
        assert "Traceback" not in out.text_content()
        if (folder := shots()) is not None:
            page.locator(".jp-CodeCell:has-text('rb.step(\"restart\")')"
                         ).scroll_into_view_if_needed()
            page.screenshot(path=str(folder / "jupyterlab-stop-button.png"))
        # the engineer runs everything from the top again
        menu(page, "Run", "Run All Cells")
        deadline = time.monotonic() + 180
        while json.loads((run / "status.json").read_text())["status"] != "complete":
            assert time.monotonic() < deadline, (run / "status.json").read_text()
            time.sleep(0.5)
        run_all_done(page, 14)
        no_error_cell(page)
        assert list(runs.iterdir()) == [run]
        status = json.loads((run / "status.json").read_text())
        assert len(status["record"]["resumed"]) == 1
        assert any("RESUMED" in s["message"] and "interrupted at restart" in s["message"]
                   for s in status["steps"] if s["step"] == "start")
        if folder is not None:
            page.locator(".jp-CodeCell").nth(-1).scroll_into_view_if_needed()
            page.screenshot(path=str(folder / "jupyterlab-resumed.png"))


def step_cell(page, cell, *, code: bool, during=None) -> str:
    """Shift+Enter on the selected cell; for a code cell, wait until it has run and return
    what it shows (the engineer reads each output before the next cell). ``during()`` is
    called while it runs."""
    page.keyboard.press("Shift+Enter")
    if during is not None:
        during()
    if not code:
        return ""
    prompt = cell.locator(".jp-InputArea-prompt")
    page.wait_for_function("(e) => /\\[\\d+\\]/.test(e.textContent)",
                           arg=prompt.element_handle(), timeout=120_000)
    no_error_cell(page)
    out = cell.locator(".jp-Cell-outputArea")
    assert out.evaluate(_BROKEN_WORDS) == [], "a table cell's word wraps inside"
    return out.inner_text()


#: the table cells whose value is one short word (a node, an action, a step) and yet takes
#: more than one line: "generate|d" in a column squeezed by a fingerprint beside it
_BROKEN_WORDS = """(out) => [...out.querySelectorAll('table td')].filter(td => {
    const t = td.textContent.trim();
    if (!t || /\\s/.test(t) || t.length > 24) return false;
    const r = document.createRange(); r.selectNodeContents(td);
    return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size > 1;
  }).map(td => td.textContent)"""


def cell_shot(page, cell, path: Path) -> None:
    """A screenshot of one cell, whole: the window grows to the cell's height meanwhile
    (JupyterLab draws only what is in view, so a cell taller than the window would not be)."""
    size = page.viewport_size
    height = cell.evaluate("e => e.getBoundingClientRect().height")
    page.set_viewport_size({"width": size["width"],
                            "height": max(size["height"], min(int(height) + 300, 6000))})
    try:
        cell.scroll_into_view_if_needed()
        cell.screenshot(path=str(path))
    finally:
        page.set_viewport_size(size)


def html_rows(cell) -> list[dict[str, str]]:
    """The rows of the (last) table a cell shows, by column name."""
    return cell.locator("table").last.evaluate(
        "t => { const h = [...t.querySelectorAll('thead th')].map(e => e.textContent.trim());"
        " return [...t.querySelectorAll('tbody tr')].map(r => Object.fromEntries("
        "[...r.querySelectorAll('td')].map((d, i) => [h[i], d.textContent.trim()]))); }")


#: collects every text the live progress display shows (it is emptied when its step ends)
_WATCH_PROGRESS = """() => { window.cckitProgress = [];
  new MutationObserver(() => { for (const e of document.querySelectorAll('.cckit-progress')) {
      const t = e.textContent; const seen = window.cckitProgress;
      if (t && seen[seen.length - 1] !== t) seen.push(t); } })
    .observe(document.querySelector('.jp-Notebook'),
             {subtree: true, childList: true, characterData: true}); }"""


def test_stepping_renew_tomcat_cell_by_cell(browser, lab):
    """renew_tomcat on the embedded UCCX 12.5 mock, stepped as an engineer does: Shift+Enter
    on each cell, its output read before the next. No error output; the plan is on the page
    before the restart cell; the restart shows live per-node progress (then only its
    result); the verify table shows every web port presenting the certificate just
    uploaded as ``tomcat``, not the one from before."""
    import nbformat

    url, token, root = lab
    shutil.copy(ROOT / "runbooks" / "renew_tomcat.ipynb", root)
    nb = nbformat.read(ROOT / "runbooks" / "renew_tomcat.ipynb", as_version=4)

    def index(code: str) -> int:
        return next(i for i, c in enumerate(nb.cells)
                    if c.cell_type == "code" and code in c.source)

    first_change, restart, verify = (index('rb.step("generate_csrs")'),
                                     index('rb.step("restart")'), index('rb.step("verify")'))
    plan, before = index("rb.plan(proc)"), index("rb.presented(\"before")
    page = open_notebook(browser, url, token, "renew_tomcat.ipynb")
    cells = page.locator(".jp-Notebook .jp-Cell")
    assert cells.count() == len(nb.cells)
    cells.nth(0).click()
    page.keyboard.press("Escape")  # command mode, the first cell selected
    folder = shots()
    shown: dict[int, str] = {}

    def progress_shot() -> None:  # the live display, if the restart lasts long enough
        with contextlib.suppress(playwright_api.TimeoutError):
            page.wait_for_function(  # the first wave back (the subscriber in service), the
                # publisher going down: the whole schedule on one display
                "() => [...document.querySelectorAll('.cckit-progress')].some(e =>"
                " e.textContent.includes('in service after')"
                " && e.textContent.includes('sm: stopped')"
                " && e.textContent.includes('uccx-pub: stopped'))",
                timeout=10_000)
            cells.nth(restart).screenshot(path=str(folder / "jupyterlab-renew-progress.png"))
    for i, c in enumerate(nb.cells):
        if i == restart:
            # the plan was shown (and read) before anything changed, and is still there
            assert plan < first_change and "Plan for renew_tomcat: 21 command(s)" in shown[plan]
            assert "stage 3: upload_trust on uccx-sub" in shown[plan]  # its replication
            assert "stage 5: restart on uccx-sub, sm at once" in shown[plan]
            assert "stage 6: restart on uccx-pub" in shown[plan]
            assert "utils service restart Cisco Tomcat" in shown[plan]
            if folder is not None:
                cells.nth(plan).locator(".jp-Cell-outputArea").scroll_into_view_if_needed()
                page.screenshot(path=str(folder / "jupyterlab-renew-plan.png"))
            page.evaluate(_WATCH_PROGRESS)
        shown[i] = step_cell(page, cells.nth(i), code=c.cell_type == "code",
                             during=progress_shot if i == restart and folder else None)
        if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", []):
            assert shown[i].strip(), f"cell {i} shows nothing: {c.source}"
        if i == before:  # 12.5 has no tomcat-ECDSA: what an RSA client and a browser are shown
            assert "ECDSA" not in cells.nth(i).locator("table thead").inner_text()
            if folder is not None:
                cell_shot(page, cells.nth(i), folder / "jupyterlab-renew-before.png")
        if i == first_change and folder is not None:
            cells.nth(i).screenshot(path=str(folder / "jupyterlab-renew-csrs.png"))
    # cells ran one by one, in order
    counts = [int(cells.nth(i).locator(".jp-InputArea-prompt").text_content().strip("[]: "))
              for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1))
    # the live display: each node's restart while it ran, emptied once the step ended
    seen = page.evaluate("window.cckitProgress")
    for node in ("uccx-pub", "uccx-sub", "sm"):
        assert any(f"{node}: stopped" in t for t in seen), seen
    assert not any(cells.nth(restart).locator(".cckit-progress").all_text_contents())
    assert "[OK] restart: 3 node(s) restarted in HA-safe order" in shown[restart] \
        or "OK restart: 3 node(s) restarted in HA-safe order" in shown[restart]
    # verify: every web port presents the tomcat certificate this run uploaded
    assert "every port presents the CA-signed tomcat certificate" in shown[verify]
    rows = html_rows(cells.nth(verify))
    [run] = list((root.parent / "runs" / "renew_tomcat").iterdir())
    uploaded = {o["node"]: o["fingerprints_after"]["tomcat"] for o in
                map(json.loads, (run / "operations.jsonl").read_text().splitlines())
                if o["operation"] == "upload_identity"}
    old = {(r["node"], r["port"]): r for r in html_rows(cells.nth(before))}
    # each port to an RSA client and to a browser (12.5: both are shown the renewed tomcat)
    assert sorted(uploaded) == ["sm", "uccx-pub", "uccx-sub"] and len(rows) == 2 * len(old) == 24
    for r in rows:
        assert r["as expected"] == "yes" and r["sha256"] == uploaded[r["node"]], r
        assert "self-signed" not in r["presented"] and r["presented"].startswith(
            {"uccx-pub": "uccx1.", "uccx-sub": "uccx2.", "sm": "sm1."}[r["node"]]), r
        assert r["sha256"] not in str(old[r["node"], r["port"]]), r
    if folder is not None:
        cell_shot(page, cells.nth(verify), folder / "jupyterlab-renew-done.png")
        cell_shot(page, cells.nth(index("rb.compare")),
                  folder / "jupyterlab-renew-compare.png")


def test_ca_signed_tables_show_what_agents_browsers_are_shown(browser, lab):
    """ca_signed's tables as JupyterLab shows them (its golden copy: the outputs of a real
    run, nbval keeps them current; nothing is executed here): the before table has a
    browser column (the self-signed tomcat-ECDSA on Live Data and chat only, Cisco 210528),
    verify shows browsers the CA-signed tomcat-ECDSA on exactly those ports and the RSA
    tomcat elsewhere; no word of a table breaks."""
    import nbformat

    url, token, root = lab
    golden = ROOT / "tests" / "golden" / "ca_signed.ipynb"
    shutil.copy(golden, root)
    nb = nbformat.read(golden, as_version=4)
    # outputs the engineer's own kernel wrote are trusted; a copy's are sanitized (no styles)
    subprocess.run([sys.executable, "-m", "jupyter", "trust", str(root / "ca_signed.ipynb")],
                   check=True, capture_output=True)

    def index(code: str) -> int:
        return next(i for i, c in enumerate(nb.cells)
                    if c.cell_type == "code" and code in c.source)

    page = open_notebook(browser, url, token, "ca_signed.ipynb")
    cells = page.locator(".jp-Notebook .jp-Cell")
    folder = shots()
    agents = {"12015 (Live Data)", "7443 (chat and email)"}

    def shown(i: int, name: str) -> list[dict[str, str]]:
        cell = cells.nth(i)
        cell.scroll_into_view_if_needed()
        out = cell.locator(".jp-Cell-outputArea")
        out.locator("table").last.wait_for(timeout=30_000)
        assert out.evaluate(_BROKEN_WORDS) == [], "a table cell's word wraps inside"
        if folder is not None:
            cell_shot(page, cell, folder / f"jupyterlab-ca-signed-{name}.png")
        return html_rows(cell)

    rows = shown(index('rb.presented("before'), "before")
    assert len(rows) == 12 and list(rows[0])[:5] == [
        "node", "port", "browser", "ECDSA client", "ECDSA sha256"]
    for r in rows:
        assert ("-EC." in r["browser"]) == (r["port"] in agents), r  # 210528, port by port
        assert "self-signed" in r["browser"], r
    rows = shown(index('rb.step("verify")'), "verify")
    assert len(rows) == 24 and all(r["as expected"] == "yes" for r in rows)
    assert {r["port"] for r in rows if r["client"] == "browser"
            and "issuer cckit lab EC" in r["presented"]} == agents
    assert all("(RSA, self-signed)" in r["presented"] for r in rows
               if r["client"] == "browser" and r["port"] not in agents)
    assert len(shown(index("rb.compare"), "compare")) == 36


def test_the_restart_cell_shows_the_in_service_wait(browser, lab, tmp_path):
    """ca_signed on a mock with real timing (trust replicates seconds after the upload,
    Finesse is in service seconds after its Tomcat answers TLS): Run All, and the live
    progress shows the replication wait in the trust cell and, in the restart cell, each
    UCCX node stopped, TLS up, then waiting for Finesse IN_SERVICE before the next wave."""
    import nbformat

    from cckit.vosmock.testing import running_site

    url, token, root = lab
    with running_site(tmp_path / "vosmock", restart_seconds=0.5, replication_seconds=3,
                      finesse_ready_seconds=5) as mock:
        nb = nbformat.read(ROOT / "runbooks" / "ca_signed.ipynb", as_version=4)
        params = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        params.source += f"\nsite_file = {str(mock.site_file)!r}\nconfirm = 'vosmock'\n"
        nbformat.write(nb, str(root / "ca_signed.ipynb"))
        page = open_notebook(browser, url, token, "ca_signed.ipynb")
        page.evaluate(_WATCH_PROGRESS)
        folder = shots()
        menu(page, "Run", "Run All Cells")
        for wanted, cell, name in (
                (["uccx-sub: waiting for tomcat-trust to replicate to uccx-sub"],
                 'rb.step("upload_trust")', "jupyterlab-replication-wait.png"),
                (["uccx-sub: stopped", "waiting for Finesse IN_SERVICE"], 'rb.step("restart")',
                 "jupyterlab-in-service-wait.png"),
                (["in service after", "uccx-pub: stopped", "waiting for Finesse IN_SERVICE"],
                 'rb.step("restart")', "jupyterlab-in-service-wait-publisher.png")):
            page.wait_for_function(
                "(w) => [...document.querySelectorAll('.cckit-progress')].some(e =>"
                " w.every(x => e.textContent.includes(x)))", arg=wanted, timeout=120_000)
            if folder is not None:
                c = page.locator(f".jp-CodeCell:has-text('{cell}')").first
                c.scroll_into_view_if_needed()
                c.screenshot(path=str(folder / name))
        run_all_done(page, 14)
        no_error_cell(page)
    seen = page.evaluate("window.cckitProgress")
    arrow = "\N{RIGHTWARDS ARROW}"
    for node in ("uccx-sub", "uccx-pub"):  # each UCCX node: stopped, TLS up, in service
        assert any(f"{node}: stopped {arrow} TLS up after" in t
                   and "waiting for Finesse IN_SERVICE" in t for t in seen), seen
    # the publisher went down only once the subscriber was in service
    first = next(t for t in seen if "uccx-pub: stopped" in t)
    sub = next(line for line in first.splitlines() if line.startswith("uccx-sub:"))
    assert "in service after" in sub, first
    restart = page.locator(".jp-CodeCell:has-text('rb.step(\"restart\")')").first
    rows = {r["node"]: r for r in html_rows(restart)}
    assert rows["uccx-sub"]["back when"] == "TLS up, Finesse IN_SERVICE"
    assert rows["sm"]["back when"] == "TLS up" and rows["sm"]["in service after"] == ""
    assert float(rows["uccx-sub"]["in service after"].split()[0]) >= 5


def select_and_run(page, cell) -> str:
    """Select ``cell`` (command mode), Shift+Enter, wait until it has run; what it shows
    (an error included: this is how a mistake looks to the engineer)."""
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Escape")
    before = cell.locator(".jp-InputPrompt").text_content()
    page.keyboard.press("Shift+Enter")
    prompt = cell.locator(".jp-InputPrompt")
    page.wait_for_function("([e, was]) => /\\[\\d+\\]/.test(e.textContent)"
                           " && e.textContent !== was",
                           arg=[prompt.element_handle(), before], timeout=120_000)
    return cell.locator(".jp-Cell-outputArea").inner_text()


def test_a_new_user_steps_ca_signed_cell_by_cell(browser, lab):
    """ca_signed on the embedded mock as a new user walks it (issue 24): a step cell tried
    in the fresh kernel says which cell to run first (no NameError); a step run too early
    names the earliest missing step; then Kernel > Restart and Clear Outputs, and every cell
    in order with Shift+Enter, each output read before the next. The restart narration says
    what the plan runs, each restart row of the record names its service, the summary shows
    every step's time, and the finish cell writes the record itself (no save, one "record:"
    line, no stale line): the notebook with every output and its HTML."""
    import re

    import nbformat

    url, token, root = lab
    nb = nbformat.read(ROOT / "runbooks" / "ca_signed.ipynb", as_version=4)

    def index(code: str) -> int:
        return next(i for i, c in enumerate(nb.cells)
                    if c.cell_type == "code" and code in c.source)

    params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    start, plan = index("runbook.start("), index("rb.plan(proc)")
    verify, restart = index('rb.step("verify")'), index('rb.step("restart")')
    ops, finish = index("rb.operations()"), index("rb.finish()")
    page = open_notebook(browser, url, token, "ca_signed.ipynb")
    cells = page.locator(".jp-Notebook .jp-Cell")
    assert cells.count() == len(nb.cells)
    folder = shots()
    # 1. the fresh kernel: a step cell first, as a new user clicking around does
    shown = select_and_run(page, cells.nth(verify))
    assert "NameError" not in shown and "Traceback" not in shown, shown
    assert "ProcedureError: refusing: no run is open in this kernel" in shown, shown
    assert "run the notebook from the top: the parameters cell" in shown, shown
    if folder is not None:
        cells.nth(verify).screenshot(path=str(folder / "jupyterlab-ca-fresh-kernel.png"))
    # 2. the parameters, the start, the plan; then the verify cell, too early
    for i in (params, start, plan):
        assert "Error" not in select_and_run(page, cells.nth(i)), i
    shown = select_and_run(page, cells.nth(verify))
    assert ("verify needs generate_csrs, sign, gate, upload_trust, upload_identities and "
            "restart first; nothing was done") in shown, shown
    assert "run the generate_csrs cell first" in shown and "Traceback" not in shown
    if folder is not None:
        cells.nth(verify).screenshot(path=str(folder / "jupyterlab-ca-too-early.png"))
    # 3. start over as the message says: a clean kernel, every cell in order
    menu(page, "Kernel", "Restart Kernel and Clear Outputs of All Cells…")
    page.locator(".jp-Dialog button.jp-mod-accept").click(timeout=10_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=60_000)
    no_error_cell(page)
    cells.nth(0).click()
    page.keyboard.press("Escape")
    out: dict[int, str] = {}
    for i, c in enumerate(nb.cells):
        out[i] = step_cell(page, cells.nth(i), code=c.cell_type == "code")
        if c.cell_type == "code" and i != params:
            assert out[i].strip(), f"cell {i} shows nothing: {c.source}"
    no_error_cell(page)
    # (JupyterLab renders only the cells in view: each is scrolled to before it is read)
    def cell(i: int):
        cells.nth(i).scroll_into_view_if_needed()
        return cells.nth(i)

    # the restarts: the narration says what the plan runs; each service serving a web port:
    # five per UCCX node (Tomcat, Finesse, CUIC, notifications, Live Data), two on SocialMiner
    shown_md = cell(restart - 1).locator(".jp-RenderedMarkdown")
    shown_md.wait_for(timeout=10_000)
    narration = " ".join((shown_md.text_content() or "").split())
    assert "the plan above shows each one per node" in narration, narration
    assert "restart Cisco Tomcat`, subscriber first" not in nb.cells[restart - 1].source
    planned = html_rows(cell(plan))
    for node, n in (("uccx-pub", 5), ("uccx-sub", 5), ("sm", 2)):
        assert sum(r["node"] == node and r["step"] == "restart" for r in planned) == n, node
    restarted = [r for r in html_rows(cell(ops)) if r["operation"] == "restart_service"]
    assert len(restarted) == 12 and {r["on"] for r in restarted} == {
        "Cisco Tomcat", "Cisco Finesse Tomcat",
        "Cisco Unified Intelligence Center Reporting Service",
        "Cisco Unified CCX Notification Service", "Cisco Unified CCX Socket.IO Service",
        "Cisco SocialMiner Notification Service"}
    if folder is not None:
        cell(restart).screenshot(path=str(folder / "jupyterlab-ca-restart.png"))
        row = cell(ops).locator("tr:has-text('restart_service')").first
        row.scroll_into_view_if_needed()
        page.mouse.wheel(0, 250)  # the restart rows, not the fingerprints above them
        page.screenshot(path=str(folder / "jupyterlab-ca-operations.png"))
    # the summary: every step with its time; the record written by this cell, said once
    summary = html_rows(cell(finish))
    assert [r["step"] for r in summary][-1] == "finish" and len(summary) >= 10
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", r["time"]) for r in summary)
    said = " ".join(cell(finish).locator(".jp-Cell-outputArea").inner_text().split())
    assert said.count("record:") == 1 and "without this run's outputs" not in said
    if folder is not None:
        cell(finish).screenshot(path=str(folder / "jupyterlab-ca-summary.png"))
    # the run folders: runs/<scenario>/<UTC time>; the first (before the restart) abandoned
    runs = sorted((root.parent / "runs" / "ca_signed").iterdir())
    assert len(runs) == 2 and all(re.fullmatch(r"\d{8}T\d{6}Z(-\d+)?", r.name) for r in runs)
    first, run = (json.loads((r / "status.json").read_text()) for r in runs)
    assert first["status"] == "abandoned" and run["status"] == "complete"
    record = nbformat.read(runs[1] / "ca_signed.ipynb", as_version=4)
    code = [c for c in record.cells if c.cell_type == "code"]
    assert [c.source for c in code] == [c.source for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs for c in code[1:]) and not any(
        o.output_type == "error" for c in code for o in c.outputs)
    last = "".join(o.get("data", {}).get("text/html", "") for o in code[-1].outputs)
    assert re.search(r"<td>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ</td>\s*<td>finish</td>",
                     re.sub(r"<span[^>]*>|</span>|<wbr>", "", last)) and "record:" in last
    html = re.sub(r"<span[^>]*>|</span>|<wbr>", "", (runs[1] / "ca_signed.html").read_text())
    assert re.search(r"<td>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ</td>\s*<td>finish</td>", html)
    assert "<td>Cisco Finesse Tomcat</td>" in html
    assert "without this run" not in html and "Traceback" not in html
