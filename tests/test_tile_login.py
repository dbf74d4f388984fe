"""The tiles' login check: made inside the tile's own statement instead of by the user loader, it still
refuses a login that stops holding at once, whichever way the tile would come (made, cached, 304); the
tiles with a plain login are served before Flask's request machinery, the others by the app as before;
and the tiles' autocommit statements, failing or not, leave the app's pools as they found them."""

import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import request_started
from sqlalchemy import text

from gridmgr.maps import tiles
from gridmgr.people import accounts
from gridmgr.web import create_app

from support import insert_small_grid, tile_path

NOW = datetime(2026, 10, 13, 11, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PASSWORD = "secret-pass"


@pytest.fixture
def site(fresh_db):
    """A grid, one account with a token, and an app on a database of this test's own."""
    url, eng = fresh_db
    with eng.begin() as c:
        insert_small_grid(c)
        c.execute(text("INSERT INTO people (code, name, role) VALUES ('P1', '张三', 'staff')"))
        accounts.add_user(c, "viewer", "P1", "leader", PASSWORD)
        token = accounts.new_token(c, "viewer")
    app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_SECRET_KEY": "test-secret"})
    app.config["GRIDMGR_NOW"] = NOW
    return {"app": app, "engine": eng, "token": token}


def logged_in(app):
    """A client with a session login as `viewer`."""
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    assert (
        client.post("/login", data={"username": "viewer", "password": PASSWORD, "csrf_token": csrf}).status_code == 302
    )
    return client


def set_active(eng, active: bool) -> None:
    with eng.begin() as c:
        c.execute(text("UPDATE users SET active = :a WHERE username = 'viewer'"), {"a": active})


def test_a_deactivated_session_login_is_refused_at_once(site):
    client = logged_in(site["app"])
    first = client.get(tile_path(17))  # made, and now in the cache
    assert first.status_code == 200 and first.data
    etag = first.headers["ETag"]
    assert client.get(tile_path(17), headers={"If-None-Match": etag}).status_code == 304
    set_active(site["engine"], False)
    assert client.get(tile_path(17)).status_code == 401  # the cached copy
    assert client.get(tile_path(17), headers={"If-None-Match": etag}).status_code == 401  # a revalidation
    refused = client.get(tile_path(16))  # one to make
    assert refused.status_code == 401 and refused.mimetype != tiles.MEDIA_TYPE
    assert client.get("/tiles/cells/99/0/0.pbf").status_code == 401  # a bad address: the 401 comes first
    set_active(site["engine"], True)  # nothing remembers the refusal either
    assert client.get(tile_path(17)).data == first.data


def test_a_replaced_or_deactivated_token_is_refused_at_once(site):
    old = {"Authorization": f"Bearer {site['token']}"}
    client = site["app"].test_client()
    first = client.get(tile_path(17), headers=old)
    assert first.status_code == 200 and client.get(tile_path(17), headers=old).status_code == 200
    with site["engine"].begin() as c:
        new = {"Authorization": f"Bearer {accounts.new_token(c, 'viewer')}"}
    assert client.get(tile_path(17), headers=old).status_code == 401
    assert client.get(tile_path(17), headers={**old, "If-None-Match": first.headers["ETag"]}).status_code == 401
    assert client.get(tile_path(17), headers=new).data == first.data
    set_active(site["engine"], False)
    assert client.get(tile_path(17), headers=new).status_code == 401
    assert client.get(tile_path(15), headers=new).status_code == 401


def test_tile_requests_do_not_go_through_the_user_loader(site, monkeypatch):
    """The point of the change: the login is checked in the tile's statement, not by a query of its own."""
    client = logged_in(site["app"])

    def no_lookup(*args):
        raise AssertionError("a tile request loaded the user")

    for loader_query in ("session_account", "active_account", "user_for_token"):
        monkeypatch.setattr(accounts, loader_query, no_lookup)
    seen = FlaskRequests(site["app"])
    assert client.get(tile_path(17)).status_code == 200  # the fast path
    assert client.get(tile_path(16), headers={"Authorization": f"Bearer {site['token']}"}).status_code == 200
    assert client.head(tile_path(15)).status_code == 200 and seen.n == 1  # the Flask view, no loader either
    assert site["app"].test_client().get(tile_path(17)).status_code == 401


class FlaskRequests:
    """Counts the requests that reach Flask's dispatch (the ones TileFastPath left to the app)."""

    def __init__(self, app):
        self.n = 0
        request_started.connect(self._count, app)

    def _count(self, sender, **extra):
        self.n += 1


def test_plain_logins_are_served_before_flask_and_the_rest_by_the_app(site):
    app = site["app"]
    client = logged_in(app)
    seen = FlaskRequests(app)
    ok = client.get(tile_path(17))
    again = client.get(tile_path(17), headers={"If-None-Match": ok.headers["ETag"]})
    token = client.get(tile_path(16), headers={"Authorization": f"Bearer {site['token']}"})
    assert (ok.status_code, again.status_code, token.status_code, seen.n) == (200, 304, 200, 0)
    assert ok.headers["Cache-Control"] == "private, no-cache" and ok.mimetype == tiles.MEDIA_TYPE
    assert ok.headers["Vary"] == "Cookie"
    weak = client.get(tile_path(17), headers={"If-None-Match": f"W/{ok.headers['ETag']}"})  # compared weakly
    assert weak.status_code == 304 and seen.n == 0
    # what the fast path cannot settle goes to the app, which answers as it always did
    assert client.get("/tiles/cells/99/0/0.pbf").status_code == 400 and seen.n == 1
    assert client.get("/tiles/nothing/1/0/0.pbf").status_code == 404 and seen.n == 2
    assert client.get(tile_path(17) + "/more").status_code == 404 and seen.n == 3
    assert app.test_client().get(tile_path(17)).status_code == 401 and seen.n == 4
    assert client.head(tile_path(17)).status_code == 200 and seen.n == 5
    app.config["SESSION_PROTECTION"] = "strong"  # only Flask-Login can judge the session: the app serves it
    assert client.get(tile_path(17)).data == ok.data and seen.n == 6


def test_the_fast_path_takes_a_session_cookie_only_while_flask_would(site):
    """Verified cookies are remembered (a map sends one with every tile), but never past their age or altered."""
    app = site["app"]
    client = logged_in(app)
    assert client.get(tile_path(17)).status_code == 200  # the cookie is now remembered
    cookie = client.get_cookie("session").value
    forged = app.test_client()
    middle = len(cookie) // 2  # inside the signed payload (the signature's last character has spare bits)
    forged.set_cookie("session", cookie[:middle] + ("A" if cookie[middle] != "A" else "B") + cookie[middle + 1 :])
    assert forged.get(tile_path(17)).status_code == 401
    app.permanent_session_lifetime = timedelta(seconds=0)  # every signature is now too old, the remembered one too
    time.sleep(1.1)
    assert client.get(tile_path(17)).status_code == 401


def test_a_lost_pooled_connection_is_replaced_without_an_error(site):
    client = logged_in(site["app"])
    first = client.get(tile_path(17))
    with site["app"].app_context():  # several idle connections in the read pool, as a threaded server leaves
        read = site["app"].extensions["gridmgr.read_engine"]
        held = [read.raw_connection() for _ in range(4)]
        for c in held:
            c.close()
    with site["engine"].connect() as conn:  # the server drops every other connection (a restart, say)
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    assert killed >= 4
    seen = FlaskRequests(site["app"])
    assert client.get(tile_path(17)).data == first.data and seen.n == 0


def test_an_error_reaches_the_apps_handlers_once(site, monkeypatch):
    """A failing tile is answered by the app's error handler with the fast path's own error: run once."""
    from gridmgr.web.views import tiles as web_tiles

    client = logged_in(site["app"])
    real_fetch, runs = web_tiles.tiles.fetch, []

    def counted(fetch):
        def run(cur, *args):
            runs.append(1)
            return fetch(cur, *args)

        return run

    monkeypatch.setattr(web_tiles.tiles, "fetch", counted(lambda cur, *args: cur.execute("SELECT 1 / 0")))
    seen = FlaskRequests(site["app"])
    assert client.get(tile_path(17)).status_code == 500 and len(runs) == 1 and seen.n == 1
    monkeypatch.setattr(web_tiles.tiles, "fetch", counted(real_fetch))
    set_active(site["engine"], False)
    assert client.get(tile_path(17)).status_code == 401 and len(runs) == 2 and seen.n == 2  # refused once


def test_a_failing_statement_leaves_the_pools_as_they_were(site, monkeypatch):
    from gridmgr.web.views import tiles as web_tiles

    client = logged_in(site["app"])
    assert client.get(tile_path(17)).status_code == 200
    real_fetch = web_tiles.tiles.fetch

    def failing(sql):
        def fetch(cur, *args):
            cur.execute(sql)

        return fetch

    # a broken statement: a 500, and the connection goes back to the read pool
    monkeypatch.setattr(web_tiles.tiles, "fetch", failing("SELECT 1 / 0"))
    assert client.get(tile_path(16)).status_code == 500
    # a connection lost mid-request: the database-unavailable page, and the pool drops the connection
    monkeypatch.setattr(web_tiles.tiles, "fetch", failing("SELECT pg_terminate_backend(pg_backend_pid())"))
    assert client.get(tile_path(16)).status_code == 503
    monkeypatch.setattr(web_tiles.tiles, "fetch", real_fetch)
    assert client.get(tile_path(16)).status_code == 200
    with site["engine"].connect() as conn:
        jit = conn.execute(text("SHOW jit")).scalar()
    with site["app"].app_context():
        with site["app"].extensions["gridmgr.read_engine"].connect() as conn:
            assert conn.connection.dbapi_connection.autocommit is True  # the tiles' own pool
        with site["app"].extensions["gridmgr.engine"].connect() as conn:
            assert conn.connection.dbapi_connection.autocommit is False
            assert conn.execute(text("SHOW jit")).scalar() == jit  # the tiles' SET LOCAL stayed theirs
            conn.execute(text("CREATE TEMP TABLE t (i int)"))
            conn.rollback()  # a real transaction: the table went with it
            assert conn.execute(text("SELECT to_regclass('pg_temp.t')")).scalar() is None
