"""The planner (停车规划): the drawing page, the demand overview, and the parking API with its CDS feed.

Pages: `/planner` (draw, check, save, take lifecycle steps), `/planner/overview` (cells ranked by
illegal-parking cases per space) and `/planner/preview` (the page's JSON call while drawing).
A plug-in's blueprint (the `gridmgr_blueprints` hook) with its own templates and scripts (templates/, static/).
API (documented in web/openapi.json like the rest of /api/v1): `/api/v1/parking/zones` (GET, POST),
`/api/v1/parking/zones/<id>` (GET, PATCH), `/api/v1/parking/zones/<id>/actions/<action>` (POST), and
`/api/v1/curbs/zones`, the Curb Data Specification feed of published zones (public, as CDS asks).

Views only adapt: request → gridmgr.layers.parking.zones → JSON. Session writes carry the X-CSRFToken header
(web/auth.py checks it); bearer-token calls are exempt. A refused zone answers
{"error": {status, message, rule, rules, conflicts[, needs_confirmation]}}.
"""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, abort, current_app, g, render_template, request, url_for
from flask_login import current_user

from gridmgr.cases import filters
from gridmgr.db.models import CELL_DUTIES
from gridmgr.errors import Forbidden, InputError
from gridmgr.layers.parking import KERB_PER_STALL, LOT_M2_PER_STALL, MARGIN, ZONES, cds, checks, demand, zone_input
from gridmgr.layers.parking import zones as planner
from gridmgr.maps import queries as map_queries
from gridmgr.web.auth import current_actor, roles_required
from gridmgr.web.database import engine
from gridmgr.web.i18n import label, t
from gridmgr.web.views.api import json_response, request_now

bp = Blueprint(
    "planner", __name__, template_folder="templates", static_folder="static", static_url_path="/static/parking"
)

PUBLIC_ENDPOINTS = ("planner.curb_zones",)
MAX_LIST = 5000


@bp.before_request
def authenticate():
    """API calls need a session or a valid bearer token (else 401); the CDS feed is public."""
    if not request.path.startswith("/api/") or request.endpoint in PUBLIC_ENDPOINTS:
        return
    bearer = request.headers.get("Authorization", "").startswith("Bearer ")
    if bearer and not (current_user.is_authenticated and g.get("token_auth")):
        abort(401, description="无效的令牌 invalid or missing API token")
    current_actor()


@bp.errorhandler(zone_input.Refusal)
def refused(exc: zone_input.Refusal):
    """A refused zone: the rule(s) and the features in the way, as JSON."""
    return json_response({"error": exc.as_dict()}, exc.status)


def _reader():
    actor = current_actor()
    if actor.role not in planner.READ_ROLES:
        roles = ", ".join(planner.READ_ROLES)
        raise Forbidden(
            t(
                f"停车区仅限 {roles} 查看；已发布的停车区见 /api/v1/curbs/zones。",
                f"Parking zones are for {roles}; published zones are in /api/v1/curbs/zones.",
            )
        )
    return actor


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = (request.args.get(name) or "").strip()
    if not raw:
        return default
    try:
        n = int(raw)
    except ValueError:
        raise InputError(f"{raw!r} is not a whole number", field=name) from None
    if not low <= n <= high:
        raise InputError(f"{n} is outside {low}…{high}", field=name)
    return n


# ---------------------------------------------------------------- pages


def _bounds(conn) -> list[float] | None:
    box = map_queries.district_extent(conn)
    return box.box() if box else None


def _labelled(keys) -> list[dict]:
    return [{"key": k, "label": label(k)} for k in keys]


