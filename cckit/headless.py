"""Run a runbook headless through papermill: one executed notebook, its HTML, its log.

The executed notebook is the audit record; next to it go an HTML copy for auditors (code
hidden), the operation log and ``status.json``. Parameters never carry a secret: names that
look like one are refused, and every file is scrubbed of the site's resolved secrets before
it is left on disk (defence in depth; nothing should print one in the first place).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ._internal.fs import utc_stamp
from .errors import CckitError, InputError
from .procedures import SCENARIOS

__all__ = ["RunOutcome", "run_runbook", "runbook_path"]

_SECRETISH = re.compile(r"pass(word)?|passwd|secret|token|api[_-]?key|credential", re.I)


def runbooks_dir() -> Path:
    """Where the runbook notebooks are: ``CCKIT_RUNBOOKS`` if set; else, when cckit runs from
    a source checkout (an editable install), the checkout's ``runbooks/``, so an edited
    notebook counts; else the copy an installed wheel ships as ``cckit/_runbooks/`` (copied
    from ``runbooks/`` at build time, see setup.py)."""
    env = os.environ.get("CCKIT_RUNBOOKS")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "runbooks").is_dir():
        return checkout / "runbooks"
    return Path(str(resources.files(__package__) / "_runbooks"))


@functools.cache
def this_interpreter_kernel() -> type:
    """The kernel manager class headless runs use: the kernel is this interpreter
    (``sys.executable`` running ipykernel), the one cckit is installed in, whatever
    kernelspecs the machine has registered under which names. So a wheel installed in any
    venv works without ``ipykernel install``, and a ``python3`` kernelspec pointing at some
    other Python (a ``--user`` one, say) cannot be picked instead."""
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager

    class ThisInterpreterKernelManager(AsyncKernelManager):
        @property
        def kernel_spec(self) -> KernelSpec:
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())
            return self._kernel_spec

        async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
            kw["stderr"] = fd = _filtered_stderr()
            try:
                await super()._async_launch_kernel(kernel_cmd, **kw)
            finally:
                os.close(fd)  # the kernel holds its copy; EOF ends the pump with the kernel

    return ThisInterpreterKernelManager


#: kernel log lines users need not see (a local loopback kernel, nothing to do about it)
_KERNEL_NOISE = ("Kernel is running over TCP without encryption",)


def _filtered_stderr() -> int:
    """A pipe for the kernel's stderr; a daemon thread copies it to ours minus the noise."""
    import threading

    read_fd, write_fd = os.pipe()

    def pump() -> None:
        with open(read_fd, encoding="utf-8", errors="replace") as src:
            for line in src:
                if not any(n in line for n in _KERNEL_NOISE):
                    sys.stderr.write(line)

    threading.Thread(target=pump, name="kernel-stderr", daemon=True).start()
    return write_fd


def runbook_path(scenario: str) -> Path:
    if scenario not in SCENARIOS:
        raise InputError(f"unknown scenario {scenario!r}",
                         hint=f"use one of {', '.join(SCENARIOS)}")
    path = runbooks_dir() / f"{scenario}.ipynb"
    if not path.exists():
        raise InputError(f"runbook {path} not found",
                         hint="set CCKIT_RUNBOOKS to the folder holding the .ipynb files")
    return path


@dataclass
class RunOutcome:
    """How one headless run ended, and where its record is."""

    scenario: str
    out_dir: Path
    status: str  # "ok" | "failed" | "waiting" (for the CA: rerun once it has answered)
    notebook: Path
    html: Path | None = None
    seconds: float = 0.0
    failed_step: str | None = None
    message: str | None = None
    site: str | None = None
    presented: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def first_port(self) -> dict[str, dict[str, str]]:
        """node -> client kind -> what the node's first web port presents at the end, read
        from ``status.json``'s ``presented`` entries (docs/status.md)."""
        from .display import presented_text

        out: dict[str, dict[str, str]] = {}
        first: dict[str, int] = {}
        for e in self.presented:
            if first.setdefault(e["node"], e["port"]) == e["port"]:
                out.setdefault(e["node"], {})[e["client"]] = presented_text(e)
        return out


def check_parameters(scenario: str, parameters: Mapping[str, Any]) -> None:
    """Refuse unknown parameter names and anything that looks like a secret."""
    import papermill

    known = set(papermill.inspect_notebook(str(runbook_path(scenario))))
    problems = []
    for name in parameters:
        if _SECRETISH.search(name):
            problems.append(f"{name}: passwords are never parameters; the site file says "
                            "where each one is (env, keyring or a 0600 file)")
        elif name not in known:
            problems.append(f"{name}: not a parameter of {scenario} "
                            f"(known: {', '.join(sorted(known))})")
    if problems:
        raise InputError("bad parameters:\n  - " + "\n  - ".join(problems),
                         hint=f"see the parameters cell of {runbook_path(scenario)}")


