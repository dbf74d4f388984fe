"""Benchmark: import 10⁶ cases from CSV through `import_file`, against a geopandas pipeline and a bare COPY.

    .venv/bin/python bench/import_cases.py [--rows 1000000 | --quick] [--repeat 3] [--profile | --profile-only]

The file (the cases template: case_no, category, source, urgency, reported_at, description, address,
lon, lat) is seeded and built once under var/bench/cases/: a year of cases over the demo district,
category codes from data/categories.csv with a realistic skew, 30% of the points around 8 hot spots
with their own category mix, 0.1% exactly on shared cell corners (the lowest-code rule decides) and
0.05% inside the district's box but outside the district (kept, out of grid).

Three runs on the same file, in the same process, each after a CHECKPOINT on an emptied target:
- gridmgr: `gridmgr.layer_import.import_file` into `cases` (emptied with `import_log` first) in one
  committed transaction: read, validate, COPY to staging, one INSERT … SELECT with `cell_for`;
- (a) what a user would write: `pd.read_csv` + `gpd.points_from_xy`, the open cells read from PostGIS,
  `gpd.sjoin`, a point on a shared edge kept once with its lowest-code cell, `to_postgis`;
  target: gridmgr ≥ 5× faster;
- (b) the floor: a bare `COPY` of the file into an unindexed table of typed columns;
  target: gridmgr within 3× of its time.
Every case's cell is then compared between gridmgr and the geopandas pipeline.
`--profile` adds a breakdown of gridmgr's import: cProfile of the Python side and the INSERT run
against clones of `cases` without foreign keys, without secondary indexes and without assignment.
"""
from __future__ import annotations

import argparse
import cProfile
import csv
import dataclasses
import itertools
import pstats
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from common import (
    bench_engine,
    district_points,
    load_note,
    machine,
    timed,
    vertex_points,
)
from sqlalchemy import MetaData, text

from gridmgr import categories, layer_import, registry
from gridmgr.paths import DATA, var_dir

TEMPLATE = ["case_no", "category", "source", "urgency", "reported_at", "description", "address", "lon", "lat"]
YEAR = 2025
ROADS = ("王府井大街", "东单北大街", "朝阳门内大街", "东四北大街", "雍和宫大街", "安定门内大街", "交道口南大街",
         "鼓楼东大街", "南锣鼓巷", "东直门内大街", "崇文门外大街", "前门大街", "天坛路", "广渠门内大街", "磁器口大街",
         "珠市口东大街", "永定门内大街", "和平里西街", "地安门东大街", "灯市口大街", "金宝街", "建国门内大街",
         "东长安街", "张自忠路", "美术馆后街", "东华门大街", "北河沿大街", "南河沿大街", "光明路", "幸福大街",
         "法华寺街", "东花市大街", "龙潭路", "北新桥三条", "东四十条", "新中街", "草厂胡同", "史家胡同")
PLACES = ("{n}号附近", "{n}号门前", "{n}号院东侧", "{n}号院西侧", "与{r}交叉口", "公交站旁", "地铁站出口", "{n}号对面")
REMARKS = ("现场发现", "群众反映", "已拍照取证", "影响通行", "多次出现", "请尽快处置", "周边居民投诉", "夜间尤为严重",
           "存在安全隐患", "商户已劝导", "面积约{k}平方米", "约{k}处", "持续{k}天", "早高峰时段", "已告知责任单位")
# the everyday mix of a district's cases (share of each code; the rest spread over the other codes)
COMMON = {"0201": 14, "0102": 11, "0504": 10, "0505": 8, "0506": 8, "0501": 6, "0104": 5, "0507": 5,
          "0199": 2, "0107": 2, "0108": 2, "0112": 2, "0302": 2, "C0102": 2, "C0101": 1.5, "C0302": 1.5,
          "C0205": 1.5, "0404": 1, "0406": 1, "C0401": 1}
# what each hot spot is: a market, a nightlife street, a station, building sites, old hutongs, …
HOT_MIX = (("0504", "0501", "0102"), ("0510", "0116", "0102"), ("0506", "0505", "0201"),
           ("0302", "0303", "0112"), ("0107", "0108", "0507"), ("0201", "0202", "0203"),
           ("0504", "0510", "0104"), ("0505", "0506", "C0201"))
