"""A site file's ``autopilot:`` block: the standing policy for unattended renewals.

Validated with the rest of the site file (:func:`cckit.sites.parse_site` calls
:func:`parse_policy`), every problem one line naming its field. ``enabled: true`` is the
site's standing confirmation (what ``confirm`` is to a runbook), and only for renewing what is
already configured: the autopilot never moves a site to another scenario.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..credentials import secret_refs
from ..errors import CckitError
from .windows import DAYS, Window

__all__ = ["KEYS", "Policy", "parse_policy"]

KEYS = ("enabled", "ca", "ca_options", "renew_before", "windows", "notify")
_WINDOW_KEYS = ("days", "start", "end", "tz")
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)|24:00")
_SPAN = re.compile(r"(\d+)\s*([dw])")
#: the longest renew_before (a certificate is renewed at most this long before it expires)
MAX_RENEW_BEFORE = 365


@dataclass(frozen=True)
class Policy:
    """What the autopilot may do on one site, and when."""

    enabled: bool
    ca: str
    ca_options: Mapping[str, Any] = field(default_factory=dict)
    #: renew a certificate with this many days left or fewer
    renew_before: int = 30
    windows: tuple[Window, ...] = ()
    #: notifier specs, as ``cckit inventory --notify`` takes them
    notify: tuple[str, ...] = ()

    def describe_windows(self) -> str:
        return "; ".join(w.describe() for w in self.windows) or "none"


def _bool(block: Mapping[str, Any], key: str, problems: list[str]) -> bool:
    value = block.get(key)
    if not isinstance(value, bool):
        problems.append(f"autopilot.{key}: expected true or false"
                        + (" (missing: true renews unattended inside the windows, false "
                           "pauses the site)" if value is None else ""))
        return False
    return value


def _renew_before(value: Any, problems: list[str]) -> int:
    """``30d``, ``4w`` or a number of days."""
    days = None
    if isinstance(value, int) and not isinstance(value, bool):
        days = value
    elif isinstance(value, str) and (m := _SPAN.fullmatch(value.strip().lower())):
        days = int(m.group(1)) * (7 if m.group(2) == "w" else 1)
    if days is None or not 1 <= days <= MAX_RENEW_BEFORE:
        problems.append(f"autopilot.renew_before: expected days such as 30d or 4w (1 to "
                        f"{MAX_RENEW_BEFORE} days)")
        return 30
    return days


def _minutes(value: Any, where: str, problems: list[str], *, end: bool) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        problems.append(f"{where}: write the time as text in quotes, e.g. \"01:00\" (YAML "
                        "reads 1:30 unquoted as the number 90)")
        return None
    m = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None or (value.strip() == "24:00" and not end):
        problems.append(f"{where}: expected a time HH:MM from 00:00 to 23:59"
                        + (" (or 24:00)" if end else ""))
        return None
    return 1440 if m.group(1) is None else int(m.group(1)) * 60 + int(m.group(2))


_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _days(value: Any, where: str, problems: list[str]) -> frozenset[int] | None:
    if value is None:
        return frozenset(range(7))
    out = set()
    for d in value if isinstance(value, list) else [None]:
        name = d.strip().lower() if isinstance(d, str) else ""
        if name not in DAYS and name not in _FULL_DAYS:
            problems.append(f"{where}: expected a list of days (mon, tue, wed, thu, fri, sat, "
                            "sun); leave it out for every day")
            return None
        out.add(DAYS.index(name) if name in DAYS else _FULL_DAYS.index(name))
    if not out:
        problems.append(f"{where}: an empty list of days never opens; leave it out for every "
                        "day")
        return None
    return frozenset(out)


def _zone(value: Any, where: str, problems: list[str]) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: missing: the site's IANA time zone, e.g. America/Chicago "
                        "(windows are read on the site's wall clock)")
        return None
    try:
        zoneinfo.ZoneInfo(value.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        problems.append(f"{where}: unknown time zone {value.strip()[:64]!r} (an IANA name "
                        "such as Europe/Paris or UTC)")
        return None
    return value.strip()


def _windows(value: Any, problems: list[str]) -> tuple[Window, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        problems.append("autopilot.windows: expected a list of {days, start, end, tz}")
        return ()
    out = []
    for i, raw in enumerate(value):
        where = f"autopilot.windows[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected {{days, start, end, tz}}")
            continue
        n0 = len(problems)
        for k in sorted(set(map(str, raw)) - set(_WINDOW_KEYS)):
            problems.append(f"{where}: unknown key {k[:64]!r} (known: {', '.join(_WINDOW_KEYS)})")
        days = _days(raw.get("days"), f"{where}.days", problems)
        start = _minutes(raw.get("start"), f"{where}.start", problems, end=False)
        end = _minutes(raw.get("end"), f"{where}.end", problems, end=True)
        tz = _zone(raw.get("tz"), f"{where}.tz", problems)
        if start is not None and end is not None and (start == end or end - start == 1440):
            if not (start == 0 and end == 1440):
                problems.append(f"{where}: start and end are the same time: an empty window "
                                "(00:00 to 24:00 is the whole day)")
        if len(problems) == n0 and days is not None and start is not None and end is not None \
                and tz is not None:
            out.append(Window(days, start, end, tz))
    return tuple(out)


def _notify(value: Any, problems: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append("autopilot.notify: expected a list such as [webhook=https://..., "
                        "'smtp=HOST:25?to=ADDR']")
        return ()
    from ..notify import parse_notifier

    for i, spec in enumerate(value):
        try:
            parse_notifier(spec)
        except CckitError as e:
            problems.append(f"autopilot.notify[{i}]: {e.message}")
    return tuple(value)


def _ca(block: Mapping[str, Any], base_dir: Path, problems: list[str]
        ) -> tuple[str, dict[str, Any]]:
    from ..ca import check_options

    name = block.get("ca")
    options = block.get("ca_options", {}) or {}
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        problems.append("autopilot.ca_options: expected a mapping of option -> value")
        options = {}
    if not isinstance(name, str) or not name.strip():
        problems.append("autopilot.ca: missing: the CA adapter that signs the renewals "
                        "unattended (lab, acme or adcs)")
        return "", options
    name = name.strip()
    n0 = len(problems)
    # a secret in ca_options is a reference (env, keyring, file), never the value
    problems += secret_refs(options, path="autopilot.ca_options", base_dir=base_dir)[1]
    if len(problems) > n0:
        return name, options
    try:
        cls = check_options(name, options, complete=False)
        why = cls.unattended(options)
        if why is not None:
            problems.append(f"autopilot.ca: {name} cannot renew unattended: {why}")
            return name, options
        state = {cls.state_option: "<state>"} if cls.state_option else {}
        check_options(name, {**state, **options})
    except CckitError as e:
        hint = f" ({e.hint})" if getattr(e, "hint", None) else ""
        problems.append(f"autopilot.ca: {e.message}{hint}")
    return name, options


def parse_policy(data: Any, base_dir: Path, problems: list[str]) -> Policy | None:
    """The ``autopilot:`` block of a site file (None when there is none); its problems are
    appended to ``problems``, one line each."""
    if data is None:
        return None
    if not isinstance(data, dict):
        problems.append("autopilot: expected a mapping (enabled, ca, ca_options, "
                        "renew_before, windows, notify)")
        return None
    n0 = len(problems)
    for k in sorted(set(map(str, data)) - set(KEYS)):
        problems.append(f"autopilot: unknown key {k[:64]!r} (known: {', '.join(KEYS)})")
    enabled = _bool(data, "enabled", problems)
    ca, options = _ca(data, base_dir, problems)
    renew_before = _renew_before(data.get("renew_before", 30), problems)
    n1 = len(problems)
    windows = _windows(data.get("windows"), problems)
    if enabled and not windows and len(problems) == n1:
        problems.append("autopilot.windows: none: say when changes may happen, e.g. "
                        "[{days: [sat, sun], start: \"01:00\", end: \"05:00\", "
                        "tz: America/Chicago}]")
    notify = _notify(data.get("notify"), problems)
    if len(problems) > n0:
        return None
    return Policy(enabled, ca, options, renew_before, windows, notify)
