"""The supervisor map (/map) and the cell pages (/cells/<code>): folium over vector tiles, small JSON calls.

The pages stay small whatever the data (DESIGN.md "Web"): cells and the thematic layers reach the
browser as vector tiles (`/tiles/<layer>/{z}/{x}/{y}.pbf`, gridmgr.web.views.tiles); everything else the
map shows comes from the bounded JSON calls below, made as the user moves or clicks. The HTML holds
the map's scaffolding, the layers' styles from the registry and a view (four numbers), never a cell
code list, a case or a geometry of the grid. What the page's scripts do is in web/static/js/map-*.js.

    GET /map                         the map (?q= search on opening, ?style= a code → value JSON to colour
                                     the cells with: see map-core.js, `gridmgr.styleCells`)
    GET /map/cell?lat=&lon= | ?code= the side panel of a cell: hierarchy, units, people, inventory, open cases
    GET /map/labels?bbox=            the codes of the cells in view with a label point (≤ LABEL_LIMIT)
    GET /map/search?q=               a case number, cell or region code, coordinates, or a region name
    GET /map/mine                    the logged-in supervisor's cells: codes and bounds
    GET /map/features/<layer>/<id>   a feature's popup: title, fields, link (text only; the script escapes)
    GET /map/values/<metric>         {code: value} of a layer metric per open cell (a choropleth source)
    GET /cells/<code>                the cell page
    GET /cells/<code>/indicators     its indicators this month (an HTML fragment the page loads)

Clicks: the vector tile layers are not interactive (Leaflet.VectorGrid 1.3.0's own click handling
needs web/static/js/vectorgrid-click.js, and stacked interactive canvases hide each other's
features); the page's map-level click handler hit-tests the drawn tiles for a feature and, when
there is none, asks `/map/cell` which cell covers the point (gridmgr.grid.assign's one rule).
Every reply escapes user text (queries.to_json); every read of a case applies the actor's scope.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import folium
from flask import Blueprint, abort, current_app, render_template, request, url_for
from folium import plugins
from markupsafe import Markup
from sqlalchemy.engine import Connection

from gridmgr.analytics import accountability
from gridmgr.cases import filters, queries
from gridmgr.cases.workflow import TERMINAL, Actor
from gridmgr.codes import CASE_STATES, TZ
from gridmgr.errors import CoordinateError, InputError, NotFound
from gridmgr.geo import crs as crsmod
from gridmgr.grid.regions import city_extent
from gridmgr.maps import queries as map_queries
from gridmgr.maps import tiles
from gridmgr.plugins import registry
from gridmgr.web import assets
from gridmgr.web.auth import current_actor, login_required
from gridmgr.web.database import engine
from gridmgr.web.i18n import label, name, one_language, t
from gridmgr.web.views.api import calendar, json_response, query_float, request_now, request_today

bp = Blueprint("maps", __name__)

LABEL_ZOOM = 17  # cell codes are drawn from this zoom (the last digits), in full from FULL_LABEL_ZOOM
FULL_LABEL_ZOOM = 18
LABEL_LIMIT = 600  # codes per /map/labels answer (a 1920×1080 screen at z17 shows ~150 demo cells)
MAX_ZOOM = 19
PANEL_CASES = 10  # open cases listed in the side panel
CELL_PAGE_ROWS = 50  # features per layer, open cases, on the cell page
RECENT_DAYS = 30  # "recently closed" on the cell page
DEFAULT_VIEW = ((39.86, 116.36), (39.98, 116.45))  # Dongcheng, until a district is loaded
CELL_CODE = re.compile(r"[0-9]{15}")
# coordinates typed in the search box: two numbers, optionally a CRS name (wgs84, gcj02, bd09, cgcs2000)
COORDS = re.compile(
    r"\s*(-?[0-9]+(?:\.[0-9]+)?)\s*[,，\s]\s*(-?[0-9]+(?:\.[0-9]+)?)\s*(?:[,，\s]\s*([a-z0-9:]+))?\s*", re.IGNORECASE
)


# ------------------------------------------------------------------------------------------- helpers


def _open_states() -> tuple[str, ...]:
    return tuple(s for s in CASE_STATES if s not in TERMINAL)


def case_url(case_no: str) -> str:
    """The page of a case (gridmgr.web.views.cases)."""
    return f"{request.script_root}/cases/{quote(case_no, safe='')}"


def local_time(moment: datetime | None) -> str:
    """A moment as local time YYYY-MM-DD HH:MM (— for none)."""
    return moment.astimezone(TZ).strftime("%Y-%m-%d %H:%M") if moment else "—"


def _local_path(value: str | None) -> str | None:
    """A path on this app (the ?style= source), or None: never another site."""
    value = (value or "").strip()
    return value if re.match(r"^/(?![/\\])[^\s\"'<>]*$", value) else None


def _bounds(row) -> list[list[float]] | None:
    """[[south, west], [north, east]] from (xmin, ymin, xmax, ymax), or None."""
    if row is None or row[0] is None:
        return None
    x0, y0, x1, y1 = (round(float(v), 7) for v in row[:4])  # 1 cm: no float noise in the page
    return [[y0, x0], [y1, x1]]


def supervisor_extent(conn: Connection, actor: Actor) -> list[list[float]] | None:
    """The bounds of a supervisor's open cells, or None (other roles, no duty grid)."""
    if actor.role != "supervisor" or actor.person_id is None:
        return None
    box = map_queries.supervisor_extent(conn, actor.person_id)
    return box.corners() if box else None


