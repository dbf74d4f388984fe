"""`gridmgr db backup` / `db restore`: a backup restores into a brand-new database with every row and photo."""

from __future__ import annotations

import io
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.datastructures import FileStorage

import gridmgr.commands.backup  # noqa: F401  (adds backup and restore to the db group)
from gridmgr.cases.intake import NewCase, report
from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.cases.workflow import Actor
from gridmgr.db import backup as bundle
from gridmgr.web import uploads

from support import SMALL_ORIGIN, SMALL_STEP, insert_small_grid

NOW = datetime(2026, 11, 3, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4


def _photos(var: Path, *contents: bytes) -> list[str]:
    """Store photos the way the case pages do (web/uploads.py), under var/uploads."""
    app = Flask(__name__)
    app.config["GRIDMGR"] = {"GRIDMGR_VAR": str(var)}
    with app.app_context():
        return uploads.save([FileStorage(io.BytesIO(c), f"p{i}.bin") for i, c in enumerate(contents)])


@pytest.fixture
def loaded(fresh_db, cli, tmp_path):
    """The cli's fresh database with a grid, cases whose photos sit under its var/uploads: (url, photo names)."""
    url, eng = fresh_db
    var = tmp_path / "var"
    names = []
    with eng.begin() as conn:
        insert_small_grid(conn)
        x0, y0 = SMALL_ORIGIN
        for i in range(3):
            photos = _photos(var, PNG + bytes([i]), JPG + bytes([i]))
            names += photos
            x, y = x0 + (i + 0.5) * SMALL_STEP / 2, y0 + 0.5 * SMALL_STEP
            new = NewCase("0102", x, y, "public", f"垃圾{i}", photos=tuple(photos))
            report(conn, Actor(None, "测试", "system"), new, now=NOW, calendar=WorkCalendar.load())
    return url, names


def _counts(url: str) -> dict[str, int]:
    eng = create_engine(url)
    with eng.connect() as conn:
        counts = bundle.row_counts(conn)
    eng.dispose()
    return counts


@pytest.fixture
def empty_db(pg_admin_url):
    """A brand-new empty database (CREATE DATABASE, nothing else): (name, owner url)."""
    name = f"gm_restore_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    owner = make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    yield name, owner
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_backup_restores_every_row_and_photo(loaded, cli, as_owner, empty_db, monkeypatch, tmp_path):
    url, names = loaded
    file = tmp_path / "gridmgr.backup"
    out = cli("db", "backup", file).output
    assert "photos: 6" in out and out.strip().splitlines()[-1].startswith(f"backup {file}: ")
    assert bundle.read_manifest(file)["tables"]["public.cases"] == 3
    before = _counts(as_owner(url))

    name, owner = empty_db
    app_url = make_url(url).set(database=name).render_as_string(hide_password=False)
    new_var = tmp_path / "restored-var"
    monkeypatch.setenv("GRIDMGR_DATABASE_URL", app_url)
    monkeypatch.setenv("GRIDMGR_OWNER_URL", owner)
    monkeypatch.setenv("GRIDMGR_VAR", str(new_var))
    out = cli("db", "restore", file).output
    assert "rows verified" in out and out.strip().splitlines()[-1].startswith(f"restored {file}: ")

    assert _counts(owner) == before and before["public.cases"] == 3 and before["public.case_events"] == 3
    for n in names:  # every photo, byte for byte, where the pages look for it
        assert (new_var / "uploads" / n[:2] / n).read_bytes() == (tmp_path / "var" / "uploads" / n[:2] / n).read_bytes()
    # the app's role works on the restored database as on the old one: its grants came back
    app = create_engine(app_url)
    with app.connect() as conn:
        photos = conn.execute(text("SELECT array_agg(p) FROM cases, unnest(photos) p")).scalar()
    app.dispose()
    assert sorted(photos) == sorted(names)


def test_restore_refuses_a_database_with_tables_unless_replace(loaded, cli, as_owner, tmp_path):
    url, _ = loaded
    file = tmp_path / "b.backup"
    cli("db", "backup", file)
    before = _counts(as_owner(url))
    result = cli("db", "restore", file, ok=False)
    assert result.exit_code == 1 and "is not empty" in result.output and "--replace" in result.output
    assert "Traceback" not in result.output
    cli("db", "restore", file, "--replace")
    assert _counts(as_owner(url)) == before


def test_a_damaged_backup_is_refused_and_restores_nothing(loaded, cli, empty_db, monkeypatch, tmp_path):
    file = tmp_path / "b.backup"
    cli("db", "backup", file)
    name, owner = empty_db
    monkeypatch.setenv("GRIDMGR_OWNER_URL", owner)
    data = bytearray(file.read_bytes())
    dump_at = data.find(b"PGDMP")  # inside the dump's bytes: the tar still reads, the checksum does not match
    data[dump_at + 2000] ^= 0xFF
    file.write_bytes(bytes(data))
    result = cli("db", "restore", file, ok=False)
    assert result.exit_code == 1 and "db.dump does not match its checksum" in result.output

    file.write_bytes(bytes(data[: len(data) // 2]))  # cut short: no manifest at the end
    result = cli("db", "restore", file, ok=False)
    assert result.exit_code == 1 and "not a usable gridmgr backup" in result.output
    (tmp_path / "junk").write_bytes(b"not a tar at all")
    result = cli("db", "restore", tmp_path / "junk", ok=False)
    assert result.exit_code == 1 and "not a usable gridmgr backup" in result.output
    eng = create_engine(owner)
    with eng.connect() as conn:
        assert bundle.tables(conn) == []  # nothing restored
    eng.dispose()


def test_passwords_go_in_the_environment_not_the_arguments():
    env = bundle.libpq_env("postgresql+psycopg2://owner:s3cr%40t@/gm?host=/tmp/sock&port=5433&sslmode=require")
    assert env["PGPASSWORD"] == "s3cr@t" and env["PGHOST"] == "/tmp/sock" and env["PGPORT"] == "5433"
    assert env["PGUSER"] == "owner" and env["PGDATABASE"] == "gm" and env["PGSSLMODE"] == "require"
