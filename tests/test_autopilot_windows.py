"""Maintenance-window arithmetic (cckit.autopilot.windows): time zones, DST gaps and repeated
hours, windows across midnight, what is open now and what opens next."""

from __future__ import annotations

import bisect
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from cckit.autopilot.windows import Window, current, intervals, next_opening

UTC = dt.UTC
ALL = frozenset(range(7))


def w(start: str, end: str, tz: str = "America/Chicago", days=ALL) -> Window:
    def minutes(t: str) -> int:
        h, m = t.split(":")
        return int(h) * 60 + int(m)
    return Window(frozenset(days), minutes(start), minutes(end), tz)


def z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def spans(window: Window, date: dt.date) -> list[tuple[str, str]]:
    return [(i.start.strftime("%H:%MZ"), i.end.strftime("%H:%MZ"))
            for i in window.openings(date)]


SPRING = dt.date(2026, 3, 8)  # America/Chicago: 02:00 CST -> 03:00 CDT (08:00Z)
FALL = dt.date(2026, 11, 1)  # America/Chicago: 02:00 CDT -> 01:00 CST (07:00Z)


@pytest.mark.parametrize("start, end, expected", [
    ("01:00", "05:00", [("07:00Z", "10:00Z")]),  # 4 wall hours, 3 real ones
    ("02:30", "04:00", [("08:00Z", "09:00Z")]),  # starts in the gap: opens at the jump
    ("01:00", "02:30", [("07:00Z", "08:00Z")]),  # ends in the gap: closes at the jump
    ("01:30", "03:00", [("07:30Z", "08:00Z")]),
    ("02:00", "03:00", []),  # wholly in the gap: no opening that day
    ("02:10", "02:50", []),
])
def test_spring_forward_gap_is_never_shown_on_the_wall_clock(start, end, expected):
    assert spans(w(start, end), SPRING) == expected


@pytest.mark.parametrize("start, end, expected", [
    ("01:00", "05:00", [("06:00Z", "11:00Z")]),  # 4 wall hours, 5 real ones
    ("01:00", "02:00", [("06:00Z", "08:00Z")]),  # the repeated hour twice, contiguous
    # the second 01:00-01:29 shows a time before the start: closed then
    ("01:30", "03:00", [("06:30Z", "07:00Z"), ("07:30Z", "09:00Z")]),
    # the second 01:30-01:59 shows a time after the end: closed then, open again at 01:00 CST
    ("00:00", "01:30", [("05:00Z", "06:30Z"), ("07:00Z", "07:30Z")]),
])
def test_fall_back_repeated_hour(start, end, expected):
    assert spans(w(start, end), FALL) == expected


def test_an_ordinary_day_is_its_wall_hours_in_utc():
    assert spans(w("01:00", "05:00"), dt.date(2026, 6, 6)) == [("06:00Z", "10:00Z")]
    assert spans(w("01:00", "05:00"), dt.date(2026, 12, 5)) == [("07:00Z", "11:00Z")]


def test_window_across_midnight_belongs_to_the_day_it_opens():
    fri = w("22:00", "02:00", days={4})  # opens on Fridays, closes Saturday 02:00
    assert fri.crosses_midnight
    assert spans(fri, dt.date(2026, 6, 5)) == [("03:00Z", "07:00Z")]  # Fri 22:00 CDT
    assert spans(fri, dt.date(2026, 6, 6)) == []  # Saturday opens nothing
    # Saturday 01:00 local is inside Friday's opening; Saturday 23:00 is not
    assert current([fri], z("2026-06-06T06:00:00Z")) is not None
    assert current([fri], z("2026-06-07T04:00:00Z")) is None
    # across the spring-forward night: Sat 22:00 CST to Sun 02:00, which never shows
    sat = w("22:00", "02:00", days={5})
    assert spans(sat, dt.date(2026, 3, 7)) == [("04:00Z", "08:00Z")]


def test_whole_day_and_24_00():
    day = w("00:00", "24:00", days={6})
    assert spans(day, dt.date(2026, 6, 7)) == [("05:00Z", "05:00Z")]  # 24 h, next 05:00Z
    assert day.openings(dt.date(2026, 6, 7))[0].length == dt.timedelta(hours=24)
    assert day.openings(SPRING)[0].length == dt.timedelta(hours=23)
    assert day.openings(FALL)[0].length == dt.timedelta(hours=25)


