"""The case pages: report a case, each role's work queue, the case page with its history and actions, photos.

Views only adapt requests to the core: reporting goes through `gridmgr.cases.intake.report`, every action
through `gridmgr.cases.workflow.apply` (request time as "now", the working calendar cached on the app), and
reads through `gridmgr.cases.queries`, which applies each role's scope: a case outside it is a 404.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy.engine import Connection

from gridmgr.cases import desk, filters, queries
from gridmgr.cases.dispatch import resolve
from gridmgr.cases.intake import NewCase, report
from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.cases.workflow import (
    NEEDS_VERIFY,
    TRANSITIONS,
    Actor,
    apply,
    check,
    first_step,
    step_limit,
    visible,
)
from gridmgr.codes import CASE_SOURCES, CASE_STATES, TZ, URGENCIES, sql_in
from gridmgr.errors import CoordinateError, GridmgrError, InputError, NotFound
from gridmgr.geo import crs as crsmod
from gridmgr.layers.cases import LAYER
from gridmgr.maps import queries as map_queries
from gridmgr.web import uploads
from gridmgr.web.auth import current_actor, login_required, roles_required
from gridmgr.web.database import engine
from gridmgr.web.i18n import label, name, one_language, t
from gridmgr.web.views.api import workflow_settings

bp = Blueprint("cases", __name__, url_prefix="/cases")

REPORTERS = ("supervisor", "receiver", "sysadmin")
RECEIVER_SOURCES = ("public", "hotline_12319", "hotline_12345", "video", "leader")
MANUAL_SOURCES = tuple(s for s in CASE_SOURCES if s != "rule")  # `rule` cases come from layer rules only
INPUT_CRS = ("wgs84", "cgcs2000", "gcj02", "bd09")
PHOTO_ACTIONS = ("verify", "handle", "check_pass", "check_fail", "self_handle")
MAX_NOTE = 2000
MAX_LENGTH = {f.name: f.max_length for f in LAYER.fields if f.max_length}
QUEUE_LIMIT = 200
# action → (中文, English); the audit trail's `report` and `import` rows included
ACTIONS = {
    "report": ("上报", "report"),
    "verify": ("核实", "verify"),
    "propose_register": ("建议立案", "propose registration"),
    "propose_reject": ("建议不予立案", "propose rejection"),
    "register": ("立案", "register"),
    "reject": ("不予立案", "reject"),
    "dispatch": ("派遣", "dispatch"),
    "return": ("申请回退", "ask for return"),
    "handle": ("处置反馈", "report handling"),
    "check_pass": ("核查通过", "check passed"),
    "check_fail": ("核查不通过", "check failed"),
    "close": ("结案", "close"),
    "request_extension": ("申请延期", "ask for extension"),
    "approve_extension": ("批准延期", "approve extension"),
    "refuse_extension": ("驳回延期", "refuse extension"),
    "suspend": ("挂账", "suspend"),
    "defer": ("缓办", "defer"),
    "resume": ("恢复办理", "resume"),
    "self_handle": ("自行处置", "handled on the spot"),
}
# the glossary's `supervisor` names the role; as a source it is the supervisor's own report
SOURCE_LABELS = {"supervisor": ("监督员上报", "supervisor's report")}
NOTE_LABELS = {
    "handle": ("处置结果", "Result"),
    "self_handle": ("处置结果", "Result"),
    "check_fail": ("不合格之处", "What is still wrong"),
}
STEPS = {
    "verify": ("核实", "verification"),
    "register": ("立案", "registration"),
    "dispatch": ("派遣", "dispatch"),
    "handle": ("处置", "handling"),
    "check": ("核查", "check"),
    "close": ("结案", "closing"),
}


@dataclass(frozen=True)
class Tab:
    """One work list of the queue page: which cases (SQL on `cases f`), for whom, in what order, with which buttons."""

    key: str
    zh: str
    en: str
    roles: tuple[str, ...] | None  # None: every role
    where: str
    sort: str = "deadline"
    actions: tuple[str, ...] = ()


_WORK_ORDER = {"deadline": "f.deadline ASC NULLS LAST, f.id ASC", "-reported_at": "f.reported_at DESC, f.id DESC"}
TABS = (
    Tab(
        "verify",
        "待核实",
        "To verify",
        ("supervisor",),
        f"f.status = 'reported' AND {sql_in('f.source', NEEDS_VERIFY)}",
        actions=("verify",),
    ),
    Tab("check", "待核查", "To check", ("supervisor",), "f.status = 'handled'", actions=("check_pass", "check_fail")),
    Tab(
        "register",
        "待立案",
        "To register",
        ("receiver", "shift_leader"),
        "f.status IN ('reported', 'verified')",
        actions=("propose_register", "propose_reject", "register", "reject"),
    ),
    Tab(
        "dispatch",
        "派遣台",
        "Dispatch desk",
        ("dispatcher", "shift_leader"),
        "f.status IN ('registered', 'returned')",
        actions=("dispatch",),
    ),
    Tab(
        "tasks",
        "待处置",
        "Tasks",
        ("unit_handler",),
        "f.status IN ('dispatched', 'rework')",
        actions=("handle", "return", "request_extension"),
    ),
    Tab(
        "extensions",
        "延期申请",
        "Extension requests",
        ("shift_leader",),
        "f.status IN ('dispatched', 'rework') AND f.extension_request IS NOT NULL",
        actions=("approve_extension", "refuse_extension"),
    ),
    Tab("close", "待结案", "To close", ("shift_leader",), "f.status = 'checked'", actions=("close",)),
    Tab(
        "paused",
        "挂账/缓办",
        "Suspended / deferred",
        ("shift_leader",),
        "f.status IN ('suspended', 'deferred')",
        actions=("resume",),
    ),
    Tab("mine", "我的上报", "My reports", REPORTERS, "f.reporter_user_id = :me", sort="-reported_at"),
    Tab("all", "全部案件", "All cases", None, "true", sort="-reported_at"),
)


# ---------------------------------------------------------------- per request: now, calendar, helpers


def _calendar() -> WorkCalendar:
    """The working calendar, read once per app."""
    cal = current_app.extensions.get("gridmgr.calendar")
    if cal is None:
        cal = current_app.extensions["gridmgr.calendar"] = WorkCalendar.load()
    return cal


def _now() -> datetime:
    """This request's "now" (the clock, or GRIDMGR_NOW in tests), the same for the whole request."""
    if "cases_now" not in g:
        g.cases_now = queries.resolve_now(current_app.config.get("GRIDMGR_NOW"))
    return g.cases_now


