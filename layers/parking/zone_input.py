"""A parking zone as the planner's page sends it: parsed and checked field by field, or refused by a named rule."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import shapely
from shapely.geometry import shape
from sqlalchemy.engine import Connection

from gridmgr.errors import GridmgrError, InputError
from gridmgr.geo import crs as crsmod
from gridmgr.grid.regions import city_extent
from gridmgr.plugins import registry

LAYER = "parking_zones"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EDITABLE = (
    "zone_no",
    "name",
    "street_name",
    "street_side",
    "parking_angle",
    "capacity",
    "capacity_reason",
    "fee_rule",
    "time_rules",
    "valid_from",
    "valid_to",
)
BODY_KEYS = frozenset({*EDITABLE, "geometry", "confirm_construction", "note"})
_HHMM = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")


# ---------------------------------------------------------------- refusals


@dataclass
class Problem:
    """One broken rule: its key, a message that names it, and the features in the way."""

    rule: str
    message: str
    status: int = 400
    conflicts: list[dict] = field(default_factory=list)


class Refusal(GridmgrError):
    """A zone refused by one or more rules; `problems` lists them (the first gives `rule`)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        self.status = max(p.status for p in problems)
        super().__init__("\n".join(p.message for p in problems))

    @property
    def rule(self) -> str:
        return self.problems[0].rule

    def as_dict(self) -> dict:
        """The JSON error body: status, message, rule, rules and conflicts."""
        return {
            "status": self.status,
            "message": self.message,
            "rule": self.rule,
            "rules": [p.rule for p in self.problems],
            "conflicts": [c for p in self.problems for c in p.conflicts],
        }


class NeedsConfirmation(Refusal):
    """Warnings the planner must confirm (send `confirm_construction: true`) before the zone is saved."""

    def as_dict(self) -> dict:
        return {**super().as_dict(), "needs_confirmation": True}


def refuse(rule: str, message: str, status: int = 400, conflicts: list[dict] | None = None) -> Refusal:
    """A Refusal of one rule, its message prefixed with the rule's key (规则 … Rule …)."""
    return Refusal([Problem(rule, f"[{rule}] {message}", status, conflicts or [])])


# ---------------------------------------------------------------- input


def zone_fields() -> dict:
    return {f.name: f for f in registry.get(LAYER).fields}


def parse_geometry(value: Any, extent: crsmod.Extent) -> shapely.Geometry:
    """A GeoJSON geometry (or Feature, as Leaflet's toGeoJSON gives) → a 2-D LineString or Polygon."""
    if isinstance(value, dict) and value.get("type") == "Feature":
        value = value.get("geometry")
    try:
        g = shape(value)
    except Exception:  # noqa: BLE001 - shapely raises several kinds for bad GeoJSON; all mean the same here
        raise refuse(
            "geometry_type",
            "几何不是可读的 GeoJSON。The geometry is not readable GeoJSON "
            "(a LineString for a kerb, a Polygon for a lot).",
        ) from None
    if g.geom_type in ("MultiLineString", "MultiPolygon") and len(g.geoms) == 1:
        g = g.geoms[0]
    if g.geom_type not in ("LineString", "Polygon"):
        raise refuse(
            "geometry_type",
            f"停车区应为路缘线或停车场多边形，收到 {g.geom_type}。A parking zone is a kerb "
            f"line (LineString) or a lot (Polygon), not a {g.geom_type}.",
        )
    if g.is_empty:
        raise refuse("geometry_type", "几何为空。The geometry is empty.")
    g = shapely.force_2d(g)
    xs, ys = shapely.get_coordinates(g).T
    bad = crsmod.bad_points(xs, ys, extent)
    if bad:
        raise refuse("geometry_valid", f"坐标超出城市范围。A coordinate is outside the city: {bad[0][1]}")
    return g