SOURCES = {"supervisor": 55, "hotline_12345": 15, "hotline_12319": 12, "public": 10, "video": 6, "leader": 2}


# ------------------------------------------------------------------------------------------------ data

def case_file(conn, n: int, seed: int = 2025) -> Path:
    """The seeded cases CSV of n rows under var/bench/cases/ (built once, then reused)."""
    path = var_dir() / "bench" / "cases" / f"cases-{n}-s{seed}.csv"
    if path.exists():
        print(f"  · using {path} ({path.stat().st_size / 2**20:,.0f} MiB)", flush=True)
        return path
    print(f"  · building {path.name}: {n:,} cases", flush=True)
    rng = np.random.default_rng(seed)
    cats = pd.read_csv(DATA / "categories.csv", dtype=str)
    codes = cats["code"].to_numpy()
    names = dict(zip(cats["code"], cats["name"].str.replace(r"\s*\(.*\)$", "", regex=True)))
    weight = np.array([COMMON.get(c, 0.5) for c in codes])

    lon, lat, spot = district_points(conn, n, seed=seed, hot_share=0.3, n_hot=len(HOT_MIX), sigma_deg=0.0015)
    k = n // 1000  # on shared cell corners
    lon[:k], lat[:k] = vertex_points(conn, k, seed=seed)
    m = n // 2000  # outside the district but inside its box (and the city extent): kept, out of grid
    lon[k:k + m], lat[k:k + m] = _outside_district(conn, m, rng)
    spot[:k + m] = -1

    category = rng.choice(codes, n, p=weight / weight.sum())
    hot = (spot >= 0) & (rng.random(n) < 0.6)  # 60% of a hot spot's cases are its own kind
    mixes = np.array(HOT_MIX, dtype=object)
    category[hot] = [mixes[s][j] for s, j in zip(spot[hot], rng.integers(0, 3, int(hot.sum())))]

    day = rng.integers(0, 365, n)
    hour_p = np.array([1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 9, 8, 6, 7, 8, 8, 8, 8, 7, 6, 5, 4, 3, 2], float)
    hour = rng.choice(24, n, p=hour_p / hour_p.sum())
    reported = (np.datetime64(f"{YEAR}-01-01T00:00:00") + day.astype("timedelta64[D]")
                + hour.astype("timedelta64[h]") + rng.integers(0, 3600, n).astype("timedelta64[s]"))
    order = np.argsort(reported, kind="stable")  # a bureau's export runs in time order, numbered so
    src_keys = np.array(list(SOURCES))
    src_p = np.array(list(SOURCES.values()), float)
    frame = pd.DataFrame({
        "case_no": [f"{YEAR}{i:07d}" for i in range(1, n + 1)],
        "category": category[order],
        "source": rng.choice(src_keys, n, p=src_p / src_p.sum()),
        "urgency": np.where(rng.random(n) < 0.05, "urgent", "normal"),
        "reported_at": pd.Series(reported[order]).dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy(),
        "description": _descriptions(category[order], names, rng),
        "address": _addresses(n, rng),
        "lon": lon[order],
        "lat": lat[order],
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # lon/lat written exactly (shortest round-trip repr): every reader sees the same doubles
    frame.to_csv(tmp, index=False, encoding="utf-8", quoting=csv.QUOTE_MINIMAL)
    tmp.rename(path)
    print(f"  · wrote {path} ({path.stat().st_size / 2**20:,.0f} MiB)", flush=True)
    return path


def _outside_district(conn, m: int, rng) -> tuple[np.ndarray, np.ndarray]:
    district = shapely.from_wkb(bytes(conn.execute(text(
        "SELECT ST_AsBinary(ST_Union(geom)) FROM regions WHERE level = 'district'")).scalar()))
    x0, y0, x1, y1 = district.bounds
    xs, ys = rng.uniform(x0, x1, 50 * m + 100), rng.uniform(y0, y1, 50 * m + 100)
    out = ~shapely.contains_xy(district, xs, ys)
    return xs[out][:m], ys[out][:m]


def _descriptions(category: np.ndarray, names: dict, rng) -> np.ndarray:
    """`<category name>：<two or three remarks>。`, from a few hundred variants."""
    variants = []
    for _ in range(400):
        picks = rng.choice(len(REMARKS), rng.integers(2, 4), replace=False)
        variants.append("，".join(REMARKS[i].format(k=rng.integers(2, 30)) for i in picks) + "。")
    v = np.array(variants, dtype=object)[rng.integers(0, len(variants), len(category))]
    label = pd.Series(category).map(names).to_numpy(dtype=object)
    return label + "：" + v


def _addresses(n: int, rng) -> np.ndarray:
    """`北京市东城区<road><place>`, e.g. 北京市东城区东四北大街12号门前."""
    variants = []
    for road in ROADS:
        for _ in range(60):
            place = PLACES[rng.integers(0, len(PLACES))].format(n=rng.integers(1, 300), r=ROADS[rng.integers(0, len(ROADS))])
            variants.append(f"北京市东城区{road}{place}")
    return np.array(variants, dtype=object)[rng.integers(0, len(variants), n)]


# ----------------------------------------------------------------------------------------------- runs

def fresh(eng) -> None:
    """Empty targets, settle autovacuum's work and flush dirty pages, so that each run starts alike."""
    with eng.begin() as conn:
        # cases' audit rows (case_events) refuse TRUNCATE by trigger, as real data should; these are the
        # scratch database's own bench rows, so the triggers are skipped for this one statement
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("TRUNCATE cases, import_log RESTART IDENTITY CASCADE"))
        conn.execute(text("DROP TABLE IF EXISTS bench_copy, bench_gpd_cases"))
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE cases"))
        conn.execute(text("CHECKPOINT"))


def run_copy(eng, path: Path, t: dict) -> int:
    """(b) the floor: the file COPYed as it is into an unindexed table of typed columns."""
    with eng.begin() as conn:
        conn.execute(text("""CREATE TABLE bench_copy (case_no text, category text, source text, urgency text,
            reported_at timestamptz, description text, address text, lon float8, lat float8)"""))
    with timed("bare COPY (floor)", t), eng.begin() as conn:
        conn.execute(text("SET LOCAL TimeZone = 'Asia/Shanghai'"))
        with open(path, "rb") as fh, conn.connection.dbapi_connection.cursor() as cur:
            cur.copy_expert("COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)", fh)
    with eng.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM bench_copy")).scalar()


def run_gridmgr(eng, path: Path, t: dict, phases: dict) -> layer_import.ImportResult:
    """gridmgr: import_file in one committed transaction; the progress messages mark its phases."""
    layer = registry.get("cases")
    marks: list[tuple[str, float]] = []

    def progress(msg: str) -> None:
        marks.append((msg.split()[0], time.perf_counter()))
        print(f"    · {msg}", flush=True)

    with timed("gridmgr import_file", t):
        start = time.perf_counter()
        with eng.begin() as conn:
            result = layer_import.import_file(conn, layer, path, actor="bench", progress=progress)
            marks.append(("commit", time.perf_counter()))
        end = time.perf_counter()
    names = {"reading": "read CSV (tabular.read)", "validating": "validate fields + lon/lat",
             "staging": "COPY to staging (frame → CSV → COPY)", "inserting": "INSERT … SELECT with cell_for",
             "commit": "commit"}
    points = [("start", start)] + marks + [("end", end)]
    for (label, a), (_, b) in itertools.pairwise(points):
        phases[names.get(label, label) if label != "start" else "hash file, check import_log"] = b - a
    return result


def run_geopandas(eng, path: Path, t: dict, phases: dict) -> int:
    """(a) the pipeline a user would write: read, points, sjoin with the cells, to_postgis."""
    with timed("geopandas pipeline", t):
        p0 = time.perf_counter()
        df = pd.read_csv(path, dtype={"case_no": str})
        pts = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs="EPSG:4326")
        p1 = time.perf_counter()
        cells = gpd.read_postgis("SELECT code AS cell_code, geom FROM grid_cells WHERE valid_to IS NULL",
                                 eng, geom_col="geom")
        p2 = time.perf_counter()
        joined = gpd.sjoin(pts, cells, how="left", predicate="intersects")
        # a point on a shared edge joins every covering cell: keep it once, with the lowest code
        joined = joined.sort_values("cell_code", na_position="last")
        joined = joined[~joined.index.duplicated(keep="first")].sort_index().drop(columns="index_right")
        p3 = time.perf_counter()
        joined.to_postgis("bench_gpd_cases", eng, if_exists="replace", index=False)
        p4 = time.perf_counter()
    phases.update({"read_csv + points_from_xy": p1 - p0, "read cells from PostGIS": p2 - p1,
                   "sjoin + lowest code on edges": p3 - p2, "to_postgis": p4 - p3})
    return len(joined)


