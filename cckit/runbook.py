"""What the runbook notebooks call: open a run (or the embedded mock), run steps, show results.

A notebook is narration over these calls. Its start cell calls :func:`start`, which takes the
notebook's parameters and opens the run in its :class:`~cckit.runfolder.RunFolder`. Every
later cell begins with ``from cckit.runbook import rb``: this kernel's run, or, when there
is none (a fresh kernel, a start cell that failed), one line saying which cell to run first.
Then one call: :meth:`Runbook.presented`, :meth:`Runbook.plan`, :meth:`Runbook.step` (a
procedure step by name, refused until the plan has been shown and, naming the earliest one,
until the steps it needs have run), :meth:`Runbook.compare`, :meth:`Runbook.operations`,
:meth:`Runbook.finish` (which in JupyterLab also writes the run's record). Failures raise
:class:`~cckit.errors.CckitError`, shown as one message with what to do next.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import display, progress
from ._internal.imports import skip_iri_format_checker
from .audit import read as read_operations
from .ca import CertificateAuthority, check_options, get_adapter
from .credentials import looks_secret, mask_secrets, redact
from .errors import CckitError, InputError, ProcedureError, WaitingForCA
from .orchestration import in_schedule_order
from .procedures.base import WAITS, wait_problem
from .results import (
    NodeRecord,
    OperationRecord,
    Outcome,
    Plan,
    PortChange,
    PortView,
    StepRecord,
    StepResult,
)
from .runfolder import STATUS_SCHEMA, RunFolder, RunStatus, State
from .scenarios import Scenario
from .scenarios import get as get_scenario
from .session import SiteSession
from .sites import Site, load_site, resolve_site_file

__all__ = ["STATUS_SCHEMA", "Runbook", "StepInterrupted", "current", "start"]

# A runbook's kernel reads its notebook's parameters with papermill (nbformat, jsonschema):
# without this, the start cell spends ~3 CPU-s compiling a grammar nothing uses.
skip_iri_format_checker()


class StepInterrupted(KeyboardInterrupt):
    """A step stopped by JupyterLab's stop button (or SIGINT): still a KeyboardInterrupt,
    shown as one line (where the run is, how to resume) instead of a wall of traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"StepInterrupted: {self}"]


class _EmbeddedMocks:
    """The one owner of the VOS mocks this process started (stopped at exit)."""

    def __init__(self) -> None:
        self._running: list[Any] = []
        atexit.register(self.stop_all)

    def start(self, directory: Path, *, restart_seconds: float = 0.5,
              version: str | None = None) -> Path:
        """Start a fresh simulated UCCX site in this process; returns its site file."""
        from .vosmock import running_site

        cm = running_site(directory, restart_seconds=restart_seconds, version=version)
        running = cm.__enter__()
        self._running.append(cm)
        return Path(running.site_file)

    def stop_all(self) -> None:
        while self._running:
            cm = self._running.pop()
            with contextlib.suppress(Exception):
                cm.__exit__(None, None, None)


_mocks = _EmbeddedMocks()
#: the open run per site in this process: running a notebook's start cell again replaces it
_open: dict[str, Runbook] = {}
#: the run the latest successful start() opened (what ``from cckit.runbook import rb`` gives)
_latest: Runbook | None = None
#: every call of start() in this process increments it; only the run it created may act
_generation = 0
#: why the latest start() failed (its runs' cells then refuse), or None
_start_failure: str | None = None


