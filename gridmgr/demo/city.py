"""A synthetic demo city: street and community partitions of a real district, and a roster for its cells.

Nothing here touches the database: it writes GeoJSON and XLSX files that `gridmgr demo` feeds through the
same import commands a bureau uses. Everything is deterministic for a fixed seed (no clock, no network).
"""

from __future__ import annotations

import io
import itertools
import json
import math
import random
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import geopandas as gpd
import numpy as np
import openpyxl
import shapely
from openpyxl.cell import WriteOnlyCell
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from gridmgr.geo import crs as crsmod
from gridmgr.people.roster_sheets import SHEETS

METRIC_CRS = "EPSG:32650"  # UTM 50N: Beijing's zone, so Voronoi distances and areas are in metres
GRID_DEG = 1e-9  # coordinates snap to this grid (~0.1 mm), so shared edges stay identical in the files
LLOYD_STEPS = 20  # Lloyd steps even out the sizes: Dongcheng's 17 streets end within 0.7–1.4× the mean
# Voronoi edges get a vertex every EDGE_M metres: a straight line in UTM is not straight in lon/lat
# (a 3 km edge bows by ~0.15 m), and without vertices areas measured either way would disagree.
EDGE_M = 25.0
MAX_STREETS = 99  # docs/domain.md §2: street part 001–099 means 街道 (100–199 towns, 200–399 townships)


@dataclass(frozen=True)
class DemoSize:
    """Parameters of one demo size: partition counts, generated cell size and seed."""

    n_streets: int
    n_communities: int
    cell_size_m: float
    seed: int = 2004


SIZES = {
    "test": DemoSize(n_streets=3, n_communities=9, cell_size_m=250.0),
    "demo": DemoSize(n_streets=17, n_communities=200, cell_size_m=100.0),
}


# ---------------------------------------------------------------------------------------------- regions


def synthetic_regions(
    district: BaseGeometry,
    district_code: str,
    *,
    n_streets: int = 17,
    n_communities: int = 200,
    seed: int = 2004,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Synthetic streets and communities (Voronoi cells, Lloyd-relaxed) tiling a WGS84 district."""
    if not 1 <= n_streets <= MAX_STREETS:
        raise ValueError(f"n_streets must be 1..{MAX_STREETS}, got {n_streets}")
    rng = np.random.default_rng(seed)
    district = shapely.set_precision(district, GRID_DEG)
    street_geoms = _order(_partition(district, n_streets, rng))
    streets = [(f"{district_code}{i:03d}", g) for i, g in enumerate(street_geoms, 1)]

    areas = np.array([_area_m2(g) for _, g in streets])
    counts = _apportion(areas, n_communities, minimum=min(3, max(1, n_communities // n_streets)))
    communities = []
    for (street_code, street), count in zip(streets, counts):
        for j, g in enumerate(_order(_partition(street, int(count), rng)), 1):
            communities.append((street_code, f"{street_code}{j:03d}", g))

    def frame(rows: list[dict]) -> gpd.GeoDataFrame:
        return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")

    street_rows = [
        {
            "code": code,
            "name": f"模拟街道{_num(code)}",
            "name_en": f"Synthetic street {_num(code)}",
            "parent": district_code,
            "geometry": g,
        }
        for code, g in streets
    ]
    community_rows = [
        {
            "code": code,
            "name": f"模拟社区{_num(parent)}-{_num(code)}",
            "name_en": f"Synthetic community {_num(parent)}-{_num(code)}",
            "parent": parent,
            "geometry": g,
        }
        for parent, code, g in communities
    ]
    return frame(street_rows), frame(community_rows)


def write_regions(streets: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, folder: str | Path) -> tuple[Path, Path]:
    """Write streets.geojson and communities.geojson into `folder`; returns both paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for level, gdf in (("street", streets), ("community", communities)):
        features = [
            {
                "type": "Feature",
                "properties": {
                    "code": r.code,
                    "name": r.name,
                    "name_en": r.name_en,
                    "parent": r.parent,
                    "level": level,
                },
                "geometry": mapping(r.geometry),
            }
            for r in gdf.itertuples()
        ]
        path = folder / f"{'streets' if level == 'street' else 'communities'}.geojson"
        # json writes floats by repr (shortest exact form): coordinates round-trip bit for bit
        path.write_text(
            json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False), encoding="utf-8"
        )
        paths.append(path)
    return paths[0], paths[1]


def _as_base(geom: shapely.Geometry) -> BaseGeometry:
    """A geometry from gridmgr.geo.crs as what it is at run time (the stubs type it as the bare lib class)."""
    return cast(BaseGeometry, geom)


