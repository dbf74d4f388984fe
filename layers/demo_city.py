"""Synthetic layer data for the demo city: cases, roads, parking, construction sites and billboards as import files.

A plug-in of its own (the `gridmgr_demo_data` hook): these layers are generated together because they
share the ground (kerb zones follow the roads and keep clear of the sites, hoardings stand on the sites).
Nothing here touches the database: it writes CSV files in each layer's own import template, which the demo
loader feeds through `gridmgr.io.importer.import_file`, the path a bureau's files take. Deterministic for
a seed (numpy default_rng); the anchor date ("today" of the demo) is a parameter, never the clock.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast

import geopandas as gpd
import numpy as np
import shapely
import shapely.ops
from shapely.geometry.base import BaseGeometry

from gridmgr.cases import categories
from gridmgr.demo.city import METRIC_CRS, SANITATION_UNIT, _as_base, _names
from gridmgr.geo import crs as crsmod
from gridmgr.io.tabular import write_template_csv
from gridmgr.plugins import registry
from gridmgr.plugins.hooks import DemoContext, DemoData, hookimpl


@dataclass(frozen=True)
class LayerCounts:
    """Features per layer for one demo size (docs/domain.md §11: Dongcheng sees ~3–4 k cases a month)."""

    cases: int
    zones: int
    sites: int
    billboards: int


COUNTS = {"test": LayerCounts(600, 8, 4, 20), "demo": LayerCounts(50_000, 150, 40, 400)}


@dataclass(frozen=True)
class HotSpot:
    """A persistent trouble spot: WGS84 centre, gaussian spread, share of hot cases, category bias."""

    name: str
    lon: float
    lat: float
    sigma_m: float
    weight: float
    bias: dict[str, float]


MARKET = {"0102": 0.35, "0504": 0.3, "0501": 0.15, "0103": 0.1, "0507": 0.1}
STATION = {"0505": 0.35, "0506": 0.25, "0201": 0.25, "0102": 0.1, "0501": 0.05}
# Real places of Dongcheng (WGS84, all well inside the boundary): stations draw parking and flyer problems,
# markets garbage and trading outside the shop; 簋街 is the all-night restaurant street.
HOT_SPOTS = (
    HotSpot("北京站", 116.427, 39.903, 130, 0.20, STATION),  # Beijing Railway Station forecourt
    HotSpot("东直门", 116.435, 39.941, 120, 0.16, STATION),  # Dongzhimen hub: airport express, buses
    HotSpot("雍和宫", 116.417, 39.948, 90, 0.10, STATION),  # metro interchange and temple crowds
    HotSpot("王府井", 116.411, 39.914, 150, 0.14, MARKET),  # the pedestrian shopping street
    HotSpot("簋街", 116.423, 39.940, 100, 0.12, {"0504": 0.3, "0102": 0.25, "0116": 0.2, "0505": 0.15, "0510": 0.1}),
    HotSpot("红桥市场", 116.4108, 39.883, 90, 0.10, MARKET),  # Hongqiao market by the Temple of Heaven
    HotSpot("崇文门菜市场", 116.417, 39.899, 80, 0.09, MARKET),
    HotSpot("和平里菜市场", 116.418, 39.958, 80, 0.09, MARKET),
)
HOT_SHARE = 0.35  # cases in hot spots; the rest uniform over the district
HOT_BIAS = 0.6  # a hot-spot case takes its spot's bias this often, else the district-wide mix
EVENT_SHARE = 0.875  # Zhanjiang 2023 (docs/domain.md §3): events 87.5 %, components 12.5 %
EVENTS = {
    "0102": 36,
    "0104": 12,
    "0103": 12,
    "0108": 9,
    "0505": 7,
    "0504": 6,
    "0201": 6,
    "0506": 3,
    "0501": 2.5,
    "0507": 2,
    "0106": 1,
    "0116": 1,
    "0112": 0.8,
    "0107": 0.6,
    "0202": 0.5,
    "0510": 0.5,
    "0203": 0.4,
    "0205": 0.4,
    "0302": 0.4,
    "0404": 0.4,
    "0303": 0.3,
    "0304": 0.3,
    "0101": 0.3,
    "0406": 0.3,
    "0301": 0.2,
    "0199": 0.2,
    "0599": 0.2,
    "0305": 0.1,
    "0105": 0.1,
    "0299": 0.1,
    "0399": 0.1,
    "0401": 0.05,
    "0499": 0.05,
}
COMPONENTS = {
    "C0104": 21,
    "C0110": 11,
    "C0302": 10,
    "C0205": 10,
    "C0401": 8,
    "C0102": 8,
    "C0101": 6,
    "C0103": 6,
    "C0203": 4,
    "C0301": 4,
    "C0402": 3,
    "C0601": 3,
    "C0202": 2,
    "C0201": 2,
    "C0501": 2,
}
SOURCES = {
    "supervisor": 0.90,
    "hotline_12345": 0.035,
    "public": 0.03,
    "hotline_12319": 0.015,
    "video": 0.015,
    "leader": 0.005,
}
URGENT = {"C0101": 0.3, "C0102": 0.3, "C0103": 0.3, "0401": 0.5, "0406": 0.3}  # open manholes, collapses
URGENT_OTHER = 0.04
SEASON = 0.1  # ±10 % over the year, peaking in July (summer garbage)
WEEKEND = 0.7  # supervisors patrol fewer hours at weekends
HOURS = np.array(
    [0.3, 0.2, 0.1, 0.1, 0.2, 0.5, 1.5, 4, 7, 9, 9, 8, 6, 6, 8, 8, 7, 6, 4, 3, 2, 1, 0.6, 0.4]
)  # ~95 % 7–20h
DESCRIPTIONS = {
    "0102": ("{p}路边有暴露垃圾，未及时清运", "{p}垃圾桶周边散落生活垃圾"),
    "0103": ("{p}积存建筑垃圾渣土约{n}立方米", "{p}堆放装修垃圾未清运"),
    "0104": ("{p}路面有油污杂物，道路不洁", "{p}人行道纸屑烟头较多"),
    "0108": ("{p}丢弃旧沙发、床垫等废弃家具", "{p}路边堆放废弃柜子"),
    "0505": ("{p}机动车占用人行道停放", "{p}机动车违停阻碍通行"),
    "0504": ("{p}商户出店经营，占用人行道", "{p}店外摆放货架经营"),
    "0201": ("{p}电线杆上张贴小广告", "{p}墙面喷涂非法小广告"),
    "0506": ("{p}共享单车乱停放，堵塞盲道",),
    "0501": ("{p}有流动商贩无照经营",),
    "0116": ("{p}餐馆油烟直排",),
    "0510": ("{p}占道露天烧烤",),
    "0507": ("{p}乱堆物堆料，占用公共空间",),
    "C0205": ("{p}路面坑槽破损",),
    "C0104": ("{p}雨水箅子破损", "{p}雨水箅子缺失，存在安全隐患"),
    "C0110": ("{p}路灯不亮", "{p}路灯灯罩破损"),
    "C0401": ("{p}行道树断枝悬挂", "{p}行道树倾斜倒伏"),
    "C0302": ("{p}垃圾箱破损", "{p}垃圾箱满溢"),
}
# synthetic lane names (any likeness to a real 胡同 is chance) and the lane position for a description
LANE_A, LANE_B, LANE_KIND = "柳槐杏枣榆椿桑松竹梅兰菊", "树井花园桥坊寺仓", ("胡同", "胡同", "胡同", "巷", "条")
LANE_POS = ("口", "内", "东段", "西段", "中段")
SIDE_ZH = {"north": "北侧", "south": "南侧", "east": "东侧", "west": "西侧"}

# Parking (docs/domain.md §7; tests check these against gridmgr.layers.parking, the core must not import a layer)
KERB_M = {"parallel": 6.0, "perpendicular": 2.5, "angled_45": 3.54, "angled_60": 2.89}
ANGLES = {"parallel": 0.7, "perpendicular": 0.15, "angled_45": 0.08, "angled_60": 0.07}
LOT_SHARE, LOT_STALL_M = 0.15, 5.0  # a 5 × 5 m grid is 25 m² a stall: the estimate's own lot norm
ZONE_GAP_M, SITE_GAP_M, EDGE_M = 15.0, 30.0, 15.0
ZONE_STATUSES = {"painted": 0.55, "approved": 0.25, "submitted": 0.1, "draft": 0.1}
# road names borrowed from Dongcheng for flavour; the kerbs themselves are drawn at random
ROADS_NS = ("东四北大街", "东单北大街", "交道口南大街", "安定门内大街", "北河沿大街", "东直门南大街", "崇文门外大街")
ROADS_EW = ("朝阳门内大街", "东四西大街", "地安门东大街", "建国门内大街", "鼓楼东大街", "东直门内大街", "广渠门内大街")
FEES = ("按北京市路侧停车收费标准", "居民认证车辆夜间免费", "首小时免费，之后按标准收费")
TIMES = ("7:00-21:00 限时停车", "全天开放", "19:00-次日7:00 居民停车")
# the road network: one arterial per name above, evenly spaced across the district, and branch roads
# (hutongs) between them; the roads are cut at the street seams, so each piece lies in one street
BRANCHES_BETWEEN = (2, 4)  # branch roads between two neighbouring arterials: 2 or 3
ROAD_TILT_DEG = 0.6  # the old city's grid is nearly, not exactly, north–south and east–west
MIN_ROAD_M = 60.0  # shorter pieces (a corner of a street) are left out
KERB_OFFSET_M = (4.0, 7.0)  # a kerb zone runs this far from the road's centre line (half a carriageway)
KERB_CLEAR_M = 10.0  # and stays this far from any other road (no zone across a junction)
CAPACITY_REASONS = ("避让消防栓", "路口转弯半径内不设泊位", "避让单位出入口")

SITE_STATUSES = {"active": 0.7, "planned": 0.1, "suspended": 0.1, "finished": 0.1}
PROJECTS = (
    "住宅项目",
    "地铁站配套工程",
    "棚户区改造安置房项目",
    "学校改扩建工程",
    "老旧小区综合整治工程",
    "商业综合体项目",
    "医院门诊楼改造工程",
    "综合管廊工程",
)
BUILDERS = ("城建", "华建", "宏泰", "中诚", "安泰", "鑫源", "恒达", "建工")
FAILED_SHARE = 0.15  # inspections with one failed item: later rules raise 0302 cases from them
FAILED_NOTE = {
    "hoarding": "部分围挡破损缺失",
    "covering": "裸土及物料未完全覆盖",
    "washing": "出口车辆未冲洗，带泥上路",
    "hardening": "场内道路未硬化",
    "wet_work": "拆除作业未湿法作业",
    "closed_transport": "渣土车未密闭运输",
}

BILLBOARD_STATUSES = {"permitted": 0.89, "unpermitted": 0.08, "removed": 0.03}
EXPIRED_SHARE, OVERDUE_SHARE = 0.12, 0.15  # of permitted billboards: permit ended / inspected > 1 year ago
# type: (share, carriers, width m, height m, height above ground m, illuminated share)
BILLBOARD_TYPES = {
    "light_box": (0.25, ("shelter", "municipal_facility", "building"), (1.2, 3), (0.8, 2), (0, 3), 1.0),
    "wall": (0.20, ("building",), (3, 12), (2, 8), (3, 20), 0.3),
    "hoarding": (0.12, ("ground",), (6, 30), (2, 2.5), (0, 0), 0.0),
    "led_screen": (0.10, ("building", "ground"), (4, 15), (3, 8), (4, 25), 1.0),
    "pole": (0.10, ("ground",), (3, 6), (1.5, 4), (4, 10), 0.5),
    "rooftop": (0.08, ("building",), (8, 20), (3, 8), (12, 40), 0.5),
    "neon": (0.08, ("building",), (2, 8), (0.6, 2), (3, 12), 1.0),
    "other": (0.07, ("other", "municipal_facility"), (1, 4), (1, 3), (0, 5), 0.2),
}
BRANDS = "星河 华彩 东方 金泰 瑞丰 博雅 恒信 天诚 嘉禾 新视界 长安 京韵 汇通 美途 德润 海纳".split()
TRADES = ("广告传媒", "文化传播", "餐饮管理", "商贸", "酒店管理", "电子科技")
USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


@dataclass
class _City:
    """The district and its streets and communities, in WGS84 and in metres."""

    district: BaseGeometry
    inner: BaseGeometry  # the district in metres, less EDGE_M: sites and lots stay clear of its edge
    code: str
    streets: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    streets_m: list[BaseGeometry]


def write_demo_layers(
    folder: Path,
    *,
    district: BaseGeometry,
    streets: gpd.GeoDataFrame,
    communities: gpd.GeoDataFrame,
    anchor: date,
    size: str,
    seed: int = 2004,
) -> dict[str, Path]:
    """Write the demo's layer files (CSV, import templates) into `folder`; layer name → file, in import order."""
    if size not in COUNTS:
        raise ValueError(f"unknown demo size {size!r}; use one of {', '.join(COUNTS)}")
    n = COUNTS[size]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shapely.prepare(district)
    # streets less EDGE_M: a kerb zone stays on one street's side of a seam (CDS: one block face)
    city = _City(
        district,
        _as_base(crsmod.geometry_from_wgs84(district, METRIC_CRS)).buffer(-EDGE_M),
        streets.code.iloc[0][:6],
        streets,
        communities,
        [_as_base(crsmod.geometry_from_wgs84(g, METRIC_CRS)).buffer(-EDGE_M) for g in streets.geometry],
    )
    shapely.prepare([city.inner, *city.streets_m])
    # one generator per layer: a change in one layer's count leaves the others' data as it was
    # (spawn(5) gives the same first four as spawn(4): the roads were added without changing the others' seeds)
    r_cases, r_sites, r_zones, r_boards, r_roads = np.random.default_rng(seed).spawn(5)
    names = _names(random.Random(f"{seed}-layers"))  # not the roster's seed: its people keep their own names
    sites, site_rows, inspections = _construction(r_sites, city, n.sites, anchor, names)
    roads = _roads(r_roads, city)
    zones, spaces = _parking(r_zones, city, n.zones, anchor, sites, roads)
    tables: dict[str, tuple[list[dict], tuple[str, ...]]] = {
        "cases": (_cases(r_cases, city, n.cases, anchor), ("lon", "lat")),
        "roads": ([r.row for r in roads], ("wkt",)),
        "parking_zones": (zones, ("wkt",)),
        "parking_spaces": (spaces, ("wkt",)),
        "construction": (site_rows, ("wkt",)),
        "site_inspections": (inspections, ()),
        "billboards": (_billboards(r_boards, city, n.billboards, anchor, sites), ("lon", "lat")),
    }
    return {
        name: write_template_csv(folder / f"{name}.csv", registry.get(name), rows, geo)
        for name, (rows, geo) in tables.items()
    }


