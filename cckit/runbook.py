"""What the runbook notebooks call: open a site (or the embedded mock), run steps, show results.

A notebook is narration over these calls. :func:`start` opens the run; :meth:`Runbook.step`
runs one procedure step (or, in plan-only mode, says it would), records its outcome in
``status.json`` next to the operation log, and refuses to change anything before the plan
has been shown. Failures raise :class:`~cckit.errors.CckitError`, which a notebook shows as
one message with what to do next, not a traceback.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import progress
from ._internal.fs import atomic_write, utc_stamp
from .audit import read as read_operations
from .ca import CertificateAuthority, get_adapter
from .credentials import MASK, looks_secret, redact
from .errors import CckitError, InputError, ProcedureError, WaitingForCA
from .inventory import Site, load_site
from .orchestration import in_schedule_order
from .procedures import SCENARIOS
from .results import NodeRecord, Outcome, Plan, PortChange, PortView, StepRecord, StepResult
from .session import SiteSession

__all__ = ["STATUS_SCHEMA", "Runbook", "StepInterrupted", "start"]

#: the version of ``status.json``'s layout (docs/status.md)
STATUS_SCHEMA = 1
#: the runbooks that only read: they never change a node, so "apply" means nothing to them
READ_ONLY = frozenset({"preflight", "self_signed"})


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
#: the release the embedded mock simulates per scenario (default: the mock's, UCCX 11.5)
EMBEDDED_VERSION = {"renew_tomcat": "12.5.1.10000-22"}
#: the TLS clients whose view of the web ports a scenario's before/after shows (default:
#: a browser, ECDSA-only and RSA-only). renew_tomcat changes what an RSA client (and so a
#: browser) is shown, on releases with no tomcat-ECDSA (11.6+, Cisco 118855): an ECDSA
#: column there would only be empty.
PRESENTED_TO = {"renew_tomcat": ("browser", "rsa")}
#: the open run per site in this process: running a notebook's start cell again replaces it
_open: dict[str, Runbook] = {}
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
    artifacts: Path
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
    node_versions: dict[str, str] = field(default_factory=dict)
    #: when this run was continued by a later start (kernel restart, stop button, rerun)
    resumed: list[str] = field(default_factory=list)
    #: when this start cell ran (``started`` is the run's first start when it was resumed)
    opened: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    #: one line for the overview: which run this continues, or which runs it abandoned
    continuity: str = ""

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
        if self.scenario in READ_ONLY:
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
        """The TLS clients this scenario's port views are for (:data:`PRESENTED_TO`)."""
        return PRESENTED_TO.get(self.scenario, ("browser", "ecdsa", "rsa"))

    def presented(self, label: str = "now") -> StepResult:
        """What each web port presents to a browser and to an ECDSA-only and an RSA-only
        TLS 1.2 client (only the clients the scenario concerns: :data:`PRESENTED_TO`)."""
        self._check_current("to probe the ports")
        only = "" if len(self.clients) > 1 else f" to an {self.clients[0].upper()} client"
        return StepResult("presented", f"what the web ports present{only} {label}",
                          self.session.presented_all(self.clients))

    def compare(self, before: StepResult, after: StepResult) -> StepResult:
        """Before/after: what each port presented at the start and presents now."""
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
        records = []
        logged = read_operations(path) if path.exists() else []
        # parallel steps log in completion order; show each step's operations by node
        for rec in in_schedule_order(logged, self.session.nodes):
            records.append({
                "time": rec["time"], "node": rec["node"], "operation": rec["operation"],
                "outcome": rec["outcome"],
                "before": ", ".join(f"{k} {v}" for k, v in
                                    (rec.get("fingerprints_before") or {}).items() if v),
                "after": ", ".join(f"{k} {v}" for k, v in
                                   (rec.get("fingerprints_after") or {}).items())})
        return StepResult("operations", f"{len(records)} state-changing operation(s) logged in "
                          f"{path.name}", records,
                          Outcome.OK if records else Outcome.NOTHING_TO_DO)

    # ------------------------------------------------------------------ steps
    def plan(self, procedure: Any) -> Plan:
        """Show what the procedure would send. Required before any step that changes state."""
        self._check_current("the plan")
        try:
            p = procedure.plan()
        except CckitError as e:
            self._record("plan", Outcome.FAILED, str(e))
            raise
        p.notes.append(self._confirmation_line())
        self.plan_shown = True
        self._record("plan", Outcome.OK, str(p).splitlines()[0])
        return p

    def step(self, fn: Callable[[], StepResult], *, changes: bool = True) -> StepResult:
        """Run one step; in plan-only mode a step that ``changes`` state is not run."""
        name = getattr(fn, "__name__", "step")
        self._check_current(f"step {name}")
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
        """Close connections and the site lock; the summary of the run.

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
        saved, _ = self._save_interactive()
        ok = sum(s.outcome is Outcome.OK for s in self.steps)
        how = ("read only, nothing changed" if self.scenario in READ_ONLY
               else "applied" if self.apply else "plan only")
        return StepResult("summary", f"{self.scenario} on {self.site.name}: "
                          f"{how}, {ok} step(s) ok" + (f"; {saved}" if saved else ""),
                          [StepRecord("", s.step, s.outcome, s.message) for s in self.steps])

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

    def save_record(self) -> StepResult:
        """Copy the notebook as last saved and its HTML into the run folder again: save the
        notebook (Ctrl+S) after the finish cell, then run this, and the record holds every
        output of the run. The kernel can only copy what JupyterLab has written to disk."""
        message, fresh = self._save_interactive()
        if not message:
            return StepResult("record", "nothing to do: not a JupyterLab session (a headless "
                              "run writes its record itself)", outcome=Outcome.NOTHING_TO_DO)
        return StepResult("record", message, outcome=Outcome.OK if fresh else Outcome.WAITING)

    def _save_interactive(self) -> tuple[str, bool]:
        """In JupyterLab, copy the notebook the kernel runs (as last saved) and its HTML into
        the run folder, so an interactive run leaves the same record as a headless one.
        Headless (papermill) runs write theirs themselves. Returns what it did (``""``: not in
        JupyterLab) and whether the copy was saved after this start cell ran."""
        source = os.environ.get("JPY_SESSION_NAME")
        if not source or os.environ.get("CCKIT_HEADLESS"):
            return "", False
        path = Path(source)
        if not path.is_file() or path.suffix != ".ipynb":
            return "", False
        import shutil

        from .headless import export_html

        saved = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        target = self.artifacts / f"{self.scenario}.ipynb"
        if path.resolve() != target.resolve():
            shutil.copyfile(path, target)
        export_html(target)
        if saved < self.opened:
            return (f"record: {target} is the notebook as last saved ({saved:%H:%M:%S} UTC, "
                    "before this run started), without this run's outputs: save the "
                    "notebook (Ctrl+S), then run rb.save_record()"), False
        return (f"record: the notebook as saved at {saved:%H:%M:%S} UTC and its HTML copied "
                f"to {self.artifacts} (outputs after that save: Ctrl+S, then "
                "rb.save_record())"), True

    def _record(self, step: str, outcome: Outcome, message: str) -> None:
        self.steps.append(StepRecord(dt.datetime.now(dt.UTC).isoformat(), step, outcome,
                                     redact(message)))
        # a resumed run: what failed before the latest start no longer decides its state
        since = max((i for i, s in enumerate(self.steps) if s.step == "start"), default=0)
        failed = [s for s in self.steps[since:]
                  if s.outcome in (Outcome.FAILED, Outcome.WAITING, Outcome.INTERRUPTED)]
        state = failed[-1].outcome.value if failed else (
            "complete" if step == "finish" else "running")
        status = {
            "schema": STATUS_SCHEMA,
            "scenario": self.scenario, "site": self.site.name, "apply": self.apply,
            "status": state,
            "failed_step": failed[-1].step if failed else None,
            "message": failed[-1].message if failed else None,
            "steps": [s.as_json() for s in self.steps],
            "presented": [v.as_json() for v in self.final_presented],
            "record": self.record(),
        }
        atomic_write(self.artifacts / "status.json", json.dumps(status, indent=2).encode())

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
        for key in ("directory", "outbox", "inbox", "state_dir"):
            if key in opts and not Path(opts[key]).is_absolute():
                opts[key] = self.artifacts / opts[key]
        return get_adapter(name, **opts)


def start(
    scenario: str,
    *,
    site_file: str | os.PathLike | None = None,
    nodes: Sequence[str] | None = None,
    artifacts: str | os.PathLike | None = None,
    apply: bool = True,
    trust_on_first_use: bool = False,
    timeout: float = 30.0,
    mock_restart_seconds: float = 0.5,
    confirm: str = "",
    change: str = "",
    operator: str = "",
    fresh: bool = False,
) -> Runbook:
    """Open a run.

    ``artifacts`` is where the operation log, status and other files go (default: a new
    ``runs/<scenario>/<UTC time>`` folder; ``CCKIT_RUNS_DIR`` replaces ``runs``). With no
    ``site_file`` (and no ``CCKIT_SITE_FILE``), a fresh embedded VOS mock is started under
    ``artifacts``/mock.

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
    global _generation, _start_failure
    _generation += 1
    _start_failure = None
    namespace = sys._getframe(1).f_globals
    try:
        names = _parameter_names(scenario, namespace)
        _refuse_misspelled(names, namespace)
        rb = _start(scenario, site_file=site_file, nodes=nodes, artifacts=artifacts, apply=apply,
                    trust_on_first_use=trust_on_first_use, timeout=timeout,
                    mock_restart_seconds=mock_restart_seconds, confirm=confirm, change=change,
                    fresh=fresh)
        rb.operator = operator or os.environ.get("CCKIT_OPERATOR") or _os_user()
        rb.parameters.update({n: _masked(n, namespace[n]) for n in names if n in namespace})
        rb.parameters.update({"scenario": scenario,
                              "site_file": str(site_file or "(embedded mock)"),
                              "nodes": ", ".join(nodes or []) or "all", "apply": apply,
                              "change": change or "", "confirmed": rb.confirmed(),
                              "fresh": fresh})
    except Exception as e:
        _start_failure = redact(str(e).splitlines()[0] if str(e) else type(e).__name__)
        raise
    rb.generation = _generation
    rb._record("start", Outcome.OK, f"site {rb.site.name}"
               + (f"; {rb.continuity}" if rb.continuity else ""))
    return rb


