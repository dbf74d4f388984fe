"""Case list queries from request parameters: filters, periods, sorting and pages (CaseFilter, Page, parse_*)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gridmgr.codes import CASE_STATES, MAX_YEAR, MIN_YEAR, TZ
from gridmgr.errors import InputError

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
# sort keys a caller may ask for; the case id breaks ties so pages never overlap
SORTS = {
    "reported_at": "f.reported_at ASC, f.id ASC",
    "-reported_at": "f.reported_at DESC, f.id DESC",
    "deadline": "f.deadline ASC NULLS LAST, f.id ASC",
    "-deadline": "f.deadline DESC NULLS LAST, f.id DESC",
    "case_no": "f.case_no ASC, f.id ASC",
    "-case_no": "f.case_no DESC, f.id DESC",
}
DEFAULT_SORT = "-reported_at"
# the query parameters `parse_filter` reads, with their help text (the OpenAPI document says the same)
FILTER_PARAMS = {
    "status": "state keys, comma-separated (reported, verified, registered, …)",
    "category": "category codes, comma-separated (0102, C0101, …)",
    "cell": "15-digit cell codes, comma-separated",
    "street": "9-digit street codes, comma-separated",
    "unit": "responsible unit codes, comma-separated",
    "case_no": "case numbers, comma-separated",
    "period": "reported in: 2026, 2026-10, 2026-10-13, or FROM/TO (dates inclusive, or ISO datetimes)",
    "overdue": "true: only overdue cases; false: only cases not overdue",
    "bbox": "lon_min,lat_min,lon_max,lat_max (WGS84)",
    "sort": f"one of {', '.join(SORTS)} (default {DEFAULT_SORT})",
}


@dataclass(frozen=True)
class CaseFilter:
    """Which cases to list; empty fields do not filter. `period` is half-open: [start, end)."""

    statuses: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    cells: tuple[str, ...] = ()
    streets: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    case_nos: tuple[str, ...] = ()
    period: tuple[datetime | None, datetime | None] = (None, None)
    overdue: bool | None = None
    bbox: tuple[float, float, float, float] | None = None


@dataclass
class Page:
    """One page of a listing: its items, the total over all pages, and where it is."""

    items: list[dict]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        """How many pages the listing has (at least 1)."""
        return max(1, math.ceil(self.total / self.page_size))

    def as_dict(self) -> dict:
        """The page as plain data: items, total, page, page_size, pages."""
        return {
            "items": self.items,
            "total": self.total,
            "page": self.page,
            "page_size": self.page_size,
            "pages": self.pages,
        }


# ---------------------------------------------------------------- parsing query values


def split_values(args: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """A list parameter given comma-separated, repeated (a MultiDict's getlist), or both; blanks dropped."""
    raw = args.getlist(name) if hasattr(args, "getlist") else [args.get(name)]
    return tuple(v.strip() for r in raw if r is not None for v in str(r).split(",") if v.strip())


def _codes(args: Mapping[str, Any], name: str, pattern: str, what: str) -> tuple[str, ...]:
    values = split_values(args, name)
    bad = [v for v in values if not re.fullmatch(pattern, v)]
    if bad:
        raise InputError(f"{', '.join(repr(b) for b in bad)} is not {what}", field=name)
    return values


def parse_bool(value: Any, name: str) -> bool | None:
    """'true'/'false' (also 1/0, yes/no) → bool; empty → None."""
    if value is None or str(value).strip() == "":
        return None
    v = str(value).strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no"):
        return False
    raise InputError(f"{value!r} is neither true nor false", field=name)


def parse_float(value: str, name: str) -> float:
    """A finite number from a request value; InputError naming the parameter when empty or not a number."""
    raw = (value or "").strip()
    if not raw:
        raise InputError("is required", field=name)
    try:
        number = float(raw)
    except ValueError:
        raise InputError(f"{raw!r} is not a number", field=name) from None
    if not math.isfinite(number):
        raise InputError(f"{raw!r} is not a number", field=name)
    return number


# PostgreSQL takes offsets up to ±15:59 (Python up to ±23:59)
MAX_OFFSET = timedelta(hours=15, minutes=59)
MAX_PAGE = 1_000_000  # page × page_size stays far inside a bigint OFFSET


def _in_years(moment: datetime, value: str, name: str) -> datetime:
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise InputError(f"{value!r}: the year is outside {MIN_YEAR}…{MAX_YEAR}", field=name)
    return moment


def parse_datetime(value: str, name: str, tz: ZoneInfo = TZ) -> datetime:
    """An ISO 8601 date or datetime (local time `tz` when it names no offset; a trailing Z is UTC)."""
    v = value.strip()
    try:
        moment = datetime.fromisoformat(v[:-1] + "+00:00" if v.endswith(("Z", "z")) else v)
    except ValueError:
        raise InputError(
            f"{value!r} is not an ISO 8601 date or datetime such as 2026-10-13T09:00:00+08:00", field=name
        ) from None
    offset = moment.utcoffset()
    if offset is not None and abs(offset) > MAX_OFFSET:
        raise InputError(f"{value!r}: a time-zone offset is at most ±15:59", field=name)
    return _in_years(moment if offset is not None else moment.replace(tzinfo=tz), value, name)


def parse_period(value: str, name: str = "period", tz: ZoneInfo = TZ) -> tuple[datetime, datetime]:
    """'2026', '2026-10', '2026-10-13' or 'FROM/TO' → [start, end); a date as TO includes that whole day."""
    v = value.strip()
    if "/" in v:
        a, b = (p.strip() for p in v.split("/", 1))
        start = parse_datetime(a, name, tz)
        end = parse_datetime(b, name, tz)
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", b):
            end += timedelta(days=1)
        if end <= start:
            raise InputError(f"{value!r}: the end is not after the start", field=name)
        return start, end
    if re.fullmatch(r"[0-9]{4}", v):
        y = _in_years(datetime(max(int(v), 1), 1, 1, tzinfo=tz), value, name).year
        return datetime(y, 1, 1, tzinfo=tz), datetime(y + 1, 1, 1, tzinfo=tz)
    m = re.fullmatch(r"([0-9]{4})-([0-9]{2})", v)
    if m and 1 <= int(m[2]) <= 12:
        y, mo = _in_years(datetime(max(int(m[1]), 1), 1, 1, tzinfo=tz), value, name).year, int(m[2])
        return datetime(y, mo, 1, tzinfo=tz), datetime(y + mo // 12, mo % 12 + 1, 1, tzinfo=tz)
    try:
        day = date.fromisoformat(v)
    except ValueError:
        raise InputError(f"{value!r} is not a period: use 2026, 2026-10, 2026-10-13 or FROM/TO", field=name) from None
    start = _in_years(datetime(day.year, day.month, day.day, tzinfo=tz), value, name)
    return start, start + timedelta(days=1)


def parse_bbox(value: str, name: str = "bbox") -> tuple[float, float, float, float]:
    """'lon_min,lat_min,lon_max,lat_max' → four floats, min before max."""
    try:
        box = tuple(float(p) for p in value.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or not all(math.isfinite(b) for b in box):
        raise InputError(f"{value!r} is not lon_min,lat_min,lon_max,lat_max", field=name)
    if not (box[0] <= box[2] and box[1] <= box[3]):
        raise InputError(f"{value!r}: the minimum comes before the maximum", field=name)
    if not (-180 <= box[0] <= 180 and -180 <= box[2] <= 180 and -90 <= box[1] <= 90 and -90 <= box[3] <= 90):
        raise InputError(f"{value!r} is outside WGS84 longitude/latitude", field=name)
    return box


def parse_filter(args: Mapping[str, Any]) -> CaseFilter:
    """A CaseFilter from query-string values (see FILTER_PARAMS); bad values raise InputError naming the field."""
    statuses = split_values(args, "status")
    unknown = [s for s in statuses if s not in CASE_STATES]
    if unknown:
        raise InputError(
            f"unknown state {', '.join(map(repr, unknown))}; known: {', '.join(CASE_STATES)}", field="status"
        )
    period: tuple[datetime | None, datetime | None] = (None, None)
    if (args.get("period") or "").strip():
        period = parse_period(args["period"])
    bbox = parse_bbox(args["bbox"]) if (args.get("bbox") or "").strip() else None
    return CaseFilter(
        statuses=statuses,
        categories=_codes(args, "category", r"C?[0-9]{4}", "a category code such as 0102 or C0101"),
        cells=_codes(args, "cell", r"[0-9]{15}", "a 15-digit cell code"),
        streets=_codes(args, "street", r"[0-9]{9}", "a 9-digit street code"),
        units=split_values(args, "unit"),
        case_nos=split_values(args, "case_no"),
        period=period,
        overdue=parse_bool(args.get("overdue"), "overdue"),
        bbox=bbox,
    )


def _int(value: Any, name: str, default: int, low: int, high: int | None = None) -> int:
    if value is None or str(value).strip() == "":
        return default
    try:
        n = int(str(value).strip())
    except ValueError:
        raise InputError(f"{value!r} is not a whole number", field=name) from None
    if n < low or (high is not None and n > high):
        raise InputError(f"{n} is outside {low}…{high if high is not None else '∞'}", field=name)
    return n


def parse_page(
    args: Mapping[str, Any], default_size: int = DEFAULT_PAGE_SIZE, max_size: int = MAX_PAGE_SIZE
) -> tuple[int, int]:
    """(page, page_size) from `page` (1-based) and `page_size` query values."""
    return (
        _int(args.get("page"), "page", 1, 1, MAX_PAGE),
        _int(args.get("page_size"), "page_size", default_size, 1, max_size),
    )
