"""One pass of the renewal autopilot (``cckit renew``): made to run from cron or a timer.

For every site file: nothing at all unless its ``autopilot:`` block is enabled and the site is
not paused; then a read-only look (the inventory's collection) at what is due; then, only when
one of its windows is open now with at least the expected run time left and no backoff holds
it, the runbook run headless exactly as ``cckit run`` runs it (through :mod:`.runner`, the one
seam to the runbooks), one run folder per attempt under ``STATE/runs/<site>``, each attempt in
the ledger. Sites are handled ``concurrency`` at a time; one failure never stops the others.
The site's latest unfinished run of a scenario (failed, interrupted, killed, waiting for the
CA: the run folder's rule) is resumed in its own folder by the next pass that may change the
site, so nothing is left half-done; the runbook itself holds the site lock, and a site another
run holds is skipped and recorded ``locked``.

State folder::

    ledger.sqlite             every attempt (cckit.autopilot.ledger)
    runs/<site>/<scenario>/<UTC time>/   each run's record (notebook, HTML, operations, ...)
    ca/<site>/<ca>/           the CA adapter's own state (lab CA, ACME account, AD CS requests)
    paused/<site>             a file here pauses the site (its first line: why)
    seen.json                 what the last pass saw on each site (for --status)
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import inspect
import json
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import topology
from .._internal.fs import atomic_write, safe_name
from ..credentials import mask_secrets, parse_secret_ref, redact
from ..errors import CckitError, InputError, SiteFileError, SiteLockedError
from ..scenarios import SCENARIOS, Scenario
from ..sites import Site, load_site
from . import runner
from .due import Held, Job, find_due, own_cert
from .estimate import expected_duration
from .ledger import ALERTING, Attempt, Ledger, backoff_until
from .windows import Interval, current, next_opening

__all__ = ["PassResult", "SiteView", "pause_file", "read_status", "run_pass"]

LEDGER = "ledger.sqlite"
SEEN = "seen.json"
#: the site states that make a pass exit non-zero: an attempt went wrong, or a site file is
#: invalid, or an enabled site could not be read (its renewals would silently not happen)
FAILED = frozenset({"failed", "refused", "interrupted", "invalid", "unread"})


@dataclass
class SiteView:
    """What one pass saw, decided and did on one site."""

    site: str
    site_file: str
    #: on, off, paused or invalid
    autopilot: str
    #: one word: off, paused, invalid, unread, nothing-due, closed, backoff, would-renew,
    #: or the outcome of its attempt (renewed, failed, refused, interrupted, waiting, locked)
    state: str
    message: str = ""
    due: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    window: dict[str, Any] | None = None
    expected_minutes: int | None = None
    backoff_until: str | None = None
    attempts: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PassResult:
    sites: list[SiteView]
    now: dt.datetime
    dry_run: bool = False
    interrupted: bool = False

    @property
    def failed(self) -> bool:
        return self.interrupted or any(s.state in FAILED for s in self.sites)

    def as_json(self) -> dict[str, Any]:
        return {"checked": self.now.isoformat(), "dry_run": self.dry_run,
                "interrupted": self.interrupted, "sites": [s.as_json() for s in self.sites]}


def pause_file(state: Path, site: str) -> Path:
    """The file that pauses ``site`` while it exists (touch it; remove it to resume)."""
    return Path(state) / "paused" / safe_name(site)


# ------------------------------------------------------------------------------ the pass


class _Pass:
    def __init__(self, state: Path, ledger: Ledger, now: dt.datetime, dry_run: bool,
                 timeout: float) -> None:
        self.state = state
        self.ledger = ledger
        #: when the pass started, on its clock (``now`` may be pretended: tests, dry runs)
        self.now = now
        self._offset = now - _utcnow()
        self.dry_run = dry_run
        self.timeout = timeout
        self.stop = threading.Event()
        self.seen: dict[str, str] = {}  # site identity -> the first file describing it
        self._seen_lock = threading.Lock()

    def clock(self) -> dt.datetime:
        """The time now on the pass's clock: a site read takes a while, and a window's
        remaining time is what is left after it."""
        return _utcnow() + self._offset

    # ------------------------------------------------------------------ one site
    def site(self, path: Path) -> SiteView:
        try:
            site = load_site(path)
        except SiteFileError as e:
            return SiteView(path.stem, str(path), "invalid", "invalid",
                            "site file is invalid: " + "; ".join(e.problems))
        view = SiteView(site.name, str(path), "off", "off")
        policy = site.autopilot
        if policy is None or not policy.enabled:
            view.message = ("no autopilot: block" if policy is None
                            else "autopilot.enabled is false")
            return view
        with self._seen_lock:
            first = self.seen.setdefault(site.identity, str(path))
        if first != str(path):
            view.message = f"the same site as {first}: handled there"
            return view
        paused = pause_file(self.state, site.name)
        if paused.exists():
            view.autopilot = view.state = "paused"
            why = _first_line(paused)
            view.message = f"paused by {paused}" + (f": {why}" if why else "")
            return view
        view.autopilot = "on"
        try:
            return self._site(site, path, view)
        except CckitError as e:  # this site's problem, never the others'
            view.state, view.message = "failed", redact(str(e).splitlines()[0])
            return view

    def _site(self, site: Site, path: Path, view: SiteView) -> SiteView:
        from ..fleet.collect import SweepOptions, collect_site

        policy = site.autopilot
        assert policy is not None
        self._settle_killed(site)
        inv = collect_site(path, SweepOptions(now=self.clock(), timeout=self.timeout))
        unread = inv.error or "; ".join(f"{n.node}: {n.error}" for n in inv.nodes if n.error)
        if unread:
            view.state, view.message = "unread", f"not read: {unread}"
            return view
        jobs, notes = find_due(site, inv, policy.renew_before)
        view.notes = [f"{n.node} {n.unit}: {n.text}" for n in notes]
        jobs = self._with_resumes(site, jobs)
        view.due = [_job_json(j, resume) for j, resume in jobs]
        if not jobs:
            view.state = "nothing-due"
            view.message = (f"nothing due (renew_before {policy.renew_before} days)"
                            + (f"; {len(notes)} note(s)" if notes else ""))
            return view
        need = sum((expected_duration(site, j.nodes, j.unit,
                                      self.ledger.durations(site.identity, j.scenario.name))
                    for j, _ in jobs), dt.timedelta())
        view.expected_minutes = int(need.total_seconds() // 60)
        now = self.clock()
        open_now = current(policy.windows, now)
        nxt = next_opening(policy.windows, now, need)
        view.window = _window_json(policy, open_now, nxt, now)
        what = "; ".join(j.describe() + (f" (resumes attempt {r[0].attempt})" if r else "")
                         for j, r in jobs)
        if open_now is None or open_now.end - now < need:
            view.state = "closed"
            why = ("no window open now" if open_now is None else
                   f"the open window ends at {_local(open_now.end, policy)}, too soon for "
                   f"~{view.expected_minutes} min")
            view.message = (f"due: {what}; {why}; next window "
                            + (_span(nxt, policy) if nxt else
                               f"none long enough (~{view.expected_minutes} min) in the next "
                               "15 days"))
            return view
        until = backoff_until(self.ledger, site.identity)
        if until is not None and until > now:
            view.state, view.backoff_until = "backoff", until.isoformat()
            view.message = (f"due: {what}; backing off after failures until "
                            f"{until:%Y-%m-%d %H:%M} UTC")
            return view
        if self.dry_run:
            for job, _ in jobs:  # what the runbook would refuse, it says now
                runner.check(job.scenario, self._parameters(site, job, "dry-run"))
            view.state = "would-renew"
            view.message = (f"would renew now (~{view.expected_minutes} min; window open until "
                            f"{_local(open_now.end, policy)}): {what}")
            return view
        deadline = open_now.end - self._offset  # the window's end on the real clock
        for job, resume in jobs:
            if self.stop.is_set():
                view.state = view.state if view.attempts else "interrupted"
                view.message = view.message or "the pass was stopped before this site started"
                break
            outcome, message, attempt, folder = self._attempt(site, path, job, resume,
                                                              deadline)
            view.attempts.append(attempt)
            if folder:
                view.runs.append(str(folder))
            view.state, view.message = outcome, message
            if outcome != "renewed":
                break
        return view

    # ------------------------------------------------------------------ resume
    def _unfinished(self, site: Site, scenario: Scenario) -> list[Attempt] | None:
        """The attempt that ran the site's latest unfinished run of ``scenario`` (the run
        folder's rule: neither complete nor abandoned), to be resumed in its folder."""
        for folder in runner.unfinished(runner.site_root(self.state, site), scenario, site):
            rows = self.ledger.of_run(str(folder))
            if rows:
                return rows
        return None

    def _with_resumes(self, site: Site, due: list[Job]) -> list[tuple[Job, list[Attempt] | None]]:
        """The due jobs, an unfinished run of the same scenario resumed instead; and an
        unfinished run that changed something resumed even when nothing shows as due (a
        certificate imported but not yet presented is not due any more)."""
        out: list[tuple[Job, list[Attempt] | None]] = []
        by_scenario = {j.scenario.name: j for j in due}
        for scenario in (sc for sc in SCENARIOS.values() if sc.renews):
            last = self._unfinished(site, scenario)
            job = by_scenario.get(scenario.name)
            if last is not None and (job is not None
                                     or runner.changed_nodes(Path(last[0].run or ""))):
                out.append((_job_of(last), last))
            elif job is not None:
                out.append((job, None))
        return out

    def _settle_killed(self, site: Site) -> None:
        """An attempt still ``running`` whose run nobody runs any more: the autopilot died
        with it. Its folder's record now says interrupted, after the step it got to; so does
        the ledger."""
        for rows in self.ledger.attempts(site.identity):
            r = rows[0]
            if r.outcome != "running" or self.dry_run:
                continue
            if r.run and not runner.settle(Path(r.run)):
                continue  # a run still going (another process's)
            self.ledger.end(r.attempt, outcome="interrupted", ended=_utcnow(),
                            message="the autopilot stopped during this attempt (killed or "
                            "crashed); the next pass in a window resumes it")
            self._alert(site, r.attempt, "interrupted")

    # ------------------------------------------------------------------ one attempt
    def _attempt(self, site: Site, path: Path, job: Job, resume: list[Attempt] | None,
                 deadline: dt.datetime) -> tuple[str, str, str, Path | None]:
        policy = site.autopilot
        assert policy is not None
        attempt = f"{_utcnow():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        root = runner.site_root(self.state, site)
        folder = (Path(resume[0].run or "") if resume else runner.new_folder(root, job.scenario))
        if resume:  # any older unfinished run of the scenario is replaced by this one
            for other in runner.unfinished(root, job.scenario, site):
                if other != folder:
                    runner.abandon(other, folder, "the autopilot resumed a later run")
        params = self._parameters(site, job, attempt)
        self.ledger.begin(attempt=attempt, site=site.name, site_key=site.identity,
                          site_file=str(path), scenario=job.scenario.name, unit=job.unit,
                          old=job.old, nodes=job.nodes, run=str(folder), started=_utcnow(),
                          parameters={k: v for k, v in params.items() if k != "ca_options"},
                          resumes=resume[0].attempt if resume else None)
        over = _Deadline(folder, deadline)
        try:
            run = runner.run(job.scenario, folder, site, params)
        except CckitError as e:
            run = runner.Run(folder, runner.State.FAILED, None, redact(str(e).splitlines()[0]))
        except BaseException:
            self.ledger.end(attempt, outcome="interrupted", ended=_utcnow(),
                            message="the autopilot was stopped during this attempt")
            raise
        finally:
            over.cancel()
        outcome, message, new = self._judge(site, path, job, run)
        if over.fired and outcome == "interrupted":
            message = (f"stopped at the end of the window ({deadline:%Y-%m-%d %H:%M} UTC) "
                       + (f"at {run.failed_step}" if run.failed_step else "before its first step")
                       + "; the next window resumes it")
        self.ledger.end(attempt, outcome=outcome, ended=_utcnow(), new=new,
                        failed_step=run.failed_step, message=message)
        if outcome in ALERTING:
            self._alert(site, attempt, outcome)
        if run.locked and not resume:
            runner.discard(folder, self.state)
        return outcome, message, attempt, None if run.locked else folder

    def _parameters(self, site: Site, job: Job, attempt: str) -> dict[str, Any]:
        """The runbook's parameters: the job's, the site's CA (for a scenario that uses
        one), and the site's standing confirmation (``enabled: true``) as ``confirm`` (for
        one that takes it)."""
        policy = site.autopilot
        assert policy is not None
        sc = job.scenario
        params = {**job.parameters(), "apply": True, "change": f"autopilot {attempt}"}
        if sc.uses_ca:
            params.update(ca=policy.ca, ca_options=ca_options(site, self.state))
        if sc.takes_confirm:
            params["confirm"] = site.name
        return params

    def _judge(self, site: Site, path: Path, job: Job, run: runner.Run
               ) -> tuple[str, str, dict[str, Held]]:
        """The attempt's outcome, its one-line message and each node's certificate now."""
        from ..fleet.collect import SweepOptions, collect_site

        if run.locked:
            return "locked", f"skipped: {run.message}", {}
        inv = collect_site(path, SweepOptions(now=_utcnow(), timeout=self.timeout))
        new = {}
        for n in job.nodes:
            row = own_cert(inv, n, job.unit)
            if row is not None:
                new[n] = Held.of(row)
        if run.state is not runner.State.COMPLETE:
            outcome = ("refused" if run.state is runner.State.FAILED and run.failed_step == "gate"
                       else "interrupted" if run.state is runner.State.RUNNING  # its kernel died
                       else str(run.state))
            step = f" at {run.failed_step}" if run.failed_step else ""
            return outcome, f"{outcome}{step}: {run.message or ''}".strip(), new
        client = "ecdsa" if job.unit == topology.ECDSA_UNIT else "rsa"
        old = {h.node: h.sha256 for h in job.old}
        problems = []
        for n in job.nodes:
            h = new.get(n)
            if h is None or h.sha256 == old.get(n):
                problems.append(f"{n} still stores the old {job.unit}")
                continue
            shown = [p for p in inv.ports if p.node == n and p.client == client]
            wrong = [p.port for p in shown if p.sha256 != h.sha256]
            if wrong or not shown:
                problems.append(f"{n} ports {wrong or 'none'} do not present the new {job.unit}")
        if problems:
            return "failed", "the run completed but " + "; ".join(problems), new
        return "renewed", (f"renewed {job.unit} on {', '.join(job.nodes)}: now until "
                           + ", ".join(f"{h.not_after:%Y-%m-%d}" for h in new.values())), new

    def _alert(self, site: Site, attempt: str, outcome: str) -> None:
        """One message per streak of attempts that went wrong, on the site's notifiers."""
        from ..notify import parse_notifier

        policy = site.autopilot
        if policy is None or not policy.notify:
            return
        streak = self.ledger.streak(site.identity)
        if any(r.alerted for a in streak for r in a):
            return
        rows = next((a for a in streak if a[0].attempt == attempt), None)
        if rows is None:
            return
        r = rows[0]
        until = backoff_until(self.ledger, site.identity)
        text = (f"cckit renew: {outcome} on {site.name} ({r.scenario}, {r.unit} on "
                f"{', '.join(x.node for x in rows)}): {r.message or ''}. Record: {r.run}"
                + (f". Next try after {until:%Y-%m-%d %H:%M} UTC, in a window" if until
                   else ". The next pass in a window resumes it"))
        body = {"text": text, "site": site.name, "scenario": r.scenario, "unit": r.unit,
                "nodes": [x.node for x in rows], "outcome": outcome, "attempt": attempt,
                "run": r.run, "message": r.message, "failed_step": r.failed_step,
                "next_try": until.isoformat() if until else None}
        sent = True
        for spec in policy.notify:
            try:
                parse_notifier(spec).deliver(f"cckit renew [{outcome.upper()}] {site.name}",
                                             body)
            except Exception:  # a notifier's failure never stops the pass; retried next time
                sent = False
        if sent:
            self.ledger.mark_alerted(attempt)


