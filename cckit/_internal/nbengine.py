"""papermill's nbclient engine, saving the output notebook less often while cells run.

papermill writes the whole output notebook at every cell's start and end; each write is the
notebook re-encoded as indented JSON (the pure-Python encoder) and validated against the
schema. For a runbook of 30 cells that was 60 writes and about 40 % of the CPU a headless
run costs its driving process (benchmarks/README.md). Here a cell's start and end save only
when ``SAVE_EVERY`` seconds have passed since the last write; papermill's own end of run
(also reached on an error or a stop, in its ``finally``) always writes, so the executed
notebook is complete whenever the run ends. A driving process killed outright loses at most
the last ``SAVE_EVERY`` seconds of outputs; every node operation is in the operation log as
it happens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines

__all__ = ["ENGINE", "SAVE_EVERY"]

ENGINE = "cckit"
SAVE_EVERY = 5.0  # seconds between saves while cells run


class _Manager(NotebookExecutionManager):
    _throttled = False

    @contextlib.contextmanager
    def _throttle(self) -> Iterator[None]:
        self._throttled = True
        try:
            yield
        finally:
            self._throttled = False

    def save(self, **kwargs: Any) -> None:
        last = getattr(self, "last_save_time", None)
        if (self._throttled and last is not None
                and (self.now() - last).total_seconds() < SAVE_EVERY):
            return
        super().save(**kwargs)

    def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        with self._throttle():
            super().cell_start(cell, cell_index, **kwargs)

    def cell_complete(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        with self._throttle():
            super().cell_complete(cell, cell_index, **kwargs)


class _Engine(NBClientEngine):
    @classmethod
    def execute_notebook(cls, nb: Any, kernel_name: str, output_path: str | None = None,
                         progress_bar: bool = True, log_output: bool = False,
                         autosave_cell_every: int = 30, **kwargs: Any) -> Any:
        # papermill's Engine.execute_notebook with our manager (it takes no manager class)
        nb_man = _Manager(nb, output_path=output_path, progress_bar=progress_bar,
                          log_output=log_output, autosave_cell_every=autosave_cell_every)
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb


papermill_engines.register(ENGINE, _Engine)
