"""The one seam between the autopilot and the runbooks: a run folder for an attempt, the
runbook run headless in it exactly as ``cckit run`` runs it, and what its record says.

Nothing else in :mod:`cckit.autopilot` starts a run or opens a run folder
(``tests/test_layers.py`` holds that). What a run is belongs to the scenario registry
(:mod:`cckit.scenarios`) and to :class:`~cckit.runfolder.RunFolder`, which owns its folder's
layout, its ``status.json`` (:class:`~cckit.runfolder.RunStatus`), its locks, which of a
site's runs are unfinished, and settling one that was killed; this module only puts them
together for the autopilot:

* a site's attempts live under ``STATE/runs/<site>/`` in RunFolder's layout
  (``<scenario>/<UTC time>/``, :func:`site_root`, :func:`new_folder`), so
  :func:`unfinished` is RunFolder's rule for what a start resumes;
* :func:`run` is :func:`cckit.headless.run_runbook` (which holds the site and the folder,
  settles a killed run there, keeps an earlier record and writes the HTML), read back as a
  :class:`Run` from the folder's :class:`~cckit.runfolder.RunStatus`;
* :func:`settle` tells a run still going from one whose process died, through the folder's
  lock, and records the dead one as interrupted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._internal.fs import safe_name
from ..errors import CckitError, SiteLockedError
from ..runfolder import RunFolder, State
from ..scenarios import Scenario
from ..sites import Site

__all__ = ["CHANGES", "Run", "State", "abandon", "changed_nodes", "check", "discard", "interrupt",
           "interrupt_all", "new_folder", "on_signals", "run", "settle", "site_root",
           "unfinished"]

#: the operations after which a site is not as it was: an unfinished run that did one is
#: resumed even when nothing shows as due any more (an identity imported, not yet presented)
CHANGES = frozenset({"upload_trust", "upload_identity", "restart"})


@dataclass(frozen=True)
class Run:
    """How one runbook run ended, and where its record is."""

    folder: Path
    #: the run's state as its record says (None: it never started, the site was locked)
    state: State | None
    failed_step: str | None = None
    message: str | None = None
    seconds: float = 0.0

    @property
    def locked(self) -> bool:
        return self.state is None


def site_root(state: Path, site: Site) -> Path:
    """Where ``site``'s attempts go: ``STATE/runs/<site>`` (RunFolder's layout below it)."""
    return Path(state) / "runs" / safe_name(site.name)


def new_folder(root: Path, scenario: Scenario) -> Path:
    """A new run folder for one attempt: ``root/<scenario>/<UTC time>`` (created)."""
    return RunFolder.new(scenario.name, root=root).path


def unfinished(root: Path, scenario: Scenario, site: Site) -> list[Path]:
    """``site``'s runs of ``scenario`` under ``root`` that neither completed nor were
    abandoned, newest first: what the next attempt resumes."""
    return [f.path for f in RunFolder.unfinished(scenario.name, site.name, root=root)]


def abandon(folder: Path, by: Path, why: str) -> None:
    """The unfinished run in ``folder`` will not be resumed: ``by`` continues the work."""
    RunFolder(folder).abandon(RunFolder(by), why)


def discard(folder: Path, root: Path) -> None:
    """A run folder never used (the site was locked): removed, with the parents it leaves
    empty up to ``root``."""
    folder, root = Path(folder), Path(root)
    with contextlib.suppress(OSError):
        while folder != root and root in folder.parents:
            folder.rmdir()  # only ever an empty one
            folder = folder.parent


def check(scenario: Scenario, parameters: Mapping[str, Any]) -> None:
    """Refuse parameters the runbook would refuse, before anything is started."""
    from ..headless import check_parameters

    check_parameters(scenario.name, parameters)


def run(scenario: Scenario, folder: Path, site: Site, parameters: Mapping[str, Any]) -> Run:
    """Run ``scenario`` headless into ``folder`` (a new one, or an unfinished run's folder:
    the runbook then resumes, its earlier notebook kept beside the new one). Never raises for
    a failed step; a site another run holds gives a ``locked`` run and nothing is written."""
    from ..headless import run_runbook

    try:
        outcome = run_runbook(scenario.name, folder, site_file=site.path, site=site,
                              parameters=parameters, progress=False)
    except SiteLockedError as e:
        return Run(Path(folder), None, None, e.message)
    status = RunFolder(folder).read()
    if status is None:  # no record at all: as the outcome says
        state = State.COMPLETE if outcome.ok else State(outcome.status)
        return Run(Path(folder), state, outcome.failed_step, outcome.message, outcome.seconds)
    if (status.status is State.FAILED and status.failed_step == "start"
            and "SiteLockedError" in (status.message or "")):
        # taken by another run between the check and the runbook's start
        return Run(Path(folder), None, None, status.message, outcome.seconds)
    return Run(Path(folder), status.status, status.failed_step, status.message,
               outcome.seconds)


def changed_nodes(folder: Path) -> set[str]:
    """The nodes on which the run in ``folder`` did one of :data:`CHANGES` (its operation
    log)."""
    try:
        ops = RunFolder(folder).operations()
    except CckitError:
        return set()
    return {o.node for o in ops if o.outcome == "ok" and o.node and o.operation in CHANGES}


def settle(folder: Path) -> bool:
    """Whether no process runs in ``folder`` any more; if so, a record still ``running`` (its
    process was killed) now says ``interrupted``. False while a run holds the folder."""
    rf = RunFolder(folder)
    if not rf.path.is_dir():
        return True
    try:
        with rf.hold():
            rf.settle_killed()
    except SiteLockedError:
        return False
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


@contextlib.contextmanager
def on_signals() -> Iterator[None]:
    """SIGTERM handled like Ctrl-C while a pass runs (the runs' steps stop as for Ctrl-C)."""
    from ..headless import interrupt_on_signals

    with interrupt_on_signals():
        yield