@dataclass
class Runbook:
    """One run of one scenario against one site."""

    scenario: str
    site: Site
    session: SiteSession
    folder: RunFolder
    apply: bool
    embedded_mock: bool = False
    plan_shown: bool = False
    steps: list[StepRecord] = field(default_factory=list)
    final_presented: list[PortView] = field(default_factory=list)
    #: what the operator typed to allow changes on a real site: the site name or the change
    confirm: str = ""
    #: the change (ticket) number of this maintenance, if any
    change: str = ""
    generation: int = 0
    #: who ran it (the OS user unless given)
    operator: str = ""
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    ended: dt.datetime | None = None
    #: the run's parameters as the record shows them (never a secret)
    parameters: dict[str, Any] = field(default_factory=dict)
    #: the bounds of the procedure's waits on the nodes (its parameters of those names,
    #: :data:`~cckit.procedures.base.WAITS`), handed to the procedure with its plan
    waits: dict[str, float] = field(default_factory=dict)
    node_versions: dict[str, str] = field(default_factory=dict)
    #: when this run was continued by a later start (kernel restart, stop button, rerun)
    resumed: list[str] = field(default_factory=list)
    #: when this start cell ran (``started`` is the run's first start when it was resumed)
    opened: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    #: one line for the overview: which run this continues, or which runs it abandoned
    continuity: str = ""
    #: the procedure whose plan was shown (its steps run by name)
    _procedure: Any = None
    #: what the web ports presented, each time they were probed in this run
    _views: list[StepResult] = field(default_factory=list)
    #: where this run's start cell is in the kernel's history (the interactive record)
    _capture_mark: int | None = None

    @property
    def artifacts(self) -> Path:
        """The run folder: operation log, status, the CA's outbox/inbox, the record."""
        return self.folder.path

    @property
    def spec(self) -> Scenario:
        return get_scenario(self.scenario)

    # ------------------------------------------------------------------ guards
    def _check_current(self, what: str) -> None:
        """Refuse when a later start cell replaced this run, or the latest one failed."""
        if self.generation == _generation:
            return
        if _start_failure is not None:
            raise ProcedureError(
                f"refusing {what}: the latest start cell failed ({_start_failure}); "
                f"`rb` still names the earlier run in {self.artifacts}",
                hint="fix the parameters, run the start cell again, then the cells below it")
        raise ProcedureError(
            f"refusing {what}: this run ({self.artifacts}) was replaced by a later start cell",
            hint="run the cells below the latest start cell (they use its `rb`)")

    @property
    def needs_confirmation(self) -> bool:
        return self.apply and not self.embedded_mock

    def confirmed(self) -> bool:
        """A real site's changes need ``confirm`` equal to its site name or the change number."""
        if not self.needs_confirmation:
            return True
        allowed = {self.site.name} | ({self.change} if self.change else set())
        return self.confirm in allowed

    def _confirmation_line(self) -> str:
        if not self.needs_confirmation:
            return ("confirmation: not needed (the embedded mock)" if self.embedded_mock
                    else "confirmation: not needed (plan only)")
        if self.confirmed():
            return f"confirmation: {self.confirm!r} given; changes will be made on {self.site.name}"
        want = repr(self.site.name) + (f" or the change number {self.change!r}"
                                       if self.change else "")
        return (f"confirmation: MISSING; no change will be made until confirm = {want} "
                f"(parameters cell, or -p confirm {self.site.name})")

    # ------------------------------------------------------------------ display
    def overview(self) -> StepResult:
        """The site and nodes this run works on."""
        records = [NodeRecord(n.name, n.role, n.host, n.transport,
                              ", ".join(wp.label for wp in n.web_ports))
                   for n in self.session.nodes]
        self._check_current("the overview")
        target = "the embedded VOS mock" if self.embedded_mock else f"site {self.site.name}"
        if self.spec.read_only:
            mode = "READ-ONLY (this runbook changes nothing on the nodes)"
        elif self.apply:
            mode = "APPLY (changes will be made after the plan is shown)"
        else:
            mode = "PLAN ONLY (nothing will be changed)"
        return StepResult("overview", f"{self.scenario} on {target}, {len(records)} node(s), "
                          f"mode {mode}; artifacts in {self.artifacts}"
                          + (f"; {self.continuity}" if self.continuity else ""), records)

    @property
    def clients(self) -> tuple[str, ...]:
        """The TLS clients this scenario's port views are for (:attr:`Scenario.clients`)."""
        return self.spec.clients

    def presented(self, label: str = "now") -> StepResult:
        """What each web port presents to a browser and to an ECDSA-only and an RSA-only
        TLS 1.2 client (only the clients the scenario concerns: :attr:`Scenario.clients`).
        The first call of a run is the "before" that :meth:`compare` compares with."""
        self._check_current("to probe the ports")
        only = "" if len(self.clients) > 1 else f" to an {self.clients[0].upper()} client"
        result = StepResult("presented", f"what the web ports present{only} {label}",
                            self.session.presented_all(self.clients))
        self._views.append(result)
        return result

    def compare(self, before: StepResult | None = None,
                after: StepResult | None = None) -> StepResult:
        """Before/after: what each port presented at the start (this run's first
        :meth:`presented`) and presents now (probed again unless ``after`` is given)."""
        self._check_current("the before/after")
        if before is None:
            if not self._views:
                raise ProcedureError(
                    "refusing the before/after: the ports were not probed before the change "
                    "in this run", hint="run the 'Before' cell (rb.presented) first")
            before = self._views[0]
        after = after or self.presented("after the change")
        old = {(v.node, v.port, v.client): v for v in before.records}
        changes = [PortChange(old.get((v.node, v.port, v.client)), v) for v in after.records]
        n = sum(c.changed for c in changes)
        kinds = sorted({c.after.client.upper() for c in changes})
        only = f" with an {kinds[0]} client" if len(kinds) == 1 else ""
        return StepResult("before/after", f"{n} of {len(changes)} handshake(s){only} show "
                          "something new", changes)

    def operations(self) -> StepResult:
        """Every state-changing operation of this run (the audit log)."""
        self._check_current("the operation log")
        path = Path(self.session.audit.path)
        # parallel steps log in completion order; show each step's operations by node
        records = [OperationRecord.from_log(rec) for rec in
                   in_schedule_order(read_operations(path), self.session.nodes)]
        return StepResult("operations", f"{len(records)} state-changing operation(s) logged in "
                          f"{path.name}", records,
                          Outcome.OK if records else Outcome.NOTHING_TO_DO)

    # ------------------------------------------------------------------ steps
    @property
    def procedure(self) -> Any:
        """The procedure whose plan this run showed (the plan cell makes it)."""
        if self._procedure is None:
            raise ProcedureError(
                f"refusing: the plan of this {self.scenario} run has not been shown",
                hint="run the plan cell ('The plan') first, then the cells after it in order")
        return self._procedure

    def plan(self, procedure: Any) -> Plan:
        """Show what the procedure would send. Required before any step that changes state."""
        self._check_current("the plan")
        try:
            procedure.set_waits(**{name: seconds for name, seconds in self.waits.items()
                                   if name in procedure.waits})
            p = procedure.plan()
        except CckitError as e:
            self._record("plan", Outcome.FAILED, str(e))
            raise
        p.notes.append(self._confirmation_line())
        self.plan_shown = True
        self._procedure = procedure
        self._record("plan", Outcome.OK, repr(p))
        return p

    def step(self, fn: str | Callable[[], StepResult], *,
             changes: bool | None = None) -> StepResult:
        """Run one step: the procedure's step ``fn`` (its name), or a callable. In plan-only
        mode a step that changes state is not run; a read-only scenario's never do."""
        if isinstance(fn, str):
            name = fn
            self._check_current(f"step {name}")
            if self._procedure is None:
                raise ProcedureError(f"refusing to run {name} before the plan has been shown",
                                     hint="run the plan cell ('The plan') first, then the "
                                          "cells after it in order")
            if name not in type(self._procedure).steps():
                raise InputError(f"{name!r} is not a step of {self.scenario}",
                                 hint="its steps: " + ", ".join(type(self._procedure).steps()))
            fn = getattr(self._procedure, name)
        name = getattr(fn, "__name__", "step")
        self._check_current(f"step {name}")
        if changes is None:
            changes = getattr(fn, "changes", True)
        changes = changes and not self.spec.read_only
        if changes and not self.apply:
            result = StepResult(name, "not run: plan only (set apply = True to run it)",
                                outcome=Outcome.PLAN_ONLY)
            self._record(name, result.outcome, result.verdict)
            return result
        if changes and not self.plan_shown:
            raise ProcedureError(f"refusing to run {name} before the plan has been shown",
                                 hint="run the plan cell first")
        if changes and not self.confirmed():
            raise ProcedureError(
                f"refusing to run {name} on site {self.site.name}: changes on a real site need "
                "an explicit confirmation",
                hint=f"set confirm = {self.site.name!r} (or the change number) in the "
                     f"parameters cell, or pass -p confirm {self.site.name}")
        try:
            with progress.follow(self.session.events, step=name,
                                 nodes=[n.name for n in self.session.nodes],
                                 log_file=self.artifacts / "progress.log"):
                result = fn()
        except WaitingForCA as e:  # not a failure: the run resumes here once the CA answers
            self._record(name, Outcome.WAITING, str(e))
            raise
        except CckitError as e:
            self._record(name, Outcome.FAILED, str(e))
            raise
        except KeyboardInterrupt:  # JupyterLab's stop button: the rerun resumes this run
            message = (f"{name} interrupted (stop button or signal); rerun from the top to "
                       "resume this run")
            self._record(name, Outcome.INTERRUPTED, message)
            raise StepInterrupted(f"{message} ({self.artifacts})") from None
        self._record(name, result.outcome, result.verdict)
        if not result.ok:
            raise ProcedureError(f"{name}: {result.verdict}",
                                 hint="see the table above; fix the node(s) and rerun")
        return result

    def finish(self) -> StepResult:
        """Close connections and the site lock; the summary of the run, each step with its
        time. In JupyterLab the run's record (this notebook with every output the kernel
        showed, this summary included, and its HTML) is written to the run folder too.

        What each port presents at the end goes into ``status.json`` for batch summaries.
        """
        self._check_current("to finish")
        self.final_presented = self.session.presented_all(self.clients)
        self.node_versions = self._versions()
        self.session.close()
        self.ended = dt.datetime.now(dt.UTC)
        if _open.get(self.site.name) is self:
            del _open[self.site.name]
        self._record("finish", Outcome.OK, "run complete")
        ok = sum(s.outcome is Outcome.OK for s in self.steps)
        how = ("read only, nothing changed" if self.spec.read_only
               else "applied" if self.apply else "plan only")
        head = f"{self.scenario} on {self.site.name}: {how}, {ok} step(s) ok"
        record = self._record_file()
        verdict = head + (f"; record: {record} and its HTML" if record else "")
        result = StepResult("summary", verdict, list(self.steps))
        if record:
            self._write_record(result)
        return result

    def _versions(self) -> dict[str, str]:
        out = {}
        for node in self.session.nodes:
            try:
                with self.session.on(node) as t:
                    out[node.name] = t.version().version
            except CckitError as e:
                out[node.name] = f"unknown ({str(e).splitlines()[0]})"
        return out

    def record(self) -> dict[str, Any]:
        """The audit record's header: who, when, what (status.json ``record``)."""
        from . import __version__

        end = self.ended or dt.datetime.now(dt.UTC)
        return {"operator": self.operator, "change": self.change or None,
                "started": self.started.isoformat(timespec="seconds"),
                "ended": self.ended.isoformat(timespec="seconds") if self.ended else None,
                "seconds": round((end - self.started).total_seconds(), 1),
                "parameters": {k: redact(str(v)) for k, v in self.parameters.items()},
                "cckit_version": __version__, "node_versions": dict(self.node_versions),
                "resumed": list(self.resumed)}

    # ------------------------------------------------------------------ the record
    def save_record(self) -> StepResult:
        """Write the run's record again (the finish cell wrote it): the notebook with every
        output this kernel has shown in this run, and its HTML, in the run folder. For
        cells run after the finish cell."""
        record = self._record_file()
        if not record:
            return StepResult("record", "nothing to do: not a JupyterLab session (a headless "
                              "run writes its record itself)", outcome=Outcome.NOTHING_TO_DO)
        result = StepResult("record", f"record: {record} and its HTML, with every output "
                            "this kernel has shown in this run")
        self._write_record(result)
        return result

    def _record_file(self) -> Path | None:
        """Where the interactive record goes; None when this is no JupyterLab session (a
        headless run's papermill writes the executed notebook itself)."""
        if (self._capture_mark is None or not os.environ.get("JPY_SESSION_NAME")
                or os.environ.get("CCKIT_HEADLESS")):
            return None
        return self.artifacts / f"{self.scenario}.ipynb"

    def _write_record(self, shown: StepResult) -> None:
        """The notebook as this kernel ran it (:mod:`cckit._internal.capture`), ``shown``
        as the running cell's result, and its HTML."""
        import nbformat

        from ._internal.capture import Capture

        capture = Capture.install()
        target = self._record_file()
        if capture is None or target is None:
            return
        shell = sys.modules["IPython"].get_ipython()
        data, metadata = shell.display_formatter.format(shown)
        capture.add_result(data, metadata)
        source = Path(os.environ.get("JPY_SESSION_NAME", ""))
        try:
            skeleton = nbformat.read(str(source), as_version=4)
        except (OSError, ValueError):  # not saved anywhere readable: the runbook's cells
            skeleton = nbformat.read(str(self.spec.notebook), as_version=4)
        nb = capture.notebook(skeleton, since=self._capture_mark or 0)
        nbformat.write(nb, str(target))
        self.folder.export_html(target)

    def _record(self, step: str, outcome: Outcome, message: str) -> None:
        self.steps.append(StepRecord(dt.datetime.now(dt.UTC).isoformat(), step, outcome,
                                     redact(message)))
        status = RunStatus.of_steps(
            self.scenario, self.steps, site=self.site.name, apply=self.apply,
            presented=[v.as_json() for v in self.final_presented], record=self.record(),
            site_file=str(self.site.path) if self.site.path else None)
        self.folder.write(status)

    # ------------------------------------------------------------------ procedures
    def ca(self, name: str, options: dict[str, Any] | None = None) -> CertificateAuthority:
        """The CA adapter; relative paths in its options live under the artifacts folder."""
        opts = dict(options or {})
        self.parameters["ca"] = name
        if opts:
            self.parameters["ca_options"] = _masked("ca_options", opts)
        if name == "lab":
            opts.setdefault("directory", "lab-ca")
        if name == "files":
            opts.setdefault("outbox", "csr-outbox")
            opts.setdefault("inbox", "cert-inbox")
            opts.setdefault("site", self.site.name)
        paths = check_options(name, opts, complete=False).path_options
        for key in ("directory", "outbox", "inbox", "state_dir"):
            # the adapter's own paths only: acme's ``directory`` is a URL
            if key in opts and key in paths and not Path(opts[key]).is_absolute():
                opts[key] = self.artifacts / opts[key]
        return get_adapter(name, **opts)


