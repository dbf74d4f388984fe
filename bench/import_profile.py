"""Where `import_file`'s time goes (bench/import_cases.py --profile): its statements, its INSERT explained, lighter variants."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

from sqlalchemy import MetaData, event, text

from gridmgr.io import importer
from gridmgr.plugins import registry


def _null_join(*args, **kwargs) -> str:
    alias = kwargs.get("alias", "c")
    return f"LEFT JOIN LATERAL (SELECT NULL::bigint AS cell_id) AS {alias} ON true"


def _statement_times(conn) -> list[tuple[float, str]]:
    """Time every statement the connection runs from now on: a list it fills, (seconds, statement)."""
    times: list[tuple[float, str]] = []
    started: list[float] = []

    @event.listens_for(conn, "before_cursor_execute")
    def before(*_):
        started.append(time.perf_counter())

    @event.listens_for(conn, "after_cursor_execute")
    def after(_conn, _cursor, statement, *_):
        times.append((time.perf_counter() - started.pop(), " ".join(statement.split())))

    return times


def profile(eng, path: Path, fresh: Callable[[object], None]) -> None:
    """Where gridmgr's time goes: every statement of import_file, EXPLAIN ANALYZE of its INSERT, and
    the INSERT phase against lighter variants (each into a fresh, empty relation, rolled back)."""
    layer = registry.get("cases")
    fresh(eng)
    print("\nprofile 1: the statements of one import_file (rolled back), slowest first", flush=True)
    with eng.connect() as conn, conn.begin() as tx:
        times = _statement_times(conn)
        t0 = time.perf_counter()
        importer.import_file(conn, layer, path, actor="bench")
        total = time.perf_counter() - t0
        tx.rollback()
    print(f"  whole import_file {total:.2f} s; SQL {sum(s for s, _ in times):.2f} s in {len(times)} statements")
    for seconds, statement in sorted(times, reverse=True)[:12]:
        print(f"  {seconds:7.2f} s  {statement[:110]}")

    print("profile 2: EXPLAIN (ANALYZE, BUFFERS, WAL) of the INSERT (rolled back)", flush=True)
    fresh(eng)
    with eng.connect() as conn, conn.begin() as tx:
        real = conn.execute

        def explained(statement, params=None, *args, **kwargs):
            sql = str(statement)
            if "INSERT INTO cases" not in sql:
                return real(statement, params, *args, **kwargs)
            t1 = time.perf_counter()
            plan = [r[0] for r in real(text("EXPLAIN (ANALYZE, BUFFERS, WAL) " + sql), params).all()]
            print(f"  the INSERT under EXPLAIN ANALYZE: {time.perf_counter() - t1:.2f} s")
            for line in plan:
                if (
                    "actual" in line
                    or "Trigger" in line
                    or "Execution" in line
                    or "WAL:" in line
                    or "Sort Method" in line
                    or "JIT" in line
                    or "Timing:" in line
                ):
                    print("   ", line[:150])
            return real(text("SELECT count(*), count(*) FILTER (WHERE cell_id IS NULL) FROM cases"))

        with mock.patch.object(conn, "execute", explained):
            importer.import_file(conn, layer, path, actor="bench")
        tx.rollback()

    print(
        "profile 3: the INSERT phase into cases and lighter variants and targets, each fresh (rolled back)", flush=True
    )
    bare = dataclasses.replace(layer, on_insert=None)
    slim = "INCLUDING DEFAULTS INCLUDING GENERATED"  # + the unique key that ON CONFLICT needs
    never = 10**12
    variants = [  # label, layer, clone of cases (LIKE …), patches of layer_import
        ("cases as is (indexes built after the load)", layer, None, {}),
        ("cases, indexes maintained row by row", layer, None, {"DEFER_MIN_ROWS": never}),
        ("cases, assignment by cell_for (LATERAL, GiST)", layer, None, {"BULK_MIN_ROWS": never}),
        ("cases, NO assignment (cell_id NULL)", layer, None, {"point_cell_join": _null_join}),
        ("cases without the audit events", bare, None, {}),
        ("clone: all indexes + checks, no FKs, no audit", bare, "INCLUDING ALL", {}),
        ("clone: unique case_no only, no FKs, no audit", bare, slim, {}),
        ("  same, NO assignment (cell_id NULL)", bare, slim, {"point_cell_join": _null_join}),
    ]
    with eng.connect() as conn, conn.begin() as tx:
        for i, (label, base, like, patches) in enumerate(variants):
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
            marks: dict[str, float] = {}
            with contextlib.ExitStack() as stack:
                for attr, value in patches.items():
                    stack.enter_context(mock.patch.object(importer, attr, value))
                t0 = time.perf_counter()
                importer.import_file(
                    conn,
                    target,
                    path,
                    actor="bench",
                    progress=lambda m, marks=marks: marks.setdefault(m.split()[0], time.perf_counter()),
                )
                t1 = time.perf_counter()
            insert_end = marks.get("building", t1)
            built = f", indexes {t1 - marks['building']:5.2f} s" if "building" in marks else ""
            print(
                f"  {label:52} INSERT {insert_end - marks['inserting']:6.2f} s{built:18} "
                f"(whole import_file {t1 - t0:6.2f} s)",
                flush=True,
            )
            differ = conn.execute(
                text(f"""
                SELECT count(*) FROM {target.table.name} x LEFT JOIN LATERAL cell_for(x.geom, x.reported_at) c ON true
                WHERE x.cell_id IS DISTINCT FROM c.cell_id AND x.cell_id IS NOT NULL""")
            ).scalar()
            if differ:
                print(f"    ({differ:,} rows assigned differently from cell_for)", flush=True)
            conn.execute(text("ROLLBACK TO SAVEPOINT p"))
        tx.rollback()
