"""Shared pieces of the benchmarks: a scratch database with the demo grid, timing, reporting."""

from __future__ import annotations

import hashlib
import io
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gridmgr.config import Config
from gridmgr.db import migrate
from gridmgr.db.engine import owner_url
from gridmgr.demo import loader
from gridmgr.paths import var_dir

BENCH_DB = "gridmgr_bench"


ROOT = Path(__file__).resolve().parent.parent
# what the bench database is built from: when one of these changes (an edited migration, a new
# demo), the database is dropped and built again instead of silently reused
BUILT_FROM = ("migrations/versions/*.py", "gridmgr/demo*.py", "gridmgr/grid*.py")


def built_from() -> str:
    """A digest of the files the bench database is built from."""
    h = hashlib.sha256()
    for pattern in BUILT_FROM:
        for f in sorted(ROOT.glob(pattern)):
            h.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def bench_engine(size: str = "demo") -> Engine:
    """A database of the benchmarks' own (never the user's data) with the demo grid loaded once.

    As the owner: the benchmarks create, drop and reset their scratch database, which the app's role may not.
    """
    base = make_url(owner_url(Config.from_env()))
    if BENCH_DB in {base.database, "gridmgr", "postgres", "template0", "template1"}:
        # this function may drop and rebuild the database it is given: never the user's
        raise SystemExit(f"refusing to use {BENCH_DB!r} as a bench database")
    digest = built_from()
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": BENCH_DB}).scalar():
            probe = create_engine(base.set(database=BENCH_DB))
            with probe.connect() as b:
                stored = (
                    b.execute(text("SELECT value #>> '{}' FROM meta WHERE key = 'bench_built_from'")).scalar()
                    if b.execute(text("SELECT to_regclass('meta')")).scalar()
                    else None
                )
            probe.dispose()
            if stored != digest:
                print(f"  · {BENCH_DB} was built from other migrations or demo code: dropping it", flush=True)
                c.execute(text(f'DROP DATABASE "{BENCH_DB}" WITH (FORCE)'))
        if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": BENCH_DB}).scalar():
            c.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
    admin.dispose()
    eng = create_engine(base.set(database=BENCH_DB))
    migrate.upgrade(eng)
    with eng.begin() as conn:
        result = loader.load(conn, size, var_dir() / "bench" / size, step=lambda m: print(f"  · {m}", flush=True))
        conn.execute(
            text(
                "INSERT INTO meta (key, value) VALUES ('bench_built_from', to_jsonb(CAST(:d AS text))) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            {"d": digest},
        )
        # fresh tables have no statistics until autovacuum comes by: without them the planner
        # joins points to cells through the partial index on open cells instead of the GiST index
        conn.execute(text("ANALYZE regions"))
        conn.execute(text("ANALYZE grid_cells"))
    print(f"bench database {BENCH_DB}: {result.counts['cells']:,} cells ({'loaded' if result.loaded else 'reused'})")
    return eng


def district_points(
    conn, n: int, *, seed: int = 7, hot_share: float = 0.3, n_hot: int = 6, sigma_deg: float = 0.002
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n seeded points inside the demo district: uniform, plus `hot_share` of them around `n_hot` hot spots.

    Returns lon, lat and the hot spot of each point (-1 for the uniform ones). Hot-spot centres
    are drawn inside the district and every point is kept only when inside it, so exactly n come back.
    """
    rng = np.random.default_rng(seed)
    district = shapely.from_wkb(
        bytes(conn.execute(text("SELECT ST_AsBinary(ST_Union(geom)) FROM regions WHERE level = 'district'")).scalar())
    )
    shapely.prepare(district)
    x0, y0, x1, y1 = district.bounds

    def inside(draw, k: int) -> tuple[np.ndarray, ...]:
        parts, got = [], 0
        while got < k:
            cols = draw(max(2 * (k - got), 1000))
            keep = shapely.contains_xy(district, cols[0], cols[1])
            parts.append([c[keep] for c in cols])
            got += int(keep.sum())
        return tuple(np.concatenate([p[i] for p in parts])[:k] for i in range(len(parts[0])))

    n_hot_pts = round(n * hot_share)
    ux, uy = inside(lambda m: (rng.uniform(x0, x1, m), rng.uniform(y0, y1, m)), n - n_hot_pts)
    cx, cy = inside(lambda m: (rng.uniform(x0, x1, m), rng.uniform(y0, y1, m)), n_hot)

    def around(m: int):
        pick = rng.integers(0, n_hot, m)
        return cx[pick] + rng.normal(0, sigma_deg, m), cy[pick] + rng.normal(0, sigma_deg, m), pick

    hx, hy, hp = inside(around, n_hot_pts) if n_hot_pts else (np.empty(0), np.empty(0), np.empty(0, int))
    # interleave so that any prefix of the points has the same mix
    order = rng.permutation(n)
    lon = np.concatenate([ux, hx])[order]
    lat = np.concatenate([uy, hy])[order]
    spot = np.concatenate([np.full(len(ux), -1), hp])[order]
    return lon, lat, spot


def vertex_points(conn, k: int, *, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """k points exactly on cell corners shared by several open cells (the edge rule's cases), seeded."""
    xy = np.array(
        conn.execute(
            text("""
        SELECT x, y FROM (
          SELECT ST_X(d.geom) AS x, ST_Y(d.geom) AS y FROM grid_cells c, ST_DumpPoints(c.geom) d
          WHERE c.valid_to IS NULL) v
        GROUP BY x, y HAVING count(*) > 2 ORDER BY x, y""")
        ).all(),
        dtype=float,
    ).reshape(-1, 2)
    pick = np.random.default_rng(seed).integers(0, len(xy), k)
    return xy[pick, 0], xy[pick, 1]


def load_note() -> str:
    """The load averages: the benchmarks share the machine, and say how busy it was."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def machine(conn) -> str:
    """One line about where a benchmark ran: cores, RAM, PostgreSQL and PostGIS versions, date."""
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    ram = next((int(line.split()[1]) // 1024**2 for line in meminfo if line.startswith("MemTotal")), 0)
    pg = conn.execute(text("SHOW server_version")).scalar()
    gis = conn.execute(text("SELECT postgis_lib_version()")).scalar()
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), platform.processor()
    )
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        ).stdout.strip()

    code = git("rev-parse", "--short", "HEAD") + (" + uncommitted changes" if git("status", "--porcelain") else "")
    return (
        f"{nproc} cores ({cpu}), {ram} GiB RAM, PostgreSQL {pg}, PostGIS {gis}, {date.today().isoformat()}, code {code}"
    )


@contextmanager
def timed(label: str, store: dict):
    """Time a block into store[label] (seconds) and print it."""
    t = time.perf_counter()
    yield
    store[label] = time.perf_counter() - t
    print(f"  {label}: {store[label]:.2f} s", flush=True)


def median_of(fn, repeat: int = 3) -> float:
    """The median wall time of `repeat` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def wsgi_get(app, url: str, extra_environ: dict) -> tuple[int, dict, bytes]:
    """GET url handed to a WSGI callable as a server hands it over (extra_environ: HTTP_… keys): (status, headers, body)."""
    path_info, _, query = url.partition("?")
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "SCRIPT_NAME": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "5000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:5000",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        **extra_environ,
    }
    answer = []
    chunks = app(environ, lambda status, hdrs, exc_info=None: answer.append((int(status[:3]), dict(hdrs))))
    try:
        body = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return *answer[0], body
