"""Run a runbook headless through papermill: one executed notebook, its HTML, its log.

The executed notebook is the audit record; next to it go an HTML copy for auditors (code
hidden), the operation log and ``status.json``. Parameters never carry a secret: names that
look like one are refused, and every file is scrubbed of the site's resolved secrets before
it is left on disk (defence in depth; nothing should print one in the first place).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import logging
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._internal.fs import atomic_write, out_folder
from .ca import check_options
from .credentials import looks_secret, mask_secrets, parse_secret_ref, redact, secret_refs
from .errors import CckitError, InputError
from .procedures.base import WAITS, wait_problem
from .runfolder import RunFolder, State
from .scenarios import get as get_scenario
from .sites import Site, load_site, resolve_site_file

# papermill and nbclient report through cckit's outcome; no stray log lines on stderr
logging.getLogger("papermill").addHandler(logging.NullHandler())

__all__ = ["RunOutcome", "check_parameters", "interrupt_on_signals", "interrupt_run",
           "interrupt_running", "run_runbook"]


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

    def browser_view(self) -> dict[str, str]:
        """node -> what a browser is shown on each of its web ports at the end, in one line
        (:func:`cckit.display.browser_text`); no node when the scenario shows no browser."""
        from .display import browser_text

        per: dict[str, list[dict[str, Any]]] = {}
        for e in self.presented:
            if e["client"] == "browser":
                per.setdefault(e["node"], []).append(e)
        return {node: browser_text(entries) for node, entries in per.items()}


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


def _secrets_in(value: Any, path: str) -> list[str]:
    """Where in a parameter's value a secret-named entry holds more than a reference to
    where the secret is: a CA option such as ``tsig_secret`` or ``password`` may be given as
    a site file gives it (``{env: VAR}``, ``{keyring: ...}``, ``{file: PATH}``); the
    adapter resolves it at run time."""
    found: list[str] = []
    mask_secrets(value, path=path, reference=lambda where, v: (
        v if parse_secret_ref(v, where)[0] else found.append(where)))
    return found


def check_parameters(scenario: str, parameters: Mapping[str, Any]) -> None:
    """Refuse unknown parameter names, values of the wrong type (checked against the
    runbook's parameters cell) and anything that looks like a secret, at any depth.
    Every problem is one line; none repeats a parameter's value (it may be a pasted
    password)."""
    sc = get_scenario(scenario)
    specs = sc.parameters()
    problems = []
    for name, value in parameters.items():
        secret = [name] if looks_secret(name) else _secrets_in(value, name)
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
        if name in WAITS:  # a bound of a wait on the nodes: seconds above 0
            problems += [p for p in [wait_problem(name, value)] if p]
    if problems:
        raise InputError(f"bad parameter {problems[0]}" if len(problems) == 1 else
                         "bad parameters:\n  - " + "\n  - ".join(problems),
                         hint=f"see the parameters cell of {sc.notebook}")
    if sc.uses_ca:
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
    site: Site | None = None,
) -> RunOutcome:
    """Execute ``runbooks/<scenario>.ipynb`` into ``out_dir``; never raises for a failed or
    interrupted step (the outcome says which step and why), only for bad input and for a
    site or folder another run holds (:class:`~cckit.errors.SiteLockedError`, raised before
    anything is written).

    ``site_file`` is resolved once here (:func:`cckit.sites.resolve_site_file`), recorded in
    the run folder's ``status.json`` and handed to the kernel as an absolute path; ``site``,
    when the caller has loaded it already (a batch), spares a second reading here.

    In the main thread, the first Ctrl-C or SIGTERM interrupts the running cell (the notebook
    records a ``KeyboardInterrupt`` there, the operation log the operation it stopped) and
    no further cell starts; a second one stops the kernel at once. Either way the run's
    ``status.json`` says ``interrupted`` and names the step. The kernel is this interpreter
    (:func:`this_interpreter_kernel`) unless ``kernel_name`` names a kernelspec.
    """
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    sc = get_scenario(scenario)
    params = dict(parameters or {})
    check_parameters(sc.name, params)
    folder = RunFolder(out_folder(out_dir))
    path = resolve_site_file(site_file) if site_file else None
    if site is None and path is not None:
        site = _site_or_none(path)
    with folder.hold(site):  # the site free, the folder ours: refused before anything is written
        folder.path.mkdir(parents=True, exist_ok=True)
        folder.settle_killed()
        params["artifacts"] = str(folder.path)
        if path is not None:
            params["site_file"] = str(path)
        notebook = folder.path / f"{sc.name}.ipynb"
        before = _snapshot(folder.path)
        folder.keep_previous(notebook)
        folder.start(sc.name, site=site, site_file=path, apply=bool(params.get("apply", True)))
        started = time.monotonic()
        status, message = "ok", None
        kernel = _Kernel(kernel_name, folder.path / "kernel.log")
        try:
            with interrupt_on_signals(kernel):
                kernel.execute(sc.notebook, notebook, params, progress=progress)
        except PapermillExecutionError as e:
            # a step's KeyboardInterrupt is re-raised as runbook.StepInterrupted (one line)
            interrupted = e.ename in ("KeyboardInterrupt", "StepInterrupted")
            status = "interrupted" if interrupted else "failed"
            message = None if interrupted else _clean_evalue(e.ename, e.evalue)
        except (_Stopped, KeyboardInterrupt):
            status = "interrupted"
        except DeadKernelError:
            status, message = "interrupted", "the kernel running the notebook died (killed?)"
        except Exception as e:  # outside any cell: the kernel did not start
            # recorded like any other end (status, scrub, HTML), never a raw traceback
            status = "interrupted" if kernel.interrupted else "failed"
            message = (f"the notebook's kernel failed before or between its steps "
                       f"({type(e).__name__}: {redact(str(e))}); its log is kernel.log in "
                       f"the run folder")
        finally:
            kernel.close(now=status == "interrupted")
        outcome = RunOutcome(sc.name, folder.path, status, notebook,
                             seconds=time.monotonic() - started)
        _read_status(outcome, folder)
        if status == "failed" and not outcome.message:
            outcome.message = message
        if status == "interrupted":
            _record_stop(outcome, folder, State.INTERRUPTED, message, kernel.cell)
        elif status == "failed" and _still_running(folder):  # an error the runbook did not catch
            _record_stop(outcome, folder, State.FAILED, message, kernel.cell)
        # what a CA option's secret reference names (an operator may have pasted the secret)
        refs = [t for r in secret_refs(params)[0] for t in r.targets()]
        scrub(folder.path, _site_secrets(folder, site) + refs, before=before)
        outcome.html = folder.export_html(notebook)
        return outcome


def _site_or_none(path: Path) -> Site | None:
    """The site, or None (an invalid site file: the notebook reports that)."""
    try:
        return load_site(path)
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
                # papermill writes the record: the kernel's runbook must not write its own
                kw.setdefault("env", {**os.environ, "CCKIT_HEADLESS": "1"})
                await base.start_kernel(self, **kw)

        # Unix sockets, not TCP ports: a kernel's five ports are picked free, then bound by
        # the kernel a moment later, and on a busy machine another listener took one in
        # between ("Address already in use": the kernel died before its first cell). Short
        # paths in a private folder (a socket path is limited to about 100 bytes).
        self._ipc = tempfile.mkdtemp(prefix="cckit-kernel-")
        self.km = Manager(kernel_name=kernel_name or "python3", transport="ipc",
                          ip=os.path.join(self._ipc, "k"))
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
        """Interrupt the running cell (SIGINT to the kernel); False if there is no kernel.

        Before the first cell has started, no signal is sent: a kernel still starting has
        not installed its handler yet, and SIGINT would kill it ("Kernel died before
        replying to kernel_info"). The flag alone stops the run at its first cell."""
        self.interrupted = True
        if self.cell is None:
            return True
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
        shutil.rmtree(self._ipc, ignore_errors=True)
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
    """The runbook step a cell runs: ``rb.step("upload_trust")`` -> ``upload_trust``."""
    for pattern in (r"\.step\(\s*[\"']?(?:\w+\.)?(\w+)", r"\b(?:rb|runbook|pf|proc)\.(\w+)\("):
        m = re.search(pattern, source)
        if m:
            return m.group(1)
    return None


def _still_running(folder: RunFolder) -> bool:
    status = folder.read()
    return status is not None and status.status is State.RUNNING


def _record_stop(outcome: RunOutcome, folder: RunFolder, state: State, message: str | None,
                 cell: tuple[int, str] | None) -> None:
    """Record in ``status.json`` and the outcome that the run stopped (``interrupted`` or
    ``failed``) at the step of ``cell``, the cell it was running."""
    step = (_step_of(cell[1]) or f"cell {cell[0]}") if cell else None
    if state is State.INTERRUPTED:
        head = message if message and "KeyboardInterrupt" not in message else "interrupted"
        message = _INTERRUPTED.format(head=head, step=f" at step {step}" if step else "")
    outcome.status, outcome.failed_step, outcome.message = state.value, step, message
    folder.record_stop(state, step, message or state.value, scenario=outcome.scenario)


def _clean_evalue(ename: str, evalue: str) -> str:
    return f"{ename}: {evalue}".strip()


def _read_status(outcome: RunOutcome, folder: RunFolder) -> None:
    status = folder.read()
    if status is None:
        return
    outcome.site = status.site
    outcome.presented = list(status.presented)
    if status.status in (State.FAILED, State.WAITING):
        outcome.status = status.status.value
        outcome.failed_step = status.failed_step
        outcome.message = status.message


def _site_secrets(folder: RunFolder, site: Site | None) -> list[str]:
    """Every secret the run's site points at, resolved here so the record can be scrubbed,
    and what each reference names (an operator may have pasted the password there). The
    embedded mock's site is known from the run's status (its kernel started it)."""
    if site is None:
        status = folder.read()
        site = _site_or_none(Path(status.site_file)) if status and status.site_file else None
    values = []
    for cred in site.credentials.values() if site is not None else ():
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