def _partition(parent: BaseGeometry, n: int, rng: np.random.Generator) -> list[BaseGeometry]:
    """Split a WGS84 polygon into n pieces that tile it: Voronoi cells of relaxed seeds, clipped."""
    if n == 1:
        return [parent]
    metric = _as_base(crsmod.geometry_from_wgs84(parent, METRIC_CRS))
    seeds = _sample_points(metric, n, rng)
    frame = _frame(metric)
    for _ in range(LLOYD_STEPS):
        cells = shapely.intersection(_voronoi(seeds, frame), metric)
        centroids = shapely.centroid(cells)
        # a centroid can fall outside a concave parent; a seed outside could lose its cell entirely
        outside = ~shapely.contains(metric, centroids)
        centroids[outside] = shapely.point_on_surface(cells[outside])
        seeds = shapely.get_coordinates(centroids)
    # Voronoi cells are built in metres, then clipped in WGS84 against the parent itself, so the pieces
    # tile the very polygon that was passed in rather than its round trip through the projection.
    cells = [
        _as_base(
            crsmod.geometry_to_wgs84(  # type: ignore[assignment]  # a list in WGS84 from here
                _densify(c, EDGE_M), METRIC_CRS
            )
        )
        for c in _voronoi(seeds, frame)
    ]
    pieces = shapely.intersection(cells, parent, grid_size=GRID_DEG)
    return _absorb_fragments(list(pieces))


def _voronoi(seeds: np.ndarray, frame: shapely.Polygon) -> np.ndarray:
    """The Voronoi cells of the seeds, in seed order, covering the frame."""
    diagram = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=frame, ordered=True)
    return shapely.get_parts(diagram)


def _densify(cell: shapely.Polygon, max_len: float) -> shapely.Polygon:
    """The cell with extra vertices every `max_len` metres, computed the same way from both sides."""
    ring = np.asarray(cell.exterior.coords)
    out = []
    for a, b in zip(ring[:-1], ring[1:]):
        n = max(1, math.ceil(math.dist(a, b) / max_len))
        # neighbours walk a shared edge in opposite directions: interpolate from its lexicographically
        # smaller end, so both get bit-identical vertices and still tile after projection and snapping
        flip = tuple(a) > tuple(b)
        p, q = (b, a) if flip else (a, b)
        pts = p + np.arange(n + 1)[:, None] / n * (q - p)
        pts[0], pts[-1] = p, q
        out.append(pts[:0:-1] if flip else pts[:-1])
    return shapely.Polygon(np.vstack(out))


def _frame(metric: BaseGeometry) -> shapely.Polygon:
    """A box well beyond the parent, so the Voronoi cells cover it entirely."""
    x0, y0, x1, y1 = metric.bounds
    pad = max(x1 - x0, y1 - y0)
    return shapely.box(x0 - pad, y0 - pad, x1 + pad, y1 + pad)


def _sample_points(polygon: BaseGeometry, n: int, rng: np.random.Generator) -> np.ndarray:
    """n uniform random points inside the polygon (rejection sampling in its bounding box)."""
    x0, y0, x1, y1 = polygon.bounds
    shapely.prepare(polygon)
    found = np.empty((0, 2))
    while len(found) < n:
        xy = rng.uniform((x0, y0), (x1, y1), size=(4 * n, 2))
        found = np.vstack([found, xy[shapely.contains_xy(polygon, xy[:, 0], xy[:, 1])]])
    return found[:n]


def _absorb_fragments(pieces: list[BaseGeometry]) -> list[BaseGeometry]:
    """Hand each detached part of a piece to the neighbour sharing the longest border with it."""
    # a concave parent cuts some Voronoi cells in two; single polygons read better on a map
    pieces = [_multi(p) for p in pieces]  # drops the lines and points where cells only touch
    for i in range(len(pieces)):
        for part in sorted(_polygons(pieces[i]), key=lambda g: -g.area)[1:]:
            shared = [
                (shapely.length(shapely.intersection(part.boundary, pieces[j].boundary)), j)
                for j in range(len(pieces))
                if j != i
            ]
            length, j = max(shared, default=(0.0, -1))
            if length > 0:  # else an exclave of the parent itself: nobody else can take it
                pieces[j] = _multi(shapely.union(pieces[j], part, grid_size=GRID_DEG))
                pieces[i] = _multi(shapely.difference(pieces[i], part, grid_size=GRID_DEG))
    return [p.geoms[0] if len(p.geoms) == 1 else p for p in cast(list[shapely.MultiPolygon], pieces)]


