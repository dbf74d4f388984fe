"""Benchmark: vector tiles over 10⁶ cases — the endpoint against its raw ST_AsMVT statement, cached against not.

    .venv/bin/python bench/tiles.py [--cases 1000000 | --quick] [--per-zoom 40] [--rounds 3]

Data, in a database of this benchmark's own (gridmgr_bench_tiles: another benchmark that empties
`cases` never meets this one): the demo district (4,896 cells of 100 m) with its year of demo cases,
topped up with seeded synthetic cases to --cases in all, reported over the ten years before the demo's
anchor (70% spread over the district, 30% around 8 hot spots; the last 60 days open with deadlines, so
some are overdue; older ones closed or rejected). Built once, then reused.

Tiles: for each zoom 12–17, up to --per-zoom distinct tiles under seeded samples of cases (so dense
areas weigh as they do on a map), each asked three ways: cases in the default window (the last 30
days), cases over the whole decade (`period=`), and cells. "Now" is the demo's anchor, noon.

Measured in the same run, tile by tile in turn (which of the two goes first alternating), --rounds times:
- raw: the statement gridmgr.maps.tiles builds for the tile, with the settings the endpoint sends ahead of
  it (JIT off), run on an open psycopg2 connection in autocommit (one round trip: the least any client
  pays for it), its text and parameters built before the clock starts;
- endpoint: GET /tiles/<layer>/<z>/<x>/<y>.pbf handed to the app's WSGI callable as a server hands
  a request over (an environ with a logged-in session's cookie, a start_response; the body joined),
  served by the app's tile fast path (gridmgr.web.views.tiles.TileFastPath): session cookie, pool checkout,
  the same statement inside the one that also reads the data version and checks the login, the
  response; with the tile cache off;
- test client: the same request through Flask's test client, which adds its own request building and
  response parsing (the previous revisions' "endpoint"), reported beside it;
- cached: the same requests with the cache warm.
Targets: endpoint median ≤ 1.3 × raw median; cached throughput ≥ 10 × uncached (both through WSGI). Also reported: the
largest tile in bytes and in features, the median planning time of the statements, and where the
endpoint's time goes besides the tile's SQL (its own statement run bare, a refused request, a 304).
"""

from __future__ import annotations

import argparse
import io
import math
import re
import statistics
import sys
import time
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from sqlalchemy import text

from gridmgr.demo import accounts as demo_accounts
from gridmgr.maps import tiles
from gridmgr.people import accounts, credentials

import common
from common import district_points, load_note, machine

common.BENCH_DB = "gridmgr_bench_tiles"
ZOOMS = range(12, 18)
YEARS = 10
OPEN_DAYS = 60
OPEN_STATES = ("reported", "verified", "registered", "dispatched", "handled", "checked", "rework")
# the everyday mix of a district's cases (share of each code; the rest spread over the other codes)
COMMON = {"0201": 14, "0102": 11, "0504": 10, "0505": 8, "0506": 8, "0501": 6, "0104": 5, "0507": 5}


# ------------------------------------------------------------------------------------------------ data


