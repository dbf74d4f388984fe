"""The shared code lists: stable English keys used in code, database and API (labels in gridmgr.glossary)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

# the bureau's local time: dates, periods and the working calendar are Beijing time (docs/domain.md §5)
TZ = ZoneInfo("Asia/Shanghai")

# These keys appear in CHECK constraints written by migrations, so they change only with a migration.
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
PARKING_STATUSES = ("draft", "submitted", "approved", "painted", "retired")
PARKING_ANGLES = ("parallel", "perpendicular", "angled_30", "angled_45", "angled_60")
STREET_SIDES = ("north", "south", "east", "west", "both")
SPACE_TYPES = ("standard", "disabled", "ev_charging", "loading", "motorcycle")
SITE_STATUSES = ("planned", "active", "suspended", "finished")
# 六个百分之百: the six dust-control items of a construction site
DUST_ITEMS = ("hoarding", "covering", "washing", "hardening", "wet_work", "closed_transport")
BILLBOARD_STATUSES = ("permitted", "unpermitted", "removed")
BILLBOARD_TYPES = ("wall", "rooftop", "pole", "led_screen", "hoarding", "light_box", "neon", "other")
BILLBOARD_CARRIERS = ("building", "ground", "municipal_facility", "shelter", "other")


def sql_in(column: str, values: tuple[str, ...]) -> str:
    """`column IN ('a', 'b')` for a CHECK constraint."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"
