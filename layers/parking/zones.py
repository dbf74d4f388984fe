"""Parking planning (停车规划): drawing, editing, the lifecycle and versions of the zones a planner draws.

Framework-free: callers pass a Connection, the Actor and "now"; the web views only adapt. The parking
layer is reached through the registry (the core never imports a layer): its declared fields validate
the input (gridmgr.layers.parking.zone_input) and its `computed` SQL measures a zone (gridmgr.layers.parking.checks).
The rules a zone must pass: see gridmgr.layers.parking.checks, which lists and runs them.

Lifecycle: draft → submitted → approved (leader or system administrator) → painted (施划) → retired; a submitted zone
can be withdrawn to draft. A geometry change after approval makes a new version (new id and number,
`prev_zone_id` → the old one); when that version is approved, the old one ends the day it starts (CDS).
Every change writes one row of the append-only `parking_zone_events` in the same transaction.

Beside it: gridmgr.layers.parking.zone_input (parsing a zone and the refusals), gridmgr.layers.parking.checks (stall depths,
footprints, measures and the rules), gridmgr.layers.parking.demand (demand evidence, the drawing preview),
gridmgr.layers.parking.cds (the CDS feed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.cases.queries import jsonable
from gridmgr.cases.workflow import Actor
from gridmgr.codes import TZ, sql_in
from gridmgr.db.models import Base
from gridmgr.errors import Forbidden, InputError, NotFound
from gridmgr.glossary import en, zh
from gridmgr.grid.assign import cell_join, describe_cell, shares_join
from gridmgr.layers.parking import PARKING_STATUSES
from gridmgr.layers.parking.checks import DEPTH_M, GEOM, LOT_ANGLE, Measure, capacity, check_zone, measure, rounded
from gridmgr.layers.parking.zone_input import EDITABLE, LAYER, ZoneInput, parse_body, refuse, time_rules_value

DRAW_ROLES = ("planner",)
APPROVE_ROLES = ("leader", "sysadmin")
READ_ROLES = ("planner", "leader", "sysadmin")
PUBLISHED = ("approved", "painted")


class ParkingZoneEvent(Base):
    """One change of a parking zone: who, when, which action, from and to which status, what changed."""

    __tablename__ = "parking_zone_events"
    __table_args__ = (
        Index("ix_parking_zone_events_zone_id_at", "zone_id", "at"),
        CheckConstraint(sql_in("to_status", PARKING_STATUSES), name="to_status"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    zone_id: Mapped[int] = mapped_column(ForeignKey("parking_zones.id"), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16), nullable=False)
    # NULL for the system; the name and role are kept as they were at the time
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


# ---------------------------------------------------------------- writes


def today(now: datetime) -> date:
    """The date of a moment in Asia/Shanghai."""
    return now.astimezone(TZ).date()


def local_time(moment: datetime | None) -> datetime | None:
    """A moment in Asia/Shanghai, as every time of the API is given."""
    return moment.astimezone(TZ) if moment is not None else None


def _require(actor: Actor, roles: tuple[str, ...], what: tuple[str, str]) -> None:
    if actor.role not in roles:
        raise Forbidden(
            f"角色 {zh(actor.role)} 不能{what[0]}。The role {actor.role} cannot {what[1]} (only {', '.join(roles)})."
        )


def _log(
    conn: Connection,
    zone_id: int,
    actor: Actor,
    now: datetime,
    action: str,
    from_status: str | None,
    to_status: str,
    changes: dict | None = None,
    note: str | None = None,
) -> int:
    return conn.execute(
        text("""
        INSERT INTO parking_zone_events (zone_id, at, action, from_status, to_status, user_id, actor, role, note, changes)
        VALUES (:z, :at, :a, :f, :t, :u, :actor, :role, :note, CAST(:changes AS jsonb)) RETURNING id
    """),
        {
            "z": zone_id,
            "at": now,
            "a": action,
            "f": from_status,
            "t": to_status,
            "u": actor.user_id,
            "actor": actor.name,
            "role": actor.role,
            "note": note,
            "changes": json.dumps(jsonable(changes or {}), ensure_ascii=False),
        },
    ).scalar()


def _assign(conn: Connection, zone_id: int, at: datetime) -> None:
    """The zone's primary cell and every cell it touches (feature_cells), by the one rule of gridmgr.grid.assign."""
    conn.execute(
        text(f"""
        UPDATE parking_zones z SET cell_id = c.cell_id
        FROM parking_zones z0 {cell_join("z0.geom", ":at")} WHERE z0.id = :id AND z.id = :id
    """),
        {"id": zone_id, "at": at},
    )
    conn.execute(text("DELETE FROM feature_cells WHERE layer = :l AND feature_id = :id"), {"l": LAYER, "id": zone_id})
    conn.execute(
        text(f"""
        INSERT INTO feature_cells (layer, feature_id, cell_id, share)
        SELECT :l, z.id, s.cell_id, s.share FROM parking_zones z {shares_join("z.geom", ":at")} WHERE z.id = :id
    """),
        {"l": LAYER, "id": zone_id, "at": at},
    )