def page_text() -> dict[str, str]:
    """planner-map.js's own words in the page's language ({name}s are filled in by the script)."""
    return {
        "noAssets": t("地图资源未安装。", "The map assets are not installed."),
        "spaces": t("{n} 个泊位", "{n} spaces"),
        "lotArea": t("停车场面积 {m} m²", "Lot area {m} m²"),
        "kerbLength": t("路缘长度 {m} m · {angle}", "Kerb length {m} m · {angle}"),
        "drawing": t("（绘制中）", " (drawing)"),
        "estimate": t("（估算）", " (estimate)"),
        "retire": t("撤销停车区 {zone}？", "Retire zone {zone}?"),
        "newZone": t("新停车区", "New zone"),
        "checkFailed": t("检查失败", "Check failed"),
        "measured": t("实测：{m} → {n} 个泊位", "Measured on the ground: {m} → {n} spaces"),
        "estimateN": t("估算 {n}", "estimate {n}"),
        "rulesPass": t("规则检查通过。", "Every rule passes."),
        "crossesSite": t(
            "穿过在建工地 {permit} {project}（{m2} m²）：保存前请确认。",
            "Crosses the active construction site {permit} {project} ({m2} m²): confirm before saving.",
        ),
        "evidenceCases": t(
            "{d} m 内近 {days} 天机动车乱停放（0505）案件：{n}",
            "Illegal-parking (0505) cases within {d} m, last {days} days: {n}",
        ),
        "nearby": t(
            "附近停车区：{zones} · 在用泊位：{capacity} · 已施划泊位点：{spaces}",
            "Zones nearby: {zones} · spaces in force: {capacity} · painted spaces: {spaces}",
        ),
        "colNo": t("编号", "No."),
        "colName": t("名称", "Name"),
        "colStatus": t("状态", "Status"),
        "colSpaces": t("泊位", "Spaces"),
        "colDistance": t("距离 m", "Distance m"),
        "cellsTouched": t("所涉网格：{n}", "Cells touched: {n}"),
        "savedVersion": t("已保存为新版本 ", "Saved as a new version "),
        "saved": t("已保存 ", "Saved "),
        "notSaved": t("保存失败（HTTP {status}）", "Not saved (HTTP {status})"),
        "editZone": t("修改停车区 ", "Edit zone "),
        "zone": t("停车区 ", "Zone "),
        "facts": t("估算 {estimate} · 泊位 {capacity}", "estimate {estimate} · capacity {capacity}"),
        "previous": t(" · 前一版本 {id}", " · previous version {id}"),
        "listSep": t("；", "; "),
        "colon": t("：", ": "),
    }


def page_config(actor, bounds) -> dict:
    """The page's settings: URLs, the capacity constants (the layer's own), labels, colours, words and rights."""
    by_status = ZONES.style.get("by_status", {})
    actions = {a.name: t(a.zh, a.en) for a in planner.ACTIONS.values()}
    return {
        "urls": {"zones": url_for(".zones"), "preview": url_for(".preview"), "overview": url_for(".overview")},
        "capacity": {"kerb_per_stall": KERB_PER_STALL, "lot_m2_per_stall": LOT_M2_PER_STALL, "margin": MARGIN},
        "depth_m": checks.DEPTH_M,
        "angles": _labelled(checks.ANGLE_DEGREES),
        "sides": _labelled(ZONES.field("street_side").choices),
        "statuses": [
            dict(s, colour=by_status.get(s["key"], "#2563eb")) for s in _labelled(ZONES.field("status").choices)
        ],
        "weekdays": [{"key": d, "label": t("一二三四五六日"[i], d.title())} for i, d in enumerate(zone_input.WEEKDAYS)],
        # a zone's cells show each unit's duty (the core labels it in Chinese only)
        "duties": {k: label(k) for k in CELL_DUTIES},
        "actions": actions,
        "events": {**actions, **{k: t(*pair) for k, pair in planner.EVENT_LABELS.items()}},
        "text": page_text(),
        "distances": list(demand.DISTANCE_CHOICES),
        "distance": demand.DEFAULT_DISTANCE_M,
        "evidence_days": demand.EVIDENCE_DAYS,
        "bounds": bounds,
        "tiles": current_app.config["GRIDMGR"].get("GRIDMGR_TILE_URL") or "",
        "role": actor.role,
        "can_draw": actor.role in planner.DRAW_ROLES,
        "can_approve": actor.role in planner.APPROVE_ROLES,
        "today": planner.today(request_now()).isoformat(),
    }


@bp.get("/planner")
@roles_required(*planner.READ_ROLES)
def index():
    """The drawing page: the zones on a map, Geoman's tools for planners, the form, checks and evidence."""
    actor = current_actor()
    with engine().connect() as conn:
        config = page_config(actor, _bounds(conn))
    return render_template("planner/index.html", config=config)


@bp.get("/planner/overview")
@roles_required(*planner.READ_ROLES)
def overview():
    """Cells ranked by illegal-parking (0505) cases of the last 90 days per existing space."""
    limit = _int_arg("limit", 50, 1, 500)
    with engine().connect() as conn:
        rows = demand.overview(conn, now=request_now(), limit=limit)
    return render_template("planner/overview.html", rows=rows, days=demand.EVIDENCE_DAYS, limit=limit)