# ----------------------------------------------------------------------------------------------- cases


def _cases(rng: np.random.Generator, city: _City, n: int, anchor: date) -> list[dict]:
    """n cases over the 12 full months before the anchor's month, hot spots included."""
    end = anchor.replace(day=1)
    days = np.arange(np.datetime64(end.replace(year=end.year - 1)), np.datetime64(end))
    month = days.astype("datetime64[M]").astype(int) % 12 + 1
    weekday = (days.astype(int) + 3) % 7  # 1970-01-01 was a Thursday; 5, 6 = weekend
    weight = (1 + SEASON * np.cos(2 * np.pi * (month - 7) / 12)) * np.where(weekday < 5, 1.0, WEEKEND)
    day = np.repeat(days, rng.multinomial(n, weight / weight.sum())).astype("datetime64[s]")
    at = np.sort(day + (rng.choice(24, n, p=HOURS / HOURS.sum()) * 3600 + rng.integers(0, 3600, n)))
    stamp = np.datetime_as_string(at, unit="s")  # naive ISO 8601: Asia/Shanghai local time on import

    codes = list(EVENTS) + list(COMPONENTS)
    mix = np.array(
        [EVENT_SHARE * v / sum(EVENTS.values()) for v in EVENTS.values()]
        + [(1 - EVENT_SHARE) * v / sum(COMPONENTS.values()) for v in COMPONENTS.values()]
    )
    hot_mix = [HOT_BIAS * np.array([h.bias.get(c, 0.0) for c in codes]) + (1 - HOT_BIAS) * mix for h in HOT_SPOTS]
    # the uniform cases make up the rest, so the whole year keeps the Zhanjiang mix
    rest = np.clip(mix - HOT_SHARE * sum(h.weight * m for h, m in zip(HOT_SPOTS, hot_mix)), 0, None)
    spot = np.where(rng.random(n) < HOT_SHARE, rng.choice(len(HOT_SPOTS), n, p=[h.weight for h in HOT_SPOTS]), -1)
    lon, lat, category, lane = np.zeros(n), np.zeros(n), np.empty(n, dtype=object), _lanes(rng, n)
    place = np.char.add(lane.astype(str), rng.choice(LANE_POS, n)).astype(object)
    idx = np.flatnonzero(spot < 0)
    lon[idx], lat[idx] = _uniform(rng, city.district, len(idx))
    category[idx] = rng.choice(codes, len(idx), p=rest / rest.sum())
    for i, h in enumerate(HOT_SPOTS):
        idx = np.flatnonzero(spot == i)
        lon[idx], lat[idx] = _around(rng, city.district, h, h.sigma_m, len(idx))
        category[idx] = rng.choice(codes, len(idx), p=hot_mix[i])
        place[idx] = [
            h.name + _side(dx, dy)
            for dx, dy in (np.column_stack([lon[idx], lat[idx]]) - (h.lon, h.lat)) * _m_per_degree(h.lat)
        ]
    names = {c["code"]: (c["name"].split(" (")[0], c["kind"]) for c in categories.read()}
    source = rng.choice(list(SOURCES), n, p=list(SOURCES.values()))
    urgent = rng.random(n) < np.array([URGENT.get(c, URGENT_OTHER) for c in category])
    # python lists: the row loop below is ~10× slower on numpy scalars
    street, lane, place, category, source = (
        _region_names(city.streets, lon, lat),
        lane.tolist(),
        place.tolist(),
        category.tolist(),  # type: ignore[assignment]  # the arrays become lists here
        source.tolist(),
    )
    pick, volume, number = (
        rng.integers(0, 60, n).tolist(),
        rng.integers(2, 20, n).tolist(),
        rng.integers(1, 120, n).tolist(),
    )
    stamp, urgent, lon, lat = stamp.tolist(), urgent.tolist(), lon.tolist(), lat.tolist()  # type: ignore[assignment]
    rows, year, seq = [], "", 0
    for i in range(n):
        seq = seq + 1 if stamp[i][:4] == year else 1  # numbers restart each year, in order of report
        year = stamp[i][:4]
        name, kind = names[category[i]]
        templates = DESCRIPTIONS.get(category[i]) or (("{p}{name}破损",) if kind == "component" else ("{p}发现{name}",))
        rows.append(
            {
                "case_no": f"{year}{seq:07d}",
                "category": category[i],
                "source": source[i],
                "urgency": "urgent" if urgent[i] else "normal",
                "reported_at": stamp[i],
                "description": templates[pick[i] % len(templates)].format(p=place[i], name=name, n=volume[i]),
                "address": f"{street[i]} {lane[i]} {number[i]}号",
                "lon": f"{lon[i]:.7f}",
                "lat": f"{lat[i]:.7f}",
            }
        )
    return rows


