"""The leader's pages: the dashboard, the accountability report (table, choropleth, downloads) and hot spots.

Views only adapt requests: figures come from `gridmgr.analytics.accountability.compute`, scores, ranks and the rounded
table from `gridmgr.analytics.report_files.table` (so the page, the CSV and the workbook show the same
numbers), hot spots from `gridmgr.analytics.hotspots.analyse`. Maps are folium maps on local assets
(`gridmgr.web.assets`): the cells come as vector tiles (`/tiles/cells/{z}/{x}/{y}.pbf`) and are
styled in the browser (static/js/reports-map.js) from a small code → value JSON of this module,
never from the grid as GeoJSON. Results are kept a few minutes per app (`_cached`): the map's JSON
call and the page then share one computation.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy.engine import Connection

from gridmgr.analytics import accountability, hotspots, indicators, report_files, scoring
from gridmgr.analytics.accountability import Period
from gridmgr.cases import queries
from gridmgr.errors import InputError
from gridmgr.maps import queries as map_queries
from gridmgr.people import audit
from gridmgr.web.auth import roles_required
from gridmgr.web.database import engine
from gridmgr.web.i18n import label, t
from gridmgr.web.views.api import request_today

bp = Blueprint("reports", __name__)

ROLES = ("leader", "sysadmin")
DEFAULT_LEVEL = "street"
DEFAULT_SCHEME = "jinniu"
CACHE_SECONDS = 300
CACHE_SIZE = 64
TILE_URL = "/tiles/cells/{z}/{x}/{y}.pbf"
# the columns the page shows by default (every column with ?columns=all); inventory columns always
MAIN_COLUMNS = (
    "group",
    "rank",
    "rank_change",
    "code",
    "name",
    "kind",
    "unit",
    "supervisor",
    "score",
    "score_change",
    "reported",
    "due_close",
    "closed",
    "closed_on_time",
    "overdue_open",
    "overdue_end",
    "close_rate",
    "closed_on_time_rate",
    "handle_rate",
    "handled_on_time_rate",
    "rework_rate",
    "overdue_open_rate",
    "extension_rate",
    "recurrence_rate",
)
MAP_COUNTS = ("reported", "valid_reported", "due_close", "closed", "overdue_open", "overdue_end", "recurrent")
HEADLINES = (
    ("reported", "上报案件", "cases reported", "count"),
    ("close_rate", "结案率", "closing rate", "rate"),
    ("closed_on_time_rate", "按期结案率", "on-time closing rate", "rate"),
    ("overdue_end", "当前超期", "overdue now", "count"),
)
CHILD = {"district": "street", "street": "community", "community": "cell"}
# sequential palette (light → dark), one colour per choropleth class
PALETTE = ("#fee8c8", "#fdbb84", "#fc8d59", "#e34a33", "#b30000")
SPOT_COLOURS = {
    "hot_99": "#b2182b",
    "hot_95": "#ef8a62",
    "hot_90": "#fddbc7",
    "ns": "#f7f7f7",
    "cold_90": "#d1e5f0",
    "cold_95": "#67a9cf",
    "cold_99": "#2166ac",
}
CHANGE_COLOURS = {
    "became_hot": "#d7301f",
    "stayed_hot": "#7f0000",
    "cooled": "#fdd49e",
    "became_cold": "#2b8cbe",
    "stayed_cold": "#084081",
    "warmed": "#a6bddb",
    "not_significant": "#f7f7f7",
}
HOT_MAPS = {
    "spot": ("冷热点 Gi*", "hot and cold spots (Gi*)"),
    "class": ("案件数分级", "cases per cell (classes)"),
    "change": ("较上期变化", "change on the previous period"),
}


# ------------------------------------------------------------------------------------------- helpers


def last_full_month(today: date) -> Period:
    """The calendar month before today's."""
    before = today.replace(day=1) - timedelta(days=1)
    return Period.month(before.year, before.month)


def _cached(key: tuple, build: Callable[[], Any]) -> Any:
    """A result kept CACHE_SECONDS per app (a page and its map's JSON call then compute once)."""
    store = current_app.extensions.setdefault("gridmgr.reports.cache", {})
    lock = current_app.extensions.setdefault("gridmgr.reports.lock", threading.Lock())
    now = time.monotonic()
    with lock:
        hit = store.get(key)
        if hit and now - hit[0] < CACHE_SECONDS:
            return hit[1]
    value = build()
    with lock:
        if len(store) >= CACHE_SIZE:
            for old in sorted(store, key=lambda k: store[k][0])[: len(store) - CACHE_SIZE + 1]:
                store.pop(old, None)
        store[key] = (now, value)
    return value