@pytest.mark.parametrize("tz, date, start, end, expected", [
    # half-hour offset, no DST
    ("Asia/Kolkata", dt.date(2026, 3, 8), "01:00", "05:00", [("19:30Z", "23:30Z")]),
    # southern hemisphere: Sydney falls back on 2026-04-05 (03:00 AEDT -> 02:00 AEST)
    ("Australia/Sydney", dt.date(2026, 4, 5), "01:00", "05:00", [("14:00Z", "19:00Z")]),
    # Lord Howe moves by half an hour: 02:00 -> 01:30 on 2026-04-05
    ("Australia/Lord_Howe", dt.date(2026, 4, 5), "01:00", "03:00", [("14:00Z", "16:30Z")]),
    # London springs forward at 01:00 GMT
    ("Europe/London", dt.date(2026, 3, 29), "00:30", "02:30", [("00:30Z", "01:30Z")]),
    ("UTC", dt.date(2026, 3, 8), "01:00", "05:00", [("01:00Z", "05:00Z")]),
])
def test_time_zones(tz, date, start, end, expected):
    got = w(start, end, tz).openings(date)
    assert [(i.start.strftime("%H:%MZ"), i.end.strftime("%H:%MZ")) for i in got] == expected
    if tz == "Asia/Kolkata":  # 01:00 IST on 03-08 is 19:30Z on 03-07
        assert got[0].start == z("2026-03-07T19:30:00Z")


def test_current_and_next_opening_need_enough_time_left():
    sat = w("01:00", "05:00", days={5})  # Saturdays 01:00-05:00 Chicago (CDT in June)
    inside = z("2026-06-06T08:00:00Z")  # Sat 03:00 CDT: two hours left
    assert current([sat], inside) == sat.openings(dt.date(2026, 6, 6))[0]
    assert next_opening([sat], inside, dt.timedelta(hours=1)).start == z("2026-06-06T06:00Z")
    # three hours needed: this one is too short from now on, next Saturday's will do
    assert next_opening([sat], inside, dt.timedelta(hours=3)).start == z("2026-06-13T06:00Z")
    assert current([sat], z("2026-06-06T10:00:00Z")) is None  # 05:00 CDT: closed (end excluded)
    assert next_opening([sat], z("2026-06-08T12:00:00Z")).start == z("2026-06-13T06:00Z")
    # a window shorter than the run never qualifies
    assert next_opening([sat], inside, dt.timedelta(hours=5)) is None


def test_the_spring_forward_saturday_night_is_an_hour_short():
    """A Sunday 01:00-04:00 window is two real hours on the spring-forward day: a run of
    2.5 h waits for the next Sunday."""
    sun = w("01:00", "04:00", days={6})
    before = z("2026-03-08T06:00:00Z")  # Sun 00:00 CST
    assert next_opening([sun], before, dt.timedelta(hours=2)).start == z("2026-03-08T07:00Z")
    assert next_opening([sun], before, dt.timedelta(hours=2.5)).start == z("2026-03-15T06:00Z")


def test_overlapping_and_touching_windows_make_one_interval():
    a, b = w("01:00", "03:00", "UTC"), w("03:00", "05:00", "UTC")
    c = w("02:00", "04:00", "Europe/London")  # 01:00-03:00Z in June (BST)
    [iv] = [i for i in intervals([a, b, c], z("2026-06-06T00:00:00Z"), days_ahead=0)
            if i.start.date() == dt.date(2026, 6, 6)]
    assert (iv.start, iv.end) == (z("2026-06-06T01:00Z"), z("2026-06-06T05:00Z"))
    assert next_opening([a, b], z("2026-06-06T02:00Z"), dt.timedelta(hours=2, minutes=59))


def _inside_by_wall_clock(window: Window, when: dt.datetime) -> bool:
    """The definition, read straight off the wall clock."""
    local = when.astimezone(ZoneInfo(window.tz))
    minute = local.hour * 60 + local.minute
    today, yesterday = local.weekday(), (local.weekday() - 1) % 7
    if not window.crosses_midnight:
        return today in window.days and window.start <= minute < window.end
    return ((today in window.days and minute >= window.start)
            or (yesterday in window.days and minute < window.end))


@pytest.mark.parametrize("window", [
    w("01:00", "05:00", "America/Chicago", {5, 6}),
    w("01:30", "03:00", "America/Chicago"),
    w("23:00", "02:30", "Europe/London", {0, 4, 6}),
    w("00:00", "01:30", "America/New_York"),
    w("02:00", "03:00", "Australia/Lord_Howe"),
])
def test_a_year_of_instants_agrees_with_the_wall_clock(window):
    """Every 10 minutes of 2026, and a second either side of every DST transition: inside
    the computed intervals exactly when the site's wall clock shows the window."""
    start = z("2026-01-01T00:00:00Z")
    found = intervals([window], start, days_ahead=370)
    starts = [i.start for i in found]
    zone = ZoneInfo(window.tz)
    probes = [start + dt.timedelta(minutes=10 * k) for k in range(365 * 144)]
    probes += [t + dt.timedelta(seconds=s) for t in probes[::6]
               if t.astimezone(zone).utcoffset() != (t + dt.timedelta(hours=1)).astimezone(
                   zone).utcoffset() for s in (-1, 0, 1, 3599, 3600, 3601)]
    for t in probes:
        i = bisect.bisect_right(starts, t) - 1
        inside = i >= 0 and t in found[i]
        assert inside == _inside_by_wall_clock(window, t), t.isoformat()
