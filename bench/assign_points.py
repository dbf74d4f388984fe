"""Benchmark: assign 10⁶ points to the demo grid with `cell_for`, against geopandas sjoin and a bare join.

    .venv/bin/python bench/assign_points.py [--points 1000000 | --quick]

Points are seeded, spread over Dongcheng with a few dense clusters (as cases are). Reports the rate of
gridmgr's rule (one set-based statement through `cell_for`, with the edge and validity rules) beside
two baselines in the same run: geopandas.sjoin on the same points and cells (the cells and points read
from the database first, timed apart), and a plain PostGIS `ST_Covers` join (no tie-break, no validity
test), the floor; and gridmgr's bulk path for the same rule, the one imports use
(`gridmgr.grid.assign.prepare_point_tiles` + `point_cell_join`: a lookup on a tile key; the tile table's
build is timed with it). 0.1% of the points sit exactly on cell corners, where the lowest-code rule
decides. Checks that every point gets the same cell from all four (the lowest-code rule applied to
the floor's and geopandas' edge points).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import text

from gridmgr.grid import assign

from common import (
    bench_engine,
    district_points,
    load_note,
    machine,
    timed,
    vertex_points,
)


def make_points(conn, n: int, seed: int = 7) -> None:
    """A table of n points inside the district: 70% uniform, 30% around 6 hot spots, 0.1% on cell corners."""
    lon, lat, _ = district_points(conn, n, seed=seed, hot_share=0.3, n_hot=6)
    k = n // 1000  # replace some points by shared cell corners, where the lowest-code rule decides
    lon[:k], lat[:k] = vertex_points(conn, k, seed=seed)
    conn.execute(text("DROP TABLE IF EXISTS bench_points"))
    conn.execute(text("CREATE TEMP TABLE bench_xy (id bigint, lon float8, lat float8) ON COMMIT DROP"))
    buf = io.StringIO()
    # repr-exact coordinates: the database sees the same doubles as geopandas below
    pd.DataFrame({"id": np.arange(n), "lon": lon, "lat": lat}).to_csv(buf, index=False, header=False)
    buf.seek(0)
    with conn.connection.dbapi_connection.cursor() as cur:
        cur.copy_expert("COPY bench_xy (id, lon, lat) FROM STDIN WITH (FORMAT csv)", buf)
    conn.execute(
        text("""
        CREATE UNLOGGED TABLE bench_points AS
        SELECT id, ST_SetSRID(ST_MakePoint(lon, lat), 4326)::geometry(Point, 4326) AS geom FROM bench_xy""")
    )
    conn.execute(text("ALTER TABLE bench_points ADD PRIMARY KEY (id)"))
    conn.execute(text("ANALYZE bench_points"))


def lowest_code(pairs: pd.DataFrame, codes: dict) -> pd.Series:
    """Point id → cell code, a point on a shared edge (several rows) going to the lowest code."""
    return pairs.assign(code=pairs["cell_id"].map(codes)).groupby("id")["code"].min()


def same(a: pd.Series, b: pd.Series) -> int:
    """How many points two assignments (id → code, NaN = out of grid) agree on."""
    both = pd.DataFrame({"a": a, "b": b})
    return int(((both.a == both.b) | (both.a.isna() & both.b.isna())).sum())


def tile_assignment(conn) -> None:
    """gridmgr's bulk path (imports): the same rule reached through the tile table (table a_tiles)."""
    size = assign.prepare_point_tiles(conn)
    conn.execute(
        text(f"""
        CREATE TEMP TABLE a_tiles AS
        SELECT p.id, c.cell_id FROM bench_points p
        {assign.point_cell_join("ST_X(p.geom)", "ST_Y(p.geom)", "now()", size)}""")
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 points instead of the default size")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of every method; medians are reported")
    args = ap.parse_args()
    if args.quick:
        args.points = 100_000
    print(f"load before: {load_note()}", flush=True)
    eng = bench_engine()
    t: dict[str, float] = {}
    runs: dict[str, list[float]] = {}
    with eng.begin() as conn:
        with timed("make points", t):
            make_points(conn, args.points)
        n = conn.execute(text("SELECT count(*) FROM bench_points")).scalar()
        print(f"{n:,} points")
        conn.execute(text("SET max_parallel_workers_per_gather = 0"))  # the same single core for all
        for r in range(1, args.repeat + 1):
            print(f"round {r}/{args.repeat}", flush=True)
            conn.execute(text("DROP TABLE IF EXISTS a_gridmgr, a_floor, a_tiles"))
            with timed("gridmgr cell_for (one statement)", t):
                conn.execute(
                    text("""
                    CREATE TEMP TABLE a_gridmgr AS
                    SELECT p.id, c.cell_id FROM bench_points p LEFT JOIN LATERAL cell_for(p.geom, now()) c ON true""")
                )
            with timed("plain ST_Covers join (floor)", t):
                conn.execute(
                    text("""
                    CREATE TEMP TABLE a_floor AS
                    SELECT p.id, c.id AS cell_id FROM bench_points p
                    LEFT JOIN grid_cells c ON c.valid_to IS NULL AND ST_Covers(c.geom, p.geom)""")
                )
            with timed("gridmgr bulk path (tile join)", t):
                tile_assignment(conn)
            with timed("geopandas read cells + points", t):
                cells = gpd.read_postgis(
                    "SELECT id AS cell_id, geom FROM grid_cells WHERE valid_to IS NULL", conn, geom_col="geom"
                )
                pts = gpd.read_postgis("SELECT id, geom FROM bench_points", conn, geom_col="geom")
            with timed("geopandas sjoin", t):
                joined = gpd.sjoin(pts, cells, how="left", predicate="covered_by")
            for k, v in t.items():
                if k != "make points":
                    runs.setdefault(k, []).append(v)
        codes = dict(conn.execute(text("SELECT id, code FROM grid_cells")).all())
        ours = pd.Series(dict(conn.execute(text("SELECT id, cell_id FROM a_gridmgr")).all())).map(codes)
        tiles = pd.Series(dict(conn.execute(text("SELECT id, cell_id FROM a_tiles")).all())).map(codes)
        floor_pairs = pd.DataFrame(
            conn.execute(text("SELECT id, cell_id FROM a_floor")).all(), columns=["id", "cell_id"]
        )
        where = machine(conn)
    med = {k: statistics.median(v) for k, v in runs.items()}
    # the floor and geopandas join a point on a shared edge to every covering cell: apply our rule
    floor = lowest_code(floor_pairs, codes)
    theirs = lowest_code(joined[["id", "cell_id"]], codes)
    edge_points = int(floor_pairs["id"].duplicated().sum())
    same_floor, same_gpd, same_tiles = same(ours, floor), same(ours, theirs), same(ours, tiles)
    out_of_grid = int(ours.isna().sum())
    rate = lambda k: n / med[k]
    r_ours, r_floor = rate("gridmgr cell_for (one statement)"), rate("plain ST_Covers join (floor)")
    r_tiles = rate("gridmgr bulk path (tile join)")
    r_gpd = rate("geopandas sjoin")
    r_gpd_all = n / (med["geopandas sjoin"] + med["geopandas read cells + points"])
    print()
    print(f"machine: {where}")
    print(f"load after: {load_note()}")
    print(f"points: {n:,}; out of grid: {out_of_grid:,}; extra floor rows for points on shared edges: {edge_points:,}")
    print(f"medians of {args.repeat} round(s); every round's seconds:")
    for k, v in runs.items():
        print(f"  {k:36} {' '.join(f'{s:7.2f}' for s in v)}")
    # ratios within a round are steadier than rates on a shared machine
    ours_t, floor_t = runs["gridmgr cell_for (one statement)"], runs["plain ST_Covers join (floor)"]
    tiles_t = runs["gridmgr bulk path (tile join)"]
    print(f"  {'floor ÷ gridmgr time':36} {' '.join(f'{b / a:7.2f}' for a, b in zip(ours_t, floor_t))}")
    print(f"  {'gridmgr ÷ bulk-path time':36} {' '.join(f'{a / b:7.2f}' for a, b in zip(ours_t, tiles_t))}")
    print(
        f"same cell as the floor join: {same_floor:,} / {n:,}; as geopandas: {same_gpd:,} / {n:,}; "
        f"as the bulk path: {same_tiles:,} / {n:,}"
    )
    print(f"gridmgr cell_for:        {r_ours:>12,.0f} points/s")
    print(f"plain ST_Covers (floor): {r_floor:>12,.0f} points/s  (gridmgr at {r_ours / r_floor:.2f}× the floor's rate)")
    print(f"bulk path (tile join):   {r_tiles:>12,.0f} points/s  ({r_tiles / r_ours:.2f}× cell_for's rate)")
    print(
        f"geopandas sjoin only:    {r_gpd:>12,.0f} points/s "
        f"(+ {med['geopandas read cells + points']:.1f} s to read the data out of PostGIS: {r_gpd_all:,.0f} points/s)"
    )
    ok = same_floor == n and same_gpd == n and same_tiles == n
    print(
        f"assign_points: {n:,} points, gridmgr {r_ours:,.0f}/s = {r_ours / r_floor:.2f}× the ST_Covers floor "
        f"({r_floor:,.0f}/s); geopandas sjoin {r_gpd:,.0f}/s ({r_gpd_all:,.0f}/s with reads); "
        f"bulk path (tile join) {r_tiles:,.0f}/s; cells {'identical' if ok else 'DIFFER'}"
    )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
