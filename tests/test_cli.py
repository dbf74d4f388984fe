"""The CLI through click's runner: db, regions import, locate, external databases never auto-migrated."""

import json
import re
from datetime import date

from click.testing import CliRunner
from sqlalchemy import text

from gridmgr.cli import main

from support import insert_small_grid


def geojson(path, features):
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": props, "geometry": geom} for props, geom in features],
            }
        )
    )
    return path


def square(x, y, d):
    return {"type": "Polygon", "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]}


def test_db_url_and_status_on_external(cli, fresh_db):
    url, _ = fresh_db
    assert cli("db", "url").output.strip() == url
    out = cli("db", "status").output
    from gridmgr.db import migrate

    assert "external" in out and f"revision: {migrate.head()}" in out


def test_regions_import_hierarchy_and_errors(cli, fresh_db, tmp_path):
    _, eng = fresh_db
    d = geojson(tmp_path / "d.geojson", [({"code": "110101", "name": "东城区"}, square(116.40, 39.90, 0.02))])
    s = geojson(
        tmp_path / "s.geojson",
        [({"code": "001", "name": "东华门街道", "parent": "110101"}, square(116.40, 39.90, 0.02))],
    )
    out = cli("regions", "import", d, "--level", "district").output
    assert "1 imported" in out and "0 rejected" in out
    cli("regions", "import", s, "--level", "street", "--parent-field", "parent")
    with eng.connect() as c:
        assert c.execute(text("SELECT code FROM regions WHERE level='street'")).scalar() == "110101001"
    # re-import updates, does not duplicate
    assert "1 updated" in cli("regions", "import", d, "--level", "district").output
    # a bad record is named with its field, nothing stored
    bad = geojson(tmp_path / "bad.geojson", [({"code": "12AB", "name": "x"}, square(116.40, 39.90, 0.01))])
    r = cli("regions", "import", bad, "--level", "district", ok=False)
    assert r.exit_code == 1 and "feature 1" in r.output and "'code'" in r.output
    swapped = geojson(
        tmp_path / "sw.geojson",
        [
            (
                {"code": "110102", "name": "西城区"},
                {"type": "Polygon", "coordinates": [[[39.9, 116.3], [39.91, 116.3], [39.91, 116.31], [39.9, 116.3]]]},
            )
        ],
    )
    r = cli("regions", "import", swapped, "--level", "district", ok=False)
    assert "swapped" in r.output
    with eng.connect() as c:
        assert c.execute(text("SELECT count(*) FROM regions")).scalar() == 2


def test_locate_prints_cell_and_people(cli, fresh_db):
    _, eng = fresh_db
    with eng.begin() as c:
        ids = insert_small_grid(c)
        unit = c.execute(
            text(
                "INSERT INTO units (code, name, kind, phone) VALUES "
                "('U1', '东华门街道办事处', 'street_office', '010-1') RETURNING id"
            )
        ).scalar()
        person = c.execute(
            text(
                "INSERT INTO people (code, name, role, phone) VALUES "
                "('P1', '王芳', 'supervisor', '13800000001') RETURNING id"
            )
        ).scalar()
        c.execute(
            text("INSERT INTO cell_units VALUES (:c, 'territorial', :u)"), {"c": ids["110101001001003"], "u": unit}
        )
        c.execute(
            text("INSERT INTO cell_people VALUES (:c, :p, 'supervisor')"), {"c": ids["110101001001003"], "p": person}
        )
    out = cli("locate", "116.4005", "39.9005").output
    assert "110101001001003" in out and "王芳" in out and "东华门街道办事处" in out and "13800000001" in out
    r = cli("locate", "116.43", "39.93", ok=False)
    assert r.exit_code == 1 and "in no cell" in r.output and "Traceback" not in r.output
    r = cli("locate", "39.9005", "116.4005", ok=False)
    assert r.exit_code == 1 and "swapped" in r.output


def test_external_database_is_never_migrated_implicitly(pg_admin_url, monkeypatch, tmp_path):
    from tests_admin import create_empty_db, drop_db

    url = create_empty_db(pg_admin_url)
    try:
        monkeypatch.setenv("GRIDMGR_DATABASE_URL", url)
        runner = CliRunner()
        r = runner.invoke(main, ["locate", "116.4", "39.9"])
        assert r.exit_code == 1 and "gridmgr db migrate" in r.output
        r = runner.invoke(main, ["db", "migrate"])
        from gridmgr.db import migrate

        assert r.exit_code == 0 and f"→ {migrate.head()}" in r.output
        r = runner.invoke(main, ["locate", "116.4", "39.9"])
        assert "in no cell" in r.output  # migrated now: the question is answered, the grid is just empty
    finally:
        drop_db(pg_admin_url, url)


def test_unreachable_database_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("GRIDMGR_DATABASE_URL", "postgresql+psycopg2://nobody@/none?host=/nonexistent&port=1")
    r = CliRunner().invoke(main, ["locate", "116.4", "39.9"])
    assert r.exit_code == 1 and "cannot reach the database" in r.output and "Traceback" not in r.output


def test_demo_command_loads_and_prints_the_logins(cli):
    """`gridmgr demo --no-serve` end to end: loads once, prints one login per role, a second run loads nothing."""
    out = cli("demo", "--size", "test", "--no-serve").output
    assert "demo (test) loaded" in out and "0 rejected" in out
    logins = out.split("demo logins", 1)[1]
    for username in ("supervisor", "receiver", "dispatcher", "shift-leader", "unit-handler", "planner", "leader"):
        assert f"  {username} " in logins, username
    again = cli("demo", "--size", "test", "--no-serve").output
    assert "already loaded" in again and "nothing changed" in again
    # every month of the demo year, at every level: no rate outside [0, 100 %], each a share of one population
    anchor = date.fromisoformat(re.search(r"anchor date (\d{4}-\d{2}-\d{2})", out)[1])
    year = f"{anchor.replace(year=anchor.year - 1, day=1)}..{anchor}"
    checked = cli("check-figures", "--period", year).output
    assert ", 0 problems in " in checked and "14 periods" in checked, checked
