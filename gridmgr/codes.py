"""The shared code lists: stable English keys used in code, database and API (labels in gridmgr.glossary)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

# the bureau's local time: dates, periods and the working calendar are Beijing time (docs/domain.md §5)
TZ = ZoneInfo("Asia/Shanghai")

# These keys appear in CHECK constraints written by migrations, so they change only with a migration.
# the years a moment or period given as input may name: a case system has no use for others, and Python's
# date arithmetic (a period's end, a year on) overflows before the year 9999 is over
MIN_YEAR, MAX_YEAR = 1900, 2999
CASE_SOURCES = ("supervisor", "public", "hotline_12319", "hotline_12345", "video", "leader", "rule")
CASE_STATES = (
    "reported",
    "verified",
    "registered",
    "rejected",
    "dispatched",
    "handled",
    "checked",
    "closed",
    "returned",
    "rework",
    "suspended",
    "deferred",
)
URGENCIES = ("normal", "urgent")
CATEGORY_KINDS = ("event", "component")


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """`column IN ('a', 'b')` for a CHECK constraint."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"