def _report(conn: Connection, period: Period, level: str, today: date, area: str | None) -> accountability.Report:
    return _cached(
        ("report", period.label, level, today, area),
        lambda: accountability.compute(conn, period=period, level=level, today=today, area=area),
    )


def _table(
    conn: Connection, period: Period, level: str, scheme: str, today: date, area: str | None
) -> tuple[report_files.Table, accountability.Report, accountability.Report]:
    current = _report(conn, period, level, today, area)
    previous = _report(conn, period.previous(), level, today, area)
    tbl = _cached(
        ("table", period.label, level, scheme, today, area),
        lambda: report_files.table(current, scheme=scheme, previous=previous),
    )
    return tbl, current, previous


def _period_choices(today: date) -> list[tuple[str, str]]:
    """Suggestions for the period box: months, weeks, quarters, years around today."""
    month = Period.month(today.year, today.month)
    out = [(month.label, t("本月", "this month"))]
    p = month
    for i in range(12):
        p = p.previous()
        out.append((p.label, t("上月", "last month") if i == 0 else t("月", "month")))
    week = Period.parse(f"{today.isocalendar()[0]}-W{today.isocalendar()[1]:02d}")
    out += [(week.label, t("本周", "this week")), (week.previous().label, t("上周", "last week"))]
    quarter = Period.parse(f"{today.year}Q{(today.month + 2) // 3}")
    out += [
        (quarter.label, t("本季度", "this quarter")),
        (quarter.previous().label, t("上季度", "last quarter")),
        (str(today.year), t("本年", "this year")),
        (str(today.year - 1), t("去年", "last year")),
        (f"{month.first.isoformat()}..{today.isoformat()}", t("日期范围", "range")),
    ]
    return out


def _areas(conn: Connection) -> list[dict]:
    """Districts and streets for the area filter."""
    return map_queries.areas(conn)


def _bounds(conn: Connection, area: str | None) -> list[list[float]] | None:
    """[[south, west], [north, east]] of the open cells (within `area`), or None for an empty grid."""
    box = map_queries.cell_extent(conn, area)
    return box.corners() if box else None