@bp.app_template_filter("cn_time")
def cn_time(moment: datetime | None) -> str:
    """A moment as local time YYYY-MM-DD HH:MM (— for none)."""
    return moment.astimezone(TZ).strftime("%Y-%m-%d %H:%M") if moment else "—"


def action_label(action: str) -> str:
    """An action (or audit row) in the page's language."""
    return t(*ACTIONS.get(action, (action, action)))


def step_label(step: str | None) -> str:
    """A workflow step (the one a deadline is for) in the page's language."""
    return t(*STEPS[step]) if step in STEPS else step or "—"


def source_label(source: str) -> str:
    """A case source in the page's language."""
    return t(*SOURCE_LABELS[source]) if source in SOURCE_LABELS else label(source)


def category_name(category) -> str:
    """A category's name (a CategoryInfo or a case's category dict): its English name on English pages, if any."""
    if isinstance(category, dict):
        return name(category["name"], category.get("name_en"))
    return name(category.name, category.name_en)


@bp.context_processor
def _helpers() -> dict:
    def note_label(action: str) -> str:
        return t(
            *NOTE_LABELS.get(action) or (("理由", "Reason") if TRANSITIONS[action].note_required else ("备注", "Note"))
        )

    return {
        "action_label": action_label,
        "step_label": step_label,
        "source_label": source_label,
        "category_name": category_name,
        "note_label": note_label,
        "TRANSITIONS": TRANSITIONS,
        "PHOTO_ACTIONS": PHOTO_ACTIONS,
        "is_upload": uploads.NAME.match,
    }


@bp.errorhandler(413)
def _too_large(_exc):
    return render_template("error.html", status=413, message=t(*uploads.TOO_LARGE)), 413


def _message(exc: GridmgrError) -> str:
    """A refusal as the user reads it (coordinate errors say first that the place is the problem)."""
    message = one_language(exc.message)
    return f"{t('位置无效', 'Invalid location')} — {message}" if isinstance(exc, CoordinateError) else message


def _too_long(limit: int) -> str:
    return t(f"最多 {limit} 字。", f"At most {limit} characters.")


def _back(default: str) -> str:
    """Where a form asked to go back to (a local path only: never an open redirect), else `default`."""
    target = request.form.get("next") or ""
    return target if re.match(r"^/(?![/\\])", target) else default