def _polygons(geom: BaseGeometry) -> list[shapely.Polygon]:
    """The non-empty polygon parts of a geometry (overlay results may mix in lines and points)."""
    parts = shapely.get_parts(shapely.get_parts(geom))
    return [g for g in parts if g.geom_type == "Polygon" and not g.is_empty]


def _multi(geom: BaseGeometry) -> shapely.MultiPolygon:
    """The polygon parts of a geometry as one MultiPolygon."""
    return shapely.MultiPolygon(_polygons(geom))


def _order(geoms: list[BaseGeometry]) -> list[BaseGeometry]:
    """Geometries in code order: north→south bands of about one piece's height, west→east in a band."""
    points = [crsmod.geometry_from_wgs84(shapely.point_on_surface(g), METRIC_CRS) for g in geoms]
    # raw (−y, x) order would zig-zag on tiny latitude differences; bands read like cell rows
    band = math.sqrt(sum(_area_m2(g) for g in geoms) / len(geoms))
    top = max(p.y for p in points)
    keys = [(math.floor((top - p.y) / band), p.x) for p in points]
    return [geoms[i] for i in sorted(range(len(geoms)), key=keys.__getitem__)]


def _apportion(areas: np.ndarray, total: int, minimum: int) -> np.ndarray:
    """Integer counts proportional to the areas (largest remainder), none below `minimum`."""
    quota = total * areas / areas.sum()
    counts = np.maximum(minimum, np.floor(quota)).astype(int)
    remainder = quota - np.floor(quota)
    for i in np.argsort(-remainder, kind="stable")[: max(0, total - int(counts.sum()))]:
        counts[i] += 1
    return counts


def _area_m2(geom: BaseGeometry) -> float:
    """Area of a WGS84 geometry in square metres, measured in the local UTM zone."""
    # ~10 m vertices first: projecting a 1 km boundary edge by its ends alone is off by ~1e-6
    return _as_base(crsmod.geometry_from_wgs84(shapely.segmentize(geom, 1e-4), METRIC_CRS)).area


def _num(code: str) -> str:
    """The last three digits of a code as a two-digit (or longer) display number."""
    return f"{int(code[-3:]):02d}"


# ----------------------------------------------------------------------------------------------- roster

SANITATION_UNIT = "HW01"  # the district's sanitation office (环卫所): it cleans every demo road
MAX_SQUADS = 8  # the seed reports rank 8 enforcement squads (执法中队)
CELLS_PER_OFFICER = 8  # a grid officer (网格员) walks ~6–10 cells
CELLS_PER_DUTY_GRID = 30  # a supervisor's duty grid (责任网格) holds ~20–40 cells
DEPARTMENTS = ("市政管理委员会", "园林绿化局", "住房和城乡建设委员会", "交通委员会")
STAFF = {"enforcement_squad": 3, "sanitation": 4, "department": 2, "street_office": 1}
# the command centre (监督指挥中心) receives, registers, dispatches and closes cases: its staff are the
# receivers (受理员), dispatchers (派遣员) and shift leaders (值班长) of the workflow
COMMAND_CENTRE = ("ZX01", "城市管理监督指挥中心", 6)
CN_NUMERALS = "一二三四五六七八九十"
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚英华玉兰红建国文志海燕鹏辉宇浩凯晨欣佳思雨嘉子俊博蕾颖琳婷倩悦雪梅丹鑫斌宁飞"
FILE_TIME = (2004, 10, 1, 0, 0, 0)  # fixed zip/document dates keep the workbook byte-identical per seed

CellRow = tuple[str, str, tuple[float, float]]  # (15-digit cell code, 12-digit community code, (lon, lat))


