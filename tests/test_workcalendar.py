"""The working calendar: deadlines in working hours and days, working time, 超时倍数, and the shipped data."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from gridmgr.cases.workcalendar import (
    DEFAULT_FOLDER,
    HOLIDAY,
    WORKDAY,
    CalendarError,
    WorkCalendar,
    WorkingHours,
    parse_limit,
    read_file,
)

SH = ZoneInfo("Asia/Shanghai")
HOUR = 3600.0


def at(*args: int) -> datetime:
    """A moment in Beijing time: at(2026, 11, 23, 9, 30)."""
    return datetime(*args, tzinfo=SH)


@pytest.fixture(scope="module")
def cal() -> WorkCalendar:
    """The shipped calendar with the default hours 08:30–12:00, 13:30–17:30."""
    return WorkCalendar.load()


# --- limits and settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [("4h", (4.0, "h")), ("2d", (2.0, "d")), ("1.5h", (1.5, "h")), (" 15d ", (15.0, "d")), ("0.25H", (0.25, "h"))],
)
def test_parse_limit(text, expected):
    assert parse_limit(text) == expected


@pytest.mark.parametrize("bad", ["4", "h", "-1h", "0h", "0d", "4 hours", "", "4w", "1,5h", None, 4])
def test_parse_limit_names_the_bad_value(bad):
    with pytest.raises(ValueError, match="bad time limit") as err:
        parse_limit(bad)
    assert repr(bad) in str(err.value)


def test_default_working_hours_are_seven_and_a_half_hours_in_beijing():
    hours = WorkingHours()
    assert hours.per_day == timedelta(hours=7.5)
    assert hours.zone == "Asia/Shanghai"
    assert WorkingHours.from_text("08:30-12:00, 13:30-17:30") == hours


@pytest.mark.parametrize("periods", [(), ((time(12), time(9)),), ((time(8), time(12)), (time(11), time(17)))])
def test_bad_working_hours_are_refused(periods):
    with pytest.raises(ValueError):
        WorkingHours(periods)


def test_bad_working_hours_text_and_zone_are_refused():
    with pytest.raises(ValueError, match="bad working hours"):
        WorkingHours.from_text("8:30 to 12")
    with pytest.raises(ValueError, match="unknown time zone"):
        WorkingHours(zone="Asia/Nowhere")


def test_exceptions_need_a_known_kind():
    with pytest.raises(ValueError, match="2026-01-05"):
        WorkCalendar({date(2026, 1, 5): "day off"})


# --- working days ------------------------------------------------------------------------------------


def test_working_days(cal):
    assert cal.is_working_day(date(2026, 11, 23))  # an ordinary Monday
    assert not cal.is_working_day(date(2026, 11, 22))  # an ordinary Sunday
    assert not cal.is_working_day(date(2026, 10, 1))  # 国庆节
    assert cal.is_working_day(date(2026, 10, 10))  # Saturday, 调休上班
    assert cal.is_working_day(at(2026, 10, 10, 23, 0))  # a datetime counts by its Beijing date...
    assert not cal.is_working_day(datetime(2026, 10, 10, 16, 30, tzinfo=timezone.utc))  # = Sun 00:30 in Beijing


# --- deadlines in working hours ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "start, limit, due",
    [
        # inside one period, and across the lunch break
        (at(2026, 11, 23, 9, 0), "2h", at(2026, 11, 23, 11, 0)),
        (at(2026, 11, 23, 11, 0), "2h", at(2026, 11, 23, 14, 30)),
        # ending exactly at a period's end gives that end, not the next period's start
        (at(2026, 11, 23, 8, 30), "3.5h", at(2026, 11, 23, 12, 0)),
        (at(2026, 11, 23, 8, 30), "7.5h", at(2026, 11, 23, 17, 30)),
        # across a weekend: Fri 16:00 + 4h = 1.5h on Friday + 2.5h on Monday
        (at(2026, 11, 20, 16, 0), "4h", at(2026, 11, 23, 11, 0)),
        # across the National Day week: Wed 30 Sep 16:30 + 2h = 1h, then 1–7 Oct off, then Thu 8 Oct
        (at(2026, 9, 30, 16, 30), "2h", at(2026, 10, 8, 9, 30)),
        # onto a make-up working day: Fri 9 Oct 16:30 + 2h ends on Saturday 10 Oct (调休上班)
        (at(2026, 10, 9, 16, 30), "2h", at(2026, 10, 10, 9, 30)),
        # ... and over the Sunday after it
        (at(2026, 10, 10, 17, 0), "1h", at(2026, 10, 12, 9, 0)),
        # Sunday 20 Sep 2026 is a make-up working day before 中秋/国庆
        (at(2026, 9, 19, 10, 0), "1h", at(2026, 9, 20, 9, 30)),
        # start outside working hours: evening, lunch break, before work, weekend
        (at(2026, 11, 23, 19, 0), "4h", at(2026, 11, 24, 14, 0)),
        (at(2026, 11, 23, 12, 15), "1h", at(2026, 11, 23, 14, 30)),
        (at(2026, 11, 23, 7, 0), "1h", at(2026, 11, 23, 9, 30)),
        (at(2026, 11, 21, 10, 0), "1h", at(2026, 11, 23, 9, 30)),
        (at(2026, 11, 23, 17, 30), "1h", at(2026, 11, 24, 9, 30)),
        # fractional hours
        (at(2026, 11, 23, 9, 0), "1.5h", at(2026, 11, 23, 10, 30)),
        (at(2026, 11, 23, 9, 0), "0.25h", at(2026, 11, 23, 9, 15)),
        (at(2026, 11, 23, 11, 0), "2.5h", at(2026, 11, 23, 15, 0)),
        # 春节: Fri 13 Feb 17:00 + 1h -> Sat 14 Feb is 调休上班; 15–23 Feb off; 28 Feb (Sat) works again
        (at(2026, 2, 13, 17, 0), "1h", at(2026, 2, 14, 9, 0)),
        (at(2026, 2, 14, 17, 0), "1h", at(2026, 2, 24, 9, 0)),
    ],
)
def test_deadline_in_working_hours(cal, start, limit, due):
    assert cal.deadline(start, limit) == due
    assert cal.add_working_time(start, limit) == due


# --- deadlines in working days -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "start, limit, due",
    [
        # inside working hours: the same clock time N working days later
        (at(2026, 11, 23, 10, 0), "1d", at(2026, 11, 24, 10, 0)),
        (at(2026, 11, 23, 10, 0), "2d", at(2026, 11, 25, 10, 0)),
        (at(2026, 11, 27, 15, 0), "1d", at(2026, 11, 30, 15, 0)),  # Fri -> Mon
        (at(2026, 9, 30, 10, 0), "2d", at(2026, 10, 9, 10, 0)),  # over National Day
        (at(2026, 10, 9, 10, 0), "1d", at(2026, 10, 10, 10, 0)),  # onto the Saturday make-up day
        (at(2026, 9, 28, 9, 0), "15d", at(2026, 10, 23, 9, 0)),  # 0101 私搭乱建 handle limit
        # outside working hours: the end of working hours of the N-th working day
        (at(2026, 11, 23, 19, 0), "1d", at(2026, 11, 24, 17, 30)),  # evening
        (at(2026, 11, 23, 7, 0), "1d", at(2026, 11, 23, 17, 30)),  # before work: that day counts
        (at(2026, 11, 23, 8, 30), "1d", at(2026, 11, 23, 17, 30)),  # at 08:30 sharp, likewise
        (at(2026, 11, 21, 10, 0), "1d", at(2026, 11, 23, 17, 30)),  # Saturday
        (at(2026, 10, 3, 10, 0), "2d", at(2026, 10, 9, 17, 30)),  # a holiday
        # the lunch break: the end of the morning N working days later
        (at(2026, 11, 23, 12, 30), "1d", at(2026, 11, 24, 12, 0)),
        # fractional days are that share of a 7.5-hour day
        (at(2026, 11, 23, 8, 30), "0.5d", at(2026, 11, 23, 13, 45)),
        (at(2026, 11, 23, 10, 0), "1.5d", at(2026, 11, 24, 15, 15)),
    ],
)
def test_deadline_in_working_days(cal, start, limit, due):
    assert cal.deadline(start, limit) == due


@pytest.mark.parametrize(
    "start", [at(2026, 11, 23, 10, 0), at(2026, 11, 23, 19, 0), at(2026, 9, 30, 12, 45), at(2026, 10, 9, 16, 59)]
)
def test_one_working_day_is_seven_and_a_half_working_hours(cal, start):
    assert cal.deadline(start, "1d") == cal.deadline(start, "7.5h")
    assert cal.deadline(start, "3d") == cal.deadline(start, "22.5h")


def test_deadline_keeps_the_moment_and_answers_in_beijing_time(cal):
    due = cal.deadline(datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc), "1h")  # 09:00 in Beijing
    assert due == datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
    assert due.utcoffset() == timedelta(hours=8)


def test_custom_hours_change_the_length_of_a_day():
    cal = WorkCalendar({}, WorkingHours(((time(9), time(17)),)))
    assert cal.deadline(at(2026, 11, 23, 10, 0), "1d") == at(2026, 11, 24, 10, 0)
    assert cal.deadline(at(2026, 11, 23, 9, 0), "1d") == at(2026, 11, 23, 17, 0)
    assert cal.deadline(at(2026, 11, 23, 16, 0), "2h") == at(2026, 11, 24, 10, 0)
    assert cal.working_seconds_between(at(2026, 11, 23, 0, 0), at(2026, 11, 24, 0, 0)) == 8 * HOUR


# --- working time between two moments ----------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, hours",
    [
        (at(2026, 11, 23, 9, 0), at(2026, 11, 23, 9, 0), 0),
        (at(2026, 11, 23, 9, 0), at(2026, 11, 23, 10, 0), 1),
        (at(2026, 11, 23, 11, 0), at(2026, 11, 23, 14, 0), 1.5),  # the lunch break is not counted
        (at(2026, 11, 23, 0, 0), at(2026, 11, 24, 0, 0), 7.5),  # a whole working day
        (at(2026, 11, 20, 17, 0), at(2026, 11, 23, 9, 0), 1),  # Fri 17:00 -> Mon 09:00
        (at(2026, 10, 1, 0, 0), at(2026, 10, 8, 0, 0), 0),  # the National Day week
        (at(2026, 10, 9, 17, 0), at(2026, 10, 12, 9, 0), 8.5),  # 0.5 Fri + 7.5 Sat (调休) + 0.5 Mon
        (at(2026, 11, 21, 8, 0), at(2026, 11, 22, 20, 0), 0),  # an ordinary weekend
    ],
)
def test_working_seconds_between(cal, a, b, hours):
    assert cal.working_seconds_between(a, b) == hours * HOUR
    assert cal.working_seconds_between(b, a) == -hours * HOUR


def test_working_seconds_add_up(cal):
    a, b, c = at(2026, 9, 29, 10, 0), at(2026, 10, 8, 15, 0), at(2026, 10, 12, 11, 0)
    assert cal.working_seconds_between(a, b) + cal.working_seconds_between(b, c) == cal.working_seconds_between(a, c)


@pytest.mark.parametrize(
    "start, limit",
    [
        (at(2026, 11, 23, 10, 0), "4h"),
        (at(2026, 9, 30, 16, 30), "2d"),
        (at(2026, 11, 21, 10, 0), "1.5h"),
        (at(2026, 9, 28, 9, 0), "15d"),
    ],
)
def test_the_time_to_a_deadline_is_the_limit(cal, start, limit):
    amount, unit = parse_limit(limit)
    expected = amount * (HOUR if unit == "h" else 7.5 * HOUR)
    assert cal.working_seconds_between(start, cal.deadline(start, limit)) == expected


# --- overdue and 超时倍数 -----------------------------------------------------------------------------


def test_overdue_only_after_the_deadline():
    due = at(2026, 11, 23, 14, 30)
    assert not WorkCalendar.overdue(due, at(2026, 11, 23, 14, 29))
    assert not WorkCalendar.overdue(due, due)
    assert WorkCalendar.overdue(due, at(2026, 11, 23, 14, 31))
    assert WorkCalendar.overdue(due, datetime(2026, 11, 23, 6, 31, tzinfo=timezone.utc))  # 14:31 in Beijing


def test_overtime_ratio(cal):
    start = at(2026, 11, 23, 9, 0)
    due = cal.deadline(start, "4h")
    assert due == at(2026, 11, 23, 14, 30)
    assert cal.overtime_ratio(start, due, at(2026, 11, 23, 11, 0)) == 0.5  # on time
    assert cal.overtime_ratio(start, due, due) == 1.0
    assert cal.overtime_ratio(start, due, at(2026, 11, 23, 16, 30)) == 1.5  # 6h used of 4h: 50% over
    assert cal.overtime_ratio(start, due, at(2026, 11, 24, 9, 0)) == 7.5 / 4  # late
    # the weekend does not make a late case later
    friday = at(2026, 11, 20, 9, 0)
    friday_due = cal.deadline(friday, "4h")
    assert (
        cal.overtime_ratio(friday, friday_due, at(2026, 11, 22, 12, 0))
        == 7 / 4
        == cal.overtime_ratio(friday, friday_due, at(2026, 11, 20, 17, 30))
    )


def test_overtime_ratio_refuses_nonsense(cal):
    start = at(2026, 11, 23, 9, 0)
    with pytest.raises(ValueError, match="no working time"):
        cal.overtime_ratio(start, at(2026, 11, 22, 9, 0), start)
    with pytest.raises(ValueError, match="before start"):
        cal.overtime_ratio(start, at(2026, 11, 23, 12, 0), at(2026, 11, 23, 8, 0))


def test_naive_datetimes_are_refused(cal):
    naive, aware = datetime(2026, 11, 23, 9, 0), at(2026, 11, 23, 9, 0)
    for call in (
        lambda: cal.deadline(naive, "1h"),
        lambda: cal.add_working_time(naive, "1d"),
        lambda: cal.working_seconds_between(naive, aware),
        lambda: cal.working_seconds_between(aware, naive),
        lambda: cal.overdue(naive, aware),
        lambda: cal.overdue(aware, naive),
        lambda: cal.overtime_ratio(aware, aware + timedelta(hours=1), naive),
    ):
        with pytest.raises(ValueError, match="timezone-aware"):
            call()


# --- the shipped data --------------------------------------------------------------------------------


def _rows(path):
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = [r for r in csv.reader(fh) if r and not r[0].startswith("#")]
    assert rows[0] == ["date", "kind", "name"]
    return rows[1:]


SHIPPED = sorted(DEFAULT_FOLDER.glob("CN-*.csv"))


def test_both_years_are_shipped():
    assert [p.name for p in SHIPPED] == ["CN-2026.csv", "CN-2027.csv"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_file_is_clean(path):
    year = int(path.stem.split("-")[1])
    rows = _rows(path)
    days = [date.fromisoformat(r[0]) for r in rows]
    assert all(d.year == year for d in days)
    assert not [d for d, n in Counter(days).items() if n > 1]
    assert {r[1] for r in rows} <= {HOLIDAY, WORKDAY}
    assert all(date.fromisoformat(r[0]).weekday() >= 5 for r in rows if r[1] == WORKDAY)
    assert all(r[2].strip() for r in rows)
    assert len(read_file(path)) == len(rows)


def test_2026_agrees_with_the_state_council_notice(cal):
    # 国务院办公厅关于2026年部分节假日安排的通知, 2025-11-04, https://www.gov.cn/zhengce/content/202511/content_7047090.htm
    off = [
        date(2026, 1, 2),
        date(2026, 2, 16),
        date(2026, 2, 23),
        date(2026, 4, 6),
        date(2026, 5, 5),
        date(2026, 6, 19),
        date(2026, 9, 25),
        date(2026, 10, 7),
    ]
    made_up = [
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    ]
    assert not any(cal.is_working_day(d) for d in off)
    assert all(cal.is_working_day(d) for d in made_up)
    assert cal.is_working_day(date(2026, 2, 24)) and cal.is_working_day(date(2026, 10, 8))  # first days back
    kinds = Counter(kind for d, kind in cal.exceptions.items() if d.year == 2026)
    assert kinds == {HOLIDAY: 3 + 9 + 3 + 5 + 3 + 3 + 7, WORKDAY: 6}


def test_2027_holds_at_least_the_statutory_days(cal):
    # 全国年节及纪念日放假办法 (2024 revision): 元旦, 春节 除夕–初三, 清明, 劳动节 1–2 May, 端午, 中秋, 国庆 1–3 Oct.
    statutory = [
        date(2027, 1, 1),
        date(2027, 2, 5),
        date(2027, 2, 6),
        date(2027, 2, 7),
        date(2027, 2, 8),
        date(2027, 4, 5),
        date(2027, 5, 1),
        date(2027, 5, 2),
        date(2027, 6, 9),
        date(2027, 9, 15),
        date(2027, 10, 1),
        date(2027, 10, 2),
        date(2027, 10, 3),
    ]
    assert all(cal.exceptions.get(d) == HOLIDAY for d in statutory)


# --- loading a city's own files ----------------------------------------------------------------------


def _write(folder, name, body):
    (folder / name).write_text(body, encoding="utf-8")


def test_load_reads_only_the_country_asked_for(tmp_path):
    _write(tmp_path, "CN-2028.csv", "# a city's own year\ndate,kind,name\n2028-01-03,holiday,元旦\n")
    _write(tmp_path, "XX-2028.csv", "date,kind,name\n2028-01-04,holiday,other\n")
    _write(tmp_path, "notes.csv", "anything")
    cal = WorkCalendar.load(tmp_path)
    assert cal.exceptions == {date(2028, 1, 3): HOLIDAY}
    assert WorkCalendar.load(tmp_path, country="XX").exceptions == {date(2028, 1, 4): HOLIDAY}


@pytest.mark.parametrize(
    "body, message",
    [
        ("day,kind,name\n2028-01-03,holiday,x\n", "header"),
        ("date,kind,name\n2028-13-03,holiday,x\n", "line 2: '2028-13-03' is not a date"),
        ("date,kind,name\n2027-12-31,holiday,x\n", "line 2: 2027-12-31 is not in 2028"),
        ("date,kind,name\n2028-01-03,off,x\n", "line 2: kind 'off'"),
        ("date,kind,name\n2028-01-03,workday,x\n", "line 2: 2028-01-03 is a weekday"),
        ("date,kind,name\n2028-01-03,holiday,x\n# note\n2028-01-03,holiday,y\n", "line 4: 2028-01-03 is listed twice"),
        ("date,kind,name\n2028-01-03,holiday\n", "expected 3 fields"),
    ],
)
def test_load_names_the_file_and_line_of_a_problem(tmp_path, body, message):
    _write(tmp_path, "CN-2028.csv", body)
    with pytest.raises(CalendarError, match="CN-2028.csv") as err:
        WorkCalendar.load(tmp_path)
    assert message in str(err.value)


def test_load_needs_a_file(tmp_path):
    with pytest.raises(ValueError, match="no calendar file CN-<year>.csv"):
        WorkCalendar.load(tmp_path)