def district_view(conn: Connection) -> list[list[float]]:
    """Where the map opens for all but supervisors: the districts, else the open cells, else Dongcheng."""
    box = map_queries.district_extent(conn) or map_queries.cell_extent(conn)
    return box.corners() if box else [list(DEFAULT_VIEW[0]), list(DEFAULT_VIEW[1])]


# ------------------------------------------------------------------------------------------- layers


def _kind(layer: registry.Layer) -> str:
    """point, line or polygon; mixed for a layer of several (parking spaces: points or polygons)."""
    kinds = {"POINT": "point", "LINESTRING": "line", "POLYGON": "polygon"}
    found = {kinds[t.replace("MULTI", "")] for t in layer.geometry_types if t.replace("MULTI", "") in kinds}
    return found.pop() if len(found) == 1 else "mixed"


DRAW_ORDER = {"polygon": 0, "mixed": 1, "line": 2, "point": 3}


def map_layers() -> list[dict]:
    """The thematic tile layers, bottom to top (areas, lines, points; cases last), with their registry style.

    `flags` are the layer's derived booleans (a billboard's `expired`; the cases' `overdue`): a feature
    with one of them true is drawn to stand out. `show: False` in a layer's style keeps it off at first.
    """
    served = set(tiles.tile_layers())
    out = []
    for layer in registry.layers(spatial=True):
        if layer.name not in served:
            continue
        flags = ["overdue"] if layer.name == tiles.CASES else list(layer.derived)
        out.append(
            {
                "name": layer.name,
                "title": t(layer.title_zh, layer.title_en),
                "kind": _kind(layer),
                "style": {k: v for k, v in layer.style.items() if k != "by_status"},
                "byStatus": [
                    {"key": k, "label": label(k), "color": c} for k, c in layer.style.get("by_status", {}).items()
                ],
                "flags": [{"key": f, "label": _flag(f)} for f in flags],
                "show": bool(layer.style.get("show", True)),
                "minZoom": 0 if layer.is_point else tiles.LAYER_MIN_ZOOM,
            }
        )
    out.sort(key=lambda la: (la["name"] == tiles.CASES, DRAW_ORDER[la["kind"]]))
    return out


def _flag(key: str) -> str:
    """A derived flag's label: a case's `overdue` (超期) or a layer's glossary key."""
    return t("超期", "overdue") if key == "overdue" else label(key)


