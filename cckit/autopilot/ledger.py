"""The ledger: every renewal attempt, in ``STATE/ledger.sqlite`` (the standard library's SQLite).

One row per node an attempt renews (an attempt is one runbook run): site, node, unit, scenario,
outcome, run folder, start and end, the old and the new certificate (serial, SHA-256, not
after), the failing step and its message. Rows are written when an attempt starts
(``running``) and completed when it ends, so an autopilot that died mid-run leaves a row that
the next pass settles as ``interrupted``.

Outcomes: ``renewed``; ``failed`` (a step failed); ``refused`` (the gate refused a certificate:
nothing was uploaded); ``interrupted`` (stopped or killed mid-run: the next pass resumes it);
``waiting`` (the CA has not answered yet: the next pass collects); ``locked`` (another run
held the site: skipped, not retried before the next pass); ``running``.

Backoff (:func:`backoff_until`): after ``n`` failed or refused attempts in a row, the next one
waits ``min(BACKOFF_CAP, BACKOFF_BASE * 2**(n-1))`` from the end of the last, i.e. 1, 2, 4, 8,
16 hours, then every 24 hours; a renewal ends the streak. An alert goes out once per streak
(:meth:`Ledger.streak_alerted`, :meth:`Ledger.mark_alerted`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["BACKOFF_BASE", "BACKOFF_CAP", "FAILURES", "Attempt", "Ledger",
           "backoff_until"]

SCHEMA = 1
BACKOFF_BASE = dt.timedelta(hours=1)
BACKOFF_CAP = dt.timedelta(hours=24)
#: outcomes that count towards the backoff (the attempt went wrong on the site's side)
FAILURES = frozenset({"failed", "refused"})
#: outcomes that alert (once per streak of them)
ALERTING = frozenset({"failed", "refused", "interrupted"})

_DDL = """
CREATE TABLE IF NOT EXISTS attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    attempt TEXT NOT NULL,
    site TEXT NOT NULL,
    site_key TEXT NOT NULL,
    site_file TEXT NOT NULL,
    scenario TEXT NOT NULL,
    node TEXT NOT NULL,
    unit TEXT NOT NULL,
    outcome TEXT NOT NULL,
    run TEXT,
    started TEXT NOT NULL,
    ended TEXT,
    old_serial TEXT, old_sha256 TEXT, old_not_after TEXT,
    new_serial TEXT, new_sha256 TEXT, new_not_after TEXT,
    failed_step TEXT,
    message TEXT,
    resumes TEXT,
    parameters TEXT NOT NULL DEFAULT '{}',
    alerted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS attempts_site ON attempts (site_key, id);
