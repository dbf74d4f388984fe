"""What a drawn parking zone takes and may be drawn: stall depths, footprints, measures and the planner's rules.

Framework-free, like gridmgr.layers.parking.zones, which runs these on every write (gridmgr.layers.parking.demand runs them
for the drawing preview). The parking layer is reached through the registry (the core never imports a
layer): its `computed` SQL measures a zone on the ground and estimates its capacity (docs/domain.md §7,
`capacity_sql` of gridmgr.layers.parking), so the numbers live in one place.

Rules a zone must pass (each refusal names its rule and, where there is one, the conflicting feature):
- geometry_type / geometry_valid: a kerb line (LineString) or a lot (Polygon), valid, inside the city;
- inside_grid / one_district: covered by the cells valid now, all in one district;
- no_overlap: its footprint (`parking_footprint` of migration 0006: a kerb line buffered by the parking
  depth of its angle) overlaps no other zone's footprint valid at the same time (CDS);
- construction_site: crossing an active construction site is a warning the planner confirms; the
  confirmation is recorded with the zone (its event's `changes`);
- capacity_reason: a capacity other than the estimate needs a reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.errors import InputError, NotFound
from gridmgr.layers.parking.zone_input import LAYER, NeedsConfirmation, Problem, Refusal, refuse
from gridmgr.plugins import registry
from gridmgr.plugins.area import features_in_area

# stall sizes of a small car (docs/domain.md §7): 2.5 m wide, 5.3 m long; parallel stalls lie along the kerb
STALL_WIDTH_M, STALL_LENGTH_M = 2.5, 5.3
ANGLE_DEGREES = {"parallel": 0, "perpendicular": 90, "angled_30": 30, "angled_45": 45, "angled_60": 60}
LOT_ANGLE = "perpendicular"  # a lot's stalls are counted by area; its angle is only descriptive
OVERLAP_TOLERANCE_M2 = 0.5  # footprints touching end to end share no ground; noise stays under this
OUTSIDE_TOLERANCE = 0.5  # metres of line (m² of lot) that may lie outside the grid: snapping noise


def stall_depth(angle: str) -> float:
    """Metres from the kerb a stall reaches: a w × l stall at θ to the kerb takes l·sinθ + w·cosθ."""
    theta = math.radians(ANGLE_DEGREES[angle])
    return round(STALL_LENGTH_M * math.sin(theta) + STALL_WIDTH_M * math.cos(theta), 3)


DEPTH_M = {a: stall_depth(a) for a in ANGLE_DEGREES}  # parallel 2.5, perpendicular 5.3, 30° 4.815, …


def depth_sql(angle: str) -> str:
    """The parking depth of an angle column or parameter, in SQL."""
    return f"(CASE {angle} {' '.join(f'WHEN {k!r} THEN {v}' for k, v in DEPTH_M.items())} END)"


def footprint_sql(geom: str, angle: str, side: str) -> str:
    """The ground a zone's stalls take (migration 0006's `parking_footprint`), in SQL."""
    return f"parking_footprint({geom}, {depth_sql(angle)}, {side})"


# ---------------------------------------------------------------- measure and check

GEOM = "ST_SetSRID(CAST(:wkb AS geometry), 4326)"


@dataclass
class Measure:
    """A zone measured on the ground: kind, length (kerb) or area (lot), and the estimated capacity."""

    kind: str  # "kerb" or "lot"
    length_m: float | None
    area_m2: float | None
    capacity_estimated: int
    depth_m: float | None  # the parking depth of a kerb line (its footprint's width)

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "length_m": rounded(self.length_m),
            "area_m2": rounded(self.area_m2),
            "capacity_estimated": self.capacity_estimated,
            "depth_m": self.depth_m,
        }


def rounded(v: float | None, digits: int = 2) -> float | None:
    """A length or area as the API gives it: to `digits` decimals, None kept."""
    return None if v is None else round(v, digits)


def measure(conn: Connection, wkb: str, angle: str) -> Measure:
    """Length or area on the ground and the capacity estimate, by the parking layer's own SQL."""
    c = registry.get(LAYER).computed
    row = conn.execute(
        text(f"""
        SELECT ST_Dimension(s.geom), {c["length_m"]}, {c["area_m2"]}, {c["capacity_estimated"]}
        FROM (SELECT {GEOM} AS geom, CAST(:angle AS text) AS parking_angle) s
    """),
        {"wkb": wkb, "angle": angle},
    ).first()
    lot = row[0] == 2
    return Measure("lot" if lot else "kerb", row[1], row[2], row[3], None if lot else DEPTH_M[angle])