def _insert(conn: Connection, v: dict, wkb: str, m: Measure, *, now: datetime, prev_id: int | None = None) -> int:
    given, reason = capacity(v.get("capacity"), v.get("capacity_reason"), m.capacity_estimated)
    params = {k: v.get(k) for k in EDITABLE}
    params.update(
        wkb=wkb,
        capacity=given,
        capacity_reason=reason,
        length=m.length_m,
        area=m.area_m2,
        estimated=m.capacity_estimated,
        prev=prev_id,
        now=now,
    )
    zone_id = conn.execute(
        text(f"""
        WITH n AS (SELECT nextval(pg_get_serial_sequence('parking_zones', 'id')) AS id)
        INSERT INTO parking_zones (id, geom, created_at, zone_no, name, street_name, street_side, parking_angle,
                                   capacity, capacity_reason, fee_rule, time_rules, status, valid_from, valid_to,
                                   length_m, area_m2, capacity_estimated, prev_zone_id)
        SELECT n.id, {GEOM}, :now, COALESCE(:zone_no, 'PZ' || lpad(n.id::text, 7, '0')), :name, :street_name,
               :street_side, :parking_angle, :capacity, :capacity_reason, :fee_rule, :time_rules, 'draft',
               :valid_from, :valid_to, :length, :area, :estimated, :prev
        FROM n RETURNING id
    """),
        params,
    ).scalar()
    _assign(conn, zone_id, now)
    return zone_id


def _taken(conn: Connection, zone_no: str, but: int | None = None) -> None:
    found = conn.execute(
        text("SELECT id FROM parking_zones WHERE zone_no = :n AND id IS DISTINCT FROM :b"), {"n": zone_no, "b": but}
    ).scalar()
    if found is not None:
        raise refuse(
            "zone_no",
            f"编号 {zone_no} 已被停车区 {found} 使用。The zone number {zone_no} is taken by zone {found}.",
            409,
            [{"layer": LAYER, "id": found, "zone_no": zone_no}],
        )


def create_zone(conn: Connection, actor: Actor, body: Any, *, now: datetime) -> int:
    """Draw a new zone (a draft): checked, measured, assigned to its cells, logged; returns its id."""
    _require(actor, DRAW_ROLES, ("绘制停车区", "draw parking zones"))
    z = parse_body(conn, body, creating=True)
    v = dict(z.values)
    if z.geometry.geom_type == "Polygon":
        v.setdefault("parking_angle", LOT_ANGLE)
    elif not v.get("parking_angle"):
        raise InputError("is required for a kerb line", field="parking_angle")
    if v.get("zone_no"):
        _taken(conn, v["zone_no"])
    checked = check_zone(
        conn,
        z.wkb,
        v["parking_angle"],
        v.get("street_side"),
        v.get("valid_from"),
        v.get("valid_to"),
        at=now,
        confirm=z.confirm_construction,
    )
    zone_id = _insert(conn, v, z.wkb, checked.measure, now=now)
    changes = {k: val for k, val in v.items() if val is not None}
    if checked.warnings:
        changes["confirmed_warnings"] = [{"rule": "construction_site", **w} for w in checked.warnings]
    _log(conn, zone_id, actor, now, "create", None, "draft", changes, z.note)
    return zone_id


