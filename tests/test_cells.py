"""A live kernel driven cell by cell (nbclient), as an engineer does in JupyterLab.

Cells run out of order, in a fresh kernel, after a kernel restart, with a missing site file
and with a misspelled parameter: each is refused with one message naming the first cell to
run, and nothing changes on the mock.
"""

from __future__ import annotations

import html
from pathlib import Path

import nbformat
import pytest

from cckit.vosmock.testing import running_site

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def node_state(mock) -> dict[str, bytes]:
    return {str(p.relative_to(mock.state_dir)): p.read_bytes()
            for p in sorted(mock.state_dir.rglob("*.pem")) if "csr" not in str(p)}


class Cells:
    """The runbook's cells, run one at a time in one kernel."""

    def __init__(self, client, nb):
        self.client, self.nb = client, nb

    def index(self, needle: str) -> int:
        return next(i for i, c in enumerate(self.nb.cells)
                    if c.cell_type == "code" and needle in c.source)

    def run(self, needle: str) -> dict | None:
        """Run the cell containing ``needle``; its error output, or None."""
        i = self.index(needle)
        return self._execute(self.nb.cells[i], i)

    def run_code(self, source: str) -> dict | None:
        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells.append(cell)  # after the runbook's own cells: found by needle first
        return self._execute(cell, len(self.nb.cells) - 1)

    def _execute(self, cell, i) -> dict | None:
        self.client.execute_cell(cell, i)
        errors = [o for o in cell.outputs if o.output_type == "error"]
        return errors[0] if errors else None

    def text(self, needle: str) -> str:
        cell = self.nb.cells[self.index(needle)]
        data = [(o.get("data", {}), o.get("text", "")) for o in cell.outputs]
        return html.unescape("\n".join(f"{d.get('text/plain', '')}{t}{d.get('text/html', '')}"
                                       for d, t in data))


def one_line(err: dict, ename: str, *needles: str) -> str:
    assert err is not None, "the cell was expected to be refused"
    assert err["ename"] == ename, err
    assert len(err["traceback"]) == 1, err["traceback"]  # one message, no wall of traceback
    text = err["traceback"][0]
    for n in needles:
        assert n in text, text
    return text


def test_cell_by_cell_refusals_change_nothing(tmp_path, monkeypatch):
    from nbclient import NotebookClient
    from nbclient.util import run_sync

    monkeypatch.setenv("CCKIT_RUNS_DIR", str(tmp_path / "runs"))
    nb = nbformat.read(ROOT / "runbooks" / "ca_signed.ipynb", as_version=4)
    with running_site(tmp_path / "vosmock", restart_seconds=0) as mock:
        before = node_state(mock)
        client = NotebookClient(nb, kernel_name="python3", timeout=300, allow_errors=True,
                                resources={"metadata": {"path": str(tmp_path)}})
        cells = Cells(client, nb)
        with client.setup_kernel():
            assert cells.run("site_file = ") is None  # the parameters cell
            assert cells.run_code(f"site_file = {str(mock.site_file)!r}") is None
            assert cells.run("runbook.start(") is None
            # a change before the plan: refused by the library
            assert cells.run_code("rb.step(lambda: None)") is not None
            one_line(cells.run_code("import cckit.runbook as r\n"
                                    "def generate_csrs(): raise SystemExit('ran')\n"
                                    "rb.step(generate_csrs)"),
                     "ProcedureError", "before the plan has been shown")
            # the plan says a confirmation is missing; the first change is refused
            assert cells.run("rb.plan(proc)") is None
            assert "confirmation: MISSING" in cells.text("rb.plan(proc)")
            one_line(cells.run('rb.step("generate_csrs")'), "ProcedureError",
                     "explicit confirmation", "confirm = 'vosmock'")
            # out of order: uploading before the CSRs and the gate
            cells.run_code("confirm = 'vosmock'")
            assert cells.run("runbook.start(") is None
            assert cells.run("rb.plan(proc)") is None
            assert "confirmation: 'vosmock' given" in cells.text("rb.plan(proc)")
            # the earliest missing step is named: one refusal is enough to know where to go
            one_line(cells.run('rb.step("upload_identities")'), "ProcedureError",
                     "upload_identities needs generate_csrs, sign, gate and upload_trust first",
                     "run the generate_csrs cell first")
            # a misspelled CA option: one line naming the known ones
            cells.run_code("ca_options = {'algoritm': 'rsa'}")
            one_line(cells.run("rb.plan(proc)"), "InputError", "unknown option algoritm",
                     "algorithm")
            cells.run_code("ca_options = {}")
            # a missing site file: absolute path, where it was resolved; later cells refuse
            cells.run_code("site_file = 'no-such-site.yaml'")
            one_line(cells.run("runbook.start("), "InputError",
                     str(tmp_path / "no-such-site.yaml"), "relative paths resolve against")
            one_line(cells.run("rb.presented("), "ProcedureError",
                     "the latest start cell failed")
            one_line(cells.run('rb.step("generate_csrs")'), "ProcedureError",
                     "the latest start cell failed")
            # a misspelled parameter typed into the warm kernel: refused, not ignored
            cells.run_code(f"site_file = {str(mock.site_file)!r}\naply = False")
            one_line(cells.run("runbook.start("), "InputError",
                     "aply = False is not a parameter of this runbook: did you mean apply?")
            one_line(cells.run('rb.step("generate_csrs")'), "ProcedureError",
                     "the latest start cell failed")
            cells.run_code("del aply")
            # re-running the start cell replaces the run: the earlier run's objects refuse
            cells.run_code("old = rb")
            assert cells.run("runbook.start(") is None
            one_line(cells.run_code("old.presented()"), "ProcedureError",
                     "replaced by a later start cell")
            # a kernel restart: everything is gone; every cell refuses in one line naming the
            # first cell to run (never a NameError), and the new run refuses to skip the plan
            run_sync(client.km.restart_kernel)()
            run_sync(client.kc.wait_for_ready)(timeout=60)
            assert cells.run_code("rb")["ename"] == "NameError"  # really a fresh kernel
            for needle in ('rb.step("verify")', "rb.plan(proc)", "rb.presented(", "rb.finish()"):
                one_line(cells.run(needle), "ProcedureError", "no run is open in this kernel",
                         "the parameters cell has not run")
            one_line(cells.run("runbook.start("), "ProcedureError",
                     "the parameters cell has not run in this kernel")
            assert cells.run("site_file = ") is None
            one_line(cells.run('rb.step("verify")'), "ProcedureError",
                     "the latest start cell failed", "parameters cell has not run",
                     "run the start cell again")
            cells.run_code(f"site_file = {str(mock.site_file)!r}\nconfirm = 'vosmock'")
            assert cells.run("runbook.start(") is None
            one_line(cells.run_code("rb.step(lambda: None)"), "ProcedureError",
                     "before the plan has been shown")
            one_line(cells.run('rb.step("verify")'), "ProcedureError",
                     "refusing to run verify before the plan has been shown")
            assert cells.run("rb.plan(proc)") is None
            one_line(cells.run('rb.step("verify")'), "ProcedureError", "verify needs "
                     "generate_csrs, sign, gate, upload_trust, upload_identities and restart first",
                     "run the generate_csrs cell first")
            assert cells.run("rb.finish()") is None
        assert node_state(mock) == before


