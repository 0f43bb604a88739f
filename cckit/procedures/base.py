"""What every procedure shares: steps that know which steps must come before them.

A step declared ``@step(after=("gate",))`` refuses, changing nothing, until ``gate`` has
run in this procedure object and succeeded; a notebook cell run out of order then says
which cell to run first instead of acting on nothing (or on the wrong thing). The cell it
names is the earliest step missing, counting what the missing steps need in turn, so one
refusal is enough to find where to go back to.
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

    @classmethod
    def steps(cls) -> list[str]:
        """Its ``@step`` methods in the order they are defined (a base class's first)."""
        order: dict[str, None] = {}
        for klass in reversed(cls.__mro__):
            order.update((name, None) for name, value in vars(klass).items()
                         if hasattr(value, "after"))
        return list(order)

    def missing_before(self, name: str) -> list[str]:
        """The steps that must succeed before step ``name`` and have not, in step order:
        the ones it needs, and the ones those need."""
        needed: set[str] = set()
        todo = list(getattr(getattr(type(self), name, None), "after", ()))
        while todo:
            s = todo.pop()
            if s not in needed:
                needed.add(s)
                todo.extend(getattr(getattr(type(self), s, None), "after", ()))
        return [s for s in self.steps() if s in needed and s not in self.done]


def step(*, after: tuple[str, ...] = (), changes: bool = True) -> Callable[[F], F]:
    """Mark a method as a step that needs ``after`` to have succeeded first; ``changes``:
    whether it changes a node (a plan-only run does not run it)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(self: Procedure, *args: Any, **kwargs: Any) -> StepResult:
            missing = self.missing_before(fn.__name__)
            if missing:
                needs = missing[-1] if len(missing) == 1 else (
                    ", ".join(missing[:-1]) + " and " + missing[-1])
                raise ProcedureError(
                    f"{fn.__name__} needs {needs} first; nothing was done",
                    hint=f"run the {missing[0]} cell first, then the cells after it in order")
            result = fn(self, *args, **kwargs)
            if result.ok:
                self.done.add(fn.__name__)
            else:
                self.done.discard(fn.__name__)
            return result

        run.after = after  # type: ignore[attr-defined]
        run.changes = changes  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return wrap
