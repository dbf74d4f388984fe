"""Benchmark: the supervisor map's page weight does not grow with the data; the grid as GeoJSON would.

    .venv/bin/python bench/map_page.py [--cases 1000000 | --quick] [--out var/bench/MAP.md]

On a bench database of its own (bench/common.py's `bench_engine`, under the name gridmgr_bench_map:
this benchmark empties and refills `cases`, which the others must not see), with the demo grid:

1. `cases` holds 1,000 cases spread over the district (a year of report times, every state, each in
   its cell by `cell_for`); `/map` is fetched through the real app (Flask's test client, logged in as
   the demo supervisor and as the demo leader): its HTML bytes and its time (median of 5);
2. the same with 1,000,000 cases (--quick: 100,000): the HTML must be no larger;
3. the comparison the design forbids: the same page with every open cell embedded as a
   folium.GeoJson layer (code as its only property), as a naive map would do: `/map` must be at most
   1/50 of it. Built here only, by wrapping web/views/maps.py's `build_map` for one request.

The small JSON calls the page makes (the cell panel, the labels of a z17 view) are timed at both
sizes too: they are bounded by a cell or a view, not by the data.
Results go to var/bench/MAP.md (generated, never in the source tree).
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

from sqlalchemy import text

from gridmgr.demo import accounts  # noqa: E402  (common puts the checkout on sys.path)
from gridmgr.paths import var_dir  # noqa: E402

import common
from common import load_note, machine

HERE = Path(__file__).resolve().parent
MAP_DB = "gridmgr_bench_map"
SMALL = 1_000
REPEAT = 5
# the README's 王府井 point: its cell and a z17 view around it (1280 × 800 px)
POINT = accounts.SUPERVISOR_POINT
VIEW = (POINT[0] - 0.0034, POINT[1] - 0.0016, POINT[0] + 0.0034, POINT[1] + 0.0016)


def map_engine():
    """bench_engine() under a name of this benchmark's own (same digest rule: rebuilt when the demo changes)."""
    common.BENCH_DB = MAP_DB
    return common.bench_engine()


