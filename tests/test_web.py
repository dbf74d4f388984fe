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