def page_text() -> dict[str, str]:
    """The map scripts' own words (map-core.js, map-supervisor.js, map-cell.js: `G.t(key)`) in the page's language."""
    return {
        "legend": t("图例", "Legend"),
        "cells": label("cell"),
        "myCells": t("我的网格", "my cells"),
        "otherStates": t("其他状态", "other states"),
        "colour": t("着色", "colour"),
        "caseWindow": t(
            "案件：近 {days} 天；缩放 {zoom} 级以下为数量", "cases: last {days} days; counts below zoom {zoom}"
        ),
        "here": t("此处 {n} 个", "{n} here"),
        "zoomIn": t("放大查看", "Zoom in"),
        "loading": t("加载中…", "Loading…"),
        "casePage": t("案件详情 →", "Case page →"),
        "itsCell": t("所在网格 →", "Its cell →"),
        "colouringFailed": t("着色失败：", "Colouring failed: "),
        "cell": label("cell"),
        "units": label("unit"),
        "people": t("人员", "People"),
        "noneAssigned": t("未指定", "none assigned"),
        "dutyGrids": label("duty_grid") + t("：", ": "),
        "inventory": t("清单", "Inventory"),
        "openCases": t("未结案件（{n}）", "Open cases ({n})"),
        "overdue": t("超期", "overdue"),
        "noneYouCanSee": t("无", "none you can see"),
        "cellPage": t("网格详情 →", "Cell page →"),
        "noCellHere": t("此处不在任何网格内。", "No cell here."),
        "mineCount": t("我的网格：{n}", "my cells: {n}"),
        "noDutyGrid": t("您没有责任网格。", "You have no duty grid."),
        "searchPlaceholder": t("网格编码 / 案件编号 / 坐标", "cell code, case no., lon,lat"),
        "search": t("搜索", "Search"),
        "myCellsButton": t("我的网格", "My cells"),
        "allCases": t("近 {days} 天全部", "all, last {days} days"),
        "open": t("未结", "open"),
        "thisMonth": t("本月", "this month"),
        "thisYear": t("本年", "this year"),
        "casesFilter": t("案件", "Cases"),
        "colourCells": t("网格着色", "Colour cells"),
        "none": t("无", "none"),
        "indicatorsFailed": t("指标暂不可用：", "Indicators unavailable: "),
    }


def tile_url(layer: str) -> str:
    """The Leaflet URL template of a layer's vector tiles."""
    return f"{request.script_root}/tiles/{layer}/{{z}}/{{x}}/{{y}}.pbf"


def _page_config(**extra: Any) -> dict:
    """What the page's scripts need: endpoints, zoom thresholds, layer styles. Small and data-free."""
    root = request.script_root
    return {
        "tileUrl": f"{root}/tiles/{{layer}}/{{z}}/{{x}}/{{y}}.pbf",
        "cellLayer": tiles.CELLS,
        "caseLayer": tiles.CASES,
        "cellZoom": tiles.CELL_ZOOM,
        "communityZoom": tiles.COMMUNITY_ZOOM,
        "casePointZoom": tiles.CASE_POINT_ZOOM,
        "labelZoom": LABEL_ZOOM,
        "fullLabelZoom": FULL_LABEL_ZOOM,
        "maxZoom": MAX_ZOOM,
        "caseWindowDays": tiles.DEFAULT_WINDOW.days,
        "openStates": list(_open_states()),
        "layers": map_layers(),
        "api": {  # the last four are prefixes: the script appends layer/id, metric, code, case number
            "cell": url_for("maps.cell_panel"),
            "labels": url_for("maps.labels"),
            "search": url_for("maps.search"),
            "mine": url_for("maps.mine"),
            "feature": f"{root}/map/features/",
            "values": f"{root}/map/values/",
            "cellPage": f"{root}/cells/",
            "casePage": f"{root}/cases/",
        },
        "metrics": [
            {"name": m.name, "label": t(m.label_zh, m.label_en)} for _, m in accountability.inventory_metrics()
        ],
        "text": page_text(),
        **extra,
    }


