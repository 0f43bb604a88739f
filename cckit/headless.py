"""Run a runbook headless through papermill: one executed notebook, its HTML, its log.

The executed notebook is the audit record; next to it go an HTML copy for auditors (code
hidden), the operation log and ``status.json``. Parameters never carry a secret: names that
look like one are refused, and every file is scrubbed of the site's resolved secrets before
it is left on disk (defence in depth; nothing should print one in the first place).
"""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import functools
import json
import logging
import os
import re
import signal
import stat
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ._internal.fs import atomic_write, out_folder, utc_stamp
from .audit import check_site_unlocked, folder_lock
from .ca.base import check_options
from .credentials import looks_secret, redact
from .errors import CckitError, InputError
from .procedures import SCENARIOS

# papermill and nbclient report through cckit's outcome; no stray log lines on stderr
logging.getLogger("papermill").addHandler(logging.NullHandler())

__all__ = ["RunOutcome", "interrupt_on_signals", "interrupt_run", "interrupt_running",
           "run_runbook", "runbook_path"]


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

    return ThisInterpreterKernelManager


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
    #: "ok" | "failed" | "waiting" (for the CA: rerun once it has answered) | "interrupted"
    status: str
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


def _secret_paths(value: Any, path: str) -> list[str]:
    """Where in a (nested) parameter value a key looks like a secret's name and holds more
    than a reference to where the secret is (``{env: VAR}``, ``{keyring: ...}``, ``{file:
    PATH}``: a CA option such as ``tsig_secret`` or ``password`` given the way a site file
    gives one; the adapter resolves it at run time)."""
    if isinstance(value, Mapping):
        out = []
        for k, v in value.items():
            where = f"{path}.{k}"
            if looks_secret(k):
                out += [] if _is_reference(v) else [where]
            else:
                out += _secret_paths(v, where)
        return out
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in _secret_paths(v, f"{path}[{i}]")]
    return []


def _reference_targets(value: Any) -> list[str]:
    """What the secret references among the parameters name (an operator may have pasted
    the secret there): scrubbed from the record like the site file's."""
    from .credentials import parse_secret_ref

    if isinstance(value, Mapping):
        out = []
        for k, v in value.items():
            ref = parse_secret_ref(dict(v), "")[0] if looks_secret(k) and _is_reference(v) \
                else None
            out += list(ref.targets()) if ref else _reference_targets(v)
        return out
    if isinstance(value, list | tuple):
        return [t for v in value for t in _reference_targets(v)]
    return []


def _is_reference(value: Any) -> bool:
    from .credentials import parse_secret_ref

    return isinstance(value, Mapping) and not parse_secret_ref(dict(value), "")[1]


_KINDS: dict[type, tuple[str, str]] = {
    bool: ("true or false", "true"), int: ("a whole number", "384"),
    float: ("a number", "1.5"), str: ("text", "text"), list: ("a list", "'[a, b]'"),
    dict: ("a mapping", "'{key: value}'"),
}
_ANNOTATIONS = {"bool": bool, "int": int, "float": float, "str": str, "list": list,
                "dict": dict}


def _kind(value: Any) -> str:
    """What ``value`` is, in words, without showing it."""
    for t in (bool, int, float, str, list, dict):
        if isinstance(value, t):
            return _KINDS[t][0]
    return "null" if value is None else f"a {type(value).__name__}"


def _expected(spec: Mapping[str, Any]) -> type | None:
    """The type papermill's ``inspect_notebook`` gives a parameter (its annotation, else its
    default's), or None (any value)."""
    annotated = _ANNOTATIONS.get(str(spec.get("inferred_type_name")))
    if annotated is not None:
        return annotated
    try:
        default = ast.literal_eval(str(spec.get("default")))
    except (ValueError, SyntaxError):
        return None
    return type(default) if type(default) in _KINDS else None


def _fits(value: Any, want: type) -> bool:
    if want is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if want is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, want)


def _not_plain(value: Any, path: str) -> list[str]:
    """Where in ``value`` something is not plain data (text, numbers, true/false, null,
    lists, mappings with text keys) that a notebook's parameters can hold."""
    if value is None or isinstance(value, bool | int | float | str):
        return []
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in _not_plain(v, f"{path}[{i}]")]
    if isinstance(value, Mapping):
        out = []
        for k, v in value.items():
            out += ([f"{path}: a key is {_kind(k)}, not text"] if not isinstance(k, str)
                    else _not_plain(v, f"{path}.{k}"))
        return out
    return [f"{path}: {_kind(value)} is not a parameter value (quote it to pass it as text)"]