def top_up_cases(eng, n: int, anchor: datetime, seed: int = 1000) -> int:
    """Add seeded synthetic cases over the decade before `anchor` until `cases` holds n rows; the count."""
    with eng.begin() as conn:
        have = conn.execute(text("SELECT count(*) FROM cases")).scalar()
        if have >= n:
            return have
        k = n - have
        print(f"  · adding {k:,} synthetic cases over {YEARS} years", flush=True)
        rng = np.random.default_rng(seed)
        lon, lat, _ = district_points(conn, k, seed=seed, hot_share=0.3, n_hot=8, sigma_deg=0.0015)
        codes = [r[0] for r in conn.execute(text("SELECT code FROM categories ORDER BY code"))]
        weight = np.array([COMMON.get(c, 0.5) for c in codes])
        category = rng.choice(codes, k, p=weight / weight.sum())
        age = rng.uniform(0, YEARS * 365.25 * 86400, k)  # seconds before the anchor
        reported = pd.to_datetime(anchor.timestamp() - age, unit="s", utc=True)
        fresh = age < OPEN_DAYS * 86400
        status = np.where(rng.random(k) < 0.95, "closed", "rejected").astype(object)
        status[fresh] = rng.choice(OPEN_STATES, int(fresh.sum()))
        deadline = pd.Series(reported + pd.to_timedelta(rng.uniform(1, 15, k), unit="D"))
        deadline[~fresh] = pd.NaT
        frame = pd.DataFrame(
            {
                "case_no": [f"B{seed}{i:09d}" for i in range(k)],
                "category": category,
                "lon": lon,
                "lat": lat,
                "reported_at": reported.strftime("%Y-%m-%d %H:%M:%S+00"),
                "status": status,
                "deadline": deadline.dt.strftime("%Y-%m-%d %H:%M:%S+00"),
            }
        )
        conn.execute(
            text(
                "CREATE TEMP TABLE bench_cases (case_no text, category text, lon float8, lat float8, "
                "reported_at timestamptz, status text, deadline timestamptz) ON COMMIT DROP"
            )
        )
        buf = io.StringIO()
        frame.to_csv(buf, index=False, header=False)
        buf.seek(0)
        with conn.connection.dbapi_connection.cursor() as cur:
            cur.copy_expert("COPY bench_cases FROM STDIN WITH (FORMAT csv)", buf)
        # assigned to today's cells (the demo grid opens when the demo is loaded): tiles never read cell_id
        conn.execute(
            text("""
            INSERT INTO cases (case_no, category_code, source, reported_at, status, deadline, deadline_step,
                               step_started_at, geom, cell_id)
            SELECT s.case_no, s.category, 'supervisor', s.reported_at, s.status, s.deadline,
                   CASE WHEN s.deadline IS NOT NULL THEN 'handle' END,
                   CASE WHEN s.deadline IS NOT NULL THEN s.reported_at END, p.geom, c.cell_id
            FROM bench_cases s
            CROSS JOIN LATERAL (SELECT ST_SetSRID(ST_MakePoint(s.lon, s.lat), 4326) AS geom) p
            LEFT JOIN LATERAL cell_for(p.geom, now()) c ON true
            ORDER BY s.reported_at""")
        )  # stored in the order a bureau receives them
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE cases"))
        return conn.execute(text("SELECT count(*) FROM cases")).scalar()


def anchor_of(eng) -> datetime:
    """Noon of the demo's anchor date, Beijing time: the benchmark's "now"."""
    with eng.connect() as conn:
        day = conn.execute(text("SELECT value ->> 'anchor' FROM meta WHERE key = 'demo'")).scalar()
    return datetime.fromisoformat(f"{day}T12:00:00+08:00")


def pick_tiles(eng, per_zoom: int, seed: int = 12) -> list[tuple[int, int, int]]:
    """Up to per_zoom distinct tiles per zoom 12–17, under a seeded sample of the cases."""
    with eng.connect() as conn:
        # ordered: a seq scan's row order varies (synchronized scans), and with it the seeded sample,
        # so runs on the same database would time different tiles
        xy = np.array(
            conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM cases WHERE id % 101 = 7 ORDER BY id")).all(),
            dtype=float,
        )
    rng = np.random.default_rng(seed)
    out = []
    for z in ZOOMS:
        n = 2**z
        tx = np.floor((xy[:, 0] + 180) / 360 * n).astype(int)
        lat = np.radians(xy[:, 1])
        ty = np.floor((1 - np.log(np.tan(lat) + 1 / np.cos(lat)) / math.pi) / 2 * n).astype(int)
        seen: list[tuple[int, int, int]] = []
        for i in rng.permutation(len(xy)):
            t = (z, int(tx[i]), int(ty[i]))
            if t not in seen:
                seen.append(t)
            if len(seen) == per_zoom:
                break
        out += seen
    return out


# ----------------------------------------------------------------------------------------- measuring


def pyformat(sql: str) -> str:
    """SQLAlchemy's :name parameters → psycopg2's %(name)s (casts written `::type` untouched)."""
    return re.sub(r"(?<![:\w]):([A-Za-z_]\w*)", r"%(\1)s", sql)