# ---------------------------------------------------------------- reporting


def _source(actor: Actor, form) -> str:
    """A supervisor's report is theirs (source supervisor); receivers enter public, hotline and other reports."""
    if actor.role == "supervisor":
        return "supervisor"
    allowed = RECEIVER_SOURCES if actor.role == "receiver" else MANUAL_SOURCES
    source = form.get("source") or ""
    if source not in allowed:
        raise InputError(t("来源须为 ", "The source must be one of ") + ", ".join(allowed), field="source")
    return source


def _location(conn: Connection, form) -> tuple[float, float, str]:
    """(lon, lat, crs) of the form: a clicked or typed point, or the representative point of a cell code."""
    cell = str(form.get("cell") or "").strip()
    mode = form.get("mode") or ("cell" if cell and not form.get("lon") else "point")
    if mode == "cell":
        try:
            info = queries.cell_by_code(conn, cell, _now())
        except NotFound:
            raise InputError(t(f"没有现行网格 {cell}。", f"No current cell {cell}."), field="cell") from None
        x, y = desk.cell_point(conn, info.id)
        return x, y, "wgs84"
    crs = form.get("crs") or "wgs84"
    if crs not in INPUT_CRS:
        raise InputError(t("坐标系须为 ", "The CRS must be one of ") + ", ".join(INPUT_CRS), field="crs")
    try:
        return float(form.get("lon")), float(form.get("lat")), crs
    except (TypeError, ValueError):
        raise InputError(
            t(
                "请在地图上点选位置，或输入经纬度或网格编码。",
                "Pick a point on the map, or type its coordinates or a cell code.",
            ),
            field="lon",
        ) from None


def _cell_geojson(conn: Connection, cell_id: int) -> str:
    """One cell's outline as GeoJSON text, for the small maps."""
    return desk.cell_geojson(conn, cell_id)


def _rule_text(conn: Connection, why: str) -> str:
    """Why the rules chose a unit, in words: the rule's note, or 属地兜底."""
    m = re.fullmatch(r"rule (\d+)", why)
    if m is None:
        return t("属地兜底（没有匹配的派遣规则）", "territorial owner (no rule matched)")
    note = desk.dispatch_rule_note(conn, int(m[1]))
    return t("派遣规则", "dispatch rule") + f" #{m[1]}" + (f"{t('：', ': ')}{note}" if note else "")


def _preview(conn: Connection, actor: Actor, form) -> dict:
    """What reporting this form would do: the point (WGS84), its cell, the unit the rules choose, the first deadline."""
    lon, lat, crs = _location(conn, form)
    xs, ys = crsmod.to_wgs84([lon], [lat], crs)
    x, y = float(xs[0]), float(ys[0])
    now = _now()
    out: dict = {
        "point": {"lon": round(x, 7), "lat": round(y, 7)},
        "cell": None,
        "unit": None,
        "rule": None,
        "first_step": None,
    }
    try:
        info = queries.cell_at_point(conn, x, y, crs="wgs84", at=now)
    except NotFound:
        info = None  # out of the grid: the case is kept and flagged, the page says so
    if info is not None:
        out["cell"] = {
            "code": info.code,
            "url": f"/cells/{info.code}",
            "geometry": _cell_geojson(conn, info.id),
            "community": info.community[1],
            "street": info.street[1] if info.street else None,
        }
    code = form.get("category")
    if code:
        try:
            cat = queries.category(conn, code)
        except NotFound:
            raise InputError(t(f"没有类别 {code}。", f"Unknown category {code}."), field="category") from None
        out["category"] = {"code": cat.code, "name": category_name(cat)}
        if info is not None:
            unit_id, why = resolve(conn, cat.code, info.id)
            unit = queries.unit(conn, unit_id=unit_id) if unit_id is not None else None
            if unit:
                out["unit"] = dict(unit, kind_label=label(unit["kind"]))
            out["rule"] = _rule_text(conn, why)
        source = "supervisor" if actor.role == "supervisor" else form.get("source") or "public"
        urgency = form.get("urgency") if form.get("urgency") in URGENCIES else "normal"
        step = first_step(source)
        deadline = _calendar().add_working_time(now, step_limit(conn, cat.code, step, urgency))
        out["first_step"] = {"step": step, "label": step_label(step), "deadline": cn_time(deadline)}
    return out