def _side(dx: float, dy: float) -> str:
    """Where a point lies from a hot spot's centre (metres east and north), as a description says it."""
    if math.hypot(dx, dy) < 40:
        return "附近"
    return ("东侧", "北侧", "西侧", "南侧")[round(math.atan2(dy, dx) / (math.pi / 2)) % 4]


def _m_per_degree(lat: float) -> np.ndarray:
    """Metres per degree of longitude and latitude near `lat` (flat approximation over a few hundred metres)."""
    return np.array([111_320 * math.cos(math.radians(lat)), 110_574])


def _lanes(rng: np.random.Generator, n: int) -> np.ndarray:
    """n synthetic lane names."""
    parts = [rng.choice(list(LANE_A), n), rng.choice(list(LANE_B), n), rng.choice(LANE_KIND, n)]
    return np.char.add(np.char.add(*parts[:2]), parts[2]).astype(object)


# ----------------------------------------------------------------------------------------------- roads


@dataclass(frozen=True)
class _Road:
    """One road piece: its import row, its line in metres and the whole road it was cut from."""

    row: dict
    line: shapely.LineString
    road: int  # pieces of one road share this (a kerb zone may lie by no other road)


def _roads(rng: np.random.Generator, city: _City) -> list[_Road]:
    """A grid of arterials named from ROADS_NS/ROADS_EW with branch roads between, cut into pieces per street."""
    x0, y0, x1, y1 = shapely.union_all(city.streets_m).bounds
    lines: list[tuple[str, str, shapely.LineString]] = []
    for names, lo, hi, north_south in ((ROADS_NS, x0, x1, True), (ROADS_EW, y0, y1, False)):
        step = (hi - lo) / len(names)
        at = lo + step * (np.arange(len(names)) + 0.5) + rng.uniform(-0.15, 0.15, len(names)) * step
        for k, (name, pos) in enumerate(zip(names, at)):
            lines.append((name, "arterial" if k % 2 == 0 else "secondary", _line(rng, pos, north_south, city)))
            if k + 1 < len(names):
                n_branch = int(rng.integers(*BRANCHES_BETWEEN))
                gaps = (np.arange(n_branch) + 1) / (n_branch + 1) + rng.uniform(-0.05, 0.05, n_branch)
                for lane, g in zip(_lanes(rng, n_branch), gaps):
                    lines.append((str(lane), "branch", _line(rng, pos + g * (at[k + 1] - pos), north_south, city)))
    roads: list[_Road] = []
    for road, (name, grade, line) in enumerate(lines):
        for street in city.streets_m:
            for piece in _lines(shapely.intersection(line, street)):
                if piece.length >= MIN_ROAD_M:
                    row = {
                        "road_no": f"RD-{len(roads) + 1:04d}",
                        "name": name,
                        "grade": grade,
                        "cleaning_unit": SANITATION_UNIT,
                        "wkt": _wkt(piece),
                    }
                    roads.append(_Road(row, piece, road))
    return roads