def _time_rules(value: Any) -> str | None:
    """Time rules: free text (as imported), or [{days: [mon…sun], from: HH:MM, to: HH:MM}] stored as JSON text."""
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        raise InputError("must be text or a list of {days, from, to}", field="time_rules")
    rules = []
    for i, r in enumerate(value):
        where = f"time_rules[{i}]"
        if not isinstance(r, dict) or set(r) - {"days", "from", "to"}:
            raise InputError("must be {days, from, to}", field=where)
        days = r.get("days") or []
        if not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days):
            raise InputError(f"days must be a non-empty list of {', '.join(WEEKDAYS)}", field=where)
        start, end = r.get("from"), r.get("to")
        if not (isinstance(start, str) and _HHMM.match(start) and isinstance(end, str) and _HHMM.match(end)):
            raise InputError("from and to must be HH:MM (00:00–24:00)", field=where)
        if start == end:
            raise InputError("from and to must differ (to before from runs past midnight)", field=where)
        rules.append({"days": sorted(set(days), key=WEEKDAYS.index), "from": start, "to": end})
    return json.dumps(rules, ensure_ascii=False, separators=(",", ":"))


def time_rules_value(stored: str | None) -> Any:
    """The stored time rules as the API gives them: the list when structured, else the text."""
    if stored and stored.startswith("["):
        try:
            return json.loads(stored)
        except ValueError:
            pass
    return stored


def field_value(f, value: Any) -> Any:
    """One declared field of the parking layer, from JSON: checked type, choices, length and minimum."""
    if f.name == "time_rules":
        value = _time_rules(value)
    if value is None or (isinstance(value, str) and not value.strip()):
        if f.required:
            raise InputError("is required", field=f.name)
        return None
    if f.type in ("text", "choice"):
        if not isinstance(value, str):
            raise InputError("must be text", field=f.name)
        value = value.strip()
        if f.type == "choice" and value not in f.choices:
            raise InputError(f"{value!r} is not one of {', '.join(f.choices)}", field=f.name)
        if f.max_length and len(value) > f.max_length:
            raise InputError(f"is longer than {f.max_length} characters", field=f.name)
        return value
    if f.type == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputError("must be a whole number", field=f.name)
        if f.minimum is not None and value < f.minimum:
            raise InputError(f"must be at least {f.minimum:g}", field=f.name)
        return value
    if f.type == "date":
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            raise InputError(f"{value!r} is not a date YYYY-MM-DD", field=f.name) from None
    raise InputError("cannot be set here", field=f.name)  # pragma: no cover - the layer has no other types


@dataclass
class ZoneInput:
    """A checked request body: field values given, the geometry (or None), the confirmation and a note."""

    values: dict[str, Any]
    geometry: shapely.Geometry | None
    confirm_construction: bool = False
    note: str | None = None

    @property
    def wkb(self) -> str | None:
        return shapely.to_wkb(self.geometry, hex=True) if self.geometry is not None else None


def parse_body(conn: Connection, body: Any, *, creating: bool) -> ZoneInput:
    """The JSON body of a create (geometry and name required) or an edit (any subset)."""
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object", field="body")
    unknown = sorted(set(body) - BODY_KEYS)
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(BODY_KEYS))}", field="body")
    fields = zone_fields()
    # an empty number means "give one"; no angle means the zone's own (a lot's default when new)
    values = {
        k: field_value(fields[k], body[k])
        for k in EDITABLE
        if k in body and not (k in ("zone_no", "parking_angle") and body[k] in (None, ""))
    }
    geometry = None
    if body.get("geometry") is not None:
        geometry = parse_geometry(body["geometry"], city_extent(conn))
    elif creating:
        raise InputError("is required: a kerb line or a lot polygon (GeoJSON)", field="geometry")
    if creating and not values.get("name"):
        raise InputError("is required", field="name")
    confirm = body.get("confirm_construction", False)
    if not isinstance(confirm, bool):
        raise InputError("must be true or false", field="confirm_construction")
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise InputError("must be text", field="note")
    return ZoneInput(values, geometry, confirm, (note or "").strip() or None)