def compare(eng) -> tuple[int, int, int, int]:
    """(rows in cases, same cell as geopandas, out of grid, rows in geopandas' table)."""
    with eng.connect() as conn:
        ours = pd.DataFrame(conn.execute(text(
            "SELECT f.case_no, c.code FROM cases f LEFT JOIN grid_cells c ON c.id = f.cell_id")).all(),
            columns=["case_no", "ours"]).set_index("case_no")
        theirs = pd.DataFrame(conn.execute(text("SELECT case_no, cell_code FROM bench_gpd_cases")).all(),
                              columns=["case_no", "theirs"]).set_index("case_no")
    both = ours.join(theirs, how="outer")
    same = int(((both.ours == both.theirs) | (both.ours.isna() & both.theirs.isna())).sum())
    return len(ours), same, int(ours.ours.isna().sum()), len(theirs)


# -------------------------------------------------------------------------------------------- profile

TILE_DEG = 0.001  # about one demo cell; a real grid would use its median cell width


def _null_join(geom_sql: str, at_sql: str = "now()", alias: str = "c") -> str:
    return f"LEFT JOIN LATERAL (SELECT NULL::bigint AS cell_id) AS {alias} ON true"


def _build_tiles(conn) -> None:
    """Every cell listed under each TILE_DEG square its bounding box touches (a hash-joinable index)."""
    conn.execute(text(f"""
        CREATE TEMP TABLE bench_tiles AS
        SELECT c.id AS cell_id, c.code, c.geom, c.valid_from, c.valid_to, tx, ty
        FROM grid_cells c,
             generate_series(floor(ST_XMin(c.geom) / {TILE_DEG})::int, floor(ST_XMax(c.geom) / {TILE_DEG})::int) tx,
             generate_series(floor(ST_YMin(c.geom) / {TILE_DEG})::int, floor(ST_YMax(c.geom) / {TILE_DEG})::int) ty"""))
    conn.execute(text("ANALYZE bench_tiles"))


