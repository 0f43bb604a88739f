"""What every procedure shares: steps that know which steps must come before them.

A step declared ``@step(after=("gate",))`` refuses, changing nothing, until ``gate`` has
run in this procedure object and succeeded; a notebook cell run out of order then says
which cell to run first instead of acting on nothing (or on the wrong thing). The cell it
names is the earliest step missing, counting what the missing steps need in turn, so one
refusal is enough to find where to go back to.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from ..errors import InputError, ProcedureError
from ..orchestration import IN_SERVICE_TIMEOUT, REPLICATION_TIMEOUT
from ..results import StepResult
from ..session import SiteSession

__all__ = ["WAITS", "Procedure", "step", "wait_problem"]

F = TypeVar("F", bound=Callable[..., StepResult])

#: the bounds of the waits on the nodes a procedure may take, by the name of the runbook
#: parameter that sets them, with their defaults (seconds): trust uploaded on a publisher
#: reaching its subscribers, and a restarted node passing its readiness check
WAITS: Mapping[str, float] = MappingProxyType({
    "replication_timeout": REPLICATION_TIMEOUT, "in_service_timeout": IN_SERVICE_TIMEOUT})


def wait_problem(name: str, value: Any) -> str | None:
    """What is wrong with ``value`` as the bound of wait ``name`` (one line, which never
    repeats the value), or None."""
    if name not in WAITS:
        return f"{name}: not a wait (known: {', '.join(WAITS)})"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return (f"{name}: expected a number of seconds (e.g. -p {name} {WAITS[name]:.0f}), "
                f"got {'true/false' if isinstance(value, bool) else type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        return (f"{name}: expected a number of seconds above 0 (e.g. -p {name} "
                f"{WAITS[name]:.0f}), got {'0 or less' if value <= 0 else 'no finite number'}")
    return None


class Procedure:
    """A scenario over one :class:`SiteSession`: ``plan()`` and one method per step.

    ``waits`` names the bounds of its waits on the nodes (:data:`WAITS`): its runbook has
    a parameter of each name, which the run passes in (:meth:`set_waits`) before the plan
    is shown, so the plan and a timeout's message say the bound the step will keep."""

    #: the waits it bounds (names of :data:`WAITS`)
    waits: tuple[str, ...] = ()
    replication_timeout: float = REPLICATION_TIMEOUT
    in_service_timeout: float = IN_SERVICE_TIMEOUT

    def __init__(self, session: SiteSession) -> None:
        self.session = session
        self.done: set[str] = set()

    def set_waits(self, **seconds: Any) -> None:
        """Bound its waits (``replication_timeout=1200``); refuses, changing nothing, a
        name it does not wait for or a value that is not a number of seconds above 0."""
        problems = [f"{name}: {type(self).__name__} has no such wait (its waits: "
                    f"{', '.join(self.waits) or 'none'})" if name not in self.waits
                    else wait_problem(name, value) for name, value in seconds.items()]
        problems = [p for p in problems if p]
        if problems:
            raise InputError("bad wait " + "; ".join(problems),
                             hint="set it in the parameters cell, or pass -p NAME SECONDS")
        for name, value in seconds.items():
            setattr(self, name, float(value))

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
