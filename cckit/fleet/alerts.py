"""Between sweeps: what was already seen, and one message per new finding.

The state file (JSON, rewritten atomically) remembers each finding's key with when it was
first seen and whether its message went out, and each pending CSR's first sighting (VOS
shows no date for a CSR). A finding is *new* when no earlier sweep saw it, or, with
notifiers, until a message about it has gone out; one that disappears and comes back is new
again. One message per new finding goes out on every notifier (:mod:`cckit.notify`:
``webhook=URL``, ``smtp=HOST?to=ADDR``); a notifier that fails is reported and its findings
stay new, so the next sweep tries again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._internal.fs import atomic_write
from ..credentials import redact
from ..errors import InputError
from ..notify import Notifier
from .records import CsrRow, Finding
from .rules import TITLES

__all__ = ["SweepState", "notify"]

STATE_SCHEMA = 1


@dataclass
class SweepState:
    path: Path
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)
    csrs: dict[str, str] = field(default_factory=dict)
    last_sweep: str | None = None

    @classmethod
    def load(cls, path: str | os.PathLike) -> SweepState:
        p = Path(path)
        if not p.exists():
            return cls(p)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except ValueError:
            raise InputError("the sweep state is not valid JSON", file=str(p),
                             hint="move it away; the next sweep starts a new one (every "
                             "finding is then new once)") from None
        return cls(p, dict(data.get("findings") or {}), dict(data.get("csrs") or {}),
                   data.get("last_sweep"))

    def csr_ages(self, rows: Sequence[CsrRow], now: dt.datetime) -> list[CsrRow]:
        """``rows`` with when each CSR was first seen and how many days it has pended."""
        from dataclasses import replace

        out, seen = [], {}
        for r in rows:
            key = f"{r.site}|{r.node}|{r.unit}|{r.public_key_sha256}"
            first = dt.datetime.fromisoformat(self.csrs.get(key) or now.isoformat())
            seen[key] = first.isoformat()
            out.append(replace(r, first_seen=first, age_days=max(0, (now - first).days)))
        self.csrs = seen
        return out

    def new(self, findings: Sequence[Finding], *, retry_unsent: bool = False
            ) -> list[Finding]:
        """Findings no earlier sweep saw; with ``retry_unsent``, also those seen but whose
        message never went out."""
        return [f for f in findings if f.key not in self.findings
                or (retry_unsent and not self.findings[f.key].get("notified"))]

    def update(self, findings: Sequence[Finding], notified: set[str], now: dt.datetime
               ) -> None:
        """Keep the current findings only; mark those whose message went out."""
        current = {}
        for f in findings:
            old = self.findings.get(f.key, {})
            current[f.key] = {"first_seen": old.get("first_seen") or now.isoformat(),
                              "notified": bool(old.get("notified")) or f.key in notified}
        self.findings = current
        self.last_sweep = now.isoformat()

    def save(self) -> None:
        data = {"schema": STATE_SCHEMA, "last_sweep": self.last_sweep,
                "findings": self.findings, "csrs": self.csrs}
        atomic_write(self.path, json.dumps(data, indent=1, sort_keys=True).encode())


# ------------------------------------------------------------------------------ notifiers


def _subject(f: Finding) -> str:
    where = f"{f.site} {f.node}".strip()
    return f"cckit [{f.severity.value.upper()}] {where}: {TITLES[f.code]}"


def payload(f: Finding) -> dict[str, Any]:
    """One finding as a webhook's JSON (``text`` for chat tools that show only that)."""
    return {"text": f"{_subject(f)} — {f.message}. Fix: {f.fix}", "key": f.key,
            "severity": f.severity.value, "code": f.code.value, "title": TITLES[f.code],
            "site": f.site, "node": f.node, "unit": f.unit, "about": f.subject,
            "message": f.message, "runbook": f.runbook, "fix": f.fix}


def notify(notifiers: Sequence[Notifier], new: Sequence[Finding]) -> tuple[set[str], list[str]]:
    """Send one message per new finding on every notifier; (keys sent everywhere, problems)."""
    sent = {f.key for f in new}
    problems: list[str] = []
    for n in notifiers:
        ok = set()
        for f in new:
            try:
                n.deliver(_subject(f), payload(f))
            except Exception as e:  # a notifier's failure never stops the sweep
                problems.append(f"{n.describe()}: {type(e).__name__}: {redact(str(e))}")
                break
            ok.add(f.key)
        sent &= ok
    return sent, problems