def _parameter_names(scenario: str, namespace: dict[str, Any]) -> list[str]:
    """The names of the runbook's parameters cell when called from a notebook
    (``namespace``: the kernel's user namespace), else none."""
    if namespace.get("__name__") != "__main__":  # called from a module, not a notebook
        return []
    try:
        import papermill

        from .headless import runbook_path

        return list(papermill.inspect_notebook(str(runbook_path(scenario))))
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


def _masked(name: object, value: Any) -> Any:
    """``value`` for the record: a secret-looking name's value (at any depth) is masked."""
    if looks_secret(name):
        return MASK
    if isinstance(value, dict):
        return {k: _masked(k, v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked("", v) for v in value]
    return redact(value) if isinstance(value, str) else value


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _resolve_site_file(value: str | os.PathLike) -> Path:
    """An absolute site file; a relative one resolves against the folder the user launched
    from (``CCKIT_LAUNCH_DIR``, set by ``cckit lab``), else the kernel's working folder."""
    path = Path(value).expanduser()
    where = ""
    if not path.is_absolute():
        launched = os.environ.get("CCKIT_LAUNCH_DIR")
        base = Path(launched or os.getcwd())
        path = base / path
        where = (f" (relative paths resolve against {base}, the folder "
                 f"{'cckit lab was started in' if launched else 'this kernel runs in'})")
    if not path.is_file():
        raise InputError(f"site file {path} not found{where}", file=str(path),
                         hint="set site_file to an absolute path, or one relative to that "
                              "folder; \"\" = the embedded mock")
    return path


def _start(scenario: str, *, site_file: str | os.PathLike | None, nodes: Sequence[str] | None,
           artifacts: str | os.PathLike | None, apply: bool, trust_on_first_use: bool,
           timeout: float, mock_restart_seconds: float, confirm: str, change: str,
           fresh: bool = False) -> Runbook:
    if scenario not in SCENARIOS:
        raise ProcedureError(f"unknown scenario {scenario!r}",
                             hint=f"use one of {', '.join(SCENARIOS)}")
    stamp = utc_stamp()
    runs = Path(os.environ.get("CCKIT_RUNS_DIR") or "runs")
    site_file = site_file or os.environ.get("CCKIT_SITE_FILE") or None
    embedded = site_file is None
    if embedded:
        out = Path(artifacts) if artifacts else _new_folder(runs / scenario, stamp)
        out.mkdir(parents=True, exist_ok=True)
        site_file = _mocks.start(out / "mock", restart_seconds=mock_restart_seconds,
                                 version=EMBEDDED_VERSION.get(scenario))
    else:
        site_file = _resolve_site_file(site_file)
    site = load_site(Path(site_file))  # type: ignore[arg-type]
    previous = _open.pop(site.name, None)
    if previous is not None:  # the start cell run again: release the earlier run's lock
        previous.session.close()
    unfinished = [] if artifacts else _unfinished_runs(runs / scenario, site.name)
    resume = None
    if not embedded:  # an embedded mock's state dies with its kernel: only real sites resume
        if artifacts:
            out = Path(artifacts)
        else:
            resume = next((r for r in unfinished if not fresh and r.apply == apply
                           and scenario not in READ_ONLY), None)
            out = resume.folder if resume else _new_folder(runs / scenario, stamp)
        out.mkdir(parents=True, exist_ok=True)
    session = SiteSession(site, workdir=out, nodes=list(nodes or []) or None,
                          trust_on_first_use=trust_on_first_use, timeout=timeout,
                          lock_dir=out / ".locks" if embedded else None)
    # we hold the site's lock now, so no other live run writes to these (an embedded mock's
    # run has its own lock in its folder: checked there)
    abandoned = [r for r in unfinished if r is not resume and (not embedded or r.lock_free())]
    for r in abandoned:
        r.abandon(out, "a fresh run was asked for (fresh=True)" if fresh else
                  "a later run of the same site replaced it")
    rb = Runbook(scenario, site, session, out, apply, embedded_mock=embedded,
                 confirm=str(confirm or "").strip(), change=str(change or "").strip(),
                 generation=_generation)
    if resume is not None:
        rb.steps = resume.steps
        if resume.status.get("status") == "running":  # nobody held its lock: it died
            rb.steps.append(StepRecord(
                dt.datetime.now(dt.UTC).isoformat(), resume.last_step or "run",
                Outcome.INTERRUPTED, "the kernel running this run stopped (restart, crash "
                "or closed session) after this step; resumed by the next start"))
        rb.started = resume.started or rb.started
        rb.resumed = [*resume.resumed, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")]
        rb.continuity = (f"RESUMED the unfinished run in {out} (it was {resume.state}"
                         f"{' at ' + resume.last_step if resume.last_step else ''}); "
                         "to start a fresh run instead set fresh = True")
    elif abandoned and not embedded:  # (a rehearsal's narration stays the same every time)
        rb.continuity = (f"{len(abandoned)} unfinished earlier run(s) marked abandoned: "
                         + ", ".join(str(r.folder) for r in abandoned))
    _open[site.name] = rb
    return rb


@dataclass
class _Unfinished:
    """An earlier run of this site and scenario that did not complete, from its status.json."""

    folder: Path
    status: dict[str, Any]

    @property
    def apply(self) -> bool:
        return bool(self.status.get("apply", True))

    @property
    def state(self) -> str:
        """``running`` with nobody holding its lock any more means it was interrupted."""
        state = str(self.status.get("status"))
        return "interrupted" if state == "running" else state

    @property
    def last_step(self) -> str:
        steps = self.status.get("steps") or []
        return str(steps[-1].get("step", "")) if steps else ""

    @property
    def steps(self) -> list[StepRecord]:
        out = []
        for s in self.status.get("steps") or []:
            try:
                out.append(StepRecord(str(s["time"]), str(s["step"]), Outcome(s["outcome"]),
                                      str(s.get("message") or "")))
            except (KeyError, ValueError):
                continue
        return out

    @property
    def started(self) -> dt.datetime | None:
        try:
            return dt.datetime.fromisoformat(str((self.status.get("record") or {})["started"]))
        except (KeyError, ValueError, TypeError):
            return None

    @property
    def resumed(self) -> list[str]:
        return list((self.status.get("record") or {}).get("resumed") or [])

    def lock_free(self) -> bool:
        """No process holds this (embedded-mock) run's lock: its kernel is gone."""
        import fcntl

        for path in (self.folder / ".locks").glob("*.lock"):
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return False
            finally:
                os.close(fd)
        return True

    def abandon(self, by: Path, why: str) -> None:
        status = dict(self.status)
        status.update(status="abandoned", abandoned_by=str(by.resolve()),
                      message=f"abandoned ({self.state} before): {why}: {by.resolve()}")
        atomic_write(self.folder / "status.json", json.dumps(status, indent=2).encode())


def _new_folder(parent: Path, stamp: str) -> Path:
    """``parent/stamp``, or ``stamp-2``, ``-3``... if a run started in the same second."""
    out, n = parent / stamp, 1
    while out.exists():
        n += 1
        out = parent / f"{stamp}-{n}"
    return out


def _unfinished_runs(scenario_runs: Path, site: str) -> list[_Unfinished]:
    """This site's runs under ``runs/<scenario>`` that neither completed nor were abandoned,
    newest first (run folders are named by their UTC start time)."""
    out = []
    for path in sorted(scenario_runs.glob("*/status.json"), reverse=True):
        try:
            status = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if (isinstance(status, dict) and status.get("site") == site
                and status.get("status") not in ("complete", "abandoned")):
            out.append(_Unfinished(path.parent, status))
    return out