def sign_outbox(run: Path, ca_dir: Path) -> int:
    """The enterprise CA answers: every CSR of the outbox signed, full chains, into the inbox."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from cckit.ca import get_adapter
    from cckit.certs import load_csr

    lab = get_adapter("lab", directory=ca_dir)
    n = 0
    for f in sorted((run / "csr-outbox").glob("*.csr")):
        csr = load_csr(f)
        lab.submit(f.stem, csr)
        s = lab.collect(f.stem, csr)
        (run / "cert-inbox" / f"signed-{f.stem}.cer").write_bytes(
            b"".join(c.public_bytes(Encoding.PEM) for c in (s.certificate, *s.chain)))
        n += 1
    return n


def test_kernel_restart_then_rerun_from_the_top_resumes_the_files_ca_run(tmp_path,
                                                                          monkeypatch):
    """The case of issue #11: the `files` CA's run waits; the CA drops the certificates in
    that run's inbox; the kernel restarts; Run All from the top continues that run (its
    folder, its inbox) and completes; no second run folder, nothing left `running`."""
    import json

    from nbclient import NotebookClient
    from nbclient.util import run_sync

    runs = tmp_path / "runs"
    monkeypatch.setenv("CCKIT_RUNS_DIR", str(runs))
    nb = nbformat.read(ROOT / "runbooks" / "ca_signed.ipynb", as_version=4)
    steps = ["rb.presented(", "rb.plan(proc)", *(f'rb.step("{s}")' for s in (
        "generate_csrs", "sign", "gate", "upload_trust", "upload_identities", "restart",
        "verify")), "rb.compare(", "rb.operations()", "rb.finish()"]
    with running_site(tmp_path / "vosmock", restart_seconds=0) as mock:
        client = NotebookClient(nb, kernel_name="python3", timeout=300, allow_errors=True,
                                resources={"metadata": {"path": str(tmp_path)}})
        cells = Cells(client, nb)
        top = f"site_file = {str(mock.site_file)!r}\nconfirm = 'vosmock'\nca = 'files'"
        with client.setup_kernel():
            assert cells.run("site_file = ") is None
            assert cells.run_code(top) is None
            assert cells.run("runbook.start(") is None
            for needle in steps[:3]:
                assert cells.run(needle) is None, needle
            assert cells.run('rb.step("sign")')["ename"] == "WaitingForCA"
            [run] = list((runs / "ca_signed").iterdir())
            assert json.loads((run / "status.json").read_text())["status"] == "waiting"
            assert sign_outbox(run, tmp_path / "enterprise-ca") == 3
            run_sync(client.km.restart_kernel)()
            run_sync(client.kc.wait_for_ready)(timeout=60)
            # Run All from the top, as after any kernel restart
            assert cells.run("site_file = ") is None
            assert cells.run_code(top) is None
            assert cells.run("runbook.start(") is None
            overview = cells.text("runbook.start(")
            assert f"RESUMED the unfinished run in {run}" in overview, overview
            assert "it was waiting at sign" in overview and "fresh = True" in overview
            for needle in steps:
                assert cells.run(needle) is None, (needle, cells.text(needle))
        assert [p.name for p in (runs / "ca_signed").iterdir()] == [run.name]
        status = json.loads((run / "status.json").read_text())
        assert status["status"] == "complete" and len(status["record"]["resumed"]) == 1
        ecdsa = [p for p in status["presented"] if p["client"] == "ecdsa"]
        assert ecdsa and all(p["issuer"].startswith("cckit lab EC issuing CA") for p in ecdsa)