def _lock(conn: Connection, zone_id: int) -> dict:
    row = (
        conn.execute(
            text("SELECT *, ST_AsBinary(geom) AS wkb_bytes FROM parking_zones WHERE id = :id FOR UPDATE"),
            {"id": zone_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"没有停车区 {zone_id}。No parking zone {zone_id}.")
    return dict(row)


def _geometry_changed(conn: Connection, zone_id: int, wkb: str) -> bool:
    # what the API gave back (7 decimals) is the same zone: a change is one of more than ~2 cm
    return conn.execute(
        text(f"""
        SELECT NOT ST_Equals(z.geom, g) AND ST_HausdorffDistance(z.geom, g) > 2e-7
        FROM parking_zones z, {GEOM} AS g WHERE z.id = :id
    """),
        {"id": zone_id, "wkb": wkb},
    ).scalar()


def zone_versions(conn: Connection, zone_id: int) -> tuple[int, ...]:
    """A zone with its previous version and its successors: they replace each other, so never overlap-conflict."""
    prev = conn.execute(text("SELECT prev_zone_id FROM parking_zones WHERE id = :id"), {"id": zone_id}).scalar()
    return (zone_id, *([prev] if prev else []), *(s["id"] for s in _successors(conn, zone_id)))


def _successors(conn: Connection, zone_id: int) -> list[dict]:
    return [
        dict(r)
        for r in conn.execute(
            text("SELECT id, zone_no, status FROM parking_zones WHERE prev_zone_id = :id ORDER BY id"), {"id": zone_id}
        ).mappings()
    ]


def _version_no(conn: Connection, zone: dict) -> str:
    base = re.sub(r"-v\d+$", "", zone["zone_no"])
    n = (
        2
        + conn.execute(
            text("""
        WITH RECURSIVE chain AS (SELECT id, prev_zone_id FROM parking_zones WHERE id = :id
          UNION ALL SELECT p.id, p.prev_zone_id FROM parking_zones p JOIN chain c ON p.id = c.prev_zone_id)
        SELECT count(*) - 1 FROM chain
    """),
            {"id": zone["id"]},
        ).scalar()
    )
    while conn.execute(text("SELECT 1 FROM parking_zones WHERE zone_no = :n"), {"n": f"{base}-v{n}"}).first():
        n += 1
    return f"{base}-v{n}"


def update_zone(conn: Connection, actor: Actor, zone_id: int, body: Any, *, now: datetime) -> tuple[int, bool]:
    """Edit a zone: (id of the zone holding the change, True when it is a new version).

    Metadata edits keep the id. A geometry change of a draft edits it in place; of an approved or
    painted zone it makes a new draft version (the old one stays in force until that is approved).
    A submitted zone is withdrawn before editing; a retired one is history.
    """
    _require(actor, DRAW_ROLES, ("修改停车区", "edit parking zones"))
    zone = _lock(conn, zone_id)
    z = parse_body(conn, body, creating=False)
    if zone["status"] in ("submitted", "retired"):
        hint = (
            "请先撤回（withdraw）。Withdraw it first (action withdraw)."
            if zone["status"] == "submitted"
            else "已撤销的停车区是历史记录。A retired zone is history."
        )
        raise refuse(
            "lifecycle",
            f"停车区 {zone['zone_no']} 的状态为 {zh(zone['status'])}，不能修改。Zone "
            f"{zone['zone_no']} is {zone['status']} and cannot be edited: {hint}",
            409,
        )
    geometry_changed = z.wkb is not None and _geometry_changed(conn, zone_id, z.wkb)
    wkb = z.wkb if geometry_changed else zone["wkb_bytes"].hex()
    published = zone["status"] in PUBLISHED
    if published and geometry_changed:
        return _new_version(conn, actor, zone, z, wkb, now=now), True
    if published and "valid_from" in z.values and z.values["valid_from"] != zone["valid_from"]:
        raise refuse(
            "start_date",
            f"已发布停车区 {zone['zone_no']} 的生效日期不能改变（CDS），请绘制新版本。The start date "
            f"of published zone {zone['zone_no']} never changes (CDS): draw a new version instead.",
            409,
        )
    if "zone_no" in z.values and z.values["zone_no"] != zone["zone_no"]:
        _taken(conn, z.values["zone_no"], zone_id)
    merged = {k: zone[k] for k in EDITABLE} | z.values
    rules_touched = geometry_changed or any(
        k in z.values and z.values[k] != zone[k] for k in ("parking_angle", "street_side", "valid_from", "valid_to")
    )
    m = measure(conn, wkb, merged["parking_angle"])
    warnings = []
    if rules_touched:
        checked = check_zone(
            conn,
            wkb,
            merged["parking_angle"],
            merged["street_side"],
            merged["valid_from"],
            merged["valid_to"],
            at=now,
            exclude=zone_versions(conn, zone_id),
            confirm=z.confirm_construction,
        )
        warnings = checked.warnings
    if "capacity" not in z.values and zone["capacity"] == zone["capacity_estimated"]:
        merged["capacity"] = None  # no number of the planner's: the estimate follows the shape
    if "capacity" in z.values or "capacity_reason" in z.values or merged["capacity"] is None:
        merged["capacity"], merged["capacity_reason"] = capacity(
            merged["capacity"], merged["capacity_reason"], m.capacity_estimated
        )
    # else a number other than the estimate (a planner's, or an imported one) stays until changed or cleared
    changes = {k: [zone[k], merged[k]] for k in EDITABLE if merged[k] != zone[k]}
    if m.capacity_estimated != zone["capacity_estimated"]:
        changes["capacity_estimated"] = [zone["capacity_estimated"], m.capacity_estimated]
    if geometry_changed:
        changes["geometry"] = "changed"
    if not changes:
        return zone_id, False
    if warnings:
        changes["confirmed_warnings"] = [{"rule": "construction_site", **w} for w in warnings]
    sets = ", ".join(f"{k} = :{k}" for k in EDITABLE)
    conn.execute(
        text(f"""
        UPDATE parking_zones SET {sets}, geom = {GEOM}, length_m = :length, area_m2 = :area,
               capacity_estimated = :estimated WHERE id = :id
    """),
        {
            **{k: merged[k] for k in EDITABLE},
            "wkb": wkb,
            "length": m.length_m,
            "area": m.area_m2,
            "estimated": m.capacity_estimated,
            "id": zone_id,
        },
    )
    if geometry_changed:
        _assign(conn, zone_id, now)
    _log(conn, zone_id, actor, now, "edit", zone["status"], zone["status"], changes, z.note)
    return zone_id, False


def _new_version(conn: Connection, actor: Actor, zone: dict, z: ZoneInput, wkb: str, *, now: datetime) -> int:
    pending = [s for s in _successors(conn, zone["id"]) if s["status"] in ("draft", "submitted")]
    if pending:
        p = pending[0]
        raise refuse(
            "version_pending",
            f"停车区 {zone['zone_no']} 已有待审批的新版本 {p['zone_no']}（{zh(p['status'])}），"
            f"请修改该版本。Zone {zone['zone_no']} already has a new version {p['zone_no']} ({p['status']}): "
            "edit that one.",
            409,
            [{"layer": LAYER, "id": p["id"], "zone_no": p["zone_no"], "status": p["status"]}],
        )
    v = {k: zone[k] for k in EDITABLE} | z.values
    v["zone_no"] = z.values.get("zone_no") or _version_no(conn, zone)
    _taken(conn, v["zone_no"])
    if "valid_from" not in z.values:
        v["valid_from"] = None  # set when the version is approved
    v["valid_to"] = z.values.get("valid_to")
    if "capacity" not in z.values and zone["capacity"] == zone["capacity_estimated"]:
        v["capacity"] = None  # no planner's number: follow the new estimate
    checked = check_zone(
        conn,
        wkb,
        v["parking_angle"],
        v["street_side"],
        v["valid_from"],
        v["valid_to"],
        at=now,
        exclude=(zone["id"],),
        confirm=z.confirm_construction,
    )
    new_id = _insert(conn, v, wkb, checked.measure, now=now, prev_id=zone["id"])
    changes = {k: val for k, val in v.items() if val is not None} | {"prev_zone_id": zone["id"], "geometry": "changed"}
    if checked.warnings:
        changes["confirmed_warnings"] = [{"rule": "construction_site", **w} for w in checked.warnings]
    _log(conn, new_id, actor, now, "create", None, "draft", changes, z.note)
    _log(conn, zone["id"], actor, now, "new_version", zone["status"], zone["status"], {"new_zone_id": new_id}, z.note)
    return new_id


@dataclass(frozen=True)
class Action:
    """One lifecycle step: the statuses it starts from, where it leads, who may take it, its labels."""

    name: str
    sources: tuple[str, ...]
    target: str
    roles: tuple[str, ...]
    zh: str
    en: str


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("submit", ("draft",), "submitted", DRAW_ROLES, "提交审批", "submit for approval"),
        Action("withdraw", ("submitted",), "draft", DRAW_ROLES, "撤回", "withdraw"),
        Action("approve", ("submitted",), "approved", APPROVE_ROLES, "批准", "approve"),
        Action("paint", ("approved",), "painted", DRAW_ROLES, "已施划", "mark painted"),
        Action("retire", ("draft", "approved", "painted"), "retired", DRAW_ROLES, "撤销", "retire"),
    )
}