def check_parameters(scenario: str, parameters: Mapping[str, Any]) -> None:
    """Refuse unknown parameter names, values of the wrong type (checked against the
    runbook's parameters cell) and anything that looks like a secret, at any depth.
    Every problem is one line; none repeats a parameter's value (it may be a pasted
    password)."""
    import papermill

    specs = papermill.inspect_notebook(str(runbook_path(scenario)))
    problems = []
    for name, value in parameters.items():
        secret = [name] if looks_secret(name) else _secret_paths(value, name)
        if secret:
            problems += [f"{where}: passwords are never parameters; the site file says where "
                         "each one is (env, keyring or a 0600 file)" for where in secret]
            continue
        if name not in specs:
            problems.append(f"{name}: not a parameter of {scenario} "
                            f"(known: {', '.join(sorted(specs))})")
            continue
        want = _expected(specs[name])
        if want is not None and not _fits(value, want):
            words, example = _KINDS[want]
            problems.append(f"{name}: expected {words} (e.g. -p {name} {example}), "
                            f"got {_kind(value)}")
            continue
        problems += _not_plain(value, name)
    if problems:
        raise InputError(f"bad parameter {problems[0]}" if len(problems) == 1 else
                         "bad parameters:\n  - " + "\n  - ".join(problems),
                         hint=f"see the parameters cell of {runbook_path(scenario)}")
    if scenario in ("ca_signed", "renew_tomcat"):
        check_options(str(parameters.get("ca", "lab")), parameters.get("ca_options", {}),
                      complete=False)


def run_runbook(
    scenario: str,
    out_dir: str | os.PathLike,
    *,
    site_file: str | os.PathLike | None = None,
    parameters: Mapping[str, Any] | None = None,
    progress: bool = True,
    kernel_name: str | None = None,
) -> RunOutcome:
    """Execute ``runbooks/<scenario>.ipynb`` into ``out_dir``; never raises for a failed or
    interrupted step (the outcome says which step and why), only for bad input and for a
    site or folder another run holds (:class:`~cckit.errors.SiteLockedError`, raised before
    anything is written).

    In the main thread, the first Ctrl-C or SIGTERM interrupts the running cell (the notebook
    records a ``KeyboardInterrupt`` there, the operation log the operation it stopped) and
    no further cell starts; a second one stops the kernel at once. Either way the run's
    ``status.json`` says ``interrupted`` and names the step. The kernel is this interpreter
    (:func:`this_interpreter_kernel`) unless ``kernel_name`` names a kernelspec.
    """
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    params = dict(parameters or {})
    check_parameters(scenario, params)
    out = out_folder(out_dir)
    site = _site_or_none(site_file)
    if site is not None:  # refused before this run writes anything
        check_site_unlocked(None, site.name, key=site.identity)
    with folder_lock(out, site=site.name if site else ""):
        out.mkdir(parents=True, exist_ok=True)
        _settle_killed_run(out)
        params["artifacts"] = str(out)
        if site_file:
            params["site_file"] = str(Path(site_file).resolve())
        notebook = out / f"{scenario}.ipynb"
        before = _snapshot(out)
        _keep_previous(notebook)
        started = time.monotonic()
        status, message = "ok", None
        kernel = _Kernel(kernel_name, out / "kernel.log")
        try:
            with interrupt_on_signals(kernel):
                kernel.execute(runbook_path(scenario), notebook, params, progress=progress)
        except PapermillExecutionError as e:
            # a step's KeyboardInterrupt is re-raised as runbook.StepInterrupted (one line)
            interrupted = e.ename in ("KeyboardInterrupt", "StepInterrupted")
            status = "interrupted" if interrupted else "failed"
            message = None if interrupted else _clean_evalue(e.ename, e.evalue)
        except (_Stopped, KeyboardInterrupt):
            status = "interrupted"
        except DeadKernelError:
            status, message = "interrupted", "the kernel running the notebook died (killed?)"
        finally:
            kernel.close(now=status == "interrupted")
        outcome = RunOutcome(scenario, out, status, notebook,
                             seconds=time.monotonic() - started)
        _read_status(outcome)
        if status == "failed" and not outcome.message:
            outcome.message = message
        if status == "interrupted":
            _record_stop(outcome, "interrupted", message, kernel.cell)
        elif status == "failed" and _still_running(out):  # an error the runbook did not catch
            _record_stop(outcome, "failed", message, kernel.cell)
        scrub(out, _site_secrets(out, params.get("site_file")) + _reference_targets(params),
              before=before)
        outcome.html = export_html(notebook)
        return outcome


def _site_or_none(site_file: str | os.PathLike | None) -> Any:
    """The site, or None (no site file, or an invalid one: the notebook reports that)."""
    from .inventory import load_site

    if not site_file:
        return None
    try:
        return load_site(Path(site_file))
    except CckitError:
        return None


