"""The working calendar (工作日历): working days, working hours, case deadlines and 超时倍数.

Pure functions of their arguments: no database, no clock ("now" is always passed in). Time limits are
written `<n>h` (working hours 工作时) or `<n>d` (working days 工作日), as in data/categories.csv.

Deadline rule. Both units are amounts of *working time*: `Nh` is N hours and `Nd` is N times the working
hours of one day (7.5 h by default), counted only inside the working periods of working days, from `start`.
So a case registered inside working hours gets the same clock time N working days later (Mon 10:00 + 2d =
Wed 10:00); one registered after work, on a day off or before work (08:30 sharp included) gets the end of
working hours of the N-th working day, counting the start day when work has not begun (Mon 19:00 + 1d =
Tue 17:30; Mon 07:00 + 1d = Mon 17:30); one registered in the lunch break gets the end of the morning
(Mon 12:30 + 1d = Tue 12:00). Why one model rather than "end of the N-th
working day": deadlines never jump (a minute later in, at most a minute later due), 1d is exactly 7.5h, and
overtime_ratio measures `d` and `h` limits alike. A deadline reached exactly at the end of a period is that
end (17:30), not the start of the next period.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gridmgr.errors import InputError
from gridmgr.paths import DATA

DEFAULT_FOLDER = DATA / "calendar"
HOLIDAY, WORKDAY = "holiday", "workday"
HEADER = ["date", "kind", "name"]
_LIMIT = re.compile(r"([0-9]+(?:\.[0-9]+)?)([hd])")
_FILE = re.compile(r"(?P<country>[A-Za-z]+)-(?P<year>[0-9]{4})\.csv")
# No case limit spans ten years; past that the calendar has no working days, so stop rather than loop.
_HORIZON_DAYS = 3660


class CalendarError(InputError, ValueError):
    """A bad time limit, working-hours setting or calendar file (also a ValueError for plain callers)."""


def parse_limit(limit: str) -> tuple[float, str]:
    """Split a time limit such as '4h', '2d' or '1.5h' into (amount, unit)."""
    match = _LIMIT.fullmatch(limit.strip().lower()) if isinstance(limit, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise CalendarError(
            f"bad time limit {limit!r}: expected a positive <n>h (working hours) "
            f"or <n>d (working days), e.g. '4h', '2d', '1.5h'"
        )
    return float(match.group(1)), match.group(2)


def _aware(name: str, moment: datetime) -> datetime:
    """Return `moment` if it is a timezone-aware datetime, else raise ValueError naming the argument."""
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment!r}")
    return moment


@dataclass(frozen=True)
class WorkingHours:
    """The working periods of every working day, in local time of one time zone."""

    periods: tuple[tuple[time, time], ...] = ((time(8, 30), time(12, 0)), (time(13, 30), time(17, 30)))
    zone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if not self.periods:
            raise CalendarError("working hours need at least one period")
        previous_end = None
        for start, end in self.periods:
            if start.tzinfo or end.tzinfo or not start < end:
                raise CalendarError(f"bad working period {start}–{end}: need local times, start before end")
            if previous_end is not None and start < previous_end:
                raise CalendarError(f"working period {start}–{end} overlaps or precedes the one before it")
            previous_end = end
        try:
            ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CalendarError(f"unknown time zone {self.zone!r}") from None

    @classmethod
    def from_text(cls, text: str, zone: str = "Asia/Shanghai") -> WorkingHours:
        """Build from a setting such as '08:30-12:00,13:30-17:30'."""
        try:
            periods = tuple(tuple(time.fromisoformat(t.strip()) for t in part.split("-")) for part in text.split(","))
        except ValueError:
            periods = ()
        if not periods or any(len(p) != 2 for p in periods):
            raise CalendarError(f"bad working hours {text!r}: expected e.g. '08:30-12:00,13:30-17:30'")
        return cls(periods, zone)  # type: ignore[arg-type]

    @property
    def tz(self) -> ZoneInfo:
        """The time zone the periods are read in."""
        return ZoneInfo(self.zone)

    @property
    def per_day(self) -> timedelta:
        """Working time in one working day (7.5 h by default): the length of `1d`."""
        today = date(2000, 1, 1)
        return sum((datetime.combine(today, e) - datetime.combine(today, s) for s, e in self.periods), timedelta(0))


def read_file(path: Path | str) -> dict[date, tuple[str, str]]:
    """Read one <country>-<year>.csv into {date: (kind, name)}; every problem names the file and line."""
    path = Path(path)
    named = _FILE.fullmatch(path.name)
    if named is None:
        raise CalendarError(f"{path.name}: a calendar file is named <country>-<year>.csv, e.g. CN-2026.csv")
    year, days = int(named["year"]), {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        rows = ((reader.line_num, row) for row in reader if row and not row[0].lstrip().startswith("#"))
        first = next(rows, None)
        if first is None or [c.strip() for c in first[1]] != HEADER:
            raise CalendarError(f"{path.name}: the first row must be the header {','.join(HEADER)}")
        for line, row in rows:
            where = f"{path.name} line {line}"
            if len(row) != 3:
                raise CalendarError(f"{where}: expected 3 fields (date,kind,name), got {len(row)}")
            raw, kind, name = (c.strip() for c in row)
            try:
                day = date.fromisoformat(raw)
            except ValueError:
                raise CalendarError(f"{where}: {raw!r} is not a date YYYY-MM-DD") from None
            if day.year != year:
                raise CalendarError(f"{where}: {day} is not in {year}; it belongs in the file of its own year")
            if kind not in (HOLIDAY, WORKDAY):
                raise CalendarError(f"{where}: kind {kind!r} is neither {HOLIDAY!r} nor {WORKDAY!r}")
            if kind == WORKDAY and day.weekday() < 5:
                raise CalendarError(f"{where}: {day} is a weekday; a make-up workday falls on a weekend")
            if day in days:
                raise CalendarError(f"{where}: {day} is listed twice")
            days[day] = (kind, name)
    return days


class WorkCalendar:
    """Working days (Mon–Fri plus exceptions) and working hours; deadlines and working time between moments."""

    def __init__(self, exceptions: dict[date, str], hours: WorkingHours = WorkingHours()):
        bad = sorted(str(d) for d, kind in exceptions.items() if kind not in (HOLIDAY, WORKDAY))
        if bad:
            raise CalendarError(f"exception kinds must be {HOLIDAY!r} or {WORKDAY!r}; bad on {', '.join(bad)}")
        # read-only: the working periods of each day are remembered (a year of demo histories asks for
        # the same few hundred days about a million times), so the rules must not change underneath
        self.exceptions = MappingProxyType(dict(exceptions))
        self.hours = hours
        self._tz = hours.tz
        self._per_day = hours.per_day
        self._periods_of: dict[date, list[tuple[datetime, datetime]]] = {}

    @classmethod
    def load(
        cls, folder: Path | str = DEFAULT_FOLDER, country: str = "CN", hours: WorkingHours = WorkingHours()
    ) -> WorkCalendar:
        """Read every <country>-<year>.csv of `folder` (years without a file are plain Mon–Fri weeks)."""
        folder = Path(folder)
        files = sorted(p for p in folder.glob(f"{country}-*.csv") if _FILE.fullmatch(p.name))
        if not files:
            raise CalendarError(f"no calendar file {country}-<year>.csv in {folder}")
        exceptions: dict[date, str] = {}
        for path in files:
            # Dates are checked against their file's year, so two files can never list the same date.
            exceptions.update((d, kind) for d, (kind, _name) in read_file(path).items())
        return cls(exceptions, hours)

    def is_working_day(self, day: date) -> bool:
        """Whether `day` is a working day (a datetime counts by its local date)."""
        if isinstance(day, datetime):
            day = _aware("day", day).astimezone(self._tz).date()
        kind = self.exceptions.get(day)
        return kind == WORKDAY if kind else day.weekday() < 5

    def _periods(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working periods of `day` as UTC moments; none on a day off."""
        periods = self._periods_of.get(day)
        if periods is None:
            # UTC bounds: subtracting them gives elapsed time even in a zone with daylight saving.
            periods = self._periods_of[day] = (
                [
                    (
                        datetime.combine(day, s, self._tz).astimezone(timezone.utc),
                        datetime.combine(day, e, self._tz).astimezone(timezone.utc),
                    )
                    for s, e in self.hours.periods
                ]
                if self.is_working_day(day)
                else []
            )
        return periods

    def add_working_time(self, start: datetime, limit: str) -> datetime:
        """The moment `limit` ('4h', '2d', '1.5h') of working time after `start`, in the calendar's zone."""
        amount, unit = parse_limit(limit)
        # timedelta arithmetic is exact to the microsecond, so long limits never drift past a period end.
        need = timedelta(hours=amount) if unit == "h" else self._per_day * amount
        cursor = _aware("start", start).astimezone(timezone.utc)
        day = start.astimezone(self._tz).date()
        for _ in range(_HORIZON_DAYS):
            for begin, end in self._periods(day):
                if end <= cursor:
                    continue
                begin = max(begin, cursor)
                if begin + need <= end:
                    return (begin + need).astimezone(self._tz)
                need -= end - begin
            day += timedelta(days=1)
        raise CalendarError(
            f"time limit {limit!r} from {start} runs past {_HORIZON_DAYS} days: "
            f"too long, or a calendar with no working days"
        )

    def deadline(self, start: datetime, limit: str) -> datetime:
        """The deadline of a step that starts at `start` with time limit `limit` (see the module's rule)."""
        return self.add_working_time(start, limit)

    def working_seconds_between(self, a: datetime, b: datetime) -> float:
        """Working seconds from `a` to `b`; negative when `b` is before `a`."""
        ua, ub = _aware("a", a).astimezone(timezone.utc), _aware("b", b).astimezone(timezone.utc)
        if ub < ua:
            return -self.working_seconds_between(b, a)
        total, day, last = timedelta(0), a.astimezone(self._tz).date(), b.astimezone(self._tz).date()
        while day <= last:
            for begin, end in self._periods(day):
                low, high = max(begin, ua), min(end, ub)
                if high > low:
                    total += high - low
            day += timedelta(days=1)
        return total.total_seconds()

    @staticmethod
    def overdue(deadline: datetime, now: datetime) -> bool:
        """Whether the deadline has passed at `now` (超期 starts after the deadline, not at it)."""
        return _aware("now", now) > _aware("deadline", deadline)

    def overtime_ratio(self, start: datetime, deadline: datetime, end_or_now: datetime) -> float:
        """超时倍数: working time used / working time allowed (below 1 on time, 1.5 = 50% over)."""
        if _aware("end_or_now", end_or_now) < _aware("start", start):
            raise ValueError(f"end_or_now {end_or_now} is before start {start}")
        allowed = self.working_seconds_between(start, deadline)
        if allowed <= 0:
            raise ValueError(f"deadline {deadline} leaves no working time after start {start}")
        return self.working_seconds_between(start, end_or_now) / allowed