def demo_roster(
    cells: list[CellRow], streets: list[str], *, seed: int = 2004, district_name: str = "东城区"
) -> dict[str, list[dict]]:
    """The roster tables (units, people, their cells, duty grids) for the demo city's cells."""
    cells = sorted(cells)
    district = cells[0][0][:6] if cells else streets[0][:6]
    short = district_name.rstrip("区县市")
    xy = np.column_stack(crsmod.from_wgs84([c[2][0] for c in cells], [c[2][1] for c in cells], METRIC_CRS))
    where = {c[0]: tuple(p) for c, p in zip(cells, xy)}
    by_street: dict[str, list[str]] = {s: [] for s in streets}
    by_community: dict[str, list[str]] = {}
    for code, community, _ in cells:
        if community[:9] not in by_street:
            raise ValueError(f"cell {code}: its street {community[:9]} is not among the streets given")
        by_street[community[:9]].append(code)
        by_community.setdefault(community, []).append(code)

    units: list[dict] = []

    def unit(code: str, name: str, kind: str, region: str) -> str:
        units.append(
            {"code": code, "name": name, "kind": kind, "region_code": region, "phone": f"010-0000{len(units) + 1:04d}"}
        )  # no Beijing number starts with 0
        return code

    office = {s: unit(f"JD{s[-3:]}", f"模拟街道{_num(s)}办事处", "street_office", s) for s in streets}
    squad = {}
    for i, group in enumerate(_squad_groups(streets, by_street, where)):
        code = unit(f"ZF{i + 1:02d}", f"{short}执法第{CN_NUMERALS[i]}中队", "enforcement_squad", district)
        squad.update(dict.fromkeys(group, code))
    sanitation = unit(SANITATION_UNIT, f"{district_name}环卫所", "sanitation", district)
    for i, name in enumerate(DEPARTMENTS, 1):
        unit(f"BM{i:02d}", f"{district_name}{name}", "department", district)
    centre_code, centre_name, centre_staff = COMMAND_CENTRE
    unit(centre_code, f"{district_name}{centre_name}", "department", district)

    people: list[dict] = []
    names = _names(random.Random(seed))

    def person(role: str, unit_code: str) -> str:
        code = f"P{len(people) + 1:04d}"
        people.append(
            {
                "code": code,
                "name": next(names),
                "role": role,
                "unit_code": unit_code,
                "phone": f"138{len(people) + 1:08d}",
            }
        )  # 1380000xxxx: clearly not a real line
        return code

    cell_people: list[dict] = []
    for community, codes in by_community.items():
        leader = person("grid_leader", office[community[:9]])
        cell_people += [{"cell_code": c, "person_code": leader, "post": "grid_leader"} for c in codes]
    for community, codes in by_community.items():
        for group in _groups(codes, where, CELLS_PER_OFFICER):
            officer = person("grid_officer", office[community[:9]])
            cell_people += [{"cell_code": c, "person_code": officer, "post": "grid_officer"} for c in group]

    duty_grids: list[dict] = []
    duty_grid_cells: list[dict] = []
    for s in streets:
        for j, group in enumerate(_groups(by_street[s], where, CELLS_PER_DUTY_GRID), 1):
            supervisor = person("supervisor", squad[s])
            code = f"DG{len(duty_grids) + 1:03d}"
            duty_grids.append(
                {
                    "code": code,
                    "name": f"模拟街道{_num(s)} 第{j}责任网格",
                    "unit_code": squad[s],
                    "supervisor_code": supervisor,
                }
            )
            duty_grid_cells += [{"duty_grid_code": code, "cell_code": c} for c in group]
            cell_people += [{"cell_code": c, "person_code": supervisor, "post": "supervisor"} for c in group]
    for u in list(units):
        for _ in range(centre_staff if u["code"] == centre_code else STAFF[u["kind"]]):
            person("staff", u["code"])

    cell_units = [
        {"cell_code": code, "duty": duty, "unit_code": unit_code}
        for code, community, _ in cells
        for duty, unit_code in (
            ("territorial", office[community[:9]]),
            ("enforcement", squad[community[:9]]),
            ("sanitation", sanitation),
        )
    ]
    order = {"grid_leader": 0, "grid_officer": 1, "supervisor": 2}
    cell_people.sort(key=lambda r: (r["cell_code"], order[r["post"]]))
    duty_grid_cells.sort(key=lambda r: r["cell_code"])
    return {
        "units": units,
        "people": people,
        "cell_units": cell_units,
        "cell_people": cell_people,
        "duty_grids": duty_grids,
        "duty_grid_cells": duty_grid_cells,
    }


def write_roster(tables: dict[str, list[dict]], path: str | Path) -> Path:
    """Write the roster tables as an XLSX workbook, one sheet per table, every value as text."""
    path = Path(path)
    wb = openpyxl.Workbook(write_only=True)
    for sheet, columns in SHEETS.items():
        ws = wb.create_sheet(sheet)
        ws.append(list(columns))
        for row in tables[sheet]:
            cells = []
            for column in columns:
                # text cells with the text format: a 15-digit code or "001" never becomes a number
                cell = WriteOnlyCell(ws, value=str(row[column]))
                cell.number_format = "@"
                cells.append(cell)
            ws.append(cells)
    buffer = io.BytesIO()
    wb.save(buffer)
    _rezip_without_clock(buffer, path)
    return path


