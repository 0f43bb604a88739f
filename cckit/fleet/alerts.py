"""Between sweeps: what was already seen, and one message per new finding.

The state file (JSON, rewritten atomically) remembers each finding's key with when it was
first seen and whether its message went out, and each pending CSR's first sighting (VOS
shows no date for a CSR). A finding is *new* when no earlier sweep saw it, or, with
notifiers, until a message about it has gone out; one that disappears and comes back is new
again. Notifiers: ``webhook=URL`` (an HTTP POST of
JSON per finding) and ``smtp=HOST[:PORT]?to=ADDR[&to=...][&from=ADDR][&starttls=1]
[&user=NAME&password_env=VAR]`` (one mail per finding). A notifier that fails is reported
and its findings stay new, so the next sweep tries again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import smtplib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .._internal.fs import atomic_write
from ..credentials import redact
from ..errors import InputError
from .records import CsrRow, Finding
from .rules import TITLES

__all__ = ["Notifier", "SweepState", "notify", "parse_notifier"]

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


@dataclass(frozen=True)
class Notifier:
    kind: str  # webhook | smtp
    target: str  # URL, or host:port (what is shown; no secret)
    options: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        return f"{self.kind} {self.target}"

    def opt(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.options if k == name), default)

    def send(self, f: Finding, *, timeout: float = 10.0) -> None:
        self.deliver(_subject(f), payload(f), timeout=timeout)

    def deliver(self, subject: str, body: Mapping[str, Any], *, timeout: float = 10.0) -> None:
        """One message: a webhook POSTs ``body`` as JSON (its ``text`` for chat tools), a mail
        has ``subject`` and one ``key: value`` line per field but ``text``."""
        if self.kind == "webhook":
            import requests

            r = requests.post(self.target, json=dict(body), timeout=timeout)
            r.raise_for_status()
            return
        host, _, port = self.target.partition(":")
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = self.opt("from", "cckit@localhost")
        msg["To"] = ", ".join(v for k, v in self.options if k == "to")
        msg.set_content("\n".join(f"{k}: {v}" for k, v in body.items() if k != "text") + "\n")
        with smtplib.SMTP(host, int(port or 25), timeout=timeout) as smtp:
            if self.opt("starttls"):
                smtp.starttls()
            if self.opt("user"):
                smtp.login(self.opt("user"), os.environ.get(self.opt("password_env"), ""))
            smtp.send_message(msg)


def parse_notifier(text: str) -> Notifier:
    """``webhook=URL`` or ``smtp=HOST[:PORT]?to=ADDR&...`` (see the module's doc)."""
    kind, _, value = text.partition("=")
    if kind == "webhook" and value.startswith(("http://", "https://")):
        return Notifier("webhook", value)
    if kind == "smtp" and value:
        parts = urlsplit(f"smtp://{value}")
        opts = tuple((k, v) for k, vs in parse_qs(parts.query).items() for v in vs)
        if "password" in {k for k, _ in opts}:
            raise InputError("--notify smtp: a password is never an option",
                             hint="name the environment variable that holds it: "
                             "password_env=VAR")
        if not any(k == "to" for k, _ in opts) or not parts.hostname:
            raise InputError(f"--notify {redact(text)}: smtp needs a host and to=ADDR",
                             hint="e.g. smtp=mail.example.com:25?to=noc@example.com")
        return Notifier("smtp", parts.netloc, opts)
    raise InputError(f"--notify {redact(text)!r} is not webhook=URL or smtp=HOST?to=ADDR",
                     hint="e.g. webhook=https://hooks.example.com/cckit")


def notify(notifiers: Sequence[Notifier], new: Sequence[Finding]) -> tuple[set[str], list[str]]:
    """Send one message per new finding on every notifier; (keys sent everywhere, problems)."""
    sent = {f.key for f in new}
    problems: list[str] = []
    for n in notifiers:
        ok = set()
        for f in new:
            try:
                n.send(f)
            except Exception as e:  # a notifier's failure never stops the sweep
                problems.append(f"{n.describe()}: {type(e).__name__}: {redact(str(e))}")
                break
            ok.add(f.key)
        sent &= ok
    return sent, problems
