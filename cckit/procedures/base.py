"""What every procedure shares: steps that know which steps must come before them.

A step declared ``@step(after=("gate",))`` refuses, changing nothing, until ``gate`` has
run in this procedure object and succeeded; a notebook cell run out of order then says
which cell to run first instead of acting on nothing (or on the wrong thing).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ProcedureError
from ..orchestration import IN_SERVICE_TIMEOUT, REPLICATION_TIMEOUT
from ..results import StepResult
from ..session import SiteSession

__all__ = ["Procedure", "step"]

F = TypeVar("F", bound=Callable[..., StepResult])


class Procedure:
    """A scenario over one :class:`SiteSession`: ``plan()`` and one method per step.

    The bounds of its waits on the nodes, in seconds (set them on the object to wait longer,
    e.g. ``proc.replication_timeout = 1200``): trust uploaded on a publisher reaching its
    subscribers, and a restarted node passing its readiness check (Finesse IN_SERVICE)."""

    replication_timeout: float = REPLICATION_TIMEOUT
    in_service_timeout: float = IN_SERVICE_TIMEOUT

    def __init__(self, session: SiteSession) -> None:
        self.session = session
        self.done: set[str] = set()


def step(*, after: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Mark a method as a step that needs ``after`` to have succeeded first."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(self: Procedure, *args: Any, **kwargs: Any) -> StepResult:
            missing = [a for a in after if a not in self.done]
            if missing:
                raise ProcedureError(
                    f"{fn.__name__} needs {' and '.join(missing)} first; nothing was done",
                    hint=f"run the {missing[0]} cell (step) first, then this one")
            result = fn(self, *args, **kwargs)
            if result.ok:
                self.done.add(fn.__name__)
            else:
                self.done.discard(fn.__name__)
            return result

        return run  # type: ignore[return-value]

    return wrap