def _tile_join(geom_sql: str, at_sql: str = "now()", alias: str = "c") -> str:
    """The same rule as cell_for for points (covering cell valid at the row's time, lowest code),
    reached by one hash join on the tile of each point instead of one GiST probe per row."""
    at = at_sql.replace("s.", "st.")
    return f"""LEFT JOIN (
        SELECT DISTINCT ON (st.row_no) st.row_no, t.cell_id
        FROM (SELECT *, ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS g FROM stage) st
        JOIN bench_tiles t ON t.tx = floor(st.lon / {TILE_DEG})::int AND t.ty = floor(st.lat / {TILE_DEG})::int
          AND t.valid_from <= {at} AND (t.valid_to IS NULL OR {at} < t.valid_to) AND ST_Intersects(t.geom, st.g)
        ORDER BY st.row_no, t.code) AS {alias} ON {alias}.row_no = s.row_no"""


def profile(eng, path: Path) -> None:
    """Where gridmgr's time goes: cProfile of import_file, then its INSERT against lighter targets.

    Only the public import_file runs (its progress messages time the INSERT phase); a variant swaps
    the target table for a lighter clone, or the assignment join (gridmgr.layer_import.cell_join).
    """
    layer = registry.get("cases")
    fresh(eng)
    print("\nprofile 1: cProfile of import_file (rolled back)", flush=True)
    prof = cProfile.Profile()
    with eng.connect() as conn, conn.begin() as tx:
        prof.enable()
        layer_import.import_file(conn, layer, path, actor="bench")
        prof.disable()
        tx.rollback()
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(20)

    print("profile 2: import_file's INSERT phase into cases and lighter targets, each fresh (rolled back)",
          flush=True)
    hooked = bool(getattr(layer, "on_insert", None))
    bare = dataclasses.replace(layer, on_insert=None) if hooked else layer
    slim = "INCLUDING DEFAULTS INCLUDING GENERATED"  # + the unique key that ON CONFLICT needs
    variants = [("cases as is" + (" (+ an audit event per case)" if hooked else ""), layer, None, None, None)]
    if hooked:
        variants.append(("cases without the audit events", bare, None, None, None))
    variants += [
        ("cases as is, jit = off", layer, None, None, "SET LOCAL jit = off"),
        ("cases as is, NO assignment (cell_id NULL)", layer, None, _null_join, None),
        ("clone: all indexes + checks, no FKs, no audit", bare, "INCLUDING ALL", None, None),
        ("clone: unique case_no only, no FKs, no audit", bare, slim, None, None),
        ("  same, NO assignment (cell_id NULL)", bare, slim, _null_join, None),
        ("  same, assignment by tile hash join (proposal)", bare, slim, _tile_join, None),
        ("cases as is, assignment by tile hash join (proposal)", layer, None, _tile_join, None),
    ]
    real_read, cached = layer_import.read, {}

    def read_once(*args):  # the file is read once for all variants
        if "raw" not in cached:
            cached["raw"] = real_read(*args)
        return cached["raw"]

    with eng.connect() as conn, conn.begin() as tx, mock.patch.object(layer_import, "read", read_once):
        for i, (label, base, like, join, setting) in enumerate(variants):
            conn.execute(text("SAVEPOINT p"))
            # each variant writes into a fresh, empty relation, as the timed import does
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text("TRUNCATE cases, import_log CASCADE"))
            conn.execute(text("SET LOCAL session_replication_role = origin"))
            target = base
            if like:
                name = f"bench_clone_{i}"
                conn.execute(text(f"CREATE TABLE {name} (LIKE cases {like})"))
                if like == slim:
                    conn.execute(text(f"ALTER TABLE {name} ADD UNIQUE (case_no)"))
                target = dataclasses.replace(base, table=base.table.to_metadata(MetaData(), name=name))
            if setting:
                conn.execute(text(setting))
            if join is _tile_join:
                _build_tiles(conn)
            marks: dict[str, float] = {}

            def stage_analyzed(*a, real_stage=layer_import._stage, **k):
                real_stage(*a, **k)  # the proposal gives the planner the staged rows' statistics
                conn.execute(text("ANALYZE stage"))

            with mock.patch.object(layer_import, "cell_join", join or layer_import.cell_join), \
                    mock.patch.object(layer_import, "_stage", stage_analyzed if join is _tile_join else layer_import._stage):
                t0 = time.perf_counter()
                layer_import.import_file(conn, target, path, actor="bench",
                                         progress=lambda m, marks=marks: marks.setdefault(m.split()[0], time.perf_counter()))
                t1 = time.perf_counter()
            print(f"  INSERT into {label:56} {t1 - marks['inserting']:7.2f} s  (whole import_file {t1 - t0:6.2f} s)",
                  flush=True)
            if join is _tile_join:
                differ = conn.execute(text(f"""
                    SELECT count(*) FROM {target.table.name} x LEFT JOIN LATERAL cell_for(x.geom, x.reported_at) c ON true
                    WHERE x.cell_id IS DISTINCT FROM c.cell_id""")).scalar()
                print(f"    (tile hash join: {differ:,} rows assigned differently from cell_for)", flush=True)
            conn.execute(text("ROLLBACK TO SAVEPOINT p"))
        tx.rollback()