@dataclass
class Checked:
    """What the checks found: the measure, the cell and district, and warnings (confirmed or not)."""

    measure: Measure
    cell_id: int | None
    district: dict | None
    warnings: list[dict] = field(default_factory=list)


def _zone_label(row: Mapping) -> str:
    period = f"{row['valid_from'] or '…'} – {row['valid_to'] or '…'}"
    return f"{row['zone_no']} “{row['name']}” ({row['status']}, {period})"


def check_zone(
    conn: Connection,
    wkb: str,
    angle: str,
    side: str | None,
    valid_from: date | None,
    valid_to: date | None,
    *,
    at: datetime,
    exclude: tuple[int, ...] = (),
    confirm: bool = False,
) -> Checked:
    """Run every rule on a zone (see the module docstring); raise Refusal or NeedsConfirmation, else Checked."""
    row = conn.execute(
        text(f"SELECT ST_IsValid(g), ST_IsValidReason(g), ST_IsSimple(g) FROM {GEOM} AS g"), {"wkb": wkb}
    ).first()
    if not row[0]:
        raise refuse("geometry_valid", f"几何无效。The geometry is invalid: {row[1]}.")
    if not row[2]:
        raise refuse("geometry_valid", "路缘线自相交。The kerb line crosses itself: draw it without loops.")
    if valid_from and valid_to and valid_to <= valid_from:
        raise InputError(f"{valid_to} is not after valid_from {valid_from}", field="valid_to")
    m = measure(conn, wkb, angle)
    problems: list[Problem] = []
    cell_id, district = _grid_problems(conn, wkb, at, m, problems)
    problems += _overlaps(conn, wkb, angle, side, valid_from, valid_to, exclude)
    if problems:
        raise Refusal(problems)
    warnings = construction_warnings(conn, wkb, angle, side, at)
    if warnings and not confirm:
        sites = "; ".join(f"{w['permit_no']} “{w['project_name']}” ({w['overlap_m2']} m²)" for w in warnings)
        raise NeedsConfirmation(
            [
                Problem(
                    "construction_site",
                    f"[construction_site] 停车区穿过在建工地 {sites}：请确认后再保存。The zone crosses the active construction "
                    f"site(s) {sites}: confirm (confirm_construction) to save it anyway.",
                    409,
                    [{"layer": "construction", **w} for w in warnings],
                )
            ]
        )
    return Checked(m, cell_id, district, warnings)


def _grid_problems(
    conn: Connection, wkb: str, at: datetime, m: Measure, problems: list[Problem]
) -> tuple[int | None, dict | None]:
    """inside_grid and one_district; returns the primary cell and the district."""
    row = conn.execute(
        text(f"""
        WITH g AS (SELECT {GEOM} AS geom),
        cells AS (
          SELECT c.geom FROM grid_cells c, g
          WHERE c.geom && g.geom AND ST_Intersects(c.geom, g.geom)
            AND c.valid_from <= :at AND (c.valid_to IS NULL OR :at < c.valid_to))
        SELECT CASE WHEN ST_Dimension(g.geom) = 1 THEN ST_Length(d.geom::geography) ELSE ST_Area(d.geom::geography) END,
               (SELECT cell_id FROM cell_for(g.geom, :at))
        FROM g, LATERAL (SELECT COALESCE(ST_Difference(g.geom, (SELECT ST_Union(geom) FROM cells)), g.geom) AS geom) d
    """),
        {"wkb": wkb, "at": at},
    ).first()
    outside, cell_id = row
    if outside > OUTSIDE_TOLERANCE:
        unit = "m" if m.kind == "kerb" else "m²"
        problems.append(
            Problem(
                "inside_grid",
                f"[inside_grid] 停车区有 {outside:.1f} {unit} 在现行网格之外。"
                f"{outside:.1f} {unit} of the zone lie outside the current grid: every zone lies "
                "in cells valid now.",
            )
        )
        return cell_id, None
    districts = (
        conn.execute(
            text(f"""
        WITH g AS (SELECT {GEOM} AS geom),
        cells AS (
          SELECT c.id, c.community_id FROM grid_cells c, g
          WHERE c.geom && g.geom AND ST_Intersects(c.geom, g.geom) AND NOT ST_Touches(c.geom, g.geom)
            AND c.valid_from <= :at AND (c.valid_to IS NULL OR :at < c.valid_to)
          UNION SELECT c.id, c.community_id FROM grid_cells c WHERE c.id = :cell)
        SELECT DISTINCT d.code, d.name
        FROM cells JOIN regions cm ON cm.id = cells.community_id
        LEFT JOIN regions st ON st.id = cm.parent_id
        JOIN regions d ON d.id = CASE WHEN cm.level = 'district' THEN cm.id
                                      WHEN st.level = 'district' THEN st.id ELSE st.parent_id END
        ORDER BY d.code
    """),
            {"wkb": wkb, "at": at, "cell": cell_id},
        )
        .mappings()
        .all()
    )
    if len(districts) > 1:
        names = "、".join(f"{d['name']} ({d['code']})" for d in districts)
        problems.append(
            Problem(
                "one_district",
                f"[one_district] 停车区跨越多个区县：{names}。The zone spans the "
                f"districts {names}: draw one zone per district.",
                400,
                [{"layer": "regions", "code": d["code"], "name": d["name"]} for d in districts],
            )
        )
        return cell_id, None
    return cell_id, dict(districts[0]) if districts else None