def _line(rng: np.random.Generator, pos: float, north_south: bool, city: _City) -> shapely.LineString:
    """A straight road at `pos` (x for north–south, y for east–west) across the district, slightly tilted."""
    x0, y0, x1, y1 = city.inner.bounds
    half = max(x1 - x0, y1 - y0)
    centre = np.array([pos, (y0 + y1) / 2]) if north_south else np.array([(x0 + x1) / 2, pos])
    bearing = (0.0 if north_south else 90.0) + rng.normal(0, ROAD_TILT_DEG)
    u = np.array([math.sin(math.radians(bearing)), math.cos(math.radians(bearing))])
    return shapely.LineString([centre - u * half, centre + u * half])


def _lines(geom: BaseGeometry) -> list[shapely.LineString]:
    """The line parts of an intersection (points where a road only touches a street are dropped)."""
    if isinstance(geom, shapely.LineString):
        return [] if geom.is_empty else [geom]
    if isinstance(geom, (shapely.MultiLineString, shapely.GeometryCollection)):
        return [p for g in geom.geoms for p in _lines(g)]
    return []


# -------------------------------------------------------------------------------------- parking and sites


def _dust_items() -> tuple[str, ...]:
    """The checklist of a site inspection, from the registry (a plug-in does not import another layer)."""
    return tuple(f.name for f in registry.get("site_inspections").fields if f.type == "bool")