def run_runbook(
    scenario: str,
    out_dir: str | os.PathLike,
    *,
    site_file: str | os.PathLike | None = None,
    parameters: Mapping[str, Any] | None = None,
    progress: bool = True,
    kernel_name: str | None = None,
) -> RunOutcome:
    """Execute ``runbooks/<scenario>.ipynb`` into ``out_dir``; never raises for a failed step
    (the outcome says which step failed and why), only for bad input. The kernel is this
    interpreter (:func:`this_interpreter_kernel`) unless ``kernel_name`` names a kernelspec."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    params = dict(parameters or {})
    check_parameters(scenario, params)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    params["artifacts"] = str(out)
    if site_file:
        params["site_file"] = str(Path(site_file).resolve())
    notebook = out / f"{scenario}.ipynb"
    _keep_previous(notebook)
    started = time.monotonic()
    status, message = "ok", None
    try:
        # No cwd=: papermill would chdir the whole process, which races between the threads
        # of a batch. Every path handed to the notebook is absolute instead.
        papermill.execute_notebook(
            str(runbook_path(scenario)), str(notebook), parameters=params,
            progress_bar=progress, request_save_on_cell_execute=True,
            **_kernel(kernel_name),
        )
    except PapermillExecutionError as e:
        status = "failed"
        message = _clean_evalue(e.ename, e.evalue)
    seconds = time.monotonic() - started
    outcome = RunOutcome(scenario, out, status, notebook, seconds=seconds)
    _read_status(outcome)
    if status == "failed" and not outcome.message:
        outcome.message = message
    scrub(out, _site_secrets(out, params.get("site_file")))
    outcome.html = export_html(notebook)
    return outcome


def _kernel(kernel_name: str | None) -> dict[str, Any]:
    if kernel_name:
        return {"kernel_name": kernel_name}
    return {"kernel_manager_class": this_interpreter_kernel()}


def _keep_previous(notebook: Path) -> None:
    """A rerun into the same folder (e.g. after waiting for the CA) keeps the earlier record:
    ``<scenario>.ipynb`` and its HTML become ``<scenario>.<UTC time>.ipynb`` / ``.html``."""
    if not notebook.exists():
        return
    stamp = utc_stamp(dt.datetime.fromtimestamp(notebook.stat().st_mtime, dt.UTC))
    for old in (notebook, notebook.with_suffix(".html")):
        if old.exists():
            os.replace(old, old.with_name(f"{notebook.stem}.{stamp}{old.suffix}"))


def _clean_evalue(ename: str, evalue: str) -> str:
    return f"{ename}: {evalue}".strip()


def _read_status(outcome: RunOutcome) -> None:
    path = outcome.out_dir / "status.json"
    if not path.exists():
        return
    status = json.loads(path.read_text())
    outcome.site = status.get("site")
    outcome.presented = status.get("presented") or []
    if status.get("status") in ("failed", "waiting"):
        outcome.status = status["status"]
        outcome.failed_step = status.get("failed_step")
        outcome.message = status.get("message")


def _site_secrets(out: Path, site_file: str | None) -> list[str]:
    """Every secret the site file points at, resolved here so the record can be scrubbed."""
    from .inventory import load_site

    candidates = [Path(site_file)] if site_file else list(out.glob("mock/site.yaml"))
    values = []
    for path in candidates:
        try:
            site = load_site(path)
        except CckitError:
            continue
        for cred in site.credentials.values():
            try:
                values.append(cred.resolve()[1].reveal())
            except CckitError:
                continue
    return [v for v in values if v]


def scrub(out: Path, secrets: list[str]) -> list[Path]:
    """Replace any of ``secrets`` in the run's text files; returns the files changed."""
    changed = []
    if not secrets:
        return changed
    for path in out.rglob("*"):
        if not path.is_file() or "mock" in path.relative_to(out).parts[:1]:
            continue  # the embedded mock's own state holds its secrets by design
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        new = text
        for s in secrets:
            new = new.replace(s, "********")
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def export_html(notebook: Path) -> Path | None:
    """The auditor's copy: the executed notebook as HTML with the code hidden."""
    if not notebook.exists():
        return None
    import nbformat
    from nbconvert import HTMLExporter

    from .audit import read as read_operations
    from .display import record_html, report_html

    nb = nbformat.read(str(notebook), as_version=4)
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    status_file, ops_file = notebook.parent / "status.json", notebook.parent / "operations.jsonl"
    status = json.loads(status_file.read_text()) if status_file.exists() else {}
    title = (f"cckit {status.get('scenario', notebook.stem)} on "
             f"{status.get('site', '?')}: {status.get('status', '')}" if status
             else f"cckit {notebook.stem}")
    record = record_html(status, read_operations(ops_file) if ops_file.exists() else []) \
        if status else ""
    html = notebook.with_suffix(".html")
    html.write_text(report_html(body, title=title, record=record), encoding="utf-8")
    return html