# --------------------------------------------------------------------------- the kernel


class _Stopped(Exception):
    """Raised before the next cell starts once the run has been interrupted."""


#: the kernels of the runs going on in this process (a batch interrupts them all)
_running: set[_Kernel] = set()
_running_lock = threading.Lock()


class _Kernel:
    """The Jupyter kernel of one run, owned here rather than by papermill so that an
    interrupt reaches the running cell (as ``KeyboardInterrupt``) instead of killing the
    kernel in the middle of an operation. Its stderr goes to ``log``, not the terminal."""

    def __init__(self, kernel_name: str | None, log: Path) -> None:
        from jupyter_client.manager import AsyncKernelManager

        clients: list[Any] = []
        log_file = log.open("ab")
        base = AsyncKernelManager if kernel_name else this_interpreter_kernel()

        class Manager(base):  # type: ignore[misc, valid-type]
            def client(self, **kw: Any) -> Any:
                kc = super().client(**kw)
                clients.append(kc)
                return kc

            async def start_kernel(self, **kw: Any) -> None:
                kw.setdefault("stderr", log_file)
                await base.start_kernel(self, **kw)

        self.km = Manager(kernel_name=kernel_name or "python3")
        self._clients = clients
        self._log = log_file
        #: the run folder it writes into (kernel.log is there)
        self.folder = log.parent.resolve()
        self.interrupted = False
        #: (index, source) of the cell started last: the step a stopped run was in
        self.cell: tuple[int, str] | None = None

    def execute(self, source: Path, notebook: Path, params: dict[str, Any], *,
                progress: bool) -> None:
        import papermill

        from ._internal.nbengine import ENGINE

        def before_cell(cell: Any, cell_index: int, **_: Any) -> None:
            if self.interrupted:
                raise _Stopped
            self.cell = (cell_index, cell.source)
        with _running_lock:
            _running.add(self)
        try:
            # No cwd=: papermill would chdir the whole process, which races between the
            # threads of a batch. Every path handed to the notebook is absolute instead.
            papermill.execute_notebook(
                str(source), str(notebook), parameters=params, kernel_name=self.km.kernel_name,
                progress_bar=progress, request_save_on_cell_execute=True, km=self.km,
                on_cell_start=before_cell, engine_name=ENGINE,
            )
        finally:
            with _running_lock:
                _running.discard(self)

    def interrupt(self) -> bool:
        """Interrupt the running cell (SIGINT to the kernel); False if there is no kernel."""
        self.interrupted = True
        prov = getattr(self.km, "provisioner", None)
        pgid, pid = getattr(prov, "pgid", None), getattr(prov, "pid", None)
        try:
            if pgid:
                os.killpg(pgid, signal.SIGINT)
            elif pid:
                os.kill(pid, signal.SIGINT)
            else:
                return False
        except OSError:
            return False
        return True

    def close(self, *, now: bool = False) -> None:
        from jupyter_core.utils import run_sync

        for kc in self._clients:
            with contextlib.suppress(Exception):
                kc.stop_channels()
        with contextlib.suppress(Exception):
            if self.km.has_kernel:
                run_sync(self.km.shutdown_kernel)(now=now)
        with contextlib.suppress(Exception):
            run_sync(self.km.cleanup_resources)()
        self._log.close()


def interrupt_running() -> int:
    """Interrupt the running cell of every run going on in this process; how many."""
    with _running_lock:
        kernels = list(_running)
    return sum(k.interrupt() for k in kernels)


def interrupt_run(out_dir: str | os.PathLike) -> bool:
    """Interrupt the run writing into ``out_dir`` (its running cell; no further cell starts,
    even when its kernel is still starting); False when no such run is going on here."""
    folder = Path(out_dir).resolve()
    with _running_lock:
        kernels = [k for k in _running if k.folder == folder]
    for k in kernels:
        k.interrupt()
    return bool(kernels)