def build_map(bounds: list[list[float]], *, layer_control: bool = True) -> tuple[folium.Map, dict[str, str]]:
    """A folium map over the cells and every thematic layer as vector tiles; JS names of map and layers.

    No basemap unless GRIDMGR_TILE_URL is set (the intranet has no internet). The tile layers take
    their options from `gridmgr.tileOptions(layer)` (map-core.js): styles are functions there.
    """
    centre = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
    # with tiles=None folium drops max_zoom: give Leaflet's maxZoom directly
    m = folium.Map(location=centre, zoom_start=14, tiles=None, prefer_canvas=True, maxZoom=MAX_ZOOM, control_scale=True)
    # jQuery is only for folium's own popups, which these pages do not use (their popups are DOM built)
    m.default_js = [(name, url) for name, url in m.default_js if name != "jquery"]
    basemap = current_app.config["GRIDMGR"].get("GRIDMGR_TILE_URL")
    if basemap:
        folium.TileLayer(
            basemap,
            attr=t("底图", "basemap"),
            name=t("底图", "basemap"),
            max_zoom=MAX_ZOOM,
            overlay=False,
            control=layer_control,
        ).add_to(m)
    names = {}
    grid = plugins.VectorGridProtobuf(tile_url(tiles.CELLS), label("cell"), f"gridmgr.tileOptions({tiles.CELLS!r})")
    grid.add_to(m)
    names[tiles.CELLS] = grid.get_name()
    for layer in map_layers():
        vg = plugins.VectorGridProtobuf(
            tile_url(layer["name"]), layer["title"], f"gridmgr.tileOptions({layer['name']!r})", show=layer["show"]
        )
        vg.add_to(m)
        names[layer["name"]] = vg.get_name()
    if layer_control:
        folium.LayerControl(collapsed=False, position="topright").add_to(m)
    m.fit_bounds(bounds)
    return assets.offline(m), names


def map_parts(m: folium.Map) -> dict[str, Markup]:
    """The folium map's head, body and script, for a Jinja page (PITFALLS.md: no nested document)."""
    root = m.get_root()
    root.render()
    return {
        "header": Markup(root.header.render()),
        "html": Markup(root.html.render()),
        "script": Markup(root.script.render()),
        "name": m.get_name(),
    }


# ------------------------------------------------------------------------------------------- the map


@bp.get("/map")
@login_required
def supervisor_map():
    """The supervisor map: cells and layers as tiles, legend, search, my cells, the cell panel."""
    actor = current_actor()
    with engine().connect() as conn:
        mine = supervisor_extent(conn, actor)
        view = mine or district_view(conn)
    m, names = build_map(view)
    config = _page_config(
        mode="supervisor",
        mapName=m.get_name(),
        layerNames=names,
        hasMine=mine is not None,
        style=_local_path(request.args.get("style")),
        query=(request.args.get("q") or "").strip()[:100],
    )
    return render_template("maps/map.html", map=map_parts(m), config=Markup(queries.to_json(config)))


# ------------------------------------------------------------------------------------------- JSON calls


def inventory(conn: Connection, cell_id: int) -> list[dict]:
    """The layers' per-cell metrics (gridmgr.plugins.registry.Metric) for one cell, as reports count them."""
    metrics = accountability.inventory_metrics()
    if not metrics:
        return []
    cols = ", ".join(
        f'(SELECT {m.sql} FROM {layer.table.name} f WHERE f.cell_id = :cell) AS "{m.name}"' for layer, m in metrics
    )
    row = map_queries.rows(conn, f"SELECT {cols}", {"cell": cell_id}, request_today())[0]
    return [
        {"name": m.name, "label": t(m.label_zh, m.label_en), "layer": layer.name, "value": int(row[m.name] or 0)}
        for layer, m in metrics
    ]


def open_cases(conn: Connection, actor: Actor, code: str, limit: int) -> tuple[list[dict], int]:
    """The newest open cases of a cell the actor may see (at most `limit`), and how many there are."""
    page = queries.list_cases(
        conn,
        actor,
        filters.CaseFilter(cells=(code,), statuses=_open_states()),
        now=request_now(),
        calendar=calendar(),
        page_size=limit,
        sort="-reported_at",
    )
    return page.items, page.total


def _case_brief(case: dict) -> dict:
    return {
        "id": case["id"],
        "case_no": case["case_no"],
        "status": case["status"],
        "status_label": label(case["status"]),
        "category": name(case["category"]["name"], case["category"]["name_en"]),
        "overdue": case.get("overdue", False),
        "reported_at": case["reported_at"],
        "description": (case.get("description") or "")[:80],
    }