#: what start() takes from the notebook's parameters cell when not given, and its default
_START_PARAMETERS: dict[str, Any] = {"site_file": "", "nodes": (), "artifacts": "",
                                     "apply": True, "confirm": "", "change": "",
                                     "fresh": False}


def start(
    scenario: str,
    *,
    site_file: str | os.PathLike | None = None,
    nodes: Sequence[str] | None = None,
    artifacts: str | os.PathLike | None = None,
    apply: bool | None = None,
    trust_on_first_use: bool = False,
    timeout: float = 30.0,
    mock_restart_seconds: float = 0.5,
    confirm: str | None = None,
    change: str | None = None,
    operator: str = "",
    fresh: bool | None = None,
    waits: Mapping[str, float] | None = None,
) -> Runbook:
    """Open a run.

    Called from a notebook, what is not given is taken from its parameters cell
    (``site_file``, ``nodes``, ``apply``, ``artifacts``, ``confirm``, ``change``, ``fresh``,
    and the bounds of the procedure's waits, ``replication_timeout`` and
    ``in_service_timeout``, which ``waits`` overrides); if that cell has not run in this
    kernel, nothing starts and the message says so. A bound that is not a number of seconds
    above 0 is refused before anything starts.

    ``artifacts`` is the run folder (default: a new ``runs/<scenario>/<UTC time>``;
    ``CCKIT_RUNS_DIR`` replaces ``runs``). With no ``site_file`` (and no
    ``CCKIT_SITE_FILE``), a fresh embedded VOS mock is started under ``artifacts``/mock; a
    relative one resolves by :func:`cckit.sites.resolve_site_file`.

    Every call replaces the runs this process started before: their cells refuse from now
    on, and if this call fails, every cell refuses until a start succeeds. On a real site
    (not the embedded mock) with ``apply``, the first change needs ``confirm`` equal to the
    site's name or to ``change`` (the change number).

    Resume: with no ``artifacts``, a run of a real site continues this site's latest
    unfinished run of the scenario (its folder: the CSR outbox, the ``files`` CA's inbox, the
    operation log) unless ``fresh``. A ``running`` run whose lock nobody holds any more (its
    kernel died or was interrupted) counts as interrupted. Every other unfinished run of the
    site is marked ``abandoned`` in its ``status.json``, naming the run that replaced it.
    """
    global _generation, _start_failure, _latest
    display.use_ipython()
    _generation += 1
    _start_failure = None
    _latest = None
    namespace = sys._getframe(1).f_globals
    given = {"site_file": site_file, "nodes": nodes, "artifacts": artifacts, "apply": apply,
             "confirm": confirm, "change": change, "fresh": fresh}
    try:
        sc = get_scenario(scenario)
        names = _parameter_names(sc, namespace)
        if names and not any(n in namespace for n in names):
            raise ProcedureError(
                f"refusing to start {scenario}: the parameters cell has not run in this "
                "kernel", hint="run the notebook from the top: the parameters cell, then this "
                               "cell, then the cells below it")
        _refuse_misspelled(names, namespace)
        args = {k: (v if v is not None else
                    namespace.get(k, _START_PARAMETERS[k]) if k in names else _START_PARAMETERS[k])
                for k, v in given.items()}
        bounds = {n: namespace[n] for n in names if n in WAITS and n in namespace}
        bounds.update(waits or {})
        problems = [p for n, v in bounds.items() if (p := wait_problem(n, v))]
        if problems:
            raise InputError("bad parameter " + "; ".join(problems),
                             hint="fix it in the parameters cell, then run this cell again")
        mark = _capture_mark()
        rb = _start(sc, site_file=args["site_file"] or None, nodes=args["nodes"],
                    artifacts=args["artifacts"] or None, apply=bool(args["apply"]),
                    trust_on_first_use=trust_on_first_use, timeout=timeout,
                    mock_restart_seconds=mock_restart_seconds, confirm=args["confirm"],
                    change=args["change"], fresh=bool(args["fresh"]))
        rb._capture_mark = mark
        rb.waits = {n: float(v) for n, v in bounds.items()}
        rb.operator = operator or os.environ.get("CCKIT_OPERATOR") or _os_user()
        rb.parameters.update({n: _masked(n, namespace[n]) for n in names if n in namespace})
        rb.parameters.update({"scenario": scenario,
                              "site_file": str(args["site_file"] or "(embedded mock)"),
                              "nodes": ", ".join(args["nodes"] or []) or "all",
                              "apply": bool(args["apply"]), "change": args["change"] or "",
                              "confirmed": rb.confirmed(), "fresh": bool(args["fresh"])})
        rb.parameters.update(rb.waits)
    except Exception as e:
        _start_failure = redact(str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise
    rb.generation = _generation
    rb._record("start", Outcome.OK, f"site {rb.site.name}"
               + (f"; {rb.continuity}" if rb.continuity else ""))
    _latest = rb
    return rb


def current() -> Runbook:
    """This kernel's run (the latest start cell's), or a refusal naming the first cell to run.

    ``from cckit.runbook import rb`` calls it: every runbook cell after the start cell
    begins so, and a cell run in a fresh kernel says what to run instead of ``NameError``.
    """
    display.use_ipython()
    if _start_failure is not None:
        raise ProcedureError(f"refusing: the latest start cell failed ({_start_failure})",
                             hint="fix the parameters, run the start cell again, then the "
                                  "cells below it")
    if _latest is None:
        first = ("the start cell ('The site')" if _user_namespace().get("site_file") is not None
                 else "the parameters cell")
        raise ProcedureError(
            f"refusing: no run is open in this kernel ({first} has not run since the kernel "
            "started)", hint=f"run the notebook from the top: {first}, then the cells below it "
                             "in order")
    return _latest


def __getattr__(name: str) -> Any:
    if name == "rb":  # ``from cckit.runbook import rb``: this kernel's run
        return current()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _user_namespace() -> dict[str, Any]:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return dict(getattr(shell, "user_ns", None) or {})


def _capture_mark() -> int | None:
    """In JupyterLab (not headless), listen to what the kernel shows from now on, for the
    run's record; where the start cell is in the kernel's history. None elsewhere."""
    if not os.environ.get("JPY_SESSION_NAME") or os.environ.get("CCKIT_HEADLESS"):
        return None
    from ._internal.capture import Capture

    capture = Capture.install()
    return capture.mark() if capture is not None else None


def _parameter_names(sc: Scenario, namespace: dict[str, Any]) -> list[str]:
    """The names of the runbook's parameters cell when called from a notebook
    (``namespace``: the kernel's user namespace), else none."""
    if namespace.get("__name__") != "__main__":  # called from a module, not a notebook
        return []
    try:
        return list(sc.parameters())
    except Exception:  # no runbook of that name shipped: the library's parameters only
        return []


#: what a parameter's value can be; other objects in the namespace are never parameters
_PARAMETER_TYPES = (bool, int, float, str, list, dict, tuple, type(None))


def _refuse_misspelled(names: Sequence[str], namespace: dict[str, Any]) -> None:
    """A variable of the notebook one typo away from a parameter (``aply = False`` typed in
    a warm kernel) would be ignored silently while the run uses the real one: refuse it."""
    import difflib

    for var, value in namespace.items():
        if (var.startswith("_") or var in names or var in ("In", "Out")
                or not isinstance(value, _PARAMETER_TYPES)):
            continue
        close = difflib.get_close_matches(var, names, n=1, cutoff=0.8)
        if close:
            raise InputError(
                f"{var} = {value!r} is not a parameter of this runbook: did you mean "
                f"{close[0]}? (its parameters: {', '.join(names)})" if not looks_secret(var)
                else f"{var} is not a parameter of this runbook: did you mean {close[0]}?",
                hint=f"rename it to {close[0]} (or del {var}) and run this cell again")


def _masked(name: str, value: Any) -> Any:
    """``value`` for the record: a secret-looking name's value (at any depth) is masked."""
    return mask_secrets({name: value},
                        leaf=lambda v: redact(v) if isinstance(v, str) else v)[name]


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _start(sc: Scenario, *, site_file: str | os.PathLike | None, nodes: Sequence[str] | None,
           artifacts: str | os.PathLike | None, apply: bool, trust_on_first_use: bool,
           timeout: float, mock_restart_seconds: float, confirm: str, change: str,
           fresh: bool = False) -> Runbook:
    scenario = sc.name
    site_file = site_file or os.environ.get("CCKIT_SITE_FILE") or None
    embedded = site_file is None
    folder = RunFolder(artifacts) if artifacts else None
    if embedded:
        folder = folder or RunFolder.new(scenario)
        folder.path.mkdir(parents=True, exist_ok=True)
        path = _mocks.start(folder.path / "mock", restart_seconds=mock_restart_seconds,
                            version=sc.embedded_version)
    else:
        path = resolve_site_file(site_file)  # type: ignore[arg-type]
    site = load_site(path)
    previous = _open.pop(site.name, None)
    if previous is not None:  # the start cell run again: release the earlier run's lock
        previous.session.close()
    unfinished = [] if artifacts else RunFolder.unfinished(scenario, site.name)
    resume = None
    if not embedded:  # an embedded mock's state dies with its kernel: only real sites resume
        if folder is None:
            resume = next((r for r in unfinished if not fresh and not sc.read_only
                           and r.status is not None and r.status.apply == apply), None)
            folder = resume or RunFolder.new(scenario)
        folder.path.mkdir(parents=True, exist_ok=True)
    assert folder is not None
    session = folder.session(site, embedded=embedded, nodes=list(nodes or []) or None,
                             trust_on_first_use=trust_on_first_use, timeout=timeout)
    # we hold the site's lock now, so no other live run writes to these (an embedded mock's
    # run has its own lock in its folder: checked there)
    abandoned = [r for r in unfinished if r is not resume and (not embedded or r.lock_free())]
    for r in abandoned:
        r.abandon(folder, "a fresh run was asked for (fresh=True)" if fresh else
                  "a later run of the same site replaced it")
    rb = Runbook(scenario, site, session, folder, apply, embedded_mock=embedded,
                 confirm=str(confirm or "").strip(), change=str(change or "").strip(),
                 generation=_generation)
    if resume is not None and resume.status is not None:
        was: RunStatus = resume.status
        rb.steps = list(was.steps)
        if was.status is State.RUNNING:  # nobody held its lock: it died
            rb.steps.append(StepRecord(
                dt.datetime.now(dt.UTC).isoformat(), was.last_step or "run",
                Outcome.INTERRUPTED, "the kernel running this run stopped (restart, crash "
                "or closed session) after this step; resumed by the next start"))
        rb.started = was.started or rb.started
        rb.resumed = [*was.resumed, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")]
        state = "interrupted" if was.status is State.RUNNING else was.status.value
        rb.continuity = (f"RESUMED the unfinished run in {folder.path} (it was {state}"
                         f"{' at ' + was.last_step if was.last_step else ''}); "
                         "to start a fresh run instead set fresh = True")
    elif abandoned and not embedded:  # (a rehearsal's narration stays the same every time)
        rb.continuity = (f"{len(abandoned)} unfinished earlier run(s) marked abandoned: "
                         + ", ".join(str(r.path) for r in abandoned))
    _open[site.name] = rb
    return rb
