"""Maintenance windows: when a site may be changed, read on the site's own wall clock.

A window is a weekly rule: the days it opens on, a start and an end time (an end at or before
the start means it closes the next day; ``24:00`` is midnight at the end of the day) and an
IANA time zone. It covers exactly the instants at which the site's wall clock shows a time
from ``start`` (included) to ``end`` (excluded) of an opening that began on one of ``days``;
nothing outside that is ever inside a window. On the days the clocks change (zoneinfo, PEP 495)
that reading gives:

* spring forward (02:00 -> 03:00): wall times in the skipped hour never show, so a window
  starting at 02:30 opens at the jump, 03:00 new time; one ending at 02:30 closes at the jump;
  a window inside the gap does not open that day;
* fall back (02:00 -> 01:00): wall times in the repeated hour show twice; 01:00-05:00 lasts five
  real hours; a window 01:30-03:00 is open 01:30-02:00 first time, closed while the clock
  shows 01:00-01:29 the second time, open again 01:30-03:00: two intervals, and a run needs
  one long enough by itself.

All arithmetic is in UTC; local times appear only when shown. Windows of one site that overlap
or touch make one longer interval.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo

__all__ = ["DAYS", "Interval", "Window", "current", "intervals", "next_opening"]

UTC = dt.UTC
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: how far ahead a next opening is looked for (a weekly rule repeats within a week; two
#: weeks leave room for a DST change making this week's opening too short)
HORIZON_DAYS = 15
_STEP = dt.timedelta(minutes=15)  # offsets change far less often than this (tzdb)
_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Interval:
    """An interval of real time, [start, end), in UTC."""

    start: dt.datetime
    end: dt.datetime

    @property
    def length(self) -> dt.timedelta:
        return self.end - self.start

    def __contains__(self, when: object) -> bool:
        return isinstance(when, dt.datetime) and self.start <= when < self.end


@dataclass(frozen=True)
class Window:
    """One weekly maintenance window of a site."""

    #: the weekdays it opens on (0 = Monday)
    days: frozenset[int]
    #: minutes after local midnight: start in 0..1439, end in 1..1440
    start: int
    end: int
    tz: str

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.tz)

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    def describe(self) -> str:
        days = ("every day" if len(self.days) == 7
                else ", ".join(DAYS[d] for d in sorted(self.days)))
        nxt = " (next day)" if self.crosses_midnight else ""
        return f"{days} {_hhmm(self.start)}-{_hhmm(self.end)}{nxt} {self.tz}"

    def openings(self, date: dt.date) -> list[Interval]:
        """The real time covered by the opening that begins on the local ``date`` (none if
        the window does not open that weekday): one interval, two on a fall-back day that
        repeats part of it, none when it falls in a spring-forward gap."""
        if date.weekday() not in self.days:
            return []
        midnight = dt.datetime.combine(date, dt.time())
        naive_start = midnight + dt.timedelta(minutes=self.start)
        naive_end = midnight + dt.timedelta(minutes=self.end) + (
            _DAY if self.crosses_midnight else dt.timedelta())
        return _instants(self.zone, naive_start, naive_end)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _offset(zone: ZoneInfo, when: dt.datetime) -> dt.timedelta:
    off = when.astimezone(zone).utcoffset()
    assert off is not None
    return off


def _segments(zone: ZoneInfo, lo: dt.datetime, hi: dt.datetime
              ) -> Iterator[tuple[dt.datetime, dt.datetime, dt.timedelta]]:
    """[lo, hi) (UTC) cut where the zone's UTC offset changes: (from, to, offset) each.
    zoneinfo has no public list of transitions: step through, then bisect to the second."""
    a, off, t = lo, _offset(zone, lo), lo
    while t < hi:
        n = min(t + _STEP, hi)
        if _offset(zone, n) != off:
            before, after = t, n
            while after - before > dt.timedelta(seconds=1):
                mid = before + (after - before) / 2
                before, after = (mid, after) if _offset(zone, mid) == off else (before, mid)
            yield a, after, off
            a, off = after, _offset(zone, after)
        t = n
    yield a, hi, off


def _instants(zone: ZoneInfo, naive_start: dt.datetime, naive_end: dt.datetime
              ) -> list[Interval]:
    """The instants whose wall time in ``zone`` lies in [naive_start, naive_end)."""
    out: list[Interval] = []
    lo = naive_start.replace(tzinfo=UTC) - _DAY  # every UTC offset is within +-1 day
    hi = naive_end.replace(tzinfo=UTC) + _DAY
    for a, b, off in _segments(zone, lo, hi):
        # local = utc + off inside the segment: naive_start <= t + off < naive_end
        start = max(a, (naive_start - off).replace(tzinfo=UTC))
        end = min(b, (naive_end - off).replace(tzinfo=UTC))
        if start < end:
            if out and out[-1].end == start:
                out[-1] = Interval(out[-1].start, end)
            else:
                out.append(Interval(start, end))
    return out


def intervals(windows: Sequence[Window], around: dt.datetime, *,
              days_ahead: int = HORIZON_DAYS) -> list[Interval]:
    """Every interval of ``windows`` from the day before ``around`` (an opening that began
    yesterday may still be open) to ``days_ahead`` days after it, overlapping or touching
    ones merged, in time order."""
    found: list[Interval] = []
    for w in windows:
        today = around.astimezone(w.zone).date()
        for i in range(-1, days_ahead + 1):
            found += w.openings(today + dt.timedelta(days=i))
    return list(_merged(found))


def _merged(found: Iterable[Interval]) -> Iterator[Interval]:
    cur: Interval | None = None
    for iv in sorted(found, key=lambda i: i.start):
        if cur is not None and iv.start <= cur.end:
            cur = Interval(cur.start, max(cur.end, iv.end))
            continue
        if cur is not None:
            yield cur
        cur = iv
    if cur is not None:
        yield cur


def current(windows: Sequence[Window], now: dt.datetime) -> Interval | None:
    """The interval open at ``now``, or None."""
    return next((iv for iv in intervals(windows, now, days_ahead=1) if now in iv), None)


def next_opening(windows: Sequence[Window], now: dt.datetime,
                 need: dt.timedelta = dt.timedelta()) -> Interval | None:
    """The first interval, from ``now`` on, with at least ``need`` of it still ahead: the
    open one (its start then in the past) when enough of it is left, else the next long
    enough. None when no opening in :data:`HORIZON_DAYS` days is that long."""
    for iv in intervals(windows, now):
        if iv.end - max(iv.start, now) >= need and iv.end > now:
            return iv
    return None
