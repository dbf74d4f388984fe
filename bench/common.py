"""Shared pieces of the benchmarks: a scratch database with the demo grid, timing, reporting."""
from __future__ import annotations

import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gridmgr import demo, migrate  # noqa: E402
from gridmgr.config import Config  # noqa: E402
from gridmgr.db import database_url  # noqa: E402
from gridmgr.paths import var_dir  # noqa: E402

BENCH_DB = "gridmgr_bench"


def bench_engine(size: str = "demo") -> Engine:
    """A database of the benchmarks' own (never the user's data) with the demo grid loaded once."""
    base = make_url(database_url(Config.from_env()))
    admin = create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": BENCH_DB}).scalar():
            c.execute(text(f'CREATE DATABASE "{BENCH_DB}"'))
    admin.dispose()
    eng = create_engine(base.set(database=BENCH_DB))
    migrate.upgrade(eng)
    with eng.begin() as conn:
        result = demo.load(conn, size, var_dir() / "bench" / size, step=lambda m: print(f"  · {m}", flush=True))
    print(f"bench database {BENCH_DB}: {result.counts['cells']:,} cells ({'loaded' if result.loaded else 'reused'})")
    return eng


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
