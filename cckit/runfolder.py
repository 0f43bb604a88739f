"""A run folder: the one owner of a run's ``status.json``, its locks, its resume and its record.

Every run, interactive or headless, writes into one folder (``runs/<scenario>/<UTC time>/``
unless given one): the operation log, ``status.json``, the executed notebook and its HTML.
:class:`RunFolder` is the only writer of ``status.json`` (a :class:`RunStatus`, versioned:
docs/status.md), and the one place that

* lays folders out (:meth:`RunFolder.new`) and finds a site's unfinished runs to resume
  (:meth:`RunFolder.unfinished`), marking the others abandoned (:meth:`RunFolder.abandon`);
* checks and takes the locks: the folder's own (:meth:`RunFolder.hold`, two runs never write
  into one folder) and the site's (:meth:`RunFolder.check_site_free` before anything is
  written; :meth:`RunFolder.session` opens the :class:`~cckit.session.SiteSession` that
  holds it while the run works);
* settles a run that was killed (:meth:`RunFolder.settle_killed`) or stopped
  (:meth:`RunFolder.record_stop`), and keeps an earlier record when a run is redone in the
  same folder (:meth:`RunFolder.keep_previous`);
* writes the auditor's HTML (:meth:`RunFolder.export_html`).

The site a run works on is resolved once (:func:`cckit.sites.resolve_site_file`) by whoever
starts it and recorded as ``site_file`` (absolute) in ``status.json``; a headless run's
kernel is handed that path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._internal.fs import atomic_write, utc_stamp
from .audit import LockHolder, check_site_unlocked, folder_lock
from .credentials import redact
from .results import Outcome, StepRecord

if TYPE_CHECKING:
    from .session import SiteSession
    from .sites import Site

__all__ = ["STATUS_SCHEMA", "RunFolder", "RunStatus", "State"]

#: the version of ``status.json``'s layout (docs/status.md)
STATUS_SCHEMA = 1


class State(enum.StrEnum):
    """Where a run is (``status.json``'s ``status``)."""

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    WAITING = "waiting"
    INTERRUPTED = "interrupted"
    ABANDONED = "abandoned"

    @property
    def finished(self) -> bool:
        """Neither resumed nor marked abandoned by a later run."""
        return self in (State.COMPLETE, State.ABANDONED)


#: the step outcomes that decide a run's state (the latest one since its latest start)
_STOPPED = {Outcome.FAILED: State.FAILED, Outcome.WAITING: State.WAITING,
            Outcome.INTERRUPTED: State.INTERRUPTED}


@dataclass
class RunStatus:
    """``status.json``: what a run is, where it stands, the steps so far (docs/status.md)."""

    scenario: str
    site: str | None = None
    apply: bool = True
    status: State = State.RUNNING
    failed_step: str | None = None
    message: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    #: what each web port presents at the end (``PortView.as_json`` entries)
    presented: list[dict[str, Any]] = field(default_factory=list)
    #: the audit record's header (operator, change, times, parameters, versions, resumed)
    record: dict[str, Any] = field(default_factory=dict)
    #: the site file the run works on, resolved to an absolute path
    site_file: str | None = None
    #: the run that replaced this one (``abandoned`` only)
    abandoned_by: str | None = None

    @classmethod
    def of_steps(cls, scenario: str, steps: list[StepRecord], **kw: Any) -> RunStatus:
        """The status its steps say: the latest failure, wait or interruption since the
        latest ``start`` (a resumed run's earlier failures no longer count), else
        ``complete`` once ``finish`` ran, else ``running``."""
        since = max((i for i, s in enumerate(steps) if s.step == "start"), default=0)
        stopped = [s for s in steps[since:] if s.outcome in _STOPPED]
        last = stopped[-1] if stopped else None
        state = (_STOPPED[last.outcome] if last else
                 State.COMPLETE if steps and steps[-1].step == "finish" else State.RUNNING)
        return cls(scenario, steps=list(steps), status=state,
                   failed_step=last.step if last else None,
                   message=last.message if last else None, **kw)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": STATUS_SCHEMA, "scenario": self.scenario, "site": self.site,
            "site_file": self.site_file, "apply": self.apply, "status": self.status.value,
            "failed_step": self.failed_step, "message": self.message,
            "steps": [s.as_json() for s in self.steps], "presented": list(self.presented),
            "record": dict(self.record)}
        if self.abandoned_by:
            out["abandoned_by"] = self.abandoned_by
        return out

    @classmethod
    def from_json(cls, data: Any) -> RunStatus:
        """A status read back; entries it cannot read are left out. ``ValueError`` if
        ``data`` is no status at all."""
        if not isinstance(data, dict) or not isinstance(data.get("scenario", ""), str):
            raise ValueError("not a cckit status.json")
        steps = []
        for s in data.get("steps") or []:
            try:
                steps.append(StepRecord(str(s["time"]), str(s["step"]), Outcome(s["outcome"]),
                                        str(s.get("message") or "")))
            except (KeyError, ValueError, TypeError):
                continue
        try:
            state = State(data.get("status"))
        except ValueError:
            state = State.INTERRUPTED  # a state this version does not know: not running
        return cls(str(data.get("scenario") or ""), data.get("site"),
                   bool(data.get("apply", True)), state, data.get("failed_step"),
                   data.get("message"), steps,
                   [p for p in data.get("presented") or [] if isinstance(p, dict)],
                   dict(data.get("record") or {}), data.get("site_file"),
                   data.get("abandoned_by"))

    @property
    def last_step(self) -> str:
        return self.steps[-1].step if self.steps else ""

    @property
    def started(self) -> dt.datetime | None:
        try:
            return dt.datetime.fromisoformat(str(self.record["started"]))
        except (KeyError, ValueError, TypeError):
            return None

    @property
    def resumed(self) -> list[str]:
        return list(self.record.get("resumed") or [])