@contextlib.contextmanager
def interrupt_on_signals(kernel: _Kernel | None = None) -> Iterator[None]:
    """In the main thread: SIGTERM is handled like Ctrl-C; with a ``kernel``, the first one
    interrupts its running cell and only a second raises :class:`KeyboardInterrupt`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if kernel is not None and not kernel.interrupted and kernel.interrupt():
            return
        raise KeyboardInterrupt

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


# --------------------------------------------------------------------------- interrupted runs

_INTERRUPTED = ("{head}{step}: rerun the same command to resume (finished work is skipped, "
                "a pending CSR is reused)")


def _step_of(source: str) -> str | None:
    """The runbook step a cell runs: ``rb.step(proc.upload_trust)`` -> ``upload_trust``."""
    for pattern in (r"\.step\(\s*(?:\w+\.)?(\w+)", r"\b(?:rb|runbook|pf|proc)\.(\w+)\("):
        m = re.search(pattern, source)
        if m:
            return m.group(1)
    return None


def _still_running(out: Path) -> bool:
    try:
        return json.loads((out / "status.json").read_text()).get("status") == "running"
    except (OSError, ValueError, AttributeError):
        return False


def _record_stop(outcome: RunOutcome, state: str, message: str | None,
                 cell: tuple[int, str] | None) -> None:
    """Record in ``status.json`` and the outcome that the run stopped (``interrupted`` or
    ``failed``) at the step of ``cell``, the cell it was running."""
    step = (_step_of(cell[1]) or f"cell {cell[0]}") if cell else None
    if state == "interrupted":
        head = message if message and "KeyboardInterrupt" not in message else "interrupted"
        message = _INTERRUPTED.format(head=head, step=f" at step {step}" if step else "")
    outcome.status, outcome.failed_step, outcome.message = state, step, message
    _write_stop(outcome.out_dir, outcome.scenario, state, step, message or state)


def _write_stop(out: Path, scenario: str, state: str, step: str | None, message: str) -> None:
    path = out / "status.json"
    try:
        status = json.loads(path.read_text())
        if not isinstance(status, dict):
            raise ValueError
    except (OSError, ValueError):
        status = {"scenario": scenario, "site": None, "steps": [], "presented": []}
    status.update(status=state, failed_step=step, message=redact(message))
    atomic_write(path, json.dumps(status, indent=2).encode())


def _settle_killed_run(out: Path) -> None:
    """A ``status.json`` still saying ``running`` when a run starts in its folder belongs to a
    run that was killed (this run holds the folder's lock): record it as interrupted."""
    if _still_running(out):
        status = json.loads((out / "status.json").read_text())
        steps = [s for s in status.get("steps", []) if isinstance(s, dict)]
        last = steps[-1].get("step") if steps else None
        _write_stop(out, str(status.get("scenario", "")), "interrupted", None,
                    "interrupted: the run was killed" + (f" after step {last}" if last else ""))


def _keep_previous(notebook: Path) -> None:
    """A rerun into the same folder (e.g. after waiting for the CA) keeps the earlier record:
    ``<scenario>.ipynb``, its HTML and ``status.json`` become ``<scenario>.<UTC time>.ipynb``,
    ``.html`` and ``status.<UTC time>.json``."""
    if not notebook.exists():
        return
    stamp = utc_stamp(dt.datetime.fromtimestamp(notebook.stat().st_mtime, dt.UTC))
    for old in (notebook, notebook.with_suffix(".html"), notebook.with_name("status.json")):
        if old.exists():
            stem = "status" if old.name == "status.json" else notebook.stem
            os.replace(old, old.with_name(f"{stem}.{stamp}{old.suffix}"))


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
    """Every secret the site file points at, resolved here so the record can be scrubbed, and
    what each reference names (an operator may have pasted the password there)."""
    from .inventory import load_site

    candidates = [Path(site_file)] if site_file else list(out.glob("mock/site.yaml"))
    values = []
    for path in candidates:
        try:
            site = load_site(path)
        except CckitError:
            continue
        for cred in site.credentials.values():
            values.extend(cred.password.targets())
            try:
                values.append(cred.resolve()[1].reveal())
            except CckitError:
                continue
    return [v for v in values if v]


def _snapshot(out: Path) -> dict[str, tuple[int, int, int]]:
    """(inode, size, mtime) of every regular file under ``out`` (links not followed)."""
    snap: dict[str, tuple[int, int, int]] = {}
    for folder, dirs, files in os.walk(out):
        if Path(folder) == out and "mock" in dirs:
            dirs.remove("mock")  # the embedded mock's own state holds its secrets by design
        for name in files:
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                snap[path] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return snap


def scrub(out: Path, secrets: list[str], *,
          before: Mapping[str, tuple[int, int, int]] | None = None) -> list[Path]:
    """Mask ``secrets`` in the text files this run wrote in ``out``; returns the files changed.

    Only regular files under ``out`` that are new or changed since ``before`` (the
    :func:`_snapshot` taken as the run started) are touched: never a file some other run or
    person left there, never a symbolic link, never the embedded mock's state.
    """
    changed: list[Path] = []
    if not secrets:
        return changed
    before = before or {}
    for name, sig in _snapshot(out).items():
        if before.get(name) == sig:
            continue
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        new = redact(text, secrets)
        if new != text:
            atomic_write(path, new.encode("utf-8"), mode=stat.S_IMODE(path.stat().st_mode))
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
