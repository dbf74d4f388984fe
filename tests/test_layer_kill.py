"""A killed or failed import leaves the tables as they were (DESIGN.md §4, data safety).

`gridmgr layer import cases BIG.csv` runs as a real process against a fresh database; its backend is
terminated, or the process is SIGKILLed, while it runs the COPY or the INSERT; a COPY that fails
mid-way is the third way to die. Each time: no case, no audit row, no import_log row.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gridmgr.errors import InputError
from gridmgr.io import tabular
from gridmgr.io.importer import import_file
from gridmgr.plugins import registry

from support import SMALL_ORIGIN, SMALL_STEP, insert_small_grid

X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP
ROWS = 200_000
BAD_ROW = 150_000  # about where a failing COPY stops
# what the import's backend runs while it writes: the COPY into staging, then the INSERT … SELECT
# into the layer's table (the statement that puts rows into `cases`: the one to interrupt)
COPYING = r"^COPY stage"
INSERTING = r"INSERT INTO cases"


def big_csv(path):
    """ROWS valid cases over the small grid."""
    rng = np.random.default_rng(7)
    lon = X0 + rng.uniform(0.00001, 2 * D - 0.00001, ROWS)
    lat = Y0 + rng.uniform(0.00001, 2 * D - 0.00001, ROWS)
    pd.DataFrame(
        {
            "case_no": [f"2026{i:07d}" for i in range(1, ROWS + 1)],
            "category": "0102",
            "source": "supervisor",
            "urgency": "normal",
            "reported_at": "2026-10-01T08:30:00",
            "description": "暴露垃圾",
            "address": "",
            "lon": np.char.mod("%.7f", lon),
            "lat": np.char.mod("%.7f", lat),
        }
    ).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    return big_csv(tmp_path_factory.mktemp("kill") / "BIG.csv")


@pytest.fixture
def db(fresh_db):
    """A fresh database with the small grid committed: (url, engine, database name)."""
    url, eng = fresh_db
    with eng.begin() as c:
        insert_small_grid(c)
    return url, eng, make_url(url).database


def start_import(url, path, tmp_path, pgoptions: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "GRIDMGR_DATABASE_URL": url, "GRIDMGR_VAR": str(tmp_path / "var")}
    if pgoptions:
        env["PGOPTIONS"] = pgoptions
    return subprocess.Popen(
        [sys.executable, "-m", "gridmgr.cli", "layer", "import", "cases", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def writing_backend(eng, dbname, proc, pattern=INSERTING, timeout=120.0) -> tuple[int, str]:
    """Wait until the import's backend runs a statement matching `pattern`: (pid, statement)."""
    deadline = time.monotonic() + timeout
    with eng.connect() as c:
        while time.monotonic() < deadline:
            row = c.execute(
                text("""
                SELECT pid, query FROM pg_stat_activity
                WHERE datname = :db AND pid <> pg_backend_pid() AND state = 'active' AND query ~ :q
            """),
                {"db": dbname, "q": pattern},
            ).first()
            if row:
                return row.pid, row.query
            if proc.poll() is not None:
                pytest.fail(f"the import ended before writing: {proc.communicate()}")
            c.rollback()  # a fresh snapshot of pg_stat_activity each time
            time.sleep(0.01)
    proc.kill()
    pytest.fail(f"the import never ran {pattern}")


def wait_gone(eng, pid, timeout=30.0) -> None:
    """Wait until a backend has ended (after its client died it ends at its next round trip)."""
    deadline = time.monotonic() + timeout
    with eng.connect() as c:
        while time.monotonic() < deadline:
            if not c.execute(text("SELECT 1 FROM pg_stat_activity WHERE pid = :p"), {"p": pid}).first():
                return
            c.rollback()
            time.sleep(0.05)
    pytest.fail(f"backend {pid} still runs {timeout} s after its client died")


CASES_INDEXES = {
    "pk_cases",
    "uq_cases_case_no",
    "idx_cases_geom",
    "ix_cases_category_code",
    "ix_cases_cell_id",
    "ix_cases_reported_at",
    "ix_cases_status",
    "ix_cases_unit_id",
    "ix_cases_cell_id_category_code_reported_at",
    "ix_cases_open_cell_id",
}


def assert_untouched(eng) -> None:
    with eng.connect() as c:
        # a load into the empty table drops its secondary indexes for the INSERT: they are back, valid
        assert (
            set(
                c.execute(
                    text("""
            SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
            WHERE x.indrelid = 'cases'::regclass AND x.indisvalid""")
                ).scalars()
            )
            == CASES_INDEXES
        )
        assert c.execute(text("SELECT count(*) FROM cases")).scalar() == 0
        assert c.execute(text("SELECT count(*) FROM import_log")).scalar() == 0
        assert c.execute(text("SELECT count(*) FROM feature_cells")).scalar() == 0
        assert c.execute(text("SELECT count(*) FROM case_events")).scalar() == 0


