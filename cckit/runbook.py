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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._internal.fs import atomic_write, utc_stamp
from .audit import read as read_operations
from .ca import CertificateAuthority, get_adapter
from .credentials import redact
from .errors import CckitError, ProcedureError, WaitingForCA
from .inventory import Site, load_site
from .orchestration import in_schedule_order
from .procedures import SCENARIOS
from .results import NodeRecord, Outcome, Plan, PortChange, PortView, StepRecord, StepResult
from .session import SiteSession

__all__ = ["STATUS_SCHEMA", "Runbook", "start"]

#: the version of ``status.json``'s layout (docs/status.md)
STATUS_SCHEMA = 1


class _EmbeddedMocks:
    """The one owner of the VOS mocks this process started (stopped at exit)."""

    def __init__(self) -> None:
        self._running: list[Any] = []
        atexit.register(self.stop_all)

    def start(self, directory: Path, *, restart_seconds: float = 0.5) -> Path:
        """Start a fresh simulated UCCX site in this process; returns its site file."""
        from .vosmock import running_site

        cm = running_site(directory, restart_seconds=restart_seconds)
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

    # ------------------------------------------------------------------ display
    def overview(self) -> StepResult:
        """The site and nodes this run works on."""
        records = [NodeRecord(n.name, n.role, n.host, n.transport,
                              ", ".join(wp.label for wp in n.web_ports))
                   for n in self.session.nodes]
        target = "the embedded VOS mock" if self.embedded_mock else f"site {self.site.name}"
        mode = "APPLY (changes will be made after the plan is shown)" if self.apply \
            else "PLAN ONLY (nothing will be changed)"
        return StepResult("overview", f"{self.scenario} on {target}, {len(records)} node(s), "
                          f"mode {mode}; artifacts in {self.artifacts}", records)

    def presented(self, label: str = "now") -> StepResult:
        """What each web port presents to an ECDSA-only and an RSA-only TLS 1.2 client."""
        return StepResult("presented", f"what the web ports present {label}",
                          self.session.presented_all())

    def compare(self, before: StepResult, after: StepResult) -> StepResult:
        """Before/after: what each port presented at the start and presents now."""
        old = {(v.node, v.port, v.client): v for v in before.records}
        changes = [PortChange(old.get((v.node, v.port, v.client)), v) for v in after.records]
        n = sum(c.changed for c in changes)
        return StepResult("before/after", f"{n} of {len(changes)} handshake(s) show something "
                          "new", changes)

    def operations(self) -> StepResult:
        """Every state-changing operation of this run (the audit log)."""
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
        try:
            p = procedure.plan()
        except CckitError as e:
            self._record("plan", Outcome.FAILED, str(e))
            raise
        self.plan_shown = True
        self._record("plan", Outcome.OK, str(p).splitlines()[0])
        return p

    def step(self, fn: Callable[[], StepResult], *, changes: bool = True) -> StepResult:
        """Run one step; in plan-only mode a step that ``changes`` state is not run."""
        name = getattr(fn, "__name__", "step")
        if changes and not self.apply:
            result = StepResult(name, "not run: plan only (set apply = True to run it)",
                                outcome=Outcome.PLAN_ONLY)
            self._record(name, result.outcome, result.verdict)
            return result
        if changes and not self.plan_shown:
            raise ProcedureError(f"refusing to run {name} before the plan has been shown",
                                 hint="run the plan cell first")
        try:
            result = fn()
        except WaitingForCA as e:  # not a failure: the run resumes here once the CA answers
            self._record(name, Outcome.WAITING, str(e))
            raise
        except CckitError as e:
            self._record(name, Outcome.FAILED, str(e))
            raise
        self._record(name, result.outcome, result.verdict)
        if not result.ok:
            raise ProcedureError(f"{name}: {result.verdict}",
                                 hint="see the table above; fix the node(s) and rerun")
        return result

    def finish(self) -> StepResult:
        """Close connections and the site lock; the summary of the run.

        What each port presents at the end goes into ``status.json`` for batch summaries.
        """
        self.final_presented = self.session.presented_all()
        self.session.close()
        if _open.get(self.site.name) is self:
            del _open[self.site.name]
        self._record("finish", Outcome.OK, "run complete")
        ok = sum(s.outcome is Outcome.OK for s in self.steps)
        return StepResult("summary", f"{self.scenario} on {self.site.name}: "
                          f"{'applied' if self.apply else 'plan only'}, {ok} step(s) ok",
                          [StepRecord("", s.step, s.outcome, s.message) for s in self.steps])

    def _record(self, step: str, outcome: Outcome, message: str) -> None:
        self.steps.append(StepRecord(dt.datetime.now(dt.UTC).isoformat(), step, outcome,
                                     redact(message)))
        failed = [s for s in self.steps if s.outcome in (Outcome.FAILED, Outcome.WAITING)]
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
        }
        atomic_write(self.artifacts / "status.json", json.dumps(status, indent=2).encode())

    # ------------------------------------------------------------------ procedures
    def ca(self, name: str, options: dict[str, Any] | None = None) -> CertificateAuthority:
        """The CA adapter; relative paths in its options live under the artifacts folder."""
        opts = dict(options or {})
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
) -> Runbook:
    """Open a run.

    ``artifacts`` is where the operation log, status and other files go (default: a new
    ``runs/<scenario>/<UTC time>`` folder; ``CCKIT_RUNS_DIR`` replaces ``runs``). With no
    ``site_file`` (and no ``CCKIT_SITE_FILE``), a fresh embedded VOS mock is started under
    ``artifacts``/mock.
    """
    if scenario not in SCENARIOS:
        raise ProcedureError(f"unknown scenario {scenario!r}",
                             hint=f"use one of {', '.join(SCENARIOS)}")
    stamp = utc_stamp()
    runs = Path(os.environ.get("CCKIT_RUNS_DIR") or "runs")
    out = Path(artifacts) if artifacts else runs / scenario / stamp
    out.mkdir(parents=True, exist_ok=True)
    site_file = site_file or os.environ.get("CCKIT_SITE_FILE") or None
    embedded = site_file is None
    if embedded:
        site_file = _mocks.start(out / "mock", restart_seconds=mock_restart_seconds)
    site = load_site(Path(site_file))  # type: ignore[arg-type]
    previous = _open.pop(site.name, None)
    if previous is not None:  # the start cell run again: release the earlier run's lock
        previous.session.close()
    session = SiteSession(site, workdir=out, nodes=list(nodes or []) or None,
                          trust_on_first_use=trust_on_first_use, timeout=timeout,
                          lock_dir=out / ".locks" if embedded else None)
    rb = Runbook(scenario, site, session, out, apply, embedded_mock=embedded)
    _open[site.name] = rb
    rb._record("start", Outcome.OK, f"site {site.name}")
    return rb