@bp.post("/planner/preview")
@roles_required(*planner.READ_ROLES)
def preview():
    """Measure, rules and demand evidence for a shape being drawn (the page's JSON call)."""
    with engine().connect() as conn:
        return json_response(demand.preview(conn, request.get_json(silent=True), now=request_now()))


# ---------------------------------------------------------------- the API


@bp.get("/api/v1/parking/zones")
def zones():
    """Zones in force now or later (`history=true`: every version), by bbox and status."""
    actor = _reader()
    args = request.args
    bbox = filters.parse_bbox(args["bbox"]) if (args.get("bbox") or "").strip() else None
    history = filters.parse_bool(args.get("history"), "history") or False
    limit = _int_arg("limit", 2000, 1, MAX_LIST)
    with engine().connect() as conn:
        result = planner.list_zones(
            conn,
            now=request_now(),
            bbox=bbox,
            statuses=filters.split_values(args, "status"),
            history=history,
            limit=limit,
            actor=actor,
        )
    return json_response(result, headers={"X-Total-Count": str(result["total"])})


@bp.post("/api/v1/parking/zones")
def create_zone():
    """Draw a zone (planners): checked, measured, assigned to its cells; 201 with the zone."""
    actor = current_actor()
    with engine().begin() as conn:
        zone_id = planner.create_zone(conn, actor, request.get_json(silent=True), now=request_now())
        out = planner.get_zone(conn, zone_id, actor)
    return json_response(out, 201, headers={"Location": url_for(".zone", zone_id=zone_id)})


@bp.get("/api/v1/parking/zones/<int:zone_id>")
def zone(zone_id: int):
    """One zone with its cells, change log and versions."""
    actor = _reader()
    with engine().connect() as conn:
        return json_response(planner.get_zone(conn, zone_id, actor))


@bp.patch("/api/v1/parking/zones/<int:zone_id>")
def edit_zone(zone_id: int):
    """Edit a zone (planners): 200 with it, or 201 with the new version a geometry change of a published zone makes."""
    actor = current_actor()
    with engine().begin() as conn:
        holder, new_version = planner.update_zone(
            conn, actor, zone_id, request.get_json(silent=True), now=request_now()
        )
        out = planner.get_zone(conn, holder, actor)
    if new_version:
        return json_response(out, 201, headers={"Location": url_for(".zone", zone_id=holder)})
    return json_response(out)


@bp.post("/api/v1/parking/zones/<int:zone_id>/actions/<action>")
def zone_action(zone_id: int, action: str):
    """One lifecycle step: submit, withdraw, approve (leaders and admins), paint, retire."""
    actor = current_actor()
    body = request.get_json(silent=True) if request.get_data() else {}
    if not isinstance(body, dict) or set(body) - {"note"}:
        raise InputError('the body is {"note": …} or empty', field="body")
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        raise InputError("must be text", field="note")
    with engine().begin() as conn:
        outcome = planner.apply_action(
            conn, actor, zone_id, action, now=request_now(), note=(note or "").strip() or None
        )
        out = planner.get_zone(conn, zone_id, actor)
    return json_response({"outcome": outcome, "zone": out})


@bp.get("/api/v1/curbs/zones")
def curb_zones():
    """The Curb Data Specification `/curbs/zones` feed of published zones (time, bbox, include_geometry)."""
    args = request.args
    at = None
    if (args.get("time") or "").strip():
        ms = _int_arg("time", 0, 0, 10**14)
        at = datetime.fromtimestamp(ms / 1000, timezone.utc)
    box = [args.get(k, "").strip() for k in ("min_lng", "min_lat", "max_lng", "max_lat")]
    bbox = None
    if any(box):
        if not all(box):
            raise InputError("min_lat, min_lng, max_lat and max_lng go together", field="min_lat")
        bbox = filters.parse_bbox(",".join(box), "min_lat")
    include = filters.parse_bool(args.get("include_geometry"), "include_geometry")
    with engine().connect() as conn:
        feed = cds.cds_zones(conn, now=request_now(), at=at, bbox=bbox, include_geometry=include is not False)
    return json_response(feed)
