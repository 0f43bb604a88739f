"""What this kernel ran and showed, cell by cell: an interactive run's record, no save needed.

JupyterLab writes a notebook to disk only when it is saved, so a copy of the file misses
every output shown since (and an engineer had to press Ctrl+S, then ask for a copy). The
kernel itself sees every output it sends: :class:`Capture` listens to its output messages
(the IOPub messages JupyterLab renders: streams, displays and their updates, results,
errors, clear_output) and keeps them per execution, so :meth:`Capture.notebook` can lay them
into the notebook's cells as the kernel ran them. Nothing is sent differently; a message
the capture cannot read is left alone.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Capture"]

#: the output messages a notebook keeps (nbformat.v4.output_from_msg reads them)
_OUTPUTS = ("stream", "display_data", "execute_result", "error")


@dataclass
class _Execution:
    seq: int
    count: int | None
    source: str
    outputs: list[Any] = field(default_factory=list)
    clear_on_next: bool = False


class Capture:
    """Every execution of this kernel since :meth:`install` (and the code of those before),
    with the outputs it showed."""

    _installed: Capture | None = None

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: list[_Execution] = []
        self._by_msg: dict[str, _Execution] = {}

    # ------------------------------------------------------------------ install
    @classmethod
    def install(cls) -> Capture | None:
        """Listen to this IPython kernel's output (once per kernel); None outside one."""
        if cls._installed is not None:
            return cls._installed
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        kernel = getattr(shell, "kernel", None)
        session = getattr(kernel, "session", None)
        if shell is None or session is None:
            return None
        cap = cls()
        history = list(getattr(shell.history_manager, "input_hist_raw", []) or [])
        # the cells run before (their code: outputs were sent before anyone listened), the
        # last one being the cell running now, whose outputs are still to come
        for count, source in enumerate(history[1:], start=1):
            cap._runs.append(_Execution(len(cap._runs), count, source))
        with contextlib.suppress(Exception):  # an older kernel: no outputs for this cell
            msg_id = kernel.get_parent("shell")["header"]["msg_id"]
            if cap._runs:
                cap._by_msg[msg_id] = cap._runs[-1]
        send = session.send

        def listening_send(*args: Any, **kwargs: Any) -> Any:
            msg = send(*args, **kwargs)
            if isinstance(msg, Mapping):
                with contextlib.suppress(Exception):  # the record must never break a kernel
                    cap.observe(msg)
            return msg

        session.send = listening_send
        cls._installed = cap
        return cap

    # ------------------------------------------------------------------ messages
    def observe(self, msg: Mapping[str, Any]) -> None:
        """One message the kernel sent."""
        kind = msg.get("header", {}).get("msg_type")
        parent = (msg.get("parent_header") or {}).get("msg_id")
        content = msg.get("content") or {}
        with self._lock:
            if kind == "execute_input" and parent:
                run = _Execution(len(self._runs), content.get("execution_count"),
                                 str(content.get("code", "")))
                self._runs.append(run)
                self._by_msg[parent] = run
                return
            run = self._by_msg.get(parent) if parent else None
            if kind == "update_display_data":
                self._update(content)
                return
            if run is None:
                return
            if kind == "clear_output":
                if content.get("wait"):
                    run.clear_on_next = True
                else:
                    run.outputs.clear()
                return
            if kind in _OUTPUTS:
                if run.clear_on_next:
                    run.outputs.clear()
                    run.clear_on_next = False
                self._append(run, kind, msg)

    def _append(self, run: _Execution, kind: str, msg: Mapping[str, Any]) -> None:
        from nbformat.v4 import output_from_msg

        out = output_from_msg(dict(msg))
        display_id = ((msg.get("content") or {}).get("transient") or {}).get("display_id")
        if display_id:
            out.setdefault("metadata", {})
            out["_display_id"] = display_id
        last = run.outputs[-1] if run.outputs else None
        if (kind == "stream" and last is not None and last.get("output_type") == "stream"
                and last.get("name") == out.get("name")):
            last["text"] += out["text"]
            return
        run.outputs.append(out)

    def _update(self, content: Mapping[str, Any]) -> None:
        display_id = (content.get("transient") or {}).get("display_id")
        for run in self._runs:
            for out in run.outputs:
                if display_id and out.get("_display_id") == display_id:
                    out["data"] = dict(content.get("data") or {})
                    out["metadata"] = dict(content.get("metadata") or {})

    # ------------------------------------------------------------------ the record
    def mark(self) -> int:
        """Where the execution running now is in this kernel's history."""
        with self._lock:
            return self._runs[-1].seq if self._runs else 0

    def add_result(self, data: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
        """The running cell's result, before the kernel sends it (a cell that saves the
        record puts its own output in it)."""
        with self._lock:
            if self._runs:
                run = self._runs[-1]
                run.outputs.append({"output_type": "execute_result", "data": dict(data),
                                    "metadata": dict(metadata),
                                    "execution_count": run.count})

    def notebook(self, skeleton: Any, *, since: int) -> Any:
        """``skeleton`` (a notebook: its markdown and the code of its cells) with each code
        cell's latest execution and outputs; cells below the one that ran execution
        ``since`` (a run's start cell) only from executions at or after it. Executions of
        code the skeleton does not hold (cells edited or added and not saved) follow it,
        in the order they ran."""
        import nbformat

        nb = copy.deepcopy(skeleton)
        with self._lock:
            runs = [copy.deepcopy(r) for r in self._runs]
        start = next((r for r in runs if r.seq == since), None)
        start_cell = next((i for i, c in enumerate(nb.cells) if start is not None
                           and c.cell_type == "code" and c.source == start.source), None)
        used: set[int] = set()
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            after = start_cell is not None and i > start_cell
            match = [r for r in runs if r.source == cell.source and (not after or r.seq >= since)]
            cell.outputs, cell.execution_count = [], None
            if match:
                run = match[-1]
                used.add(run.seq)
                cell.outputs = [_clean(o) for o in run.outputs]
                cell.execution_count = run.count
        extra = [r for r in runs if r.seq >= since and r.seq not in used and r.source.strip()
                 and not any(r.source == u.source for u in runs if u.seq in used)]
        if extra:
            nb.cells.append(nbformat.v4.new_markdown_cell(
                "## Also run in this kernel\nCells run during this run that the notebook, as "
                "saved, does not hold (edited or added since the last save)."))
            for r in extra:
                cell = nbformat.v4.new_code_cell(r.source)
                cell.outputs = [_clean(o) for o in r.outputs]
                cell.execution_count = r.count
                nb.cells.append(cell)
        return nb


def _clean(out: dict[str, Any]) -> Any:
    from nbformat import from_dict

    return from_dict({k: v for k, v in out.items() if k != "_display_id"})