# the log's other entries: (中文, English)
EVENT_LABELS = {
    "create": ("绘制", "drawn"),
    "edit": ("修改", "edited"),
    "new_version": ("绘制新版本", "new version drawn"),
    "supersede": ("被新版本取代", "superseded"),
}


def allowed_actions(actor: Actor, status: str) -> list[str]:
    """The actions this actor may take on a zone in this status."""
    return [a.name for a in ACTIONS.values() if status in a.sources and actor.role in a.roles]


def apply_action(
    conn: Connection, actor: Actor, zone_id: int, action: str, *, now: datetime, note: str | None = None
) -> dict:
    """Take one lifecycle step (the hard rules run again on submit and approve): zone, action, statuses, event."""
    if action not in ACTIONS:
        raise NotFound(f"未知操作 {action!r}。Unknown action {action!r}; known: {', '.join(ACTIONS)}.")
    a = ACTIONS[action]
    zone = _lock(conn, zone_id)
    _require(actor, a.roles, (a.zh, a.en))
    if zone["status"] not in a.sources:
        raise refuse(
            "lifecycle",
            f"停车区 {zone['zone_no']} 的状态为 {zh(zone['status'])}，不能{a.zh}。Zone "
            f"{zone['zone_no']} is {zone['status']}: {action} needs {' or '.join(a.sources)}.",
            409,
        )
    changes: dict[str, Any] = {}
    day = today(now)
    if action in ("submit", "approve"):
        check_zone(
            conn,
            zone["wkb_bytes"].hex(),
            zone["parking_angle"],
            zone["street_side"],
            zone["valid_from"],
            zone["valid_to"],
            at=now,
            exclude=zone_versions(conn, zone_id),
            confirm=True,
        )
    if action == "approve":
        start = max(zone["valid_from"] or day, day) if zone["prev_zone_id"] else (zone["valid_from"] or day)
        if start != zone["valid_from"]:
            changes["valid_from"] = [zone["valid_from"], start]
        conn.execute(text("UPDATE parking_zones SET valid_from = :d WHERE id = :id"), {"d": start, "id": zone_id})
        if zone["prev_zone_id"]:
            _supersede(conn, actor, zone["prev_zone_id"], zone_id, start, now=now)
    if action == "retire" and zone["status"] in PUBLISHED:
        end = min(zone["valid_to"] or day, day)
        end = max(end, zone["valid_from"] or end)  # a zone retired before it started ends the day it would start
        if end != zone["valid_to"]:
            changes["valid_to"] = [zone["valid_to"], end]
            conn.execute(text("UPDATE parking_zones SET valid_to = :d WHERE id = :id"), {"d": end, "id": zone_id})
    conn.execute(text("UPDATE parking_zones SET status = :s WHERE id = :id"), {"s": a.target, "id": zone_id})
    event_id = _log(conn, zone_id, actor, now, action, zone["status"], a.target, changes, note)
    return {
        "zone_id": zone_id,
        "action": action,
        "from_status": zone["status"],
        "to_status": a.target,
        "event_id": event_id,
    }


