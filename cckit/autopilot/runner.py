"""The one seam between the autopilot and the runbooks: make a run folder, run a runbook
headless in it exactly as ``cckit run`` does, and read what its record says.

Nothing else in :mod:`cckit.autopilot` knows how a run is started, where its record lives or
how ``status.json`` reads; when runs get one owner (the scenario registry and run folder of
issue 24), the functions here are what is re-pointed: :func:`new_folder`, :func:`run`,
:func:`record_state`, :func:`changed_nodes`, :func:`in_use`, :func:`check`,
:func:`interrupt` and :func:`interrupt_all`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._internal.fs import safe_name, utc_stamp
from ..errors import CckitError, SiteLockedError

__all__ = ["Run", "changed_nodes", "check", "in_use", "interrupt", "interrupt_all",
           "new_folder", "record_state", "run"]

#: how a run ended: complete, failed, waiting (for the CA), interrupted, locked (not started)
STATES = ("complete", "failed", "waiting", "interrupted", "locked")


@dataclass(frozen=True)
class Run:
    """How one runbook run ended, and where its record is."""

    folder: Path
    state: str
    failed_step: str | None = None
    message: str | None = None
    seconds: float = 0.0


def new_folder(root: Path, site: str, scenario: str, now: dt.datetime) -> Path:
    """A new, unused run folder for one attempt: ``root/<site>/<UTC time>-<scenario>``."""
    base = Path(root) / safe_name(site) / f"{utc_stamp(now)}-{scenario}"
    folder = base
    while folder.exists():
        folder = base.with_name(f"{base.name}-{uuid.uuid4().hex[:6]}")
    return folder


def check(scenario: str, parameters: Mapping[str, Any]) -> None:
    """Refuse parameters the runbook would refuse, before anything is started."""
    from ..headless import check_parameters

    check_parameters(scenario, parameters)


def run(scenario: str, folder: Path, site_file: Path, parameters: Mapping[str, Any]) -> Run:
    """Run ``scenario`` headless into ``folder`` (a new one, or an unfinished run's folder:
    the runbook then resumes, its earlier notebook kept beside the new one). Never raises for
    a failed step; a site another run holds is ``locked`` and nothing is written."""
    from ..headless import run_runbook

    try:
        outcome = run_runbook(scenario, folder, site_file=site_file, parameters=parameters,
                              progress=False)
    except SiteLockedError as e:
        return Run(folder, "locked", None, e.message)
    state = "complete" if outcome.status == "ok" else outcome.status
    if state == "failed" and "SiteLockedError" in (outcome.message or ""):
        state = "locked"  # taken by another run between the check and the runbook's start
    return Run(folder, state, outcome.failed_step, outcome.message, outcome.seconds)


def record_state(folder: Path) -> str | None:
    """What a run folder's record says now: ``complete``, ``failed``, ``waiting``,
    ``interrupted``, ``running`` (or killed: see :func:`in_use`), ``abandoned``; None when it
    has no record."""
    try:
        status = json.loads((Path(folder) / "status.json").read_text())
    except (OSError, ValueError):
        return None
    return str(status.get("status")) if isinstance(status, dict) else None


def changed_nodes(folder: Path) -> set[str]:
    """The nodes on which the run in ``folder`` changed something (its operation log)."""
    from ..audit import read

    try:
        return {str(r.get("node")) for r in read(Path(folder) / "operations.jsonl")
                if r.get("outcome") == "ok" and r.get("node")
                and r.get("operation") in ("upload_trust", "upload_identity", "restart")}
    except CckitError:
        return set()


def in_use(folder: Path) -> bool:
    """Whether a process is running a runbook in ``folder`` now (it holds its lock)."""
    from ..audit import folder_lock

    if not Path(folder).exists():
        return False
    try:
        with folder_lock(Path(folder)):
            return False
    except SiteLockedError:
        return True


def interrupt(folder: Path) -> bool:
    """Interrupt the run writing into ``folder`` at its step (it ends ``interrupted``, to be
    resumed); False while no run of this process writes there (not started yet, or over)."""
    from ..headless import interrupt_run

    return interrupt_run(folder)


def interrupt_all() -> int:
    """Interrupt the running step of every run of this process (they end ``interrupted``)."""
    from ..headless import interrupt_running

    return interrupt_running()
