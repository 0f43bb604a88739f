"""JupyterLab in a real browser (Playwright driving Debian's chromium, nothing downloaded).

One runbook (preflight, the cheapest) is opened from a copy, run with Run > Run All Cells,
and must end with no error output; then a headless run's HTML report must fit an A4
landscape page's width when printed. Screenshots go to docs/img/ when CCKIT_SCREENSHOTS is
set. Skipped when chromium or playwright is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
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
    root.mkdir()
    shutil.copy(ROOT / "runbooks" / "preflight.ipynb", root)
    port, token = free_port(), "cckit-test-token"
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
           "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    env = dict(os.environ, CCKIT_RUNS_DIR=str(tmp_path / "runs"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"))
    log = (tmp_path / "lab.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
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
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{url}/lab/tree/preflight.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    dialog = page.locator(".jp-Dialog button.jp-mod-accept")  # "Select Kernel", if asked
    try:
        dialog.click(timeout=10_000)
    except playwright_api.TimeoutError:
        pass
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=60_000)
    menu(page, "Run", "Run All Cells")
    run_all_done(page, 5)
    no_error_cell(page)
    if (folder := shots()) is not None:
        page.locator(".jp-CodeCell").nth(-2).scroll_into_view_if_needed()
        page.screenshot(path=str(folder / "jupyterlab-preflight.png"))
    assert (ROOT / "runbooks" / "preflight.ipynb").read_bytes() == tracked
    # the record of an interactive run: the finish cell copied the notebook as last saved
    # (never, here) and says so; JupyterLab's save command, then rb.save_record(), copies it
    # with every output of the run
    # (JupyterLab renders only the cells in view: the saved file is read, not the page)
    [run] = list((root.parent / "runs" / "preflight").iterdir())
    saved_before = (root / "preflight.ipynb").stat().st_mtime
    menu(page, "File", "Save Notebook")
    deadline = time.monotonic() + 30
    while True:  # saved: a newer file that is a whole notebook (not one being written)
        path = root / "preflight.ipynb"
        if path.stat().st_mtime != saved_before:
            body = path.read_text()
            with contextlib.suppress(ValueError):
                json.loads(body)
                break
        assert time.monotonic() < deadline, "JupyterLab did not save the notebook"
        time.sleep(0.2)
    assert "READ-ONLY" in body and "Traceback" not in body
    assert "before this run started" in body and "rb.save_record()" in body
    page.locator(".jp-CodeCell").nth(-1).click()
    page.keyboard.press("Escape")
    page.keyboard.press("b")  # a new cell below the finish cell
    page.keyboard.press("Enter")
    page.keyboard.type("rb.save_record()")
    page.keyboard.press("Shift+Enter")
    page.wait_for_function("() => document.querySelector('.jp-Notebook').innerText"
                           ".includes('record: the notebook as saved at')", timeout=60_000)
    copy = (run / "preflight.ipynb").read_text()
    assert "read only, nothing changed" in copy  # the finish cell's output is in the record
    assert (run / "preflight.html").is_file()
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
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/lab/tree/ca_signed.ipynb?token={token}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        try:
            page.locator(".jp-Dialog button.jp-mod-accept").click(timeout=10_000)
        except playwright_api.TimeoutError:
            pass
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=60_000)
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
        out = page.locator(".jp-CodeCell:has-text('proc.restart') .jp-Cell-outputArea").first
        out.scroll_into_view_if_needed()
        assert "StepInterrupted: restart interrupted" in out.text_content()
        assert "Traceback" not in out.text_content()
        if (folder := shots()) is not None:
            page.locator(".jp-CodeCell:has-text('proc.restart')").scroll_into_view_if_needed()
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
