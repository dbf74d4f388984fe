"""Test databases: a throwaway cluster, a migrated template, rollback per test, fresh clones for CLI tests."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from gridmgr.cases import categories
from gridmgr.db import migrate, roles
from gridmgr.db.cluster import Cluster

from support import DEMO_ANCHOR, insert_small_grid

TEMPLATE = "gm_template"


@pytest.fixture(scope="session")
def pg_admin_url():
    """A superuser URL on a server of the tests' own: GRIDMGR_TEST_DATABASE_URL or a throwaway cluster.

    Never the user's var/pg. With no PostgreSQL binaries this fails (never skips) and says how to fix it.
    """
    external = os.environ.get("GRIDMGR_TEST_DATABASE_URL")
    if external:
        yield external
        return
    base = Path(tempfile.mkdtemp(prefix="gridmgr-test-"))
    os.chmod(base, 0o755)
    cluster = Cluster(base / "pg", ephemeral=True)
    cluster.start()
    try:
        yield cluster.owner_url("postgres")
    finally:
        cluster.destroy()  # no server outlives the run
        os.rmdir(base) if base.exists() and not any(base.iterdir()) else None


def _url_for(admin_url: str, dbname: str) -> str:
    return make_url(admin_url).set(database=dbname).render_as_string(hide_password=False)


APP_PASSWORD = uuid.uuid4().hex  # the tests' app role, made anew each run


def app_url(admin_url: str, dbname: str) -> str:
    """The URL of a test database as the app's login role: what the app, the CLI and the tests use."""
    url = make_url(admin_url).set(database=dbname, username=roles.APP_ROLE, password=APP_PASSWORD)
    return url.render_as_string(hide_password=False)


def _admin(admin_url: str):
    return create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=None)


@pytest.fixture(scope="session")
def template_url(pg_admin_url):
    """A database migrated to head, the template every test database is cloned from."""
    admin = _admin(pg_admin_url)
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{TEMPLATE}"'))
        for statement in roles.role_statements(roles.APP_ROLE, APP_PASSWORD, TEMPLATE):
            c.execute(text(statement))
    url = _url_for(pg_admin_url, TEMPLATE)
    eng = create_engine(url)
    migrate.upgrade(eng)
    with eng.begin() as conn:
        categories.load(conn)  # the shipped categories, as `gridmgr categories load` gives a bureau
    eng.dispose()  # a template must have no connections when cloned
    yield url
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)'))
    admin.dispose()


def _clone(pg_admin_url: str, name: str) -> str:
    """A copy of the template (its grants too), as the app role's URL."""
    with _admin(pg_admin_url).connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"'))
        c.execute(text(f'GRANT CONNECT, TEMPORARY ON DATABASE "{name}" TO {roles.APP_ROLE}'))
    return app_url(pg_admin_url, name)


def _drop(pg_admin_url: str, name: str) -> None:
    with _admin(pg_admin_url).connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def engine(pg_admin_url, template_url):
    """The shared test database for rollback-per-test tests."""
    name = f"gm_shared_{uuid.uuid4().hex[:8]}"
    eng = create_engine(_clone(pg_admin_url, name))
    yield eng
    eng.dispose()
    _drop(pg_admin_url, name)


def _rolled_back(engine):
    """A connection inside a transaction that is rolled back afterwards."""
    with engine.connect() as c:
        tx = c.begin()
        try:
            yield c
        finally:
            tx.rollback()


@pytest.fixture
def conn(engine):
    """A connection inside a transaction that is rolled back after the test."""
    yield from _rolled_back(engine)


@pytest.fixture(scope="session")
def test_demo(pg_admin_url, template_url, tmp_path_factory):
    """The test-size demo (anchor DEMO_ANCHOR), loaded once for the read-only checks of any module: (url, engine)."""
    from gridmgr.demo import loader

    name = f"gm_demo_{uuid.uuid4().hex[:8]}"
    url = _clone(pg_admin_url, name)
    eng = create_engine(url)
    with eng.begin() as conn:
        loader.load(conn, "test", tmp_path_factory.mktemp("demo"), today=DEMO_ANCHOR)
    yield url, eng
    eng.dispose()
    _drop(pg_admin_url, name)