class RunFolder:
    """One run's folder (see the module's docstring for what it owns)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        #: the status as this process last read or wrote it
        self._status: RunStatus | None = None

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # ------------------------------------------------------------------ layout
    @staticmethod
    def runs_root() -> Path:
        """Where run folders go: ``CCKIT_RUNS_DIR``, else ``runs`` (relative: the working
        folder)."""
        return Path(os.environ.get("CCKIT_RUNS_DIR") or "runs")

    @classmethod
    def new(cls, scenario: str, root: str | os.PathLike | None = None,
            stamp: str | None = None) -> RunFolder:
        """A new folder ``<root>/<scenario>/<UTC time>`` (``-2``, ``-3``... when a run
        started in the same second), created."""
        parent = Path(root if root is not None else cls.runs_root()) / scenario
        stamp = stamp or utc_stamp()
        out, n = parent / stamp, 1
        while True:
            try:
                out.mkdir(parents=True)
                return cls(out)
            except FileExistsError:
                n += 1
                out = parent / f"{stamp}-{n}"

    @classmethod
    def unfinished(cls, scenario: str, site: str, root: str | os.PathLike | None = None
                   ) -> list[RunFolder]:
        """This site's runs of ``scenario`` under ``<root>/<scenario>`` that neither completed
        nor were abandoned, newest first (folders are named by their UTC start time)."""
        parent = Path(root if root is not None else cls.runs_root()) / scenario
        out = []
        for path in sorted(parent.glob("*/status.json"), reverse=True):
            folder = cls(path.parent)
            status = folder.read()
            if status is not None and status.site == site and not status.status.finished:
                out.append(folder)
        return out

    # ------------------------------------------------------------------ status.json
    @property
    def status_file(self) -> Path:
        return self.path / "status.json"

    def read(self) -> RunStatus | None:
        """The run's status, or None (no ``status.json``, or not one cckit can read)."""
        try:
            self._status = RunStatus.from_json(json.loads(self.status_file.read_text()))
        except (OSError, ValueError):
            self._status = None
        return self._status

    @property
    def status(self) -> RunStatus | None:
        """The status as last read or written here (read once if never)."""
        return self._status if self._status is not None else self.read()

    def write(self, status: RunStatus) -> None:
        """Replace ``status.json`` atomically (messages redacted): its only writer."""
        status.message = redact(status.message) if status.message else status.message
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.status_file, json.dumps(status.to_json(), indent=2).encode())
        self._status = status

    def start(self, scenario: str, *, site: Site | None, site_file: Path | None,
              apply: bool) -> RunStatus:
        """A run is about to start here: ``status.json`` says so before anything else
        happens (the site it works on, resolved), so a run that dies at once is recorded."""
        status = RunStatus(scenario, site.name if site else None, apply,
                           site_file=str(site_file) if site_file else None)
        self.write(status)
        return status

    def settle_killed(self) -> bool:
        """A ``status.json`` still ``running`` when a run starts in this folder (whose lock
        this process holds) belongs to a run that was killed: record it as interrupted."""
        status = self.read()
        if status is None or status.status is not State.RUNNING:
            return False
        last = status.last_step
        self.record_stop(State.INTERRUPTED, None, "interrupted: the run was killed"
                         + (f" after step {last}" if last else ""))
        return True

    def record_stop(self, state: State, step: str | None, message: str, *,
                    scenario: str = "") -> RunStatus:
        """The run stopped (``interrupted`` or ``failed``) at ``step``, whatever its kernel
        could write; a folder with no status yet gets one for ``scenario``."""
        status = self.read() or RunStatus(scenario)
        status.status, status.failed_step, status.message = state, step, message
        self.write(status)
        return status

    def abandon(self, by: RunFolder, why: str) -> None:
        """A later run (``by``) replaced this unfinished one: say so in its status."""
        status = self.read()
        if status is None:
            return
        was = "interrupted" if status.status is State.RUNNING else status.status.value
        status.status, status.abandoned_by = State.ABANDONED, str(by.path.resolve())
        status.message = f"abandoned ({was} before): {why}: {by.path.resolve()}"
        self.write(status)

    # ------------------------------------------------------------------ locks
    @property
    def local_locks(self) -> Path:
        """The embedded mock's site lock folder: its site lives and dies with this run."""
        return self.path / ".locks"

    def lock_free(self) -> bool:
        """No process holds this (embedded-mock) run's lock: its kernel is gone."""
        for path in self.local_locks.glob("*.lock"):
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return False
            finally:
                os.close(fd)
        return True

    def check_site_free(self, site: Site) -> None:
        """Raise :class:`~cckit.errors.SiteLockedError` now if another run holds ``site``
        (checked before this run writes anything; the session takes the lock)."""
        check_site_unlocked(None, site.name, key=site.identity)

    @contextlib.contextmanager
    def hold(self, site: Site | None = None) -> Iterator[LockHolder]:
        """For a run driven from outside its kernel (headless): the site must be free, then
        this folder is locked for the block (two runs never write into one folder)."""
        if site is not None:
            self.check_site_free(site)
        with folder_lock(self.path, site=site.name if site else "") as me:
            yield me

    def session(self, site: Site, *, embedded: bool = False, **kw: Any) -> SiteSession:
        """The site session of this run, holding the site's lock (an embedded mock's in this
        folder, a real site's in the user's lock folder); its log and transcripts go here."""
        from .session import SiteSession

        return SiteSession(site, workdir=self.path,
                           lock_dir=self.local_locks if embedded else None, **kw)

    # ------------------------------------------------------------------ the record
    def keep_previous(self, notebook: Path) -> None:
        """A rerun into the same folder (e.g. after waiting for the CA) keeps the earlier
        record: ``<scenario>.ipynb``, its HTML and ``status.json`` become
        ``<scenario>.<UTC time>.ipynb``, ``.html`` and ``status.<UTC time>.json``."""
        if not notebook.exists():
            return
        stamp = utc_stamp(dt.datetime.fromtimestamp(notebook.stat().st_mtime, dt.UTC))
        for old in (notebook, notebook.with_suffix(".html"), self.status_file):
            if old.exists():
                stem = "status" if old == self.status_file else notebook.stem
                os.replace(old, old.with_name(f"{stem}.{stamp}{old.suffix}"))
        self._status = None

    def export_html(self, notebook: Path) -> Path | None:
        """The auditor's copy of ``notebook`` (in this folder): HTML with the code hidden,
        titled by the run, opening with the audit record."""
        if not notebook.exists():
            return None
        import nbformat
        from nbconvert import HTMLExporter

        from .audit import read as read_operations
        from .display import record_html, report_html
        from .results import OperationRecord

        nb = nbformat.read(str(notebook), as_version=4)
        exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                                exclude_output_prompt=True)
        body, _ = exporter.from_notebook_node(nb)
        status = self.read()
        data = status.to_json() if status else {}
        title = (f"cckit {status.scenario or notebook.stem} on {status.site or '?'}: "
                 f"{status.status.value}" if status else f"cckit {notebook.stem}")
        ops = [OperationRecord.from_log(o) for o in read_operations(self.path / "operations.jsonl")]
        html = notebook.with_suffix(".html")
        html.write_text(report_html(body, title=title,
                                    record=record_html(data, ops) if status else ""),
                        encoding="utf-8")
        return html
