"""Live progress of a step: one line per node, as its operations start and end.

A restart wave takes minutes; without this the notebook shows nothing until the slowest
node is back. :func:`follow` listens to the session's :class:`~cckit.events.EventStream`
for the length of one step and

* logs every event as one line on the ``cckit.progress`` logger and, given ``log_file``,
  appends it there (the runbook's ``progress.log`` in the run folder: a headless run has
  the lines too), and
* in a Jupyter kernel, keeps one display updated in place: per node its current operation,
  the time it has taken so far, and what it finished last.

The display is empty when the step starts and when it ends (the step's result table is
what stays), so executed notebooks are the same from run to run whatever the timings.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import html as _html
import logging
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .events import EventStream, OperationEvent

__all__ = ["NodeProgress", "ProgressBoard", "follow", "logger"]

logger = logging.getLogger("cckit.progress")
logger.addHandler(logging.NullHandler())

#: at most this many display updates a second (events can arrive in bursts)
_MAX_RATE = 4.0


@dataclass
class NodeProgress:
    """What one node is doing: the operations running now, and the last one finished."""

    node: str
    running: dict[str, tuple[float, str]] = field(default_factory=dict)  # op -> (start, what)
    last: str = ""
    failed: bool = False
    started: float | None = None

    def line(self, now: float) -> str:
        since = f" [{now - self.started:.0f} s]" if self.started is not None else ""
        if self.running:
            op, (start, what) = max(self.running.items(), key=lambda kv: kv[1][0])
            doing = f"{op} {what}".strip() + f" running for {now - start:.1f} s"
            return f"{self.node}: {doing}" + (f"; last: {self.last}" if self.last else "") + since
        return f"{self.node}: {self.last or 'waiting'}" + since


class ProgressBoard:
    """The per-node state :func:`follow` shows; fed by events, read as lines."""

    def __init__(self, nodes: Sequence[str] = ()) -> None:
        self.nodes: dict[str, NodeProgress] = {n: NodeProgress(n) for n in nodes}
        self._lock = threading.Lock()

    def __call__(self, event: OperationEvent) -> None:
        name = event.node or "site"
        with self._lock:
            p = self.nodes.setdefault(name, NodeProgress(name))
            if p.started is None:
                p.started = event.time
            if event.phase == "started":
                p.running[event.operation] = (event.time, event.detail)
            else:
                p.running.pop(event.operation, None)
                p.failed |= event.phase == "failed"
                p.last = event.line().split(": ", 1)[1]

    def lines(self, now: float | None = None) -> list[str]:
        now = time.time() if now is None else now
        with self._lock:
            return [p.line(now) for p in self.nodes.values() if p.started is not None]


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        from IPython import get_ipython

        ip = get_ipython()
    except Exception:
        return False
    return ip is not None and getattr(ip, "kernel", None) is not None


class _Display:
    """One display updated in place (IPython display handle), at most ``_MAX_RATE`` a
    second, plus a ticker so the elapsed times move while nothing happens."""

    def __init__(self, board: ProgressBoard) -> None:
        from IPython.display import display

        self.board = board
        self.handle = display(_blank(), raw=True, display_id=True)
        self._last = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._ticker = threading.Thread(target=self._tick, name="cckit-progress", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self.show(force=True)

    def show(self, *, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last < 1 / _MAX_RATE:
                return
            self._last = now
            lines = self.board.lines()
            if not lines or self._stop.is_set():
                return
            text = "\n".join(lines)
            self.handle.update({"text/plain": text,
                                "text/html": "<pre class='cckit-progress'>"
                                + _html.escape(text) + "</pre>"}, raw=True)

    def close(self) -> None:
        self._stop.set()
        self._ticker.join(timeout=2)
        with self._lock:
            self.handle.update(_blank(), raw=True)


def _blank() -> dict[str, Any]:
    return {"text/plain": "", "text/html": ""}


@contextlib.contextmanager
def follow(events: EventStream, *, nodes: Sequence[str] = (), step: str = "",
           log_file: Path | None = None, live: bool | None = None
           ) -> Iterator[ProgressBoard]:
    """Progress of the operations ``events`` reports inside the block: log lines always
    (and in ``log_file``), a display updated in place when in a Jupyter kernel (``live``:
    None = detect)."""
    board = ProgressBoard(nodes)
    display = _Display(board) if (live if live is not None else _in_kernel()) else None

    def on_event(event: OperationEvent) -> None:
        board(event)
        line = f"{step}: {event.line()}" if step else event.line()
        logger.info("%s", line)
        if log_file is not None:
            stamp = dt.datetime.fromtimestamp(event.time, dt.UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z")
            with contextlib.suppress(OSError), open(log_file, "a", encoding="utf-8") as f:
                f.write(f"{stamp} {line}\n")
        if display is not None:
            display.show(force=event.phase != "started")

    try:
        with events.listening(on_event):
            yield board
    finally:
        if display is not None:
            display.close()