def _supersede(conn: Connection, actor: Actor, old_id: int, new_id: int, start: date, *, now: datetime) -> None:
    """The old version ends the day its successor starts (CDS: kept with its end date, linked by prev)."""
    old = _lock(conn, old_id)
    end = start if old["valid_to"] is None or old["valid_to"] > start else old["valid_to"]
    conn.execute(text("UPDATE parking_zones SET valid_to = :d WHERE id = :id"), {"d": end, "id": old_id})
    _log(
        conn,
        old_id,
        actor,
        now,
        "supersede",
        old["status"],
        old["status"],
        {"valid_to": [old["valid_to"], end], "new_zone_id": new_id},
    )


# ---------------------------------------------------------------- reads

_SELECT = """
SELECT z.id, z.zone_no, z.name, z.street_name, z.street_side, z.parking_angle, z.capacity, z.capacity_estimated,
       z.capacity_reason, z.fee_rule, z.time_rules, z.status, z.valid_from, z.valid_to, z.length_m, z.area_m2,
       z.prev_zone_id, z.cell_id, gc.code AS cell_code, z.created_at, ST_Dimension(z.geom) AS dim,
       ST_AsGeoJSON(z.geom, 7)::json AS geometry,
       (SELECT max(e.at) FROM parking_zone_events e WHERE e.zone_id = z.id) AS updated_at,
       (SELECT max(n.id) FROM parking_zones n WHERE n.prev_zone_id = z.id) AS next_zone_id
FROM parking_zones z LEFT JOIN grid_cells gc ON gc.id = z.cell_id
"""