def panel(conn: Connection, actor: Actor, info) -> dict:
    """Everything the side panel shows about one cell (CellInfo), as plain data."""
    out = queries.cell_dict(info)
    for u in out["units"]:
        u["duty_label"] = label(u["duty"])
    for p in out["people"]:
        p["post_label"] = label(p["post"])
    cases, total = open_cases(conn, actor, info.code, PANEL_CASES)
    out["inventory"] = inventory(conn, info.id)
    out["open_cases"] = {"total": total, "items": [_case_brief(c) for c in cases]}
    out["url"] = url_for("maps.cell_page", code=info.code)
    return out


@bp.get("/map/cell")
@login_required
def cell_panel():
    """The side panel of the cell covering `?lat=&lon=` (WGS84), or of `?code=` (404 for no such cell).

    A click outside the grid is an ordinary answer, not an error: {"code": null, "message": …}.
    """
    actor = current_actor()
    with engine().connect() as conn:
        if request.args.get("code"):
            info = _cell(conn, request.args["code"])
        else:
            lon, lat = query_float("lon"), query_float("lat")
            try:
                info = queries.cell_at_point(conn, lon, lat, at=request_now())
            except (NotFound, CoordinateError) as exc:
                # the core's reason is written in English: Chinese pages keep to the short answer
                return json_response(
                    {"code": None, "message": t("此处不在任何网格内。", f"No cell here: {one_language(exc.message)}")}
                )
        return json_response(panel(conn, actor, info))


@bp.get("/map/labels")
@login_required
def labels():
    """Codes and label points of the open cells in `?bbox=w,s,e,n`; `truncated` past LABEL_LIMIT."""
    box = filters.parse_bbox(request.args.get("bbox") or "")
    with engine().connect() as conn:
        rows = map_queries.cell_labels(conn, box, LABEL_LIMIT + 1)
    return json_response(
        {
            "cells": [[r.code, round(r.lat, 6), round(r.lon, 6)] for r in rows[:LABEL_LIMIT]],
            "truncated": len(rows) > LABEL_LIMIT,
        }
    )


@bp.get("/map/mine")
@login_required
def mine():
    """The logged-in supervisor's open cells: {codes, bounds}; empty for other roles."""
    actor = current_actor()
    if actor.role != "supervisor" or actor.person_id is None:
        return json_response({"codes": [], "bounds": None})
    with engine().connect() as conn:
        codes = map_queries.supervisor_cell_codes(conn, actor.person_id)
        bounds = supervisor_extent(conn, actor)
    return json_response({"codes": codes, "bounds": bounds})


def _cell(conn: Connection, code: str):
    """The current cell with this code (a malformed code is no cell either: 404)."""
    code = code.strip()
    if not CELL_CODE.fullmatch(code):
        raise NotFound(t(f"没有网格 {code}。", f"No cell {code}."))
    try:
        return queries.cell_by_code(conn, code, request_now())
    except NotFound:
        raise NotFound(t(f"没有现行网格 {code}。", f"No current cell {code}.")) from None


def _region(conn: Connection, where: str, params: dict) -> dict | None:
    row = map_queries.find_region(conn, where, params)
    if row is None:
        return None
    return {
        "kind": "region",
        "label": f"{label(row.level)} {row.name} {row.code}",
        "code": row.code,
        "bounds": _bounds(row[3:]),
    }