def set_cases(eng, n: int) -> float:
    """Empty `cases` and put n synthetic cases in, each in its cell; seconds taken."""
    t = time.perf_counter()
    with eng.begin() as conn:
        # case_events refuse TRUNCATE by trigger, as real audit rows should; these are this scratch
        # database's own bench rows, so the triggers are skipped for this one statement
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("TRUNCATE cases RESTART IDENTITY CASCADE"))
        conn.execute(text("SET LOCAL session_replication_role = origin"))
        box = conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                "(SELECT ST_Extent(geom)::geometry AS e FROM regions WHERE level = 'district') s"
            )
        ).one()
        # a year of reports, every state, points uniform over the district's box (a few fall outside: no cell)
        conn.execute(
            text("""
            INSERT INTO cases (geom, cell_id, case_no, category_code, source, urgency, reported_at, description,
                               address, status, deadline)
            SELECT p.g, c.cell_id, 'M' || lpad(i::text, 9, '0'), '0102', 'public', 'normal',
                   now() - (i % 365) * interval '1 day' - (i % 1440) * interval '1 minute',
                   '人行道上有暴露垃圾，编号 ' || i, '东城区某街' || (i % 500) || '号',
                   (ARRAY['reported','verified','registered','dispatched','handled','checked','closed','closed',
                          'closed','rework'])[1 + i % 10],
                   now() + ((i % 7) - 3) * interval '1 day'
            FROM generate_series(1::bigint, :n) i
            CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(
                :x0 + (:x1 - :x0) * ((i * 7919) % 100003) / 100003.0,
                :y0 + (:y1 - :y0) * ((i * 104729) % 99991) / 99991.0), 4326) AS g) p
            LEFT JOIN LATERAL cell_for(p.g, now()) c ON true
        """),
            {"n": n, "x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3]},
        )
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE cases"))
    return time.perf_counter() - t


def client_for(app, username: str):
    """A test client logged in through the real login form (CSRF token and all)."""
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf[-_]token" (?:value|content)="([^"]+)"', html).group(1)
    r = client.post(
        "/login", data={"username": username, "password": accounts.password_for(username), "csrf_token": token}
    )
    if r.status_code != 302:
        raise SystemExit(f"login as {username} failed ({r.status_code}): is the demo roster loaded?")
    return client


def fetch(client, path: str) -> tuple[int, float]:
    """(bytes of the answer, median seconds over REPEAT fetches)."""
    times, size = [], 0
    for _ in range(REPEAT):
        t = time.perf_counter()
        r = client.get(path, headers={"Accept": "application/json"} if path.startswith("/map/") else {})
        times.append(time.perf_counter() - t)
        if r.status_code != 200:
            raise SystemExit(f"{path}: HTTP {r.status_code}: {r.get_data(as_text=True)[:300]}")
        size = len(r.get_data())
    return size, statistics.median(times)


def measure(app, label: str) -> dict:
    """The page and its JSON calls for the supervisor and the leader."""
    out = {}
    for user in ("supervisor", "leader"):
        client = client_for(app, user)
        out[f"/map ({user})"] = fetch(client, "/map")
    client = client_for(app, "supervisor")
    out["/map/cell (panel)"] = fetch(client, f"/map/cell?lon={POINT[0]}&lat={POINT[1]}")
    out["/map/labels (z17 view)"] = fetch(client, "/map/labels?bbox=" + ",".join(f"{v:.6f}" for v in VIEW))
    out["/map/values/open_cases"] = fetch(client, "/map/values/open_cases")  # per cell: grows with cells only
    for path, (size, secs) in out.items():
        print(f"  {label:>12} cases  {path:28} {size:>10,} B  {secs * 1000:8.1f} ms", flush=True)
    return out


def geojson_page(app, eng) -> int:
    """Bytes of /map with every open cell embedded as a folium.GeoJson layer (the forbidden way)."""
    import folium

    from gridmgr.web.views import maps

    with eng.connect() as conn:
        fc = conn.execute(
            text("""
            SELECT json_build_object('type', 'FeatureCollection', 'features', json_agg(json_build_object(
                'type', 'Feature', 'properties', json_build_object('code', code),
                'geometry', ST_AsGeoJSON(geom, 7)::json) ORDER BY code))
            FROM grid_cells WHERE valid_to IS NULL""")
        ).scalar()
    original = maps.build_map

    def with_cells(*args, **kwargs):
        m, names = original(*args, **kwargs)
        folium.GeoJson(
            fc,
            name="单元网格 cells (GeoJSON)",
            style_function=lambda f: {"color": "#1e3a8a", "weight": 1, "fill": False},
            tooltip=folium.GeoJsonTooltip(fields=["code"]),
        ).add_to(m)
        return m, names

    maps.build_map = with_cells
    try:
        size, _ = fetch(client_for(app, "supervisor"), "/map")
    finally:
        maps.build_map = original
    return size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--quick", action="store_true", help="100,000 cases instead of 1,000,000")
    ap.add_argument("--out", type=Path, default=var_dir() / "bench" / "MAP.md")
    args = ap.parse_args()
    big = 100_000 if args.quick else args.cases
    print(f"load before: {load_note()}", flush=True)
    eng = map_engine()
    url = eng.url.render_as_string(hide_password=False)
    from gridmgr.web import create_app

    app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_SECRET_KEY": "bench", "GRIDMGR_TILE_URL": None})
    with eng.connect() as conn:
        where = machine(conn)
        cells = conn.execute(text("SELECT count(*) FROM grid_cells WHERE valid_to IS NULL")).scalar()
    results, loads = {}, {}
    for n in (SMALL, big):
        loads[n] = set_cases(eng, n)
        print(f"cases: {n:,} (loaded in {loads[n]:.1f} s)", flush=True)
        results[n] = measure(app, f"{n:,}")
    embedded = geojson_page(app, eng)
    page_small, page_big = results[SMALL]["/map (supervisor)"][0], results[big]["/map (supervisor)"][0]
    leader_small, leader_big = results[SMALL]["/map (leader)"][0], results[big]["/map (leader)"][0]
    # the CSRF token in the page varies by a byte or two between sessions: allow that much, no more
    no_growth = page_big <= page_small + 4 and leader_big <= leader_small + 4
    ratio = embedded / page_big
    print(f"/map with the {cells:,} open cells embedded as GeoJSON: {embedded:,} B = {ratio:.0f}× the tiled page")
    lines = [
        "# Benchmark: the supervisor map's page weight",
        "",
        f"`.venv/bin/python bench/map_page.py{' --quick' if args.quick else ''}` — {where}; {load_note()}.",
        "",
        f"Demo grid: {cells:,} open cells. `/map` fetched through the app (Flask test client, logged in), "
        f"median of {REPEAT} fetches; `cases` emptied and refilled between the two sizes (each case in its cell).",
        "",
        f"| answer | {SMALL:,} cases | | {big:,} cases | |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| `{path}` | {results[SMALL][path][0]:,} B | {results[SMALL][path][1] * 1000:.0f} ms "
            f"| {results[big][path][0]:,} B | {results[big][path][1] * 1000:.0f} ms |"
            for path in results[SMALL]
        ),
        "",
        f"- Page weight with {big:,} cases vs {SMALL:,}: {page_big:,} B vs {page_small:,} B (supervisor), "
        f"{leader_big:,} B vs {leader_small:,} B (leader): **{'no larger' if no_growth else 'LARGER'}** "
        "(target: no larger). The page holds no case and no cell: they come as vector tiles.",
        f"- The same page with the {cells:,} open cells embedded as a folium.GeoJson layer: {embedded:,} B; "
        f"the tiled page is **1/{ratio:.0f}** of it (target: at most 1/50).",
        "- The JSON calls are bounded by what they describe, not by the data: the panel lists at most "
        "10 open cases of one cell (more cases, fuller list), the labels one view's cells, the values one "
        "number per cell with open cases (at most the grid's cells).",
        f"- Loading the cases (INSERT … SELECT with `cell_for`, then VACUUM ANALYZE): {SMALL:,} in "
        f"{loads[SMALL]:.1f} s, {big:,} in {loads[big]:.1f} s.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {args.out}")
    ok = no_growth and ratio >= 50
    print(
        f"map_page: /map {page_small:,} B with {SMALL:,} cases, {page_big:,} B with {big:,} "
        f"({'no larger' if no_growth else 'LARGER'}); 1/{ratio:.0f} of the GeoJSON-embedded page "
        f"(target ≤ 1/50: {'met' if ratio >= 50 else 'MISSED'})"
    )
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
