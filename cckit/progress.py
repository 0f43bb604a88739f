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


#: how a wait reads while it runs (and once it ended), per operation
_WAITING = {
    "wait_replication": ("waiting for tomcat-trust to replicate to {node}: {secs:.0f} s",
                         "tomcat-trust replicated to {node} after {secs:.1f} s"),
    # a node left alone by a restart is still checked before the next wave
    "wait_in_service": ("waiting for {what}: {secs:.0f} s", "{what} after {secs:.1f} s"),
}


@dataclass
class NodeProgress:
    """What one node is doing: the operations running now, and the last one finished.

    A restart reads as its milestones, each timed from the moment the node's first service
    went down: ``stopped -> TLS up after 92 s -> in service after 131 s`` (while it waits:
    ``-> waiting for Finesse IN_SERVICE: 12 s``)."""

    node: str
    running: dict[str, tuple[float, str]] = field(default_factory=dict)  # op -> (start, what)
    last: str = ""
    failed: bool = False
    started: float | None = None
    #: the restart's milestones: when it began (the stop), TLS up and in service, as times
    restart: dict[str, float] = field(default_factory=dict)
    ready_label: str = ""

    def line(self, now: float) -> str:
        since = f" [{now - self.started:.0f} s]" if self.started is not None else ""
        if "stopped" in self.restart:
            return f"{self.node}: {self._restart_line(now)}" + since
        if self.running:
            op, (start, what) = max(self.running.items(), key=lambda kv: kv[1][0])
            if op in _WAITING:
                doing = _WAITING[op][0].format(node=self.node, what=what, secs=now - start)
            else:
                doing = f"{op} {what}".strip() + f" running for {now - start:.1f} s"
            return f"{self.node}: {doing}" + (f"; last: {self.last}" if self.last else "") + since
        return f"{self.node}: {self.last or 'waiting'}" + since

    def _restart_line(self, now: float) -> str:
        t0 = self.restart["stopped"]
        parts = ["stopped"]
        if "tls" in self.restart:
            parts.append(f"TLS up after {self.restart['tls'] - t0:.1f} s")
        if "ready" in self.restart:
            parts.append(f"in service after {self.restart['ready'] - t0:.1f} s")
        for op, label in (("wait_serving", "TLS"), ("wait_in_service", self.ready_label)):
            if op in self.running:
                parts.append(f"waiting for {label}: {now - self.running[op][0]:.0f} s")
        if not self.running and self.failed:
            parts.append(self.last)
        elif "restart_service" in self.running:
            start, what = self.running["restart_service"]
            parts[-1] += f" (restarting {what}: {now - start:.0f} s)"
        return " \N{RIGHTWARDS ARROW} ".join(parts)


#: the restart milestones an ended operation marks
_MILESTONE = {"wait_serving": "tls", "wait_in_service": "ready"}


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
                if event.operation == "restart":
                    p.restart = {"stopped": event.time}
                elif event.operation == "wait_in_service":
                    p.ready_label = event.detail
            else:
                p.running.pop(event.operation, None)
                p.failed |= event.phase == "failed"
                if event.phase == "ended" and p.restart and event.operation in _MILESTONE:
                    p.restart[_MILESTONE[event.operation]] = event.time
                if event.phase == "ended" and event.operation in _WAITING:
                    p.last = _WAITING[event.operation][1].format(
                        node=name, what=event.detail, secs=event.elapsed or 0.0)
                else:
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
