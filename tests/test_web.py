"""The web skeleton: the start, the overview, health check, errors as pages (503 when the database is down)."""

import pytest

from gridmgr.web import create_app

from support import insert_small_grid


@pytest.fixture
def client(fresh_db):
    url, _ = fresh_db
    app = create_app({"GRIDMGR_DATABASE_URL": url})
    return app.test_client()


def test_healthz_and_overview(client, fresh_db):
    _, eng = fresh_db
    with eng.begin() as c:
        insert_small_grid(c)
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json == {"status": "ok", "database": "ok"}
    html = client.get("/overview").get_data(as_text=True)
    assert "网格概览" in html and "单元网格" in html
    assert "110101" in html and ">4<" in html  # four open cells


def test_start_is_the_map_through_the_login(client):
    r = client.get("/")
    assert r.status_code == 302 and r.headers["Location"] == "/map"
    r = client.get("/map")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=%2Fmap")


def test_database_down_is_503_without_traceback():
    app = create_app({"GRIDMGR_DATABASE_URL": "postgresql+psycopg2://nobody@/none?host=/nonexistent&port=1"})
    client = app.test_client()
    r = client.get("/overview")
    assert r.status_code == 503
    body = r.get_data(as_text=True)
    assert "数据库暂不可用" in body and "Traceback" not in body and "psycopg2" not in body
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json["error"]["status"] == 503


def test_unknown_page_is_404_page(client):
    r = client.get("/nope")
    assert r.status_code == 404 and "返回首页" in r.get_data(as_text=True)


def test_database_down_is_503_for_a_logged_in_user_too_and_recovers(fresh_db, pg_admin_url):
    """Pages, a case page, the login and tiles (cookie or token): 503 with the error page, then back without a restart."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from gridmgr.people import accounts

    from support import login_client, tile_path

    url, eng = fresh_db
    with eng.begin() as c:
        insert_small_grid(c)
        c.execute(text("INSERT INTO people (code, name, role) VALUES ('P1', '张三', 'staff')"))
        accounts.add_user(c, "leader", "P1", "leader", "secret-pass")
        token = accounts.new_token(c, "leader")
    app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_SECRET_KEY": "k"})
    client = login_client(app, "leader", "secret-pass")
    bearer = {"Authorization": f"Bearer {token}"}
    paths = ["/cases", "/map", "/cases/1", "/reports", "/login", "/overview", tile_path(17)]
    name = make_url(url).database
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:  # the database goes away under the running app
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            c.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
        for path in paths:
            r = client.get(path)
            body = r.get_data(as_text=True)
            assert r.status_code == 503, (path, r.status_code)
            assert "Traceback" not in body and "psycopg2" not in body, path
        assert app.test_client().get(tile_path(17), headers=bearer).status_code == 503
    finally:
        with admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()
    assert client.get("/overview").status_code == 200 and client.get("/api/v1/me").status_code == 200


@pytest.mark.parametrize("path", ["/login", "/overview", "/healthz", "/nope", "/api/v1/openapi.json"])
def test_every_response_carries_the_security_headers(client, path):
    r = client.get(path)
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"


def test_a_405_says_which_methods_the_resource_takes(client):
    r = client.delete("/api/v1/openapi.json")
    assert r.status_code == 405 and "GET" in r.headers["Allow"] and r.json["error"]["status"] == 405
    r = client.put("/overview")
    assert r.status_code == 405 and "GET" in r.headers["Allow"]