def requests_for(tile_set, anchor: datetime) -> list[tuple[str, int, int, int, str]]:
    """(layer, z, x, y, query) for every tile: cases in the default window, over the decade, and cells."""
    decade = f"period={(anchor - timedelta(days=round(YEARS * 365.25))).date()}/{anchor.date()}"
    kinds = (("cases", ""), ("cases", decade), ("cells", ""))
    return [(layer, z, x, y, q) for z, x, y in tile_set for layer, q in kinds]


def app_for(url: str, anchor: datetime, cache_bytes: int):
    """The Flask app on the bench database and a client logged in as the demo leader."""
    from gridmgr.web import create_app

    app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_SECRET_KEY": "bench"})
    app.config["GRIDMGR_NOW"] = anchor
    app.config["GRIDMGR_TILE_CACHE_BYTES"] = cache_bytes
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    r = client.post(
        "/login", data={"username": "leader", "password": demo_accounts.password_for("leader"), "csrf_token": csrf}
    )
    assert r.status_code == 302, r.status_code
    return app, client


def path(r) -> str:
    """The URL of a request (layer, z, x, y, query)."""
    return f"/tiles/{r[0]}/{r[1]}/{r[2]}/{r[3]}.pbf" + (f"?{r[4]}" if r[4] else "")


class WsgiCaller:
    """GET requests handed to an app's WSGI callable as a server hands them over: an environ, a start_response."""

    def __init__(self, app, client=None):
        self.app = app
        cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"]) if client else None
        self.cookie = {"HTTP_COOKIE": f"{cookie.key}={cookie.value}"} if cookie else {}

    def get(self, url: str, **headers) -> tuple[int, dict, bytes]:
        """(status, headers, body) of GET url, with headers given as If_None_Match="…"."""
        return common.wsgi_get(self.app, url, {**self.cookie, **{f"HTTP_{k.upper()}": v for k, v in headers.items()}})


class Runner:
    """The ways to get a tile: raw statement, endpoint (WSGI, test client), endpoint with cache."""

    def __init__(self, eng, reqs, anchor: datetime):
        self.url = eng.url.render_as_string(hide_password=False)
        self.uncached_app, self.uncached = app_for(self.url, anchor, 0)
        self.cached_app, self.cached = app_for(self.url, anchor, 512 * 2**20)
        self.wsgi = WsgiCaller(self.uncached_app, self.uncached)
        self.wsgi_cached = WsgiCaller(self.cached_app, self.cached)
        self.raw = eng.raw_connection()
        self.raw.dbapi_connection.autocommit = True  # one statement, one snapshot: no BEGIN/ROLLBACK
        self.cur = self.raw.cursor()
        self.specs = {
            r: tiles.parse_tile(
                r[0], str(r[1]), str(r[2]), str(r[3]), dict(p.split("=", 1) for p in r[4].split("&") if p), anchor
            )
            for r in reqs
        }
        self.statements = {}  # the tile's statement, with the settings the endpoint sends ahead of it
        for r, spec in self.specs.items():
            sql, params = tiles.tile_sql(spec)
            self.statements[r] = (tiles.STATEMENT_SETTINGS + pyformat(sql), params)

    def run_raw(self, r) -> bytes:
        sql, params = self.statements[r]
        self.cur.execute(sql, params)
        body = self.cur.fetchone()[0]
        return bytes(body) if body is not None else b""

    def run_endpoint_sql(self, r, access) -> bytes:
        """The endpoint's own statement for the tile (data version, login check, tile) on the raw connection."""
        return tiles.fetch(self.cur, self.specs[r], (), access).body

    def run_endpoint(self, r, caller: WsgiCaller | None = None, **headers) -> tuple[int, dict, bytes]:
        status, hdrs, body = (caller or self.wsgi).get(path(r), **headers)
        assert status in (200, 304), (r, status)
        return status, hdrs, body

    def run_client(self, r) -> bytes:
        resp = self.uncached.get(path(r))
        assert resp.status_code == 200, (r, resp.status_code)
        return resp.data

    def planning_ms(self, r) -> float:
        sql, params = tiles.tile_sql(self.specs[r])
        self.cur.execute("EXPLAIN (SUMMARY true) " + pyformat(sql), params)
        lines = [row[0] for row in self.cur.fetchall()]
        return next(float(line.split(":")[1].split()[0]) for line in lines if line.startswith("Planning Time"))