def search_place(conn: Connection, actor: Actor, q: str) -> dict:
    """Where a search box entry is: a case number, a cell or region code, coordinates, or a region name."""
    q = q.strip()
    if not q:
        raise InputError(
            t("请输入网格编码、案件编号或坐标。", "Type a cell code, case number or coordinates."), field="q"
        )
    case_id = queries.case_id_for_number(conn, q)
    if case_id is not None:
        try:
            case = queries.get_case(
                conn, actor, case_id, now=request_now(), calendar=calendar(), events=False, actions=False
            )
        except NotFound:
            case = None  # out of scope: the same answer as no case
        if case is not None:
            return {
                "kind": "case",
                "label": t("案件 ", "Case ") + case["case_no"],
                "case": _case_brief(case),
                "point": [case["lat"], case["lon"]],
                "url": case_url(case["case_no"]),
            }
    if CELL_CODE.fullmatch(q):
        info = _cell(conn, q)
        box = map_queries.cell_box(conn, info.id)
        return {
            "kind": "cell",
            "label": f"{label('cell')} {info.code}",
            "code": info.code,
            "bounds": box.corners() if box else None,
            "url": url_for("maps.cell_page", code=info.code),
        }
    if re.fullmatch(r"[0-9]{6}|[0-9]{9}|[0-9]{12}", q):
        found = _region(conn, "code = :q", {"q": q})
        if found:
            return found
    m = COORDS.fullmatch(q)
    if m:
        return _coordinates(conn, float(m[1]), float(m[2]), (m[3] or "wgs84").lower())
    if not re.fullmatch(r"[0-9 .,，-]+", q):
        like = re.sub(r"([%_\\])", r"\\\1", q)
        found = _region(conn, "name = :q OR name LIKE :like", {"q": q, "like": f"%{like}%"})
        if found:
            return found
    raise NotFound(
        t(
            f"没有找到“{q}”：请输入15位网格编码、案件编号、社区或街道名称，或坐标（如 116.41,39.91）。",
            f"Nothing found for {q!r}: try a 15-digit cell code, a case number, a community or street "
            "name, or coordinates such as 116.41,39.91.",
        )
    )


def _coordinates(conn: Connection, a: float, b: float, crs: str) -> dict:
    """A point typed as lon,lat (or lat,lon: in China the two ranges do not overlap), in any supported CRS."""
    lon, lat = (b, a) if (-90 <= a <= 90 and abs(b) > 90) or (0 <= a <= 56 and 70 <= b <= 140) else (a, b)
    try:
        xs, ys = crsmod.to_wgs84([lon], [lat], crs)
        crsmod.check_points(xs, ys, city_extent(conn), records=["the point"])
    except (CoordinateError, InputError, ValueError) as exc:
        raise InputError(
            f"{t('坐标无效', 'Invalid coordinates')} — {one_language(getattr(exc, 'message', str(exc)))}", field="q"
        ) from None
    x, y = float(xs[0]), float(ys[0])
    out = {"kind": "point", "label": f"{y:.6f}, {x:.6f}", "point": [y, x]}
    try:
        info = queries.cell_at_point(conn, x, y, at=request_now())
        out.update(code=info.code, url=url_for("maps.cell_page", code=info.code))
    except NotFound:
        out["label"] += t("（网格外）", " (outside the grid)")
    return out


@bp.get("/map/search")
@login_required
def search():
    """The search box (see `search_place`); nothing found is an answer too: {"kind": null, "message": …}."""
    actor = current_actor()
    with engine().connect() as conn:
        try:
            return json_response(search_place(conn, actor, (request.args.get("q") or "")[:100]))
        except NotFound as exc:
            return json_response({"kind": None, "message": exc.message})


def _popup_columns(layer: registry.Layer) -> list[tuple[registry.Field, str]]:
    """(field, SQL on `f`) of a layer's popup fields; a reference stored as an id shows its key."""
    out = []
    for f in layer.fields:
        if not f.popup:
            continue
        if f.ref and f.ref[2].endswith("_id"):
            table, key, stored = f.ref
            out.append((f, f"(SELECT r.{key} FROM {table} r WHERE r.id = f.{stored})"))
        else:
            out.append((f, f"f.{f.column}"))
    return out


def _show(f: registry.Field, value: Any) -> str | None:
    """A popup value as text (escaping is the page's job: it only ever sets textContent)."""
    if value is None or value == "" or value == []:
        return None
    if f.type == "choice":
        return label(value, f.labels)
    if f.type == "bool":
        return t("是", "yes") if value else t("否", "no")
    if isinstance(value, datetime):
        return value.astimezone(TZ).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "、".join(map(str, value))
    return str(value)