# ----------------------------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 rows instead of the default size")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of the three runs; medians are reported")
    ap.add_argument("--profile", action="store_true", help="add a breakdown of gridmgr's import")
    ap.add_argument("--profile-only", action="store_true", help="only the breakdown, not the timed rounds")
    args = ap.parse_args()
    n = 100_000 if args.quick else args.rows
    print(f"load before: {load_note()}", flush=True)
    eng = bench_engine()
    with eng.begin() as conn:
        categories.ensure_loaded(conn)
        path = case_file(conn, n)
        where = machine(conn)
    if args.profile_only:
        print(f"machine: {where}")
        profile(eng, path)
        print(f"load after the profile: {load_note()}")
        return
    runs: dict[str, list[float]] = {"bare COPY (floor)": [], "gridmgr import_file": [], "geopandas pipeline": []}
    g_phases: dict[str, list[float]] = {}
    p_phases: dict[str, list[float]] = {}
    checks = []
    for r in range(1, args.repeat + 1):
        t: dict[str, float] = {}
        print(f"round {r}/{args.repeat}: (b) bare COPY into an unindexed table", flush=True)
        fresh(eng)
        copied = run_copy(eng, path, t)
        print(f"round {r}/{args.repeat}: gridmgr import_file into cases", flush=True)
        fresh(eng)
        phases: dict[str, float] = {}
        result = run_gridmgr(eng, path, t, phases)
        print(f"    {result.line()}", flush=True)
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("DROP TABLE IF EXISTS bench_copy"))
            conn.execute(text("VACUUM ANALYZE cases"))  # autovacuum would otherwise run during (a)
            conn.execute(text("CHECKPOINT"))
        print(f"round {r}/{args.repeat}: (a) geopandas: read_csv → sjoin → to_postgis", flush=True)
        gp: dict[str, float] = {}
        gpd_rows = run_geopandas(eng, path, t, gp)
        stored, same, out_of_grid, _ = compare(eng)
        checks.append(same == n == stored == gpd_rows == copied)
        print(f"    same cell as geopandas: {same:,} / {n:,}; out of grid {out_of_grid:,}", flush=True)
        for k, v in t.items():
            runs[k].append(v)
        for k, v in phases.items():
            g_phases.setdefault(k, []).append(v)
        for k, v in gp.items():
            p_phases.setdefault(k, []).append(v)

    med = {k: statistics.median(v) for k, v in runs.items()}
    r_ours, r_gpd, r_copy = (n / med[k] for k in ("gridmgr import_file", "geopandas pipeline", "bare COPY (floor)"))
    faster = med["geopandas pipeline"] / med["gridmgr import_file"]
    vs_floor = med["gridmgr import_file"] / med["bare COPY (floor)"]
    ok_cells = all(checks)
    print()
    print(f"machine: {where}")
    print(f"load after: {load_note()}")
    print(f"file: {path} ({path.stat().st_size / 2**20:,.0f} MiB, {n:,} rows); medians of {args.repeat} round(s)")
    for label, times in runs.items():
        print(f"  {label:30} {' '.join(f'{s:7.2f}' for s in times)} s")
    # ratios within a round are steadier than rates on a shared machine
    g, p, c = runs["gridmgr import_file"], runs["geopandas pipeline"], runs["bare COPY (floor)"]
    print(f"  {'geopandas ÷ gridmgr time':30} {' '.join(f'{b / a:7.2f}' for a, b in zip(g, p))}  (target ≥ 5)")
    print(f"  {'gridmgr ÷ bare COPY time':30} {' '.join(f'{a / b:7.2f}' for a, b in zip(g, c))}  (target ≤ 3)")
    for title, ph, total in (("gridmgr", g_phases, med["gridmgr import_file"]),
                             ("geopandas", p_phases, med["geopandas pipeline"])):
        print(f"{title} phases (median of each, whole run {total:.1f} s):")
        for label, times in ph.items():
            s = statistics.median(times)
            print(f"  {label:42} {s:7.2f} s  {s / total:5.1%}")
    print(f"rows stored: gridmgr {stored:,} (out of grid {out_of_grid:,}), geopandas {gpd_rows:,}, COPY {copied:,}")
    print(f"same cell as geopandas: {'every row, every round' if ok_cells else 'NO'}")
    print(f"gridmgr import_file:  {r_ours:>10,.0f} rows/s")
    print(f"(a) geopandas:        {r_gpd:>10,.0f} rows/s  gridmgr {faster:.2f}× as fast (target ≥ 5×: "
          f"{'met' if faster >= 5 else 'MISSED'})")
    print(f"(b) bare COPY:        {r_copy:>10,.0f} rows/s  gridmgr takes {vs_floor:.2f}× its time (target ≤ 3×: "
          f"{'met' if vs_floor <= 3 else 'MISSED'})")
    if args.profile:
        profile(eng, path)
        print(f"load after the profile: {load_note()}")
    print(f"import_cases: {n:,} rows, gridmgr {r_ours:,.0f} rows/s; {faster:.2f}× geopandas' speed ({r_gpd:,.0f}/s, "
          f"target ≥5×: {'met' if faster >= 5 else 'MISSED'}); {vs_floor:.1f}× bare COPY's time "
          f"({r_copy:,.0f}/s, target ≤3×: {'met' if vs_floor <= 3 else 'MISSED'}); "
          f"cells {'identical' if ok_cells else 'DIFFER'}")
    if not ok_cells:
        sys.exit(1)


if __name__ == "__main__":
    main()