def _map_bounds(conn: Connection, actor: Actor) -> list[float] | None:
    """[lon_min, lat_min, lon_max, lat_max] to open the map on: a supervisor's cells, else the districts."""
    if actor.role == "supervisor":
        box = map_queries.supervisor_extent(conn, actor.person_id) if actor.person_id is not None else None
    else:
        box = map_queries.district_extent(conn)
    return box.box() if box else None


def _leaflet() -> dict | None:
    """The local Leaflet JS and CSS URLs and the basemap, or None without gridmgr.web.assets: maps are an extra."""
    try:
        from gridmgr.web import assets
    except ModuleNotFoundError as exc:
        if exc.name != "gridmgr.web.assets":
            raise
        return None
    urls = assets.leaflet_urls()
    tiles = current_app.config["GRIDMGR"].get("GRIDMGR_TILE_URL") or ""
    return {"js": list(urls.js), "css": list(urls.css), "tiles": tiles}


def _report_page(actor: Actor, form=None, error: str | None = None, preview: dict | None = None, status: int = 200):
    with engine().connect() as conn:
        cats = queries.categories(conn)
        bounds = _map_bounds(conn, actor)
    order = sorted(cats, key=lambda c: (c.kind != "event", c.major_code, c.code))
    # the classes' names exist in Chinese only (data/categories.csv has no English for them)
    groups = [
        (f"{label(kind)} {major} {name}", list(items))
        for (kind, major, name), items in groupby(order, key=lambda c: (c.kind, c.major_code, c.major_name))
    ]
    sources = () if actor.role == "supervisor" else RECEIVER_SOURCES if actor.role == "receiver" else MANUAL_SOURCES
    return render_template(
        "cases/report.html",
        groups=groups,
        sources=sources,
        urgencies=URGENCIES,
        crs_choices=INPUT_CRS,
        form=form or {},
        error=error,
        preview=preview,
        bounds=bounds,
        leaflet=_leaflet(),
        max_photos=uploads.MAX_FILES,
    ), status


@bp.get("/new")
@roles_required(*REPORTERS)
def report_form():
    """The report form: where (map, coordinates or cell), what, how urgent, photos, note."""
    return _report_page(current_actor())


@bp.post("/new")
@roles_required(*REPORTERS)
def report_submit():
    """Report the case (or, for the preview button of browsers without scripts, show what would happen)."""
    actor, form = current_actor(), request.form
    if form.get("preview"):
        try:
            with engine().connect() as conn:
                return _report_page(actor, form, preview=_preview(conn, actor, form))
        except GridmgrError as exc:
            return _report_page(actor, form, error=_message(exc), status=400)
    names: list[str] = []
    try:
        with engine().begin() as conn:
            lon, lat, crs = _location(conn, form)
            for key in ("address", "description"):
                if len(form.get(key) or "") > MAX_LENGTH[key]:
                    raise InputError(_too_long(MAX_LENGTH[key]), field=key)
            names = uploads.save(request.files.getlist("photos"))
            new = NewCase(
                category=form.get("category") or "",
                lon=lon,
                lat=lat,
                source=_source(actor, form),
                description=(form.get("description") or "").strip(),
                address=(form.get("address") or "").strip(),
                urgency=form.get("urgency") or "normal",
                photos=tuple(names),
                crs=crs,
            )
            case_id = report(conn, actor, new, now=_now(), calendar=_calendar())
            case_no = queries.case_number(conn, case_id)
            mine = visible(conn, actor, case_id)
    except GridmgrError as exc:
        uploads.discard(names)
        return _report_page(actor, form, error=_message(exc), status=400)
    except BaseException:
        uploads.discard(names)
        raise
    flash(t(f"已上报案件 {case_no}。", f"Case {case_no} reported."))
    # a supervisor reporting outside their own cells does not see the case afterwards
    return redirect(url_for(".case_page", case_no=case_no) if mine else url_for(".queue", tab="mine"))