def _area_arg(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 15:
        raise InputError(
            t(
                f"范围代码无效：{value!r}，须为区县、街道或社区代码。",
                f"Bad area code {value!r}: a district, street or community code.",
            ),
            field="area",
        )
    return value


def _tiles_served() -> bool:
    """Whether the app serves the cell vector tiles (gridmgr.web.views.tiles registered)."""
    return any(str(rule.rule).startswith("/tiles/") for rule in current_app.url_map.iter_rules())


def _map(bounds, options_js: str, heat: list | None = None):
    """A folium map (local assets only) with the styled cell tiles and, optionally, a heat layer."""
    import folium
    from folium import plugins

    from gridmgr.web import assets

    tile_url = current_app.config["GRIDMGR"].get("GRIDMGR_TILE_URL")
    m = folium.Map(
        location=[39.9, 116.4] if bounds is None else None,
        zoom_start=13,
        tiles=None,
        prefer_canvas=True,
        control_scale=True,
    )
    if tile_url:
        folium.TileLayer(
            tile_url,
            attr=current_app.config["GRIDMGR"].get("GRIDMGR_TILE_ATTRIBUTION") or " ",
            name=t("底图", "basemap"),
        ).add_to(m)
    if bounds is not None:
        m.fit_bounds(bounds)
    if heat:
        plugins.HeatMap(
            heat, name=t("案件密度", "case density"), radius=18, blur=14, min_opacity=0.3, max_zoom=16
        ).add_to(m)
    if _tiles_served():
        plugins.VectorGridProtobuf(request.script_root + TILE_URL, label("cell"), options_js).add_to(m)
    if heat:
        folium.LayerControl(collapsed=True).add_to(m)
    assets.offline(m)
    root = m.get_root()
    root.render()
    return {
        "header": Markup(root.header.render()),
        "html": Markup(root.html.render()),
        "script": Markup(root.script.render()),
        "tiles": _tiles_served(),
    }


def _map_options(config: dict) -> str:
    """The VectorGrid options: built in the browser by reports-map.js from a JSON config (escaped for <script>)."""
    from jinja2.utils import htmlsafe_json_dumps

    text = {
        "noData": t("无数据", "no data"),
        "lowerBetter": t("数值越低越好", "lower is better"),
        "noValue": t("无值", "no value"),
        "loadFailed": t("地图数据加载失败：", "Map values failed to load: "),
    }
    return f"gridmgrChoropleth({htmlsafe_json_dumps(dict(config, text=text))})"


def _on_supervisor_map(values_url: str) -> str | None:
    """The supervisor map coloured from one of our code → value JSONs (its documented ?style= hook)."""
    if "maps.supervisor_map" not in current_app.view_functions:
        return None
    return url_for("maps.supervisor_map", style=values_url)


def _form_error(exc: InputError) -> str:
    return str(getattr(exc, "message", None) or exc)


# ------------------------------------------------------------------------------------------- reports


def _report_args(today: date) -> tuple[dict, list[str]]:
    """period, level, scheme, indicator, area of the request (defaults where missing or wrong) and errors."""
    args, errors = request.args, []
    out: dict[str, Any] = {
        "period": last_full_month(today),
        "level": DEFAULT_LEVEL,
        "scheme": DEFAULT_SCHEME,
        "indicator": "score",
        "area": None,
    }
    try:
        if (args.get("period") or "").strip():
            out["period"] = Period.parse(args["period"])
    except InputError as exc:
        errors.append(_form_error(exc))
    try:
        if (args.get("level") or "").strip():
            out["level"] = accountability.level_key(args["level"])
    except InputError as exc:
        errors.append(_form_error(exc))
    scheme = (args.get("scheme") or DEFAULT_SCHEME).strip()
    if scheme in scoring.presets():
        out["scheme"] = scheme
    else:
        presets = ", ".join(scoring.presets())
        errors.append(
            t(f"未知考核方案 {scheme!r}；可选：{presets}。", f"Unknown scheme {scheme!r}; presets: {presets}.")
        )
    indicator = (args.get("indicator") or "score").strip()
    if indicator in _indicator_keys():
        out["indicator"] = indicator
    else:
        errors.append(t(f"未知指标 {indicator!r}。", f"Unknown indicator {indicator!r}."))
    try:
        out["area"] = _area_arg(args.get("area"))
    except InputError as exc:
        errors.append(_form_error(exc))
    return out, errors


def _indicator_choices() -> list[tuple[str, str]]:
    """What the choropleth can show: the score, every rate, the main counts, the inventory."""
    out = [("score", t("得分", "score"))]
    out += [(r.key, t(r.zh, r.en)) for r in indicators.RATES]
    out += [(k, t(indicators.BY_KEY[k].zh, indicators.BY_KEY[k].en)) for k in MAP_COUNTS]
    out += [(d.key, t(d.zh, d.en)) for d in accountability.definitions() if d.kind == "inventory"]
    return out


def _indicator_keys() -> set[str]:
    return {k for k, _ in _indicator_choices()}


def _row_link(level: str, code: str | None, form: dict) -> str | None:
    """Where a row leads: a cell's page, or the next level down within an area."""
    if code is None:
        return None
    if level == "cell":
        return f"{request.script_root}/cells/{code}"
    if level in CHILD:
        return url_for(
            "reports.reports",
            period=form["period"].label,
            level=CHILD[level],
            scheme=form["scheme"],
            indicator=form["indicator"],
            area=code,
        )
    return None


@bp.get("/reports", endpoint="reports")
@roles_required(*ROLES)
def reports_page():
    """The accountability report: filters, the sortable table, a choropleth, downloads, definitions."""
    today = request_today()
    form, errors = _report_args(today)
    with engine().connect() as conn:
        tbl, current, _ = _table(conn, form["period"], form["level"], form["scheme"], today, form["area"])
        areas = _areas(conn)
        bounds = _bounds(conn, form["area"])
    scheme = scoring.load(form["scheme"])
    show_all = request.args.get("columns") == "all"
    inventory = {d.key for d in current.definitions if d.kind == "inventory"}
    shown = [i for i, c in enumerate(tbl.columns) if show_all or c.key in MAIN_COLUMNS or c.key in inventory]
    level = form["level"]
    query = {"period": form["period"].label, "level": level, "scheme": form["scheme"], "area": form["area"] or ""}
    map_config = {
        "valuesUrl": url_for("reports.report_values", indicator=form["indicator"], **query),
        "legend": "report-legend",
        "palette": PALETTE,
        "link": _link_pattern(level, form),
    }
    page_map = (
        _map(bounds, _map_options(map_config))
        if level in ("cell", "community", "street", "district", "unit", "supervisor", "duty_grid")
        else None
    )
    rows = [(row, _row_link(level, row[_col(tbl, "code")], form)) for row in tbl.rows[:-1]]
    return render_template(
        "reports/reports.html",
        form=form,
        errors=errors,
        table=tbl,
        shown=shown,
        rows=rows,
        total=tbl.rows[-1],
        show_all=show_all,
        report=current,
        levels=accountability.LEVELS,
        schemes=scoring.presets(),
        scheme=scheme,
        scheme_formula=report_files.scheme_formula(scheme),
        periods=_period_choices(today),
        areas=areas,
        indicators=_indicator_choices(),
        definitions=report_files.definitions(current, scheme),
        map=page_map,
        query=query,
        counting_rules=_counting_rules(),
        display=report_files.display,
        dash=report_files.NONE,
        big_map=_on_supervisor_map(map_config["valuesUrl"]) if level in ("cell", "community", "street") else None,
    )


def _col(tbl: report_files.Table, key: str) -> int:
    return next(i for i, c in enumerate(tbl.columns) if c.key == key)


def _link_pattern(level: str, form: dict) -> str | None:
    """The URL a click on the map leads to, with {code} for the clicked object's code."""
    if level == "cell":
        return request.script_root + "/cells/{code}"
    if level in CHILD:
        return (
            url_for(
                "reports.reports",
                period=form["period"].label,
                level=CHILD[level],
                scheme=form["scheme"],
                indicator=form["indicator"],
            )
            + "&area={code}"
        )
    return None


def _counting_rules() -> list[str]:
    """The counting rules of gridmgr.analytics.indicators' docstring, one paragraph per bullet."""
    doc = indicators.__doc__ or ""
    body = doc.split("How a case counts in a period", 1)[-1]
    out, current = [], []
    for line in body.splitlines()[1:]:
        s = line.strip()
        if s.startswith("* "):
            if current:
                out.append(" ".join(current))
            current = [s[2:]]
        elif s and current:
            current.append(s)
        elif not s and current:
            out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return [p.replace("**", "").replace("*", "") for p in out]


@bp.get("/reports/values.json")
@roles_required(*ROLES)
def report_values():
    """code → value of one indicator for the choropleth (keyed as the cell tiles can look it up), with classes."""
    today = request_today()
    form, errors = _report_args(today)
    if errors:
        return jsonify({"error": {"status": 400, "message": " ".join(errors)}}), 400
    level, key = form["level"], form["indicator"]
    with engine().connect() as conn:
        tbl, _, _ = _table(conn, form["period"], level, form["scheme"], today, form["area"])
        code_i, value_i = _col(tbl, "code"), _col(tbl, key)
        values = {r[code_i]: r[value_i] for r in tbl.rows[:-1] if r[code_i] is not None}
        out: dict[str, Any] = {"level": level, "indicator": key, "period": form["period"].label}
        if level in accountability.CODE_LENGTH:
            out.update(key="prefix", prefix=accountability.CODE_LENGTH[level])
        elif level == "unit":
            out.update(key="unit")  # the cells' territorial unit (a tile property)
        else:
            out.update(key="cell")
            values = _per_cell(conn, level, values)
    kind = next(c.kind for c in tbl.columns if c.key == key)
    present = {c: v for c, v in values.items() if v is not None}
    classes = hotspots.classify(present, k=len(PALETTE)) if present else hotspots.Classes("jenks", [], {})
    definition = indicators.BY_KEY.get(key)
    # `colors` and `breaks` (upper bounds) also make this JSON a source for the supervisor map's
    # cell styling hook (/map?style=…, gridmgr.styleCells in map-core.js)
    out.update(
        values=values,
        classes=classes.classes,
        breaks=classes.breaks,
        colors=list(PALETTE[: max(len(classes.breaks), 1)]),
        format="percent" if kind == "rate" else None,
        labels=[
            f"{b:g}" if kind in ("count", "int", "number") else report_files.display(b, kind) for b in classes.breaks
        ],
        better=getattr(definition, "better", "higher") if key != "score" else "higher",
        title=dict(_indicator_choices())[key],
    )
    resp = jsonify(out)
    resp.headers["Cache-Control"] = "private, max-age=60"
    return resp


def _per_cell(conn: Connection, level: str, values: dict) -> dict:
    """Supervisor and duty-grid values spread onto their open cells (a cell in two grids: the first by code)."""
    by = "supervisor" if level == "supervisor" else "duty_grid"
    return {cell: values.get(obj) for cell, obj in map_queries.duty_grid_cells(conn, by) if obj in values}


@bp.get("/reports/download.<fmt>")
@roles_required(*ROLES)
def download(fmt: str):
    """The report as CSV or XLSX (gridmgr.analytics.report_files), the same figures as the page."""
    if fmt not in ("csv", "xlsx"):
        raise InputError(t("只提供 CSV 或 XLSX。", "Download as csv or xlsx."), field="format")
    today = request_today()
    form, errors = _report_args(today)
    if errors:
        raise InputError(" ".join(errors))
    with engine().connect() as conn:
        current = _report(conn, form["period"], form["level"], today, form["area"])
        previous = _report(conn, form["period"].previous(), form["level"], today, form["area"])
    bk = report_files.book([current], scheme=form["scheme"], previous=[previous])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"report.{fmt}"
        report_files.write(bk, fmt, path)
        data = path.read_bytes()
    name = f"report-{form['level']}-{form['period'].label.replace('..', '_')}{'-' + form['area'] if form['area'] else ''}.{fmt}"
    with engine().begin() as conn:  # an export of figures is audited (who took which file)
        audit.write(conn, "export", current_user.who, subject=name, data={"bytes": len(data)})
    mime = (
        "text/csv; charset=utf-8"
        if fmt == "csv"
        else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    return Response(
        data,
        mimetype=mime,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store"},
    )


# ------------------------------------------------------------------------------------------- hot spots


def _hot_args(today: date) -> tuple[dict, list[str]]:
    args, errors = request.args, []
    out: dict[str, Any] = {"period": last_full_month(today), "category": None, "area": None, "show": "spot"}
    try:
        if (args.get("period") or "").strip():
            out["period"] = Period.parse(args["period"])
    except InputError as exc:
        errors.append(_form_error(exc))
    category = (args.get("category") or "").strip() or None
    if category is not None:
        try:
            hotspots.check_category(category)
            out["category"] = category
        except InputError as exc:
            errors.append(_form_error(exc))
    try:
        out["area"] = _area_arg(args.get("area"))
    except InputError as exc:
        errors.append(_form_error(exc))
    show = (args.get("show") or "spot").strip()
    if show in HOT_MAPS:
        out["show"] = show
    else:
        errors.append(
            t(f"未知地图 {show!r}：可选 spot、class 或 change。", f"Unknown map {show!r}: spot, class or change.")
        )
    return out, errors


def _hot(conn: Connection, form: dict, today: date) -> hotspots.HotSpots:
    return _cached(
        ("hot", form["period"].label, form["category"], form["area"], today),
        lambda: hotspots.analyse(
            conn, period=form["period"], category=form["category"], area=form["area"], today=today
        ),
    )


def _category_groups(conn: Connection) -> list[tuple[str, str, list]]:
    """(major-class value, label, categories) for the category filter."""
    cats = sorted(queries.categories(conn), key=lambda c: (c.kind != "event", c.major_code, c.code))
    groups: dict[tuple, list] = {}
    for c in cats:
        groups.setdefault((c.kind, c.major_code, c.major_name), []).append(c)
    # the classes' names exist in Chinese only (data/categories.csv)
    return [
        (("C" if kind == "component" else "") + major, f"{label(kind)} {major} {name}", items)
        for (kind, major, name), items in groups.items()
    ]


@bp.get("/hotspots", endpoint="hotspots")
@roles_required(*ROLES)
def hotspots_page():
    """Hot spots: density heat map, per-cell classes, Gi* hot and cold cells, change on the period before."""
    today = request_today()
    form, errors = _hot_args(today)
    with engine().connect() as conn:
        result = _hot(conn, form, today)
        heat = _cached(
            ("heat", form["period"].label, form["category"], form["area"], today),
            lambda: hotspots.heat_points(
                conn, period=form["period"], category=form["category"], area=form["area"], today=today
            ),
        )
        cats = _category_groups(conn)
        areas = _areas(conn)
        bounds = _bounds(conn, form["area"])
    query = {"period": form["period"].label, "category": form["category"] or "", "area": form["area"] or ""}
    config = {
        "valuesUrl": url_for("reports.hotspot_values", show=form["show"], **query),
        "legend": "hot-legend",
        "palette": PALETTE,
        "colours": {**SPOT_COLOURS, **CHANGE_COLOURS},
        "link": request.script_root + "/cells/{code}",
    }
    page_map = _map(bounds, _map_options(config), heat=heat)
    spot = result.values("spot")
    z, q = result.values("z"), result.values("q")
    flagged = sorted(
        (c for c, s in spot.items() if s != "ns"),
        key=lambda c: (not spot[c].startswith("hot"), q[c] if q[c] is not None else 1, c),
    )
    cells = [
        {
            "code": c,
            "spot": spot[c],
            "count": result.counts.get(c, 0),
            "z": z[c],
            "q": q[c],
            "change": result.change.get(c),
            "previous": result.previous.counts.get(c, 0) if result.previous else None,
        }
        for c in flagged
    ]
    cooled = sorted(c for c, ch in result.change.items() if ch == "cooled")
    changes = {k: sum(1 for v in result.change.values() if v == k) for k in hotspots.CHANGE_LABELS}
    return render_template(
        "reports/hotspots.html",
        form=form,
        errors=errors,
        result=result,
        cells=cells,
        cooled=cooled,
        summary=result.summary(),
        changes=changes,
        spot_labels=hotspots.SPOT_LABELS,
        change_labels=hotspots.CHANGE_LABELS,
        spot_colours=SPOT_COLOURS,
        change_colours=CHANGE_COLOURS,
        hot_maps=HOT_MAPS,
        cats=cats,
        areas=areas,
        periods=_period_choices(today),
        map=page_map,
        query=query,
        total=int(sum(result.counts.values())),
        cases_url=_cases_url,
        big_map=_on_supervisor_map(url_for("reports.hotspot_values", show=form["show"], colours=1, **query)),
    )


def _cases_url(code: str, period: Period) -> str:
    """The case list of one cell in one period."""
    return (
        url_for("cases.queue", tab="all", cell=code, period=period.label)
        if "cases.queue" in current_app.view_functions
        else f"{request.script_root}/cases?tab=all&cell={code}"
    )


@bp.get("/hotspots/values.json")
@roles_required(*ROLES)
def hotspot_values():
    """cell code → hot/cold class, choropleth class or change, for styling the cell tiles."""
    today = request_today()
    form, errors = _hot_args(today)
    if errors:
        return jsonify({"error": {"status": 400, "message": " ".join(errors)}}), 400
    with engine().connect() as conn:
        result = _hot(conn, form, today)
    show = form["show"]
    out: dict[str, Any] = {"key": "cell", "show": show, "period": form["period"].label, "title": t(*HOT_MAPS[show])}
    if show == "class":
        breaks = result.choropleth.breaks
        out.update(
            values=result.counts,
            classes=result.choropleth.classes,
            breaks=breaks,
            labels=[f"≤ {b:g}" for b in breaks],
            better="lower",
        )
        out.update(colors=list(PALETTE[: max(len(breaks), 1)]))
    else:
        names = hotspots.SPOT_LABELS if show == "spot" else hotspots.CHANGE_LABELS
        values = result.values(show)
        if request.args.get("colours"):  # CSS colours, as the supervisor map's styleCells hook takes them
            colours = SPOT_COLOURS if show == "spot" else CHANGE_COLOURS
            values = {c: colours[v] for c, v in values.items() if v not in ("ns", "not_significant")}
        out.update(values=values, categorical=True, legend=[[k, t(*pair)] for k, pair in names.items()])
    resp = jsonify(out)
    resp.headers["Cache-Control"] = "private, max-age=60"
    return resp


# ------------------------------------------------------------------------------------------- dashboard


def _svg_trend(points: list[tuple[str, float | None]], kind: str, width: int = 260, height: int = 70) -> Markup:
    """A small inline SVG line chart of monthly values (None: a gap), drawn on the server."""
    from markupsafe import escape

    known = [v for _, v in points if v is not None]
    pad, n = 6, len(points)
    if not known:
        return Markup(
            f'<svg class="trend" width="{width}" height="{height}" role="img" aria-label="no data">'
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#9ca3af">—</text></svg>'
        )
    lo, hi = min(known), max(known)
    if hi == lo:
        hi = lo + 1
    step = (width - 2 * pad) / max(n - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return pad + i * step, height - pad - (v - lo) / (hi - lo) * (height - 2 * pad)

    parts, run = [], []
    for i, (_, v) in enumerate(points):
        if v is None:
            if run:
                parts.append(run)
            run = []
        else:
            run.append(xy(i, v))
    if run:
        parts.append(run)
    lines = "".join(
        f'<polyline fill="none" stroke="#1d4ed8" stroke-width="2" points="'
        f'{" ".join(f"{x:.1f},{y:.1f}" for x, y in part)}"/>'
        for part in parts
    )
    dots = "".join(
        f'<circle cx="{xy(i, v)[0]:.1f}" cy="{xy(i, v)[1]:.1f}" r="2.5" fill="#1d4ed8">'
        f"<title>{escape(label)}: {escape(report_files.display(report_files.figure(v, kind), kind))}</title></circle>"
        for i, (label, v) in enumerate(points)
        if v is not None
    )
    first, last = escape(points[0][0]), escape(points[-1][0])
    return Markup(
        f'<svg class="trend" width="{width}" height="{height + 14}" viewBox="0 0 {width} {height + 14}" '
        f'role="img" aria-label="trend {first}–{last}">'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#e5e7eb"/>'
        f'{lines}{dots}<text x="{pad}" y="{height + 11}" font-size="10" fill="#6b7280">{first}</text>'
        f'<text x="{width - pad}" y="{height + 11}" font-size="10" fill="#6b7280" text-anchor="end">'
        f"{last}</text></svg>"
    )


def _best_worst(tbl: report_files.Table, n: int = 5) -> tuple[list[dict], list[dict]]:
    """The n best and n worst scored rows of a table (ranked rows only, total left out)."""
    recs = [r for r in tbl.records()[:-1] if r.get("score") is not None and r.get("code") is not None]
    recs.sort(key=lambda r: (-r["score"], str(r["code"])))
    return recs[:n], list(reversed(recs[-n:])) if len(recs) > n else list(reversed(recs))


@bp.get("/dashboard")
@roles_required(*ROLES)
def dashboard():
    """This month's headline figures against last month, a 12-month trend, best and worst units and streets."""
    today = request_today()
    month = Period.month(today.year, today.month)
    last = month.previous()
    months = [month]
    for _ in range(11):
        months.insert(0, months[0].previous())
    with engine().connect() as conn:
        totals = {p.label: _report(conn, p, "district", today, None).total.values for p in months}
        totals[last.previous().label] = _report(conn, last.previous(), "district", today, None).total.values
        units, _, _ = _table(conn, last, "unit", DEFAULT_SCHEME, today, None)
        streets, _, _ = _table(conn, last, "street", DEFAULT_SCHEME, today, None)
    now, before = totals[month.label], totals[last.label]
    headlines = []
    for key, zh, en, kind in HEADLINES:
        a, b = now.get(key), before.get(key)
        change = None if a is None or b is None else a - b
        headlines.append(
            {
                "key": key,
                "label": t(zh, en),
                "kind": kind,
                "value": report_files.display(report_files.figure(a, kind), kind),
                "change": None
                if change is None
                else (
                    report_files.display(report_files.figure(change, "pp"), "pp") + " pp"
                    if kind == "rate"
                    else f"{change:+d}"
                ),
                "better": None if not change or key == "reported" else (change > 0) == (kind == "rate"),
                "trend": _svg_trend([(p.label, totals[p.label].get(key)) for p in months], kind),
            }
        )
    best_units, worst_units = _best_worst(units)
    best_streets, worst_streets = _best_worst(streets)
    return render_template(
        "reports/dashboard.html",
        month=month,
        last=last,
        today=today,
        headlines=headlines,
        months=months,
        best_units=best_units,
        worst_units=worst_units,
        best_streets=best_streets,
        worst_streets=worst_streets,
        scheme=scoring.load(DEFAULT_SCHEME),
        display=report_files.display,
        score_kind="score",
    )
