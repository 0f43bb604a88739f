"""One stream of operation events per run: what each node is doing, as it happens.

Steps work on several nodes at once (:func:`cckit.orchestration.parallel`), so a step's
result table arrives only when the slowest node is done, minutes into a restart wave. Every
node operation therefore reports ``started`` and ``ended``/``failed`` (with its time) to the
session's :class:`EventStream`; listeners turn the events into live progress lines
(:mod:`cckit.progress`) while the operation log (:mod:`cckit.audit`) keeps one line per
operation with its start and end.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from .credentials import redact

__all__ = ["EventStream", "OperationEvent", "Phase"]

Phase = Literal["started", "ended", "failed"]


@dataclass(frozen=True)
class OperationEvent:
    """One node operation starting or ending. ``elapsed`` (seconds since its start) is set
    on ``ended``/``failed``; ``detail`` says what (a service) or why (the error)."""

    node: str | None
    operation: str
    phase: Phase
    time: float  # time.time() of the event
    elapsed: float | None = None
    detail: str = ""

    def line(self) -> str:
        """``uccx-sub: restart_service Cisco Tomcat ended after 182.3 s``."""
        what = f"{self.operation} {self.detail}".strip() if self.phase == "started" \
            else self.operation
        text = f"{self.node or 'site'}: {what} {self.phase}"
        if self.elapsed is not None:
            text += f" after {self.elapsed:.1f} s"
        if self.phase != "started" and self.detail:
            text += f" ({self.detail})"
        return text


Listener = Callable[[OperationEvent], None]


class EventStream:
    """Thread-safe fan-out of :class:`OperationEvent` to listeners, in emission order.

    A listener that raises breaks nothing: progress is a view, never a reason for a node
    operation to fail. Details are scrubbed of every resolved secret."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.RLock()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add ``listener``; returns the function that removes it."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)
        return unsubscribe

    @contextmanager
    def listening(self, listener: Listener) -> Iterator[None]:
        unsubscribe = self.subscribe(listener)
        try:
            yield
        finally:
            unsubscribe()

    def emit(self, node: str | None, operation: str, phase: Phase, *,
             elapsed: float | None = None, detail: str = "") -> OperationEvent:
        event = OperationEvent(node, operation, phase, time.time(), elapsed, redact(detail))
        with self._lock:  # one event at a time: listeners see a consistent order
            for listener in list(self._listeners):
                # a broken view must not fail the operation
                with contextlib.suppress(Exception):
                    listener(event)
        return event

    @contextmanager
    def span(self, node: str | None, operation: str, detail: str = "") -> Iterator[None]:
        """``started`` now, ``ended`` (or ``failed`` with the error) when the block ends."""
        start = time.monotonic()
        self.emit(node, operation, "started", detail=detail)
        try:
            yield
        except BaseException as e:
            self.emit(node, operation, "failed", elapsed=time.monotonic() - start,
                      detail=f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
            raise
        self.emit(node, operation, "ended", elapsed=time.monotonic() - start, detail=detail)