def terminate_mid_write(db, big, tmp_path, pattern=INSERTING):
    url, eng, dbname = db
    proc = start_import(url, big, tmp_path)
    pid, query = writing_backend(eng, dbname, proc, pattern)
    with eng.connect() as c:
        assert c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err, query


@pytest.mark.parametrize("pattern", [COPYING, INSERTING], ids=["copy", "insert"])
def test_terminated_backend_leaves_nothing(db, big, tmp_path, pattern):
    code, out, err, query = terminate_mid_write(db, big, tmp_path, pattern)
    assert code != 0, out
    assert_untouched(db[1])


@pytest.mark.parametrize("pattern", [COPYING, INSERTING], ids=["copy", "insert"])
def test_terminated_backend_gives_a_clear_message(db, big, tmp_path, pattern):
    code, out, err, query = terminate_mid_write(db, big, tmp_path, pattern)
    assert code == 1
    assert "Traceback" not in err, err[-2000:]
    # psycopg2 itself may print the server's notice of the COPY's end before our message (not a traceback)
    last = err.strip().splitlines()[-1]
    assert last.startswith("error:") and "database" in last and "nothing" in last


def test_sigkilled_import_leaves_nothing(db, big, tmp_path):
    url, eng, dbname = db
    # A backend whose client died notices it at its next round trip, i.e. after the whole INSERT
    # (~15 s here); client_connection_check_interval (PostgreSQL >= 14) makes it look during the
    # statement, so the test sees the end of the backend at once. Either way nothing can commit.
    proc = start_import(url, big, tmp_path, pgoptions="-c client_connection_check_interval=200")
    pid, query = writing_backend(eng, dbname, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert_untouched(eng)  # while the orphaned backend may still run
    wait_gone(eng, pid)  # its transaction is rolled back when the server notices the client is gone
    assert_untouched(eng)


def test_copy_failing_midway_leaves_nothing(db, big, monkeypatch):
    """The file cannot be read any further once BAD_ROW rows have gone to the server (a disk or share failing)."""
    _, eng, _ = db
    state = {"sent": 0, "failed": False}

    class FailsMidway(io.FileIO):
        def read(self, size=-1):
            if state["sent"] >= BAD_ROW:  # the chunks read so far have gone to the server
                state["failed"] = True
                raise OSError("input/output error")
            chunk = super().read(size)
            state["sent"] += chunk.count(b"\n")
            return chunk

    def opener(p, mode="r", **kw):
        return FailsMidway(p) if mode == "rb" else open(p, mode, **kw)  # noqa: SIM115 (the caller closes it)

    # the server COPYs a plain CSV straight from the file: the file object it reads breaks
    monkeypatch.setattr(tabular, "open", opener, raising=False)
    with pytest.raises(InputError, match=r"cannot read BIG.csv: .*input/output error") as err:
        with eng.begin() as c:  # as the CLI does: commit on success, roll back on error
            import_file(c, registry.get("cases"), big)
    assert state["failed"], "the COPY never read past BAD_ROW"
    line = re.search(r"COPY stage_raw, line (\d+)", str(err.value.__cause__))
    assert line and BAD_ROW <= int(line.group(1)) < ROWS, str(err.value.__cause__)  # the server had taken BAD_ROW rows
    assert_untouched(eng)


def test_copy_refused_midway_falls_back_and_names_the_row(db, big, tmp_path):
    """A ragged row far into the file: the server's COPY stops there, the general reader names the line."""
    _, eng, _ = db
    lines = big.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[BAD_ROW] = lines[BAD_ROW].rstrip("\n") + ",extra\n"
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(InputError, match=rf"cannot read ragged.csv: .*line {BAD_ROW + 1}"), eng.begin() as c:
        import_file(c, registry.get("cases"), ragged)
    assert_untouched(eng)


def test_nul_byte_is_refused_by_name(conn, small_grid, tmp_path):
    p = tmp_path / "nul.csv"
    p.write_text(
        "case_no,category,source,reported_at,description,lon,lat\n"
        f"2026000001,0102,public,2026-10-01T08:00:00,ok,{X0 + 0.5 * D},{Y0 + 0.5 * D}\n"
        f"2026000002,0102,public,2026-10-01T08:00:00,垃圾\x00桶,{X0 + 0.5 * D},{Y0 + 0.5 * D}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=r"row 3, field 'description'"):
        import_file(conn, registry.get("cases"), p)
    assert conn.execute(text("SELECT count(*) FROM cases")).scalar() == 0