# ------------------------------------------------------------------------------ helpers


class _Deadline:
    """Interrupts the run in ``folder`` at the window's end: the step going on then stops as
    Ctrl-C stops it, no further step starts, and the next window resumes the run."""

    def __init__(self, folder: Path, deadline: dt.datetime) -> None:
        self.folder = folder
        self.fired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(deadline,), daemon=True,
                                        name="cckit-renew-deadline")
        self._thread.start()

    def _watch(self, deadline: dt.datetime) -> None:
        if self._done.wait(max(0.0, (deadline - _utcnow()).total_seconds())):
            return
        while not self._done.is_set():  # the run may still be starting its kernel
            if runner.interrupt(self.folder):
                self.fired = True
                return
            self._done.wait(0.2)

    def cancel(self) -> None:
        self._done.set()
        self._thread.join()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _first_line(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[0][:200]
    except (OSError, IndexError):
        return ""


def _zone(policy: Any) -> Any:
    return policy.windows[0].zone if policy.windows else dt.UTC


def _local(when: dt.datetime, policy: Any) -> str:
    """``when`` on the site's clock (its first window's zone), and in UTC."""
    local = when.astimezone(_zone(policy))
    utc = "" if local.utcoffset() == dt.timedelta() else f" ({when:%H:%M} UTC)"
    return f"{local:%a %Y-%m-%d %H:%M %Z}{utc}"


def _span(iv: Interval, policy: Any) -> str:
    """An interval on the site's clock: ``Sat 2026-12-12 01:00-05:00 CST (07:00-11:00 UTC)``."""
    a, b = iv.start.astimezone(_zone(policy)), iv.end.astimezone(_zone(policy))
    end = f"{b:%H:%M %Z}" if a.date() == b.date() else f"{b:%a %Y-%m-%d %H:%M %Z}"
    utc = ("" if a.utcoffset() == dt.timedelta() else
           f" ({iv.start:%H:%M}-{iv.end:%H:%M} UTC)")
    return f"{a:%a %Y-%m-%d %H:%M}-{end}{utc}"


def _window_json(policy: Any, open_now: Interval | None, nxt: Interval | None,
                 now: dt.datetime) -> dict[str, Any]:
    return {"windows": policy.describe_windows(), "open": open_now is not None,
            "open_until": open_now.end.isoformat() if open_now else None,
            "next_start": nxt.start.isoformat() if nxt else None,
            "next_end": nxt.end.isoformat() if nxt else None,
            "next": _span(nxt, policy) if nxt else None}


def _job_json(job: Job, resume: list[Attempt] | None) -> dict[str, Any]:
    return {"scenario": job.scenario.name, "unit": job.unit, "nodes": list(job.nodes),
            "multi_san": job.multi_san, "certificates": [h.as_json() for h in job.old],
            "resumes": resume[0].attempt if resume else None,
            "run": resume[0].run if resume else None}


def _job_of(rows: list[Attempt]) -> Job:
    """The job an unfinished attempt was running (its parameters, its original old
    certificates), to run again in its folder."""
    r = rows[0]
    params = json.loads(r.parameters or "{}")
    old = tuple(Held(x.node, x.unit, x.old_serial or "", x.old_sha256 or "",
                     dt.datetime.fromisoformat(x.old_not_after) if x.old_not_after
                     else dt.datetime.min.replace(tzinfo=dt.UTC), 0)
                for x in rows if x.old_sha256)
    return Job(r.unit, tuple(params.get("nodes") or [x.node for x in rows]), old,
               bool(params.get("multi_san", False)), params.get("key_size"),
               params.get("hash_algorithm"))


def ca_options(site: Site, state: Path) -> dict[str, Any]:
    """The CA adapter's options for a run: relative paths (and secret files) resolved against
    the site file's folder, the adapter's state kept under ``STATE/ca/<site>/<ca>``."""
    from ..ca import check_options

    policy = site.autopilot
    assert policy is not None
    cls = check_options(policy.ca, policy.ca_options, complete=False)
    base = site.path.parent if site.path else Path.cwd()

    def absolute(where: str, value: Any) -> Any:  # a secret file, named as the site file does
        ref = parse_secret_ref(value, where, base)[0]
        return {"file": ref.targets()[0]} if ref is not None and ref.kind == "file" else value

    opts = mask_secrets(dict(policy.ca_options), reference=absolute)
    for key in cls.path_options:
        if isinstance(opts.get(key), str) and not Path(opts[key]).expanduser().is_absolute():
            opts[key] = str(base / opts[key])
    if cls.state_option and cls.state_option not in opts:
        opts[cls.state_option] = str(Path(state).resolve() / "ca" / safe_name(site.name)
                                     / policy.ca)
    if "site" in inspect.signature(cls).parameters:
        opts.setdefault("site", site.name)
    return opts


# ------------------------------------------------------------------------------ entry points


def run_pass(sites: Sequence[str | os.PathLike], state: str | os.PathLike, *,
             concurrency: int = 2, dry_run: bool = False, now: dt.datetime | None = None,
             timeout: float = 30.0) -> PassResult:
    """One pass over ``sites`` (folders of site files, list files, site files). A dry run
    reads the sites and the ledger and writes nothing at all."""
    from ..audit import folder_lock
    from ..fleet.sweep import site_files

    if concurrency < 1:
        raise InputError(f"concurrency must be at least 1, not {concurrency}")
    state_dir = Path(state).resolve()
    if state_dir.exists() and not state_dir.is_dir():
        raise InputError(f"--state {state_dir} is a file, not a folder", file=str(state_dir))
    paths = site_files(sites)
    now = now or _utcnow()
    if dry_run:
        db = state_dir / LEDGER
        ledger = Ledger(db, read_only=True) if db.exists() else Ledger(None)
        try:
            return _sweep(_Pass(state_dir, ledger, now, True, timeout), paths, concurrency)
        finally:
            ledger.close()
    state_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(folder_lock(state_dir, site="cckit renew"))
        except SiteLockedError as e:
            raise SiteLockedError(f"another cckit renew pass is using {state_dir}: "
                                  + e.message.split(": ", 1)[-1], file=str(state_dir),
                                  hint="passes never overlap; this one changed nothing") from None
        ledger = Ledger(state_dir / LEDGER)
        stack.callback(ledger.close)
        with runner.on_signals():
            result = _sweep(_Pass(state_dir, ledger, now, False, timeout), paths, concurrency)
        atomic_write(state_dir / SEEN, json.dumps(result.as_json(), indent=1).encode())
        return result


def _sweep(p: _Pass, paths: Sequence[Path], concurrency: int) -> PassResult:
    views: dict[Path, SiteView] = {}
    interrupted = False
    pool = cf.ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="cckit-renew")
    futures = {pool.submit(p.site, path): path for path in paths}
    pending = set(futures)
    try:
        while pending:
            try:
                done, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            except KeyboardInterrupt:  # SIGTERM too: stop starting, stop the running steps
                interrupted = True
                p.stop.set()
                for f in pending:
                    f.cancel()
                runner.interrupt_all()
                continue
            for f in done:
                path = futures[f]
                if f.cancelled():
                    views[path] = SiteView(path.stem, str(path), "on", "interrupted",
                                           "the pass was stopped before this site started")
                    continue
                try:
                    views[path] = f.result()
                except Exception as e:  # a crash on one site is that site's failure
                    views[path] = SiteView(path.stem, str(path), "on", "failed",
                                           f"{type(e).__name__}: {redact(str(e))}")
    except BaseException:
        # anything else stopping this thread (an unexpected error, a test's timeout) stops
        # the runs too instead of waiting on them unseen; their records say interrupted
        p.stop.set()
        runner.interrupt_all()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return PassResult([views[x] for x in paths], p.now, p.dry_run, interrupted)


def read_status(state: str | os.PathLike) -> dict[str, Any]:
    """The ledger's attempts and the last pass's view of each site (``--status``)."""
    state_dir = Path(state)
    db = state_dir / LEDGER
    attempts: list[dict[str, Any]] = []
    if db.exists():
        ledger = Ledger(db, read_only=True)
        try:
            attempts = [a.as_json() for a in ledger.all()]
        finally:
            ledger.close()
    last: dict[str, Any] = {}
    try:
        last = json.loads((state_dir / SEEN).read_text())
    except (OSError, ValueError):
        pass
    return {"attempts": attempts, "sites": last.get("sites", []),
            "last_pass": last.get("checked")}