@bp.post("/preview")
@roles_required(*REPORTERS)
def preview():
    """JSON for the report form, before saving: the cell and the unit the dispatch rules would choose."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        payload = request.form
    try:
        with engine().connect() as conn:
            return jsonify({"ok": True, **_preview(conn, current_actor(), payload)})
    except GridmgrError as exc:
        status = 400 if exc.status < 500 else exc.status
        return jsonify({"ok": False, "error": _message(exc), "field": exc.field}), status


# ---------------------------------------------------------------- the queue


def _tabs_for(role: str) -> list[Tab]:
    return [t for t in TABS if t.roles is None or role in t.roles]


def _possible(actor: Actor, case: dict, action: str) -> bool:
    """Whether the workflow would accept this action from this actor (on a case already within their scope)."""
    row = {
        "case_no": case["case_no"],
        "status": case["status"],
        "source": case["source"],
        "extension_request": case["extension_request"],
        "reporter_user_id": None,
    }
    try:
        check(actor, row, TRANSITIONS[action], True, note="x", data={"limit": "1d", "unit_id": -1})
    except GridmgrError:
        return False
    return True


def _count(conn: Connection, actor: Actor, tab: Tab) -> tuple[int, str, dict]:
    """How many cases a tab holds for the actor, with its condition (scope included) and parameters."""
    where, params = desk.queue_condition(actor, tab.where)
    return desk.queue_count(conn, where, params), where, params


def _work_list(conn: Connection, actor: Actor, tab: Tab) -> tuple[list[dict], int]:
    """The cases of a work tab (within the actor's scope), at most QUEUE_LIMIT, and how many there are."""
    total, where, params = _count(conn, actor, tab)
    nos = desk.queue_case_nos(conn, where, params, _WORK_ORDER[tab.sort], QUEUE_LIMIT)
    if not nos:
        return [], total
    page = queries.list_cases(
        conn,
        actor,
        filters.CaseFilter(case_nos=tuple(nos)),
        now=_now(),
        calendar=_calendar(),
        page_size=len(nos),
        sort=tab.sort,
    )
    return page.items, total


def _dispatch_targets(conn: Connection, items: list[dict]) -> dict:
    """For the dispatch desk: each case's unit by the rules, and every unit for an override."""
    chosen = {c["case_no"]: resolve(conn, c["category"]["code"], (c["cell"] or {}).get("id")) for c in items}
    units = desk.all_units(conn)
    by_id = {u["id"]: u for u in units}
    return {"rule": {no: (by_id.get(uid), _rule_text(conn, why)) for no, (uid, why) in chosen.items()}, "units": units}


@bp.get("")
@login_required
def queue():
    """The current user's work, one tab per list their role works on, plus every case they may see."""
    actor = current_actor()
    tabs = _tabs_for(actor.role)
    tab = next((t for t in tabs if t.key == request.args.get("tab")), tabs[0])
    page, dispatch, error = None, None, None
    with engine().connect() as conn:
        counts = {t.key: _count(conn, actor, t)[0] for t in tabs if t.actions}
        if tab.key == "all":
            try:
                flt = filters.parse_filter(request.args)
                number, size = filters.parse_page(request.args)
                sort = request.args.get("sort") or filters.DEFAULT_SORT
                page = queries.list_cases(
                    conn, actor, flt, now=_now(), calendar=_calendar(), page=number, page_size=size, sort=sort
                )
            except InputError as exc:
                error = exc.message
            items, total = (page.items, page.total) if page else ([], 0)
        else:
            items, total = _work_list(conn, actor, tab)
        if tab.key == "dispatch" and items:
            dispatch = _dispatch_targets(conn, items)
    quick = {c["case_no"]: [a for a in tab.actions if _possible(actor, c, a)] for c in items}
    return render_template(
        "cases/queue.html",
        tabs=tabs,
        tab=tab,
        items=items,
        total=total,
        counts=counts,
        quick=quick,
        dispatch=dispatch,
        page=page,
        error=error,
        states=CASE_STATES,
        args=request.args,
        limit=QUEUE_LIMIT,
    )


# ---------------------------------------------------------------- one case


def _case_id(conn: Connection, actor: Actor, case_no: str) -> int:
    """The id of a case the actor may see; NotFound (404) alike for a missing case and one out of scope."""
    case_id = queries.case_id_for_number(conn, case_no)
    if case_id is None or not visible(conn, actor, case_id):
        raise NotFound(t(f"没有案件 {case_no}。", f"No case {case_no}."))
    return case_id


def _actions(actor: Actor, case: dict) -> list[str]:
    """The actions offered on the case page: the workflow's allowed actions, in its order.

    workflow.allowed_actions probes dispatch with the case's own unit, which a registered case does not
    have yet, so it never offers dispatch for one; the pure check with any unit says whether it may.
    """
    found = list(case["allowed_actions"])
    if "dispatch" not in found and _possible(actor, case, "dispatch"):
        found.append("dispatch")
    return [a for a in TRANSITIONS if a in found]


@bp.get("/<case_no>")
@login_required
def case_page(case_no: str):
    """A case: what, where, who, its state and deadline, photos, map, full history, and this user's actions."""
    actor = current_actor()
    dispatch = None
    with engine().connect() as conn:
        case_id = _case_id(conn, actor, case_no)
        case = queries.get_case(conn, actor, case_id, now=_now(), calendar=_calendar())
        actions = _actions(actor, case)
        cell_geometry = _cell_geojson(conn, case["cell"]["id"]) if case["cell"] else None
        if "dispatch" in actions:
            dispatch = _dispatch_targets(conn, [case])
    photos = list(dict.fromkeys([*case["photos"], *(p for e in case["events"] for p in e["photos"])]))
    return render_template(
        "cases/case.html",
        case=case,
        actions=actions,
        photos=photos,
        dispatch=dispatch,
        cell_geometry=cell_geometry,
        leaflet=_leaflet(),
        max_photos=uploads.MAX_FILES,
    )


def _action_data(conn: Connection, case_id: int, action: str, note: str | None, form) -> dict:
    """The data an action carries besides its note: an override unit for dispatch, a limit for an extension."""
    if action == "request_extension":
        return {"limit": (form.get("limit") or "").strip().lower()}
    if action != "dispatch" or not form.get("unit_id"):
        return {}  # a one-click dispatch: apply() asks the rules
    try:
        unit_id = int(form["unit_id"])
    except ValueError:
        raise InputError(t("请选择单位。", "Choose a unit."), field="unit_id") from None
    if queries.unit(conn, unit_id=unit_id) is None:
        raise InputError(t("没有这个单位。", "No such unit."), field="unit_id")
    category, cell_id = desk.category_and_cell(conn, case_id)
    ruled, why = resolve(conn, category, cell_id)
    if unit_id == ruled:
        return {"unit_id": unit_id, "dispatch_rule": why}
    if not note:
        raise InputError(
            t("不按规则派遣须说明理由。", "A reason is needed to dispatch to another unit than the rules choose."),
            field="note",
        )
    return {"unit_id": unit_id, "override": True, "rule_unit_id": ruled, "dispatch_rule": why}


@bp.post("/<case_no>/actions/<action>")
@login_required
def act(case_no: str, action: str):
    """Take one workflow action on a case; back to where the form came from, with what happened in a message."""
    actor = current_actor()
    if action not in TRANSITIONS:
        raise NotFound(t(f"没有操作 {action}。", f"No action {action}."))
    back = _back(url_for(".case_page", case_no=case_no))
    note = (request.form.get("note") or "").strip() or None
    names: list[str] = []
    try:
        with engine().begin() as conn:
            case_id = _case_id(conn, actor, case_no)
            if note and len(note) > MAX_NOTE:
                raise InputError(_too_long(MAX_NOTE), field="note")
            data = _action_data(conn, case_id, action, note, request.form)
            if action in PHOTO_ACTIONS:
                names = data["photos"] = uploads.save(request.files.getlist("photos"))
            out = apply(
                conn,
                actor,
                case_id,
                action,
                now=_now(),
                calendar=_calendar(),
                note=note,
                data=data,
                settings=workflow_settings(),
            )
            unit = queries.unit(conn, unit_id=out.data["unit_id"]) if action == "dispatch" else None
    except NotFound:
        uploads.discard(names)
        raise
    except GridmgrError as exc:
        uploads.discard(names)
        flash(f"{t('未完成', 'Not done')} — {action_label(action)}{t('：', ': ')}{one_language(exc.message)}", "error")
        return redirect(back)
    except BaseException:
        uploads.discard(names)
        raise
    done = (
        t(f"案件 {case_no}：", f"Case {case_no}: ")
        + action_label(action)
        + f"{t('，', ', ')}{label(out.from_state)} → {label(out.to_state)}"
    )
    if unit:
        done += f"{t('，', ', ')}{unit['name']}"
    flash(done + t("。", "."))
    return redirect(back)


@bp.get("/<case_no>/photos/<name>")
@login_required
def photo(case_no: str, name: str):
    """A photo of a case, only for users who may see the case, and only a photo that belongs to it."""
    actor = current_actor()
    with engine().connect() as conn:
        case_id = _case_id(conn, actor, case_no)
        owned = desk.has_photo(conn, case_id, name)
    if not owned:
        raise NotFound(t("没有这张照片。", "No such photo."))
    return uploads.send(name)