def zone_dict(r: Mapping, actor: Actor | None = None) -> dict:
    """The API form of a zone row."""
    out = {
        "id": r["id"],
        "zone_no": r["zone_no"],
        "name": r["name"],
        "kind": "lot" if r["dim"] == 2 else "kerb",
        "status": r["status"],
        "status_label": {"zh": zh(r["status"]), "en": en(r["status"])},
        "street_name": r["street_name"],
        "street_side": r["street_side"],
        "parking_angle": r["parking_angle"],
        "capacity": r["capacity"],
        "capacity_estimated": r["capacity_estimated"],
        "capacity_reason": r["capacity_reason"],
        "fee_rule": r["fee_rule"],
        "time_rules": time_rules_value(r["time_rules"]),
        "valid_from": r["valid_from"],
        "valid_to": r["valid_to"],
        "length_m": rounded(r["length_m"]),
        "area_m2": rounded(r["area_m2"]),
        "depth_m": DEPTH_M.get(r["parking_angle"]) if r["dim"] != 2 else None,
        "prev_zone_id": r["prev_zone_id"],
        "next_zone_id": r["next_zone_id"],
        "cell": {"id": r["cell_id"], "code": r["cell_code"]} if r["cell_id"] else None,
        "geometry": r["geometry"],
        "created_at": local_time(r["created_at"]),
        "updated_at": local_time(r["updated_at"] or r["created_at"]),
    }
    if actor is not None:
        out["allowed_actions"] = allowed_actions(actor, r["status"])
    return out