@pytest.fixture(scope="session")
def owner_engine(engine, as_owner):
    """The shared test database as its owner."""
    eng = create_engine(as_owner(engine.url.render_as_string(hide_password=False)))
    yield eng
    eng.dispose()


@pytest.fixture
def owner_conn(owner_engine):
    """As `conn`, but as the owner: for a test's DDL the app's role may not run (a table of its own, a trigger off)."""
    yield from _rolled_back(owner_engine)


@pytest.fixture
def session(conn):
    """An ORM session joined to the test's transaction (its commits become savepoints)."""
    with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
        yield s


@pytest.fixture
def fresh_db(pg_admin_url, template_url):
    """A database of this test's own, cloned from the migrated template: (url, engine)."""
    name = f"gm_{uuid.uuid4().hex[:12]}"
    url = _clone(pg_admin_url, name)
    eng = create_engine(url)
    yield url, eng
    eng.dispose()
    _drop(pg_admin_url, name)


@pytest.fixture
def owner_db(pg_admin_url, template_url):
    """A database of this test's own as its owner, for what the app role may not do (migrations): (url, engine)."""
    name = f"gm_{uuid.uuid4().hex[:12]}"
    _clone(pg_admin_url, name)
    url = _url_for(pg_admin_url, name)
    eng = create_engine(url)
    yield url, eng
    eng.dispose()
    _drop(pg_admin_url, name)


@pytest.fixture(scope="session")
def as_owner(pg_admin_url):
    """An app-role URL of a test database turned into its owner's (for a test's setup the app may not do)."""

    def owner(url: str) -> str:
        return _url_for(pg_admin_url, make_url(url).database)

    return owner


@pytest.fixture
def cli(fresh_db, as_owner, monkeypatch, tmp_path):
    """Run `gridmgr ...` through click's runner against a fresh database; returns the Result."""
    from click.testing import CliRunner

    from gridmgr.cli import main

    url, _ = fresh_db
    monkeypatch.setenv("GRIDMGR_DATABASE_URL", url)
    monkeypatch.setenv("GRIDMGR_OWNER_URL", as_owner(url))  # what `db migrate` and `db roles` use, as in production
    monkeypatch.setenv("GRIDMGR_VAR", str(tmp_path / "var"))
    runner = CliRunner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    return run


@pytest.fixture
def small_grid(conn):
    """The 2 × 2 test grid inside the test's transaction: code → cell id."""
    return insert_small_grid(conn)


@pytest.fixture
def org(conn, small_grid):
    """Units U1 (sanitation) and U2–U4 (squads), two supervisors with a duty grid of two cells each."""
    cells = [small_grid[f"110101001001{i:03d}"] for i in range(1, 5)]
    units = {}
    for code, kind in (
        ("HW01", "sanitation"),
        ("ZF01", "enforcement_squad"),
        ("ZF02", "enforcement_squad"),
        ("ZF03", "enforcement_squad"),
    ):
        units[code] = conn.execute(
            text("INSERT INTO units (code, name, kind) VALUES (:c, :n, :k) RETURNING id"),
            {"c": code, "n": f"单位{code}", "k": kind},
        ).scalar()
    for i, (grid, mine) in enumerate((("DG1", cells[:2]), ("DG2", cells[2:])), start=1):
        person = conn.execute(
            text("INSERT INTO people (code, name, role) VALUES (:c, :n, 'supervisor') RETURNING id"),
            {"c": f"S{i}", "n": f"监督员{i}"},
        ).scalar()
        g = conn.execute(
            text("INSERT INTO duty_grids (code, name, supervisor_id) VALUES (:c, :n, :p) RETURNING id"),
            {"c": grid, "n": f"责任网格{i}", "p": person},
        ).scalar()
        for cell in mine:
            conn.execute(text("INSERT INTO duty_grid_cells VALUES (:g, :c)"), {"g": g, "c": cell})
    cats = conn.execute(text("SELECT code FROM categories ORDER BY code LIMIT 20")).scalars().all()
    return {"cells": cells, "units": units, "cats": cats}


def pytest_collection_modifyitems(items):
    """Mark every test that drives Chromium (it asks for the `page` or `browser` fixture) as `browser`."""
    for item in items:
        if {"page", "browser"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)