def per_request_ms(fn, items) -> float:
    """The mean milliseconds of fn over items."""
    t = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - t) / len(items) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--per-zoom", type=int, default=40, help="tiles per zoom level 12–17")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="8 tiles per zoom, one round (the same data)")
    args = ap.parse_args()
    if args.quick:
        args.per_zoom, args.rounds = 8, 1
    import mapbox_vector_tile

    eng = common.bench_engine()
    anchor = anchor_of(eng)
    n_cases = top_up_cases(eng, args.cases, anchor)
    reqs = requests_for(pick_tiles(eng, args.per_zoom), anchor)
    print(
        f"{n_cases:,} cases; {len(reqs)} tile requests ({len(reqs) // 3} tiles at z12–17 × cases in the "
        f"default window, cases over {YEARS} years, cells); now = {anchor.isoformat()}",
        flush=True,
    )
    run = Runner(eng, reqs, anchor)

    # warm-up: every statement once each way (shared buffers, the app's first-request set-up)
    for r in reqs:
        body = run.run_raw(r)  # the same statement inside, the same bytes out
        assert body == run.run_endpoint(r)[2] == run.run_client(r), r
    ways = (("raw", run.run_raw), ("endpoint", run.run_endpoint), ("client", run.run_client))
    times: dict[str, dict] = {name: {} for name, _ in ways}
    rng = np.random.default_rng(3)
    for rnd in range(args.rounds):
        for i in rng.permutation(len(reqs)):
            r = reqs[i]
            turn = (i + rnd) % len(ways)  # who goes first takes turns
            for name, fn in ways[turn:] + ways[:turn]:
                t = time.perf_counter()
                fn(r)
                times[name].setdefault(r, []).append(time.perf_counter() - t)
        print(f"  round {rnd + 1}/{args.rounds} done", flush=True)

    # cached: the same requests, the cache warm, as many passes as rounds above
    etags = {r: run.run_endpoint(r, run.wsgi_cached)[1]["ETag"].strip('"') for r in reqs}
    cached_ms = per_request_ms(lambda r: run.run_endpoint(r, run.wsgi_cached), reqs * args.rounds)
    # where the endpoint's time goes besides the tile's SQL: its own statement (data version, login
    # check, tile) run bare on the raw connection, interleaved with the raw one; what every request
    # costs whatever its tile (the app: a request refused at the login check, which reads no database);
    # a revalidation (login check and data version in one statement, a 304)
    with eng.begin() as conn:
        uid = conn.execute(text("SELECT id FROM users WHERE username = 'leader'")).scalar_one()
        secret, _ = credentials.issue(conn, "session", user_id=uid, lifetime_minutes=60, idle_minutes=60)
    access = (accounts.ACTIVE_SESSION_SQL, {"secret_hash": credentials.digest(secret)})
    bare = {"raw": [], "own": []}  # in pairs, one pair per request
    for i in rng.permutation(len(reqs)):
        pair = (("raw", run.run_raw), ("own", lambda r: run.run_endpoint_sql(r, access)))
        for name, fn in pair if i % 2 else pair[::-1]:
            t = time.perf_counter()
            fn(reqs[i])
            bare[name].append(time.perf_counter() - t)
    anonymous = WsgiCaller(run.cached_app)
    floor_ms = per_request_ms(lambda r: anonymous.get(path(r)), reqs)
    revalidate_ms = per_request_ms(lambda r: run.run_endpoint(r, run.wsgi_cached, If_None_Match=f'"{etags[r]}"'), reqs)

    sizes, feats, planning = {}, {}, []
    for r in reqs:  # untimed
        body = run.run_raw(r)
        sizes[r] = len(body)
        feats[r] = sum(len(layer["features"]) for layer in mapbox_vector_tile.decode(body).values()) if body else 0
        planning.append(run.planning_ms(r))
    with eng.connect() as conn:
        where = machine(conn)
    run.raw.close()

    med = lambda xs: statistics.median(xs) * 1000
    all_of = lambda name, keep: [t for r, ts in times[name].items() if keep(r) for t in ts]
    kind = lambda r: r[0] + (" decade" if r[4] else "")
    print()
    print(f"machine: {where}")
    print(f"load after: {load_note()}")
    print(
        f"{'requests':22} {'n':>5} {'raw ms':>8} {'endpoint ms':>12} {'ratio':>6} {'client ms':>10} {'ratio':>6} "
        f"{'max bytes':>10} {'max feats':>9}"
    )
    groups = [
        (f"{k} z{z}", lambda r, k=k, z=z: r[1] == z and kind(r) == k)
        for k in ("cases", "cases decade", "cells")
        for z in ZOOMS
    ]
    groups += [(f"{k} z12–17", lambda r, k=k: kind(r) == k) for k in ("cases", "cases decade", "cells")]
    for label, keep in [*groups, ("all", lambda r: True)]:
        rs = [r for r in reqs if keep(r)]
        if rs:
            a, b, c = (med(all_of(name, keep)) for name in ("raw", "endpoint", "client"))
            print(
                f"{label:22} {len(rs):5} {a:8.2f} {b:12.2f} {b / a:6.2f} {c:10.2f} {c / a:6.2f} "
                f"{max(sizes[r] for r in rs):10,} {max(feats[r] for r in rs):9,}"
            )
    raw_med, end_med, client_med = (med(all_of(name, bool)) for name in ("raw", "endpoint", "client"))
    uncached_ms = statistics.mean(all_of("endpoint", bool)) * 1000
    biggest = max(reqs, key=lambda r: sizes[r])
    cache = run.cached_app.extensions["gridmgr.tile_cache"]
    print(f"planning time: median {statistics.median(planning):.2f} ms, max {max(planning):.2f} ms")
    print(
        f"largest tile: {sizes[biggest]:,} bytes ({path(biggest)}); most features in a tile: "
        f"{max(feats.values()):,} (cap {tiles.MAX_FEATURES:,})"
    )
    print(f"cache: {len(cache):,} tiles, {cache.bytes / 2**20:.1f} MiB")
    print(
        f"throughput: uncached {1000 / uncached_ms:,.0f} tiles/s (mean {uncached_ms:.2f} ms), "
        f"cached {1000 / cached_ms:,.0f} tiles/s (mean {cached_ms:.2f} ms)"
    )
    # the endpoint's time over the raw statement's, request by request (each pair measured back to back):
    # robust where a difference of two medians over tiles of very different sizes is not
    paired = lambda name: statistics.median(e - a for r in reqs for e, a in zip(times[name][r], times["raw"][r])) * 1000
    extra, client_extra = paired("endpoint"), paired("client")
    own = statistics.median(o - a for o, a in zip(bare["own"], bare["raw"])) * 1000
    print(
        f"the endpoint over raw, paired by request: median {extra:.2f} ms; of which its own statement's "
        f"extras (data version, login check; run bare, paired) {own:.2f} ms, and the rest — app, pool "
        f"checkout — ≈ {extra - own:.2f} ms; through the test client {client_extra:.2f} ms"
    )
    print(
        f"fixed cost per request: the app {floor_ms:.2f} ms (a request refused at the login check, "
        f"no database), a 304 revalidation {revalidate_ms:.2f} ms in all"
    )
    print(f"through Flask's test client: median {client_med:.2f} ms = {client_med / raw_med:.2f}× raw SQL")
    ok = end_med <= 1.3 * raw_med and uncached_ms >= 10 * cached_ms
    print(
        f"tiles: endpoint median {end_med:.2f} ms = {end_med / raw_med:.2f}× raw SQL {raw_med:.2f} ms "
        "(target ≤ 1.3×); "
        f"cached {uncached_ms / cached_ms:.1f}× uncached throughput (target ≥ 10×); largest tile "
        f"{sizes[biggest]:,} bytes; {'targets met' if ok else 'TARGET MISSED'}"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