def _rezip_without_clock(buffer: io.BytesIO, path: Path) -> None:
    """Copy the saved workbook to `path` with fixed dates: openpyxl stamps it with the current time."""
    stamp = b"%04d-%02d-%02dT%02d:%02d:%02dZ" % FILE_TIME
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>" + stamp, data)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=FILE_TIME), data, compress_type=zipfile.ZIP_DEFLATED)


def _squad_groups(
    streets: list[str], by_street: dict[str, list[str]], where: dict[str, tuple[float, float]]
) -> list[list[str]]:
    """Streets split among the squads, 2–3 touching streets each: runs along a snake path over the map."""
    everywhere = np.array(list(where.values()) or [(0.0, 0.0)])
    centre = {s: np.mean([where[c] for c in by_street[s]] or everywhere, axis=0) for s in streets}
    n, k = len(streets), min(MAX_SQUADS, max(1, len(streets) // 2))
    touching = _touching(by_street, where)
    span = everywhere.max(axis=0) - everywhere.min(axis=0) + 1.0
    square = round(math.sqrt(n * span[1] / span[0]))  # rows giving square-ish street blocks
    by_lat = sorted(streets, key=lambda s: (-centre[s][1], s))
    candidates = []
    for n_rows in sorted(range(1, n + 1), key=lambda r: (abs(r - square), r)):
        for east_first in (True, False):
            # rows north→south walked east and west in turn (boustrophedon), so runs along the path
            # tend to be neighbours on the map
            path = [
                s
                for r, row in enumerate(np.array_split(np.array(by_lat, dtype=object), n_rows))
                for s in sorted(row, key=lambda s: centre[s][0], reverse=(r % 2 == 0) != east_first)
            ]
            # which runs take one street more: every placement is tried until each run is connected
            for longer in itertools.combinations(range(k), n % k):
                ends = np.cumsum([n // k + (i in longer) for i in range(k)])
                groups = [path[a:b] for a, b in zip([0, *ends[:-1]], ends)]
                if all(_connected(g, touching) for g in groups):
                    return groups
                candidates.append(groups)
    return candidates[0]  # no placement keeps every squad's streets touching: take the plainest


def _touching(by_street: dict[str, list[str]], where: dict[str, tuple[float, float]]) -> set[frozenset]:
    """Pairs of streets that have cells next to each other (within 1.5 cell spacings)."""
    codes = [c for cells in by_street.values() for c in cells]
    if len(codes) < 2:
        return set()
    street_of = {c: s for s, cells in by_street.items() for c in cells}
    points = shapely.points([where[c] for c in codes])
    tree = shapely.STRtree(points)
    _, gaps = tree.query_nearest(points, exclusive=True, return_distance=True)
    left, right = tree.query(points, predicate="dwithin", distance=1.5 * float(np.median(gaps)))
    return {
        frozenset((street_of[codes[a]], street_of[codes[b]]))
        for a, b in zip(left, right)
        if street_of[codes[a]] != street_of[codes[b]]
    }


def _connected(group: list[str], touching: set[frozenset]) -> bool:
    """Whether the streets of a group form one connected patch."""
    reached, todo = {group[0]}, [group[0]]
    while todo:
        s = todo.pop()
        for t in group:
            if t not in reached and frozenset((s, t)) in touching:
                reached.add(t)
                todo.append(t)
    return len(reached) == len(group)


def _groups(codes: list[str], where: dict[str, tuple[float, float]], size: int) -> list[list[str]]:
    """Cells split into compact groups of about `size` by recursive bisection along the longer side."""

    def split(part: list[str], k: int) -> list[list[str]]:
        if k <= 1:
            return [sorted(part)]
        xy = np.array([where[c] for c in part])
        axis = 0 if np.ptp(xy[:, 0]) >= np.ptp(xy[:, 1]) else 1
        # west→east or north→south, ties by code, so the split is deterministic
        ranked = sorted(part, key=lambda c: (where[c][0] if axis == 0 else -where[c][1], c))
        cut = round(len(part) * (k // 2) / k)
        return split(ranked[:cut], k // 2) + split(ranked[cut:], k - k // 2)

    groups = split(list(codes), max(1, round(len(codes) / size))) if codes else []
    return sorted(groups, key=lambda g: g[0])


def _names(rng: random.Random) -> Iterator[str]:
    """Endless unique synthetic Chinese names: a common surname and one or two given characters."""
    weights = [1.0 / (i + 4) for i in range(len(SURNAMES))]  # a few surnames are far more common
    seen: set[str] = set()
    while True:
        name = rng.choices(SURNAMES, weights)[0] + "".join(rng.choices(GIVEN, k=rng.choice((1, 2, 2))))
        if name not in seen:
            seen.add(name)
            yield name