def layer_features(conn: Connection, layer: registry.Layer, where: str, params: dict, limit: int) -> list[dict]:
    """Features of a layer as {id, cell, fields: [{label, value}], flags}: its popup fields, derived flags."""
    cols = [f'{sql} AS "{f.name}"' for f, sql in _popup_columns(layer)]
    cols += [f'({sql}) AS "{name}"' for name, sql in layer.derived.items()]
    sql = (
        f"SELECT f.id, g.code AS cell_code, ST_Y(ST_PointOnSurface(f.geom)) AS lat, "
        f"ST_X(ST_PointOnSurface(f.geom)) AS lon{''.join(', ' + c for c in cols)} "
        f"FROM {layer.table.name} f LEFT JOIN grid_cells g ON g.id = f.cell_id WHERE {where} "
        f"ORDER BY f.id LIMIT :limit"
    )
    out = []
    for row in map_queries.rows(conn, sql, {**params, "limit": limit}, request_today()):
        fields = [
            {"label": name(f.label_zh, f.label_en), "value": _show(f, row[f.name])} for f, _ in _popup_columns(layer)
        ]
        flags = [_flag(n) for n in layer.derived if row[n] is True]
        out.append(
            {
                "id": row["id"],
                "cell": row["cell_code"],
                "lat": row["lat"],
                "lon": row["lon"],
                "fields": [x for x in fields if x["value"] is not None],
                "flags": flags,
                "values": [x["value"] for x in fields],
            }
        )
    return out


def case_popup(conn: Connection, actor: Actor, case_id: int) -> dict:
    """A case's popup: the case as its page shows it when in scope, else only what the tiles carry."""
    try:
        case = queries.get_case(
            conn, actor, case_id, now=request_now(), calendar=calendar(), events=False, actions=False
        )
    except NotFound:
        row = map_queries.case_summary(conn, case_id)
        if row is None:
            raise
        return {
            "layer": tiles.CASES,
            "title": t("案件", "Case"),
            "id": case_id,
            "fields": [
                {"label": t("类别", "Category"), "value": name(row.name, row.name_en) if row.name else None},
                {"label": t("状态", "Status"), "value": label(row.status)},
            ],
            "flags": [],
            "note": t("不在您的责任范围内", "Not in your cells or unit"),
            "url": None,
        }
    category = name(case["category"]["name"], case["category"]["name_en"])
    fields = [
        (t("案件编号", "Case number"), case["case_no"]),
        (t("类别", "Category"), category),
        (t("状态", "Status"), label(case["status"])),
        (t("上报时间", "Reported"), local_time(case["reported_at"])),
        (t("地址", "Address"), case["address"]),
        (t("问题描述", "Description"), case["description"]),
        (label("cell"), case["cell"]["code"] if case["cell"] else None),
    ]
    return {
        "layer": tiles.CASES,
        "title": t("案件 ", "Case ") + case["case_no"],
        "id": case_id,
        "fields": [{"label": k, "value": v} for k, v in fields if v],
        "flags": [_flag("overdue")] if case.get("overdue") else [],
        "url": case_url(case["case_no"]),
    }


@bp.get("/map/features/<layer>/<int:fid>")
@login_required
def feature(layer: str, fid: int):
    """One feature's popup (fields marked `popup` in the registry); cases through the actor's scope."""
    actor = current_actor()
    spec = registry.get(layer)
    if not spec.spatial:
        raise NotFound(f"no map layer {layer!r}")
    with engine().connect() as conn:
        if layer == tiles.CASES:
            return json_response(case_popup(conn, actor, fid))
        found = layer_features(conn, spec, "f.id = :id", {"id": fid}, 1)
    if not found:
        raise NotFound(t(f"{spec.title_zh} {fid} 不存在。", f"No {spec.title_en} {fid}."))
    item = found[0]
    title = f"{t(spec.title_zh, spec.title_en)} {item['fields'][0]['value'] if item['fields'] else fid}"
    url = url_for("maps.cell_page", code=item["cell"], _anchor=f"layer-{layer}") if item["cell"] else None
    return json_response(
        {
            "layer": layer,
            "title": title,
            "id": fid,
            "fields": item["fields"],
            "flags": item["flags"],
            "cell": item["cell"],
            "url": url,
        }
    )


