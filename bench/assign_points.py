"""Benchmark: assign 10⁶ points to the demo grid with `cell_for`, against geopandas sjoin and a bare join.

    .venv/bin/python bench/assign_points.py [--points 1000000]

Points are seeded, spread over Dongcheng with a few dense clusters (as cases are). Reports the rate of
gridmgr's rule (one set-based statement through `cell_for`, with the edge and validity rules) beside
two baselines in the same run: geopandas.sjoin on the same points and cells (the cells and points read
from the database first, timed apart), and a plain PostGIS `ST_Covers` join (no tie-break, no validity
test), the floor. Checks that every point gets the same cell from all three.
"""
from __future__ import annotations

import argparse

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import text

from common import bench_engine, timed


def make_points(conn, n: int, seed: int = 7) -> None:
    """A table of n points inside the district: 70% uniform, 30% around 6 hot spots."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = conn.execute(text(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
        "(SELECT ST_Extent(geom)::geometry e FROM regions WHERE level = 'district') s")).first()
    n_uni = int(n * 0.7)
    xs = rng.uniform(x0, x1, n_uni * 2)
    ys = rng.uniform(y0, y1, n_uni * 2)
    centres = rng.uniform([x0, y0], [x1, y1], (6, 2))
    pick = rng.integers(0, 6, n - n_uni)
    hx = centres[pick, 0] + rng.normal(0, 0.002, n - n_uni)
    hy = centres[pick, 1] + rng.normal(0, 0.002, n - n_uni)
    conn.execute(text("DROP TABLE IF EXISTS bench_points"))
    conn.execute(text("CREATE UNLOGGED TABLE bench_points (id bigint PRIMARY KEY, lon float8, lat float8, geom geometry(Point, 4326))"))
    import io

    buf = io.StringIO()
    lon = np.concatenate([xs, hx])
    lat = np.concatenate([ys, hy])
    for i, (a, b) in enumerate(zip(lon, lat)):
        buf.write(f"{i}\t{a:.7f}\t{b:.7f}\n")
    buf.seek(0)
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur:
        cur.copy_expert("COPY bench_points (id, lon, lat) FROM STDIN", buf)
    conn.execute(text("UPDATE bench_points SET geom = ST_SetSRID(ST_MakePoint(lon, lat), 4326)"))
    # keep points inside the district, then exactly n of them
    conn.execute(text("""
        DELETE FROM bench_points p WHERE NOT EXISTS (
          SELECT 1 FROM regions d WHERE d.level = 'district' AND ST_Covers(d.geom, p.geom))"""))
    conn.execute(text("DELETE FROM bench_points WHERE id IN (SELECT id FROM bench_points ORDER BY id OFFSET :n)"), {"n": n})
    conn.execute(text("ANALYZE bench_points"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    args = ap.parse_args()
    eng = bench_engine()
    t: dict[str, float] = {}
    with eng.begin() as conn:
        with timed("make points", t):
            make_points(conn, args.points)
        n = conn.execute(text("SELECT count(*) FROM bench_points")).scalar()
        print(f"{n:,} points")
        conn.execute(text("SET max_parallel_workers_per_gather = 0"))  # the same single core for all three
        with timed("gridmgr cell_for (one statement)", t):
            conn.execute(text("""
                CREATE TEMP TABLE a_gridmgr AS
                SELECT p.id, c.cell_id FROM bench_points p LEFT JOIN LATERAL cell_for(p.geom, now()) c ON true"""))
        with timed("plain ST_Covers join (floor)", t):
            conn.execute(text("""
                CREATE TEMP TABLE a_floor AS
                SELECT p.id, c.id AS cell_id FROM bench_points p
                LEFT JOIN grid_cells c ON c.valid_to IS NULL AND ST_Covers(c.geom, p.geom)"""))
        with timed("geopandas read cells + points", t):
            cells = gpd.read_postgis("SELECT id AS cell_id, geom FROM grid_cells WHERE valid_to IS NULL",
                                     conn, geom_col="geom")
            pts = gpd.read_postgis("SELECT id, geom FROM bench_points", conn, geom_col="geom")
        with timed("geopandas sjoin", t):
            joined = gpd.sjoin(pts, cells, how="left", predicate="covered_by")
        codes = dict(conn.execute(text("SELECT id, code FROM grid_cells")).all())
        ours = pd.Series(dict(conn.execute(text("SELECT id, cell_id FROM a_gridmgr")).all())).map(codes)
        floor_dupes = conn.execute(text("SELECT count(*) - count(DISTINCT id) FROM a_floor")).scalar()
        # geopandas joins a point on a shared edge to every covering cell: apply our rule (lowest code)
        joined["code"] = joined["cell_id"].map(codes)
        theirs = joined.groupby("id")["code"].min()
        both = pd.DataFrame({"ours": ours, "theirs": theirs})
        same = int(((both.ours == both.theirs) | (both.ours.isna() & both.theirs.isna())).sum())
        out_of_grid = int(both.ours.isna().sum())
    rate = lambda k: n / t[k]  # noqa: E731
    print()
    print(f"points: {n:,}; out of grid: {out_of_grid:,}; floor join duplicate rows (edge points): {floor_dupes:,}")
    print(f"same cell as geopandas: {same:,} / {n:,}")
    print(f"gridmgr cell_for:        {rate('gridmgr cell_for (one statement)'):>12,.0f} points/s")
    print(f"plain ST_Covers (floor): {rate('plain ST_Covers join (floor)'):>12,.0f} points/s")
    print(f"geopandas sjoin only:    {rate('geopandas sjoin'):>12,.0f} points/s "
          f"(+ {t['geopandas read cells + points']:.1f} s to read the data out of PostGIS)")


if __name__ == "__main__":
    main()