def get_zone(conn: Connection, zone_id: int, actor: Actor | None = None) -> dict:
    """One zone with its cells (share, community, units), its change log and its versions."""
    row = conn.execute(text(_SELECT + " WHERE z.id = :id"), {"id": zone_id}).mappings().first()
    if row is None:
        raise NotFound(f"没有停车区 {zone_id}。No parking zone {zone_id}.")
    out = zone_dict(row, actor)
    out["cells"] = zone_cells(conn, zone_id, row["cell_id"])
    out["events"] = zone_events(conn, zone_id)
    out["confirmed_warnings"] = [w for e in out["events"] for w in e["changes"].get("confirmed_warnings", [])]
    out["versions"] = [
        dict(v)
        for v in conn.execute(
            text("""
        WITH RECURSIVE back AS (SELECT id, prev_zone_id FROM parking_zones WHERE id = :id
          UNION ALL SELECT p.id, p.prev_zone_id FROM parking_zones p JOIN back b ON p.id = b.prev_zone_id),
        fwd AS (SELECT id FROM parking_zones WHERE id = :id
          UNION ALL SELECT n.id FROM parking_zones n JOIN fwd f ON n.prev_zone_id = f.id)
        SELECT z.id, z.zone_no, z.status, z.valid_from, z.valid_to FROM parking_zones z
        WHERE z.id IN (SELECT id FROM back UNION SELECT id FROM fwd) ORDER BY z.id
    """),
            {"id": zone_id},
        ).mappings()
    ]
    return out


def zone_cells(conn: Connection, zone_id: int, primary: int | None = None) -> list[dict]:
    """Every cell a zone touches (feature_cells) with its share and the units answerable for it."""
    rows = conn.execute(
        text("SELECT cell_id, share FROM feature_cells WHERE layer = :l AND feature_id = :id"),
        {"l": LAYER, "id": zone_id},
    ).all()
    if not rows and primary is not None:
        rows = [(primary, 1.0)]  # a line along a cell edge touches no cell's inside: its primary cell holds it
    return sorted((cell_summary(conn, cid, share) for cid, share in rows), key=lambda c: (-c["share"], c["code"]))


def cell_summary(conn: Connection, cell_id: int, share: float) -> dict:
    """A cell as the planner sees it: code, share, community, street and responsible units."""
    info = describe_cell(conn, cell_id)
    return {
        "id": info.id,
        "code": info.code,
        "share": round(share, 4),
        "community": info.community[1] if info.community else None,
        "street": info.street[1] if info.street else None,
        "units": [
            {"duty": u["duty"], "duty_label": zh(u["duty"]), "code": u["code"], "name": u["name"], "phone": u["phone"]}
            for u in info.units
        ],
    }


def zone_events(conn: Connection, zone_id: int) -> list[dict]:
    """A zone's change log, oldest first."""
    return [
        {**r, "at": local_time(r["at"])}
        for r in conn.execute(
            text("""
        SELECT id, at, action, from_status, to_status, actor, role, user_id, note, changes
        FROM parking_zone_events WHERE zone_id = :id ORDER BY at, id
    """),
            {"id": zone_id},
        ).mappings()
    ]


def list_zones(
    conn: Connection,
    *,
    now: datetime,
    bbox: tuple[float, float, float, float] | None = None,
    statuses: tuple[str, ...] = (),
    history: bool = False,
    limit: int = 2000,
    actor: Actor | None = None,
) -> dict:
    """Zones for the map: those in force now or later (all versions with `history`), by bbox and status."""
    where, params = ["true"], {"today": today(now), "limit": limit}
    if not history:
        where.append("z.status <> 'retired' AND (z.valid_to IS NULL OR z.valid_to > :today)")
    if statuses:
        bad = [s for s in statuses if s not in PARKING_STATUSES]
        if bad:
            raise InputError(f"unknown status {', '.join(bad)}; known: {', '.join(PARKING_STATUSES)}", field="status")
        where.append("z.status = ANY(:statuses)")
        params["statuses"] = list(statuses)
    if bbox:
        where.append("z.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    cond = " AND ".join(where)
    total = conn.execute(text(f"SELECT count(*) FROM parking_zones z WHERE {cond}"), params).scalar()
    rows = conn.execute(text(f"{_SELECT} WHERE {cond} ORDER BY z.id LIMIT :limit"), params).mappings()
    return {"items": [zone_dict(r, actor) for r in rows], "total": total}
