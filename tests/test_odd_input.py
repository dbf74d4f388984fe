"""Odd input is a 400 naming its field, never a 500: huge pages, years past what dates hold, offsets PostgreSQL refuses."""

import pytest
from sqlalchemy import text

from gridmgr.people import accounts
from gridmgr.web import create_app

from support import insert_small_grid, login_client

HUGE = "99999999999999999999999"


@pytest.fixture
def site(fresh_db):
    url, eng = fresh_db
    with eng.begin() as c:
        insert_small_grid(c)
        c.execute(text("INSERT INTO people (code, name, role) VALUES ('P1', '张三', 'staff')"))
        accounts.add_user(c, "leader", "P1", "leader", "secret-pass")
        token = accounts.new_token(c, "leader")
    app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_SECRET_KEY": "k"})
    return app, {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "path, field",
    [
        (f"/api/v1/cases?page={HUGE}", "page"),
        ("/api/v1/cases?period=0000-01", "period"),
        ("/api/v1/cases?period=9999-12", "period"),
        ("/api/v1/cases?period=1900-01-01/9999-12-31", "period"),
        ("/api/v1/cells/110101001001001?at=2026-03-03T17:16:57%2B21:28", "at"),
        (f"/open311/v2/requests.json?page={HUGE}", "page"),
        ("/open311/v2/requests.json?start_date=2026-03-03T17:16:57%2B21:28", "start_date"),
        ("/open311/v2/requests.json?end_date=9999-12-31T00:00:00Z", "end_date"),
    ],
)
def test_odd_values_are_a_400_naming_the_field(site, path, field):
    app, bearer = site
    r = app.test_client().get(path, headers=bearer if path.startswith("/api/") else {})
    body = r.get_data(as_text=True)
    assert r.status_code == 400, (path, r.status_code, body[:300])
    assert field in body


@pytest.mark.parametrize(
    "path, said",
    [
        (f"/cases?tab=all&page={HUGE}", "1…1000000"),
        ("/cases?tab=all&period=9999-12", "1900…2999"),
        ("/reports?period=9999-12", "bad period"),
        ("/reports?period=1899", "1900…2999"),
        ("/reports?period=0000-01", "bad period"),
    ],
)
def test_the_pages_say_what_is_wrong_in_the_form(site, path, said):
    """The list and report pages keep their form and say what is wrong with it (they answered 500)."""
    app, _ = site
    client = login_client(app, "leader", "secret-pass")
    r = client.get(path)
    assert r.status_code in (200, 400) and said in r.get_data(as_text=True), path