@bp.get("/map/values/<metric>")
@login_required
def values(metric: str):
    """{title, values: {cell code: value}} of one layer metric over the open cells (cells with 0 left out)."""
    found = [(layer, m) for layer, m in accountability.inventory_metrics() if m.name == metric]
    if not found:
        raise NotFound(
            f"unknown metric {metric!r}; known: {', '.join(m.name for _, m in accountability.inventory_metrics())}"
        )
    layer, m = found[0]
    sql = (
        f"SELECT g.code, {m.sql} AS v FROM {layer.table.name} f JOIN grid_cells g ON g.id = f.cell_id "
        f"WHERE g.valid_to IS NULL GROUP BY g.code"
    )
    with engine().connect() as conn:
        rows = [(r["code"], r["v"]) for r in map_queries.rows(conn, sql, {}, request_today())]
    resp = json_response(
        {"title": t(m.label_zh, m.label_en), "values": {code: float(v) if v % 1 else int(v) for code, v in rows if v}}
    )
    resp.headers["Cache-Control"] = "private, max-age=60"
    return resp


# ------------------------------------------------------------------------------------------- the cell page


@bp.get("/cells/<code>")
@login_required
def cell_page(code: str):
    """A cell: on a small map with its neighbours, its people, its features by layer, its cases."""
    actor = current_actor()
    now = request_now()
    with engine().connect() as conn:
        info = _cell(conn, code)
        cell_box = map_queries.cell_box(conn, info.id)
        box = cell_box.corners() if cell_box else None
        near = map_queries.neighbours(conn, info.id)
        features = []
        for layer in registry.layers(spatial=True):
            if layer.name == tiles.CASES:
                continue
            total = map_queries.features_in_cell(conn, layer, info.id)
            rows = layer_features(conn, layer, "f.cell_id = :cell", {"cell": info.id}, CELL_PAGE_ROWS) if total else []
            features.append(
                {
                    "layer": layer,
                    "total": total,
                    "rows": rows,
                    "columns": [name(f.label_zh, f.label_en) for f, _ in _popup_columns(layer)],
                }
            )
        cases, open_total = open_cases(conn, actor, info.code, CELL_PAGE_ROWS)
        closed = map_queries.recently_closed(conn, actor, info.id, now - timedelta(days=RECENT_DAYS), CELL_PAGE_ROWS)
        stock = inventory(conn, info.id)
    # the view: the cell and a strip of its neighbours around it (wider on a wide map)
    pad_y, pad_x = (box[1][0] - box[0][0]) * 0.4, (box[1][1] - box[0][1]) * 0.4
    view = [[box[0][0] - pad_y, box[0][1] - pad_x], [box[1][0] + pad_y, box[1][1] + pad_x]]
    m, names = build_map(view, layer_control=False)
    config = _page_config(mode="cell", mapName=m.get_name(), layerNames=names, selected=info.code, legendOpen=False)
    return render_template(
        "maps/cell.html",
        cell=queries.cell_dict(info),
        info=info,
        neighbours=near,
        features=features,
        cases=cases,
        open_total=open_total,
        closed=closed,
        recent_days=RECENT_DAYS,
        inventory=stock,
        map=map_parts(m),
        config=Markup(queries.to_json(config)),
        case_url=case_url,
        local=local_time,
    )


def _format(value: Any, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "hours":
        return f"{value:.1f} h"
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


@bp.get("/cells/<code>/indicators")
@login_required
def cell_indicators(code: str):
    """The cell's indicators this month (gridmgr.analytics.accountability, level cell, limited to the cell): an HTML fragment."""
    current_actor()
    now = request_now().astimezone(TZ)
    period = accountability.Period.month(now.year, now.month)
    with engine().connect() as conn:
        info = _cell(conn, code)
        report = accountability.compute(conn, period=period, level="cell", area=info.code, today=now.date())
    try:
        row = report.row(info.code)
    except KeyError:
        abort(404)
    items = [
        {
            "key": d.key,
            "label": t(d.zh, d.en),
            "kind": d.kind,
            "value": _format(row.get(d.key), d.kind),
            "formula": getattr(d, "formula", ""),
        }
        for d in report.definitions
    ]
    return render_template("maps/_indicators.html", period=period, items=items, cutoff=report.cutoff)