def _construction(
    rng: np.random.Generator, city: _City, n: int, anchor: date, names: Iterator[str]
) -> tuple[list[BaseGeometry], list[dict], list[dict]]:
    """n non-overlapping sites of 0.3–3 ha (metric polygons), their rows, and the active sites' inspections."""
    g: BaseGeometry
    sites: list[BaseGeometry] = []
    while len(sites) < n:
        area = math.exp(rng.uniform(math.log(3_000), math.log(30_000)))
        aspect = rng.uniform(1.0, 2.2)
        w = math.sqrt(area / aspect)
        g = _rectangle(np.concatenate(_uniform(rng, city.inner, 1)), w, w * aspect, rng.normal(0, 8))
        if city.inner.contains(g) and _free(g, sites, SITE_GAP_M):
            sites.append(g)
    inspectors = [next(names) for _ in range(max(3, n // 6))]
    workdays = [d for d in (anchor - timedelta(days=k) for k in range(1, 183)) if d.weekday() < 5]  # last 6 months
    centres = np.array([crsmod.to_wgs84(*cast(tuple[Any, Any], g.centroid.xy), METRIC_CRS) for g in sites]).reshape(
        n, 2
    )
    community = _region_names(city.communities, centres[:, 0], centres[:, 1])
    rows, inspections = [], []
    for i, (g, status) in enumerate(zip(sites, _quota(rng, n, SITE_STATUSES)), 1):
        if status == "planned":
            start = anchor + timedelta(days=int(rng.integers(15, 180)))
        else:
            back = rng.integers(700, 1500) if status == "finished" else rng.integers(60, 900)
            start = anchor - timedelta(days=int(back))
        end = (
            anchor - timedelta(days=int(rng.integers(10, 300)))
            if status == "finished"
            else max(start, anchor) + timedelta(days=int(rng.integers(180, 900)))
        )
        permit = f"{city.code}-{start.year}-{i:04d}"
        checks: dict[str, Any] = {item: (None if status == "planned" else True) for item in _dust_items()}
        if status == "active":
            visits: list[dict[str, Any]] = []
            open_days = [d for d in workdays if d >= start]  # ≥ 40 days: active sites began ≥ 60 ago
            for day in sorted(
                rng.choice(cast(Any, open_days), int(rng.integers(3, 11)), replace=False)
            ):  # one visit a day
                failed = _dust_items()[rng.integers(len(_dust_items()))] if rng.random() < FAILED_SHARE else None
                visits.append(
                    {
                        "permit_no": permit,
                        "inspector": inspectors[rng.integers(len(inspectors))],
                        "inspected_at": f"{day}T{rng.integers(9, 17):02d}:{rng.integers(60):02d}:00",
                        **{item: item != failed for item in _dust_items()},
                        "note": FAILED_NOTE[failed] if failed else "六个百分之百落实到位",
                    }
                )
            checks = max(visits, key=lambda r: r["inspected_at"])  # the site shows its latest inspection
            inspections += visits
        rows.append(
            {
                "permit_no": permit,
                "project_name": f"{community[i - 1]}{PROJECTS[rng.integers(len(PROJECTS))]}",
                "builder": f"模拟{BUILDERS[rng.integers(len(BUILDERS))]}建设工程有限公司",
                "manager": next(names),
                "manager_phone": f"1390000{i:04d}",
                "start_date": start.isoformat(),
                "planned_end": end.isoformat(),
                "status": status,
                **{item: checks[item] for item in _dust_items()},
                "wkt": _wkt(g),
            }
        )
    inspections.sort(key=lambda r: (r["inspected_at"], r["permit_no"]))
    for k, r in enumerate(inspections, 1):
        r["inspection_no"] = f"INS-{k:06d}"
    return sites, rows, inspections


def _parking(
    rng: np.random.Generator,
    city: _City,
    n: int,
    anchor: date,
    sites: list[BaseGeometry],
    roads: list[_Road],
) -> tuple[list[dict], list[dict]]:
    """n non-overlapping kerb lines along the roads and lots off them, clear of the sites; the painted spaces."""
    g: BaseGeometry
    placed: list[BaseGeometry] = list(sites)
    lines: list[BaseGeometry] = [r.line for r in roads]
    tree = shapely.STRtree(lines)
    weights = np.array([g.length for g in lines])
    zones: list[dict] = []
    spaces: list[dict] = []
    used: dict[tuple[str, str, str], int] = {}
    for i, status in enumerate(_quota(rng, n, ZONE_STATUSES), 1):
        lot = rng.random() < LOT_SHARE
        while True:
            if lot:
                centre = np.concatenate(_uniform(rng, city.inner, 1))
                w, h = LOT_STALL_M * rng.integers(6, 13), LOT_STALL_M * rng.integers(8, 17)  # 30–60 × 40–80 m
                bearing, angle, stalls = rng.normal(0, 3), "perpendicular", int(w * h // 25)
                g = _rectangle(centre, w, h, bearing)
                clear = _free(g, lines, KERB_CLEAR_M)  # a lot lies off the roads
            else:
                angle = str(rng.choice(list(ANGLES), p=list(ANGLES.values())))
                stalls = int(rng.integers(math.ceil(40 / KERB_M[angle]), int(198 // KERB_M[angle]) + 1))
                # a margin well inside one stall: the importer's geodesic length gives exactly `stalls`
                length = stalls * KERB_M[angle] + rng.uniform(0.5, min(2.0, KERB_M[angle] - 0.5))
                by = int(rng.choice(len(roads), p=weights / weights.sum()))  # a road, by its length
                along = roads[by].line
                if along.length < length + 2 * KERB_CLEAR_M:
                    continue
                start = rng.uniform(KERB_CLEAR_M, along.length - length - KERB_CLEAR_M)
                offset = float(rng.uniform(*KERB_OFFSET_M)) * (1 if rng.random() < 0.5 else -1)  # > 0: left
                kerb = cast(shapely.LineString, shapely.ops.substring(along, start, start + length)).offset_curve(
                    offset
                )
                c = np.array(kerb.coords)
                g = shapely.LineString([c[0], c[-1]])  # one straight kerb: the road piece is straight
                near = tree.query(g, predicate="dwithin", distance=KERB_CLEAR_M)
                clear = all(roads[j].road == roads[by].road for j in near)
            street = next((k for k, s in enumerate(city.streets_m) if s.contains(g)), None)
            if clear and street is not None and _free(g, placed, ZONE_GAP_M):
                break
        placed.append(g)
        side = ""
        if not lot:
            c = np.array(g.coords)
            u = (c[-1] - c[0]) / np.linalg.norm(c[-1] - c[0])
            d = np.array(along.coords[-1]) - np.array(along.coords[0])
            normal = np.array([-d[1], d[0]]) * math.copysign(1, offset)  # from the road towards the kerb
            if abs(d[1]) > abs(d[0]):  # a north–south road
                side = "east" if normal[0] > 0 else "west"
            else:
                side = "north" if normal[1] > 0 else "south"
        road = _lanes(rng, 1)[0] if lot else roads[by].row["name"]
        key = (city.streets["name"].iloc[street], road, "公共停车场" if lot else SIDE_ZH[side] + "停车区")
        used[key] = used.get(key, 0) + 1  # a second zone by the same road and side: 2号停车区
        name = f"{key[0]} {road}{key[2][:-3]}{f'{used[key]}号' if used[key] > 1 else ''}{key[2][-3:]}"
        capacity, reason = None, ""
        if not lot and rng.random() < 0.08:
            capacity = stalls - int(rng.integers(1, 3))
            reason = f"{CAPACITY_REASONS[rng.integers(len(CAPACITY_REASONS))]}，减少{stalls - capacity}个泊位"
        live = status in ("approved", "painted")
        zone_no = f"PZ-{i:04d}"
        zones.append(
            {
                "zone_no": zone_no,
                "name": name,
                "street_name": road,
                "street_side": side,
                "parking_angle": angle,
                "capacity": capacity,
                "capacity_reason": reason,
                "fee_rule": FEES[rng.integers(len(FEES))] if live else "",
                "time_rules": TIMES[rng.integers(len(TIMES))] if live else "",
                "status": status,
                "valid_from": (anchor - timedelta(days=int(rng.integers(30, 1800)))).isoformat() if live else "",
                "valid_to": "",
                "wkt": _wkt(g),
            }
        )
        if status == "painted":
            if lot:  # stall centres on the 5 m grid, turned with the lot
                gx, gy = np.meshgrid(np.arange(w / LOT_STALL_M) + 0.5, np.arange(h / LOT_STALL_M) + 0.5)
                local = np.column_stack([gx.ravel(), gy.ravel()]) * LOT_STALL_M - (w / 2, h / 2)
                xy = _turn(local, bearing) + centre
            else:
                xy = np.array(g.coords[0]) + u * KERB_M[angle] * (np.arange(capacity or stalls) + 0.5)[:, None]
            kinds = ["standard"] * len(xy)
            if rng.random() < 0.3:
                kinds[0] = "disabled"
            if rng.random() < 0.15:
                kinds[-2:] = ["ev_charging"] * 2
            # WKT points, not lon/lat: import_file reads lon/lat only for point-only layers, and spaces may
            # also be polygons
            points = shapely.points(np.column_stack(crsmod.to_wgs84(xy[:, 0], xy[:, 1], METRIC_CRS)))
            spaces += [
                {"space_no": f"{zone_no}-{j:03d}", "zone_no": zone_no, "type": t, "wkt": w}
                for j, (t, w) in enumerate(zip(kinds, shapely.to_wkt(points, rounding_precision=7)), 1)
            ]
    return zones, spaces


def _rectangle(centre: np.ndarray, w: float, h: float, bearing: float) -> shapely.Polygon:
    """A w × h metric rectangle around `centre`, turned by `bearing` degrees."""
    return shapely.Polygon(_turn(np.array([(-w, -h), (w, -h), (w, h), (-w, h)]) / 2, bearing) + centre)


def _turn(xy: np.ndarray, degrees: float) -> np.ndarray:
    """Points turned clockwise about the origin."""
    a = math.radians(degrees)
    return xy @ np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def _free(g: BaseGeometry, placed: list[BaseGeometry], gap: float) -> bool:
    """Whether g keeps at least `gap` metres from everything placed."""
    return not placed or float(shapely.distance(g, np.array(placed, dtype=object)).min()) >= gap


def _wkt(metric: BaseGeometry) -> str:
    """WKT in WGS84 with 7 decimals (~1 cm)."""
    return shapely.to_wkt(_as_base(crsmod.geometry_to_wgs84(metric, METRIC_CRS)), rounding_precision=7)


# ------------------------------------------------------------------------------------------ billboards


def _billboards(rng: np.random.Generator, city: _City, n: int, anchor: date, sites: list[BaseGeometry]) -> list[dict]:
    """n billboards: mostly permitted, some expired, unpermitted or removed; hoardings on the sites."""
    i: int | np.integer[Any]
    owners = [
        (f"模拟{BRANDS[k % len(BRANDS)]}{TRADES[k // len(BRANDS)]}有限公司", _credit_code(rng, city.code))
        for k in rng.permutation(len(BRANDS) * len(TRADES))[: max(5, n // 6)]
    ]
    types = rng.choice(list(BILLBOARD_TYPES), n, p=[t[0] for t in BILLBOARD_TYPES.values()])
    # near busy places more often: the hot spots with three times their spread
    spot = np.where(rng.random(n) < 0.4, rng.choice(len(HOT_SPOTS), n), -1)
    lon, lat = _uniform(rng, city.district, n)
    for i, h in enumerate(HOT_SPOTS):
        idx = np.flatnonzero(spot == i)
        lon[idx], lat[idx] = _around(rng, city.district, h, 3 * h.sigma_m, len(idx))
    for i in np.flatnonzero(types == "hoarding") if sites else ():  # advertising on a site's hoarding
        edge = cast(shapely.Polygon, sites[rng.integers(len(sites))]).exterior
        p = crsmod.geometry_to_wgs84(edge.interpolate(rng.uniform(0, edge.length)), METRIC_CRS)
        lon[i], lat[i] = round(p.x, 7), round(p.y, 7)
    street, lane = _region_names(city.streets, lon, lat), _lanes(rng, n)
    status = _quota(rng, n, BILLBOARD_STATUSES)
    permitted = [i for i in range(n) if status[i] == "permitted"]
    expired = {i for i, e in zip(permitted, _quota(rng, len(permitted), {True: EXPIRED_SHARE, False: 1})) if e}
    overdue = {i for i, e in zip(permitted, _quota(rng, len(permitted), {True: OVERDUE_SHARE, False: 1})) if e}
    rows, permits = [], 0
    for i, kind in enumerate(types):
        _, carriers, (w0, w1), (h0, h1), (g0, g1), lit = BILLBOARD_TYPES[kind]
        years = int(rng.integers(1, 6 if kind == "led_screen" else 4))  # permits ≤ 3 years, LED screens ≤ 5
        has_permit = status[i] == "permitted" or (status[i] == "removed" and rng.random() < 0.5)
        valid_to = anchor + timedelta(days=int(rng.integers(1, 365 * years)))
        if i in expired or status[i] == "removed":
            valid_to = anchor - timedelta(days=int(rng.integers(30 if status[i] == "removed" else 1, 540)))
        valid_from = valid_to - timedelta(days=365 * years - 1)
        permits += has_permit
        recent = max(2, min(360, (anchor - valid_from).days)) if has_permit else 360  # not before the permit
        seen = anchor - timedelta(days=int(rng.integers(366, 800) if i in overdue else rng.integers(1, recent)))
        owner, code = owners[rng.integers(len(owners))]
        rows.append(
            {
                "ad_no": f"AD-{i + 1:05d}",
                "type": kind,
                "carrier": carriers[rng.integers(len(carriers))],
                "width_m": f"{rng.uniform(w0, w1):.1f}",
                "height_m": f"{rng.uniform(h0, h1):.1f}",
                "height_above_ground_m": f"{rng.uniform(g0, g1):.1f}",
                "illuminated": bool(rng.random() < lit),
                "owner": owner,
                "owner_credit_code": code,
                "permit_no": f"{city.code}-GG-{valid_from.year}-{permits:04d}" if has_permit else "",
                "address": f"{street[i]} {lane[i]} {rng.integers(1, 120)}号",
                "valid_from": valid_from.isoformat() if has_permit else "",
                "valid_to": valid_to.isoformat() if has_permit else "",
                "last_inspection": "" if status[i] == "unpermitted" and rng.random() < 0.7 else seen.isoformat(),
                "status": status[i],
                "lon": f"{lon[i]:.7f}",
                "lat": f"{lat[i]:.7f}",
            }
        )
    return rows


def _credit_code(rng: np.random.Generator, district_code: str) -> str:
    """An 18-character unified social credit code (GB 32100-2015 form and check character), made up."""
    body = "91" + district_code + "MA" + "".join(rng.choice(list(USCC_CHARS), 7))
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(body, USCC_WEIGHTS))
    return body + USCC_CHARS[(31 - total % 31) % 31]


# -------------------------------------------------------------------------------------------- shared


def _quota(rng: np.random.Generator, n: int, shares: dict) -> list:
    """n labels in the given shares (largest remainder: small sizes still get the common ones), shuffled."""
    quota = n * np.array(list(shares.values()), dtype=float) / sum(shares.values())
    counts = np.floor(quota).astype(int)
    counts[np.argsort(counts - quota, kind="stable")[: n - counts.sum()]] += 1
    labels = [k for k, c in zip(shares, counts) for _ in range(c)]
    return [labels[i] for i in rng.permutation(n)]


def _sample(area: BaseGeometry, n: int, draw: Callable[[int], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """n points from `draw(k)` (k × 2), rounded to 7 decimals (~1 cm in degrees) and kept only inside the area."""
    xy = np.empty((0, 2))
    while len(xy) < n:
        new = np.round(draw(2 * n + 8), 7)
        xy = np.vstack([xy, new[shapely.contains_xy(area, new[:, 0], new[:, 1])]])
    return xy[:n, 0], xy[:n, 1]


def _around(
    rng: np.random.Generator, area: BaseGeometry, spot: HotSpot, sigma_m: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """n points around a hot spot with a gaussian spread of sigma_m metres, inside the WGS84 area."""
    return _sample(area, n, lambda k: (spot.lon, spot.lat) + rng.normal(0, sigma_m, (k, 2)) / _m_per_degree(spot.lat))


def _uniform(rng: np.random.Generator, area: BaseGeometry, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n uniform random points inside a polygon (rejection sampling in its bounding box)."""
    # in degrees this is uniform in area too: cos(latitude) changes by 0.1 % across the district
    x0, y0, x1, y1 = area.bounds
    return _sample(area, n, lambda k: rng.uniform((x0, y0), (x1, y1), (k, 2)))


def _region_names(regions: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray) -> list[str]:
    """The name of the region each WGS84 point lies in (the nearest one for a point on a seam)."""
    tree, points = shapely.STRtree(regions.geometry.values), cast(np.ndarray, shapely.points(lon, lat))
    at = np.full(len(points), -1)
    inside = tree.query(points, predicate="within")
    at[inside[0]] = inside[1]
    seam = np.flatnonzero(at < 0)
    at[seam] = tree.query_nearest(points[seam], all_matches=False)[1]
    return regions["name"].to_numpy()[at].tolist()


# -------------------------------------------------------------------------------------------- the hook

LAYERS = ("cases", "roads", "parking_zones", "parking_spaces", "construction", "site_inspections", "billboards")


def _maker(name: str) -> Callable[[Any, DemoContext], Path]:
    def make(conn: Any, ctx: DemoContext) -> Path:
        if __name__ not in ctx.cache:  # the first layer asked for writes them all
            ctx.cache[__name__] = write_demo_layers(
                ctx.workdir / "layers",
                district=ctx.district,
                streets=ctx.streets,
                communities=ctx.communities,
                anchor=ctx.anchor,
                size=ctx.size,
                seed=ctx.seed,
            )
        return ctx.cache[__name__][name]

    return make


@hookimpl
def gridmgr_demo_data() -> list[DemoData]:
    """The built-in layers' demo files, each imported after the one before (spaces need their zones)."""
    return [DemoData(name, _maker(name), after=LAYERS[:i][-1:]) for i, name in enumerate(LAYERS)]