"""


@dataclass(frozen=True)
class Attempt:
    """One ledger row: one node of one attempt."""

    id: int
    attempt: str
    site: str
    site_key: str
    site_file: str
    scenario: str
    node: str
    unit: str
    outcome: str
    run: str | None
    started: str
    ended: str | None
    old_serial: str | None
    old_sha256: str | None
    old_not_after: str | None
    new_serial: str | None
    new_sha256: str | None
    new_not_after: str | None
    failed_step: str | None
    message: str | None
    resumes: str | None
    parameters: str
    alerted: int

    def as_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["parameters"] = json.loads(self.parameters or "{}")
        out["alerted"] = bool(self.alerted)
        return out

    @property
    def ended_at(self) -> dt.datetime | None:
        return dt.datetime.fromisoformat(self.ended) if self.ended else None


#: every column, in :class:`Attempt`'s order (tests/test_autopilot_ledger.py checks it)
_SELECT = ("SELECT id, attempt, site, site_key, site_file, scenario, node, unit, outcome, run, "
           "started, ended, old_serial, old_sha256, old_not_after, new_serial, new_sha256, "
           "new_not_after, failed_step, message, resumes, parameters, alerted FROM attempts")


class Ledger:
    """The attempts of one state folder; safe to use from the threads of one pass."""

    def __init__(self, path: str | Path | None, *, read_only: bool = False) -> None:
        """``path`` None: an empty ledger in memory (a dry run on a new state folder)."""
        self.path = Path(path) if path is not None else Path(":memory:")
        self._lock = threading.Lock()
        try:
            if path is None:
                self._db = sqlite3.connect(":memory:", check_same_thread=False)
                self._db.executescript(_DDL)
            elif read_only:
                self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                           check_same_thread=False)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA:
                    raise InputError(f"the ledger {self.path} is of a newer cckit (schema "
                                     f"{version})", hint="use that cckit, or another --state")
                with self._db:
                    self._db.executescript(_DDL)
                    self._db.execute(f"PRAGMA user_version = {SCHEMA}")
        except sqlite3.DatabaseError as e:
            raise InputError(f"the ledger {self.path} cannot be opened: {e}",
                             file=str(self.path),
                             hint="keep it (it is the record) and give another --state") from None
        self._db.row_factory = lambda cur, row: Attempt(*row)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._db:
            yield self._db

    # ---------------------------------------------------------------- writing
    def begin(self, *, attempt: str, site: str, site_key: str, site_file: str, scenario: str,
              unit: str, old: Sequence[Any], run: str | None, started: dt.datetime,
              parameters: dict[str, Any], resumes: str | None = None,
              nodes: Sequence[str] = ()) -> None:
        """Rows for a starting attempt, one per node (``old``: its :class:`Held`
        certificates; ``nodes``: further nodes with none known)."""
        rows = [(h.node, h.serial, h.sha256, h.not_after.isoformat()) for h in old]
        rows += [(n, None, None, None) for n in nodes if n not in {r[0] for r in rows}]
        with self._tx() as db:
            db.executemany(
                "INSERT INTO attempts (attempt, site, site_key, site_file, scenario, node, "
                "unit, outcome, run, started, old_serial, old_sha256, old_not_after, resumes, "
                "parameters) VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?)",
                [(attempt, site, site_key, site_file, scenario, node, unit, run,
                  started.isoformat(), serial, sha, not_after, resumes,
                  json.dumps(parameters, sort_keys=True))
                 for node, serial, sha, not_after in rows])

    def end(self, attempt: str, *, outcome: str, ended: dt.datetime,
            new: dict[str, Any] | None = None, failed_step: str | None = None,
            message: str | None = None) -> None:
        """Complete an attempt's rows; ``new``: node -> its :class:`Held` certificate now."""
        new = new or {}
        with self._tx() as db:
            nodes = [r.node for r in db.execute(_SELECT + " WHERE attempt = ?", (attempt,))]
            for node in nodes:
                h = new.get(node)
                db.execute(
                    "UPDATE attempts SET outcome = ?, ended = ?, failed_step = ?, message = ?, "
                    "new_serial = ?, new_sha256 = ?, new_not_after = ?, "
                    "run = CASE WHEN ? = 'locked' AND resumes IS NULL THEN NULL ELSE run END "
                    "WHERE attempt = ? AND node = ?",
                    (outcome, ended.isoformat(), failed_step, message,
                     h.serial if h else None, h.sha256 if h else None,
                     h.not_after.isoformat() if h else None, outcome, attempt, node))

    def mark_alerted(self, attempt: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE attempts SET alerted = 1 WHERE attempt = ?", (attempt,))

    # ---------------------------------------------------------------- reading
    def all(self, site_key: str | None = None) -> list[Attempt]:
        """Every row, oldest first (of one site with ``site_key``)."""
        with self._lock:
            if site_key is None:
                return list(self._db.execute(_SELECT + " ORDER BY id"))
            return list(self._db.execute(_SELECT + " WHERE site_key = ? ORDER BY id",
                                         (site_key,)))

    def attempts(self, site_key: str) -> list[list[Attempt]]:
        """The site's attempts (each its rows), oldest first."""
        grouped: dict[str, list[Attempt]] = {}
        for row in self.all(site_key):
            grouped.setdefault(row.attempt, []).append(row)
        return list(grouped.values())

    def of_run(self, run: str) -> list[Attempt] | None:
        """The latest attempt that ran in the run folder ``run`` (its rows), or None; an
        attempt to resume it that was skipped as ``locked`` changed nothing and is passed
        over."""
        with self._lock:
            rows = list(self._db.execute(_SELECT + " WHERE run = ? AND outcome != 'locked' "
                                         "ORDER BY id", (run,)))
        mine = [r for r in rows if r.attempt == rows[-1].attempt] if rows else []
        return mine or None

    def streak(self, site_key: str) -> list[list[Attempt]]:
        """The site's attempts since its last renewal that went wrong (newest last);
        ``locked`` and ``waiting`` attempts neither count nor break it."""
        out: list[list[Attempt]] = []
        for a in reversed(self.attempts(site_key)):
            outcome = a[0].outcome
            if outcome == "renewed":
                break
            if outcome in ALERTING:
                out.append(a)
        return list(reversed(out))

    def durations(self, site_key: str, scenario: str) -> list[float]:
        """Seconds each renewed attempt of ``scenario`` took on this site, oldest first."""
        out = []
        for a in self.attempts(site_key):
            r = a[0]
            if r.scenario == scenario and r.outcome == "renewed" and r.ended:
                out.append((dt.datetime.fromisoformat(r.ended)
                            - dt.datetime.fromisoformat(r.started)).total_seconds())
        return out


def backoff_until(ledger: Ledger, site_key: str) -> dt.datetime | None:
    """When the site may be tried again after failures in a row (None: no backoff)."""
    failures = [a for a in ledger.streak(site_key) if a[0].outcome in FAILURES]
    if not failures:
        return None
    last = failures[-1][0].ended_at
    if last is None:
        return None
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (len(failures) - 1))
    return last + delay
