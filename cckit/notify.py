"""Where a team hears of things: notifiers, shared by the fleet inventory's alerts and the
renewal autopilot's.

A notifier is given as text, on the command line (``cckit inventory --notify``) or in a site
file (``autopilot.notify``): ``webhook=URL`` (an HTTP POST of JSON per message) or
``smtp=HOST[:PORT]?to=ADDR[&to=...][&from=ADDR][&starttls=1][&user=NAME&password_env=VAR]``
(one mail per message; the password only ever by the name of the variable holding it).
:func:`parse_notifier` checks it (one line per problem, never repeating a secret), and
:meth:`Notifier.deliver` sends one message. The site file's loader validates through here,
so this module sits below it and knows nothing of findings or renewals.
"""

from __future__ import annotations

import os
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .credentials import redact
from .errors import InputError

__all__ = ["Notifier", "parse_notifier"]


@dataclass(frozen=True)
class Notifier:
    kind: str  # webhook | smtp
    target: str  # URL, or host:port (what is shown; no secret)
    options: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        return f"{self.kind} {self.target}"

    def opt(self, name: str, default: str = "") -> str:
        return next((v for k, v in self.options if k == name), default)

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
