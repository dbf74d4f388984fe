"""Least privilege: the app's login role cannot rewrite the audit trail, change a status without its event, or run DDL."""

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from test_workflow import new_case
from test_workflow import org as org  # its fixture: units, people and their accounts

from gridmgr.cli import main
from gridmgr.db import roles

from support import record_status

# each a way a superuser or table owner gets round an append-only trigger; as the app role, each fails
BYPASSES = {
    "SET LOCAL session_replication_role = replica": "permission denied to set parameter",
    "ALTER TABLE case_events DISABLE TRIGGER case_events_no_update_delete": "must be owner of table case_events",
    "ALTER TABLE case_events DISABLE TRIGGER ALL": "must be owner of table case_events",
    "UPDATE case_events SET note = 'rewritten'": "permission denied for table case_events",
    "DELETE FROM case_events": "permission denied for table case_events",
    "TRUNCATE case_events CASCADE": "permission denied for table case_events",
    "UPDATE parking_zone_events SET note = 'x'": "permission denied for table parking_zone_events",
    "DELETE FROM parking_zone_events": "permission denied for table parking_zone_events",
    "UPDATE alembic_version SET version_num = '0001'": "permission denied for table alembic_version",
    "CREATE TABLE public.mine (id int)": "permission denied for schema public",
    "DROP TABLE cases CASCADE": "must be owner of table cases",
    "ALTER TABLE cases DISABLE TRIGGER cases_status_needs_event": "must be owner of table cases",
    "CREATE ROLE another LOGIN": "permission denied to create role",
}


@pytest.fixture
def a_case(conn, org):  # noqa: F811 (the fixture imported above)
    return new_case(conn, org)


def test_the_app_role_is_no_superuser_and_owns_nothing(conn):
    me = conn.execute(
        text(
            "SELECT current_user, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
    ).one()
    assert me == (roles.APP_ROLE, False, False, False, False)
    owned = conn.execute(
        text("SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = current_user")
    ).scalar()
    assert owned == 0


@pytest.mark.parametrize("sql", sorted(BYPASSES))
def test_every_bypass_of_the_audit_fails_as_the_app_role(conn, a_case, sql):
    conn.execute(text("SAVEPOINT s"))
    with pytest.raises(DBAPIError, match=BYPASSES[sql]):
        conn.execute(text(sql))
    conn.execute(text("ROLLBACK TO SAVEPOINT s"))


def test_a_status_changes_only_with_its_event(conn, a_case):
    with pytest.raises(DBAPIError, match="needs its event in case_events"):
        with conn.begin_nested():
            conn.execute(text("UPDATE cases SET status = 'closed' WHERE id = :c"), {"c": a_case})
    # an event of another status, or of another case, does not count
    record_status(conn, a_case, "registered")
    with pytest.raises(DBAPIError, match="needs its event"):
        with conn.begin_nested():
            conn.execute(text("UPDATE cases SET status = 'closed' WHERE id = :c"), {"c": a_case})
    conn.execute(text("UPDATE cases SET status = 'registered' WHERE id = :c"), {"c": a_case})
    # the other columns stay the app's to change
    conn.execute(text("UPDATE cases SET description = '补充说明' WHERE id = :c"), {"c": a_case})


def test_db_roles_prints_and_applies_a_least_privilege_role(owner_db, monkeypatch, tmp_path):
    url, _ = owner_db
    monkeypatch.setenv("GRIDMGR_DATABASE_URL", url)
    monkeypatch.setenv("GRIDMGR_VAR", str(tmp_path / "var"))
    runner = CliRunner()
    printed = runner.invoke(main, ["db", "roles", "--role", "bureau_app"], catch_exceptions=False)
    assert printed.exit_code == 0, printed.output
    assert 'REVOKE UPDATE, DELETE ON "case_events" FROM "bureau_app";' in printed.output
    assert "NOSUPERUSER" in printed.output and "PASSWORD '…'" in printed.output
    applied = runner.invoke(
        main, ["db", "roles", "--role", "bureau_app", "--password", "s3cret-pass", "--apply"], catch_exceptions=False
    )
    assert applied.exit_code == 0, applied.output
    app = create_engine(make_url(url).set(username="bureau_app", password="s3cret-pass"))
    try:
        with app.connect() as c:
            assert c.execute(text("SELECT count(*) FROM case_events")).scalar() == 0
            with pytest.raises(DBAPIError, match="permission denied for table case_events"):
                c.execute(text("DELETE FROM case_events"))
    finally:
        app.dispose()
    bad = runner.invoke(main, ["db", "roles", "--role", "x; DROP TABLE cases"])
    assert bad.exit_code == 1 and "lower-case letters" in bad.output