def _overlaps(
    conn: Connection,
    wkb: str,
    angle: str,
    side: str | None,
    valid_from: date | None,
    valid_to: date | None,
    exclude: tuple[int, ...],
) -> list[Problem]:
    """no_overlap: other zones whose footprint shares ground with this one's while both are valid."""
    rows = (
        conn.execute(
            text(f"""
        WITH me AS (SELECT parking_footprint({GEOM}, :depth, :side) AS fp)
        SELECT z.id, z.zone_no, z.name, z.status, z.valid_from, z.valid_to,
               ST_Area(ST_Intersection(me.fp, o.fp)::geography) AS overlap
        FROM me, parking_zones z,
             LATERAL (SELECT {footprint_sql("z.geom", "z.parking_angle", "z.street_side")} AS fp) o
        WHERE z.geom && ST_Expand(me.fp, 0.0002) AND z.status <> 'retired' AND NOT z.id = ANY(:exclude)
          AND daterange(z.valid_from, z.valid_to, '[)') && daterange(:vf, :vt, '[)')
          AND ST_Intersects(me.fp, o.fp)
          AND ST_Area(ST_Intersection(me.fp, o.fp)::geography) > :tol
        ORDER BY overlap DESC, z.id
    """),
            {
                "wkb": wkb,
                "depth": DEPTH_M[angle],
                "side": side,
                "exclude": list(exclude),
                "vf": valid_from,
                "vt": valid_to,
                "tol": OVERLAP_TOLERANCE_M2,
            },
        )
        .mappings()
        .all()
    )
    out = []
    for r in rows:
        out.append(
            Problem(
                "no_overlap",
                f"[no_overlap] 与停车区 {_zone_label(r)} 重叠 {r['overlap']:.1f} m²。The zone overlaps "
                f"zone {_zone_label(r)} by {r['overlap']:.1f} m² (parking depth {DEPTH_M[angle]} m, {angle}); zones "
                "valid at the same time never overlap.",
                409,
                [
                    {
                        "layer": LAYER,
                        "id": r["id"],
                        "zone_no": r["zone_no"],
                        "name": r["name"],
                        "status": r["status"],
                        "overlap_m2": round(r["overlap"], 1),
                    }
                ],
            )
        )
    return out


def construction_warnings(
    conn: Connection, wkb: str, angle: str, side: str | None, at: datetime | None = None
) -> list[dict]:
    """Active construction sites the zone's footprint crosses (a warning, not a refusal)."""
    try:
        rows = features_in_area(
            conn,
            "construction",
            f"parking_footprint({GEOM}, :depth, :side)",
            at or datetime.now(timezone.utc),
            {"wkb": wkb, "depth": DEPTH_M[angle], "side": side},
        )
    except NotFound:
        return []  # no construction layer installed
    found = [
        {"id": r["id"], "permit_no": r["permit_no"], "project_name": r["project_name"], "overlap_m2": r["overlap_m2"]}
        for r in rows
    ]
    return [{**r, "overlap_m2": round(r["overlap_m2"], 1)} for r in sorted(found, key=lambda r: r["permit_no"])]


def capacity(given: int | None, reason: str | None, estimated: int) -> tuple[int, str | None]:
    """(capacity, reason): the estimate unless another number is given, which needs a reason."""
    if given is None or given == estimated:
        return estimated, None
    if not reason:
        raise refuse(
            "capacity_reason",
            f"泊位数 {given} 与估算 {estimated} 不同，须填写理由。A capacity of {given} "
            f"instead of the estimated {estimated} needs a reason (capacity_reason).",
        )
    return given, reason
