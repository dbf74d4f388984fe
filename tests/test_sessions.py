"""Server-side sessions: logout, a password change, a role change or a lock ends them everywhere a
session is taken (pages, API, tiles by either path), wherever the cookie was copied; idle and absolute
lifetimes; the throttle and the audit; the account's API token and the other accounts' sessions are
untouched."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from gridmgr.errors import InputError
from gridmgr.people import accounts, logins
from gridmgr.web import create_app

from support import csrf, insert_small_grid, login_client, tile_path

OLD, NEW = "first-password", "second-password"


@pytest.fixture
def site(fresh_db):
    """Two accounts (one with an API token) on a small grid, and the app."""
    url, eng = fresh_db
    with eng.begin() as c:
        insert_small_grid(c)
        for code, name in (("P1", "张三"), ("P2", "李四")):
            c.execute(text("INSERT INTO people (code, name, role) VALUES (:c, :n, 'staff')"), {"c": code, "n": name})
        accounts.add_user(c, "viewer", "P1", "leader", OLD)
        accounts.add_user(c, "other", "P2", "leader", OLD)
        token = accounts.new_token(c, "viewer")
    app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_SECRET_KEY": "test-secret"})
    return {"app": app, "engine": eng, "token": token}


def answers(client) -> tuple[int, int, int]:
    """Status of a page, an API list and a tile for this client."""
    return (
        client.get("/map").status_code,
        client.get("/api/v1/cases").status_code,
        client.get(tile_path(17)).status_code,
    )


def test_a_password_change_ends_the_sessions_of_that_account(site):
    app = site["app"]
    laptop, phone = login_client(app, "viewer", OLD), login_client(app, "viewer", OLD)
    colleague = login_client(app, "other", OLD)
    assert answers(laptop) == answers(phone) == answers(colleague) == (200, 200, 200)
    with site["engine"].begin() as c:
        accounts.set_password(c, "viewer", NEW)  # what `gridmgr users passwd viewer` does
    for client in (laptop, phone):
        page, api, tile = answers(client)
        assert (page, api, tile) == (302, 401, 401)
        assert client.get("/map").headers["Location"].startswith("/login")
    assert answers(colleague) == (200, 200, 200)
    bearer = {"Authorization": f"Bearer {site['token']}"}
    token_client = app.test_client()  # the token is its own credential: it keeps working
    assert token_client.get(tile_path(17), headers=bearer).status_code == 200
    assert token_client.get("/api/v1/cases", headers=bearer).status_code == 200
    assert answers(login_client(app, "viewer", NEW)) == (200, 200, 200)
    fresh = app.test_client()
    form = {"username": "viewer", "password": OLD, "csrf_token": csrf(fresh.get("/login").get_data(as_text=True))}
    assert fresh.post("/login", data=form).status_code == 401


def test_with_strong_session_protection_too(site):
    """Flask-Login judges the session there (the tiles take its user): the session is checked all the same."""
    app = site["app"]
    app.config["SESSION_PROTECTION"] = "strong"
    client = login_client(app, "viewer", OLD)
    assert answers(client) == (200, 200, 200)
    with site["engine"].begin() as c:
        accounts.set_password(c, "viewer", NEW)
    assert answers(client) == (302, 401, 401)


def test_a_cookie_copied_before_logout_is_worth_nothing_after_it(site):
    app = site["app"]
    browser = login_client(app, "viewer", OLD)
    copy = app.test_client()
    copy.set_cookie("session", browser.get_cookie("session").value)  # what a thief or a shared PC keeps
    assert answers(copy) == (200, 200, 200) and copy.get("/api/v1/me").status_code == 200
    token = csrf(browser.get("/map").get_data(as_text=True))
    assert browser.post("/logout", data={"csrf_token": token}).status_code == 302
    assert answers(copy) == (302, 401, 401)
    assert copy.get("/api/v1/me").status_code == 401 and copy.get("/cases").status_code == 302
    with site["engine"].connect() as c:
        ended = c.execute(text("SELECT revoked_reason FROM credentials WHERE kind = 'session'")).scalars().all()
        logged = c.execute(text("SELECT action FROM audit_log WHERE subject = 'viewer' ORDER BY id")).scalars().all()
    assert ended == ["logged out"] and logged == ["account.add", "credential.issue", "login", "logout"]


def test_a_session_ends_when_idle_and_at_its_absolute_end(site):
    app, eng = site["app"], site["engine"]
    client = login_client(app, "viewer", OLD)
    assert answers(client) == (200, 200, 200)
    with eng.begin() as c:  # half an hour without a request
        c.execute(text("UPDATE credentials SET idle_until = now() - interval '1 second' WHERE kind = 'session'"))
    assert answers(client) == (302, 401, 401)
    client = login_client(app, "viewer", OLD)
    with eng.begin() as c:  # busy all day, but twelve hours after the login
        c.execute(
            text("""UPDATE credentials SET expires_at = now() - interval '1 second'
                    WHERE id = (SELECT max(id) FROM credentials WHERE kind = 'session')""")
        )
    assert answers(client) == (302, 401, 401)
    with eng.connect() as c:
        idle, life = c.execute(
            text(
                "SELECT idle_minutes, extract(epoch FROM expires_at - created_at) / 3600 FROM credentials "
                "WHERE kind = 'session' ORDER BY id LIMIT 1"
            )
        ).one()
    assert (idle, round(life)) == (30, 12)  # GRIDMGR_SESSION_IDLE_MINUTES and GRIDMGR_SESSION_HOURS


def test_a_request_moves_the_idle_limit_on(site):
    app, eng = site["app"], site["engine"]
    client = login_client(app, "viewer", OLD)
    with eng.begin() as c:  # last used ten minutes ago, five minutes of idleness left
        c.execute(
            text("""UPDATE credentials SET last_used_at = now() - interval '10 minutes',
                    idle_until = now() + interval '5 minutes' WHERE kind = 'session'""")
        )
    assert client.get("/api/v1/me").status_code == 200
    with eng.connect() as c:
        left = c.execute(text("SELECT idle_until - now() FROM credentials WHERE kind = 'session'")).scalar()
    assert timedelta(minutes=29) < left <= timedelta(minutes=30)


def test_the_cookie_is_secure_over_https(site):
    app = site["app"]
    for scheme, secure in (("http", False), ("https", True)):
        client = app.test_client()
        client.get("/login", base_url=f"{scheme}://localhost")
        token = csrf(client.get("/login", base_url=f"{scheme}://localhost").get_data(as_text=True))
        r = client.post(
            "/login",
            data={"username": "viewer", "password": OLD, "csrf_token": token},
            base_url=f"{scheme}://localhost",
            headers={"Referer": f"{scheme}://localhost/login"},  # Flask-WTF checks it over HTTPS
        )
        assert r.status_code == 302
        assert ("; Secure" in r.headers["Set-Cookie"]) is secure


def test_a_role_change_or_a_lock_ends_the_sessions(site):
    app, eng = site["app"], site["engine"]
    client = login_client(app, "viewer", OLD)
    with eng.begin() as c:
        accounts.set_role(c, "viewer", "planner")
    assert answers(client) == (302, 401, 401)
    client = login_client(app, "viewer", OLD)
    assert client.get("/api/v1/me").get_json()["role"] == "planner"
    with eng.begin() as c:
        accounts.set_locked(c, "viewer", True)
    assert answers(client) == (302, 401, 401)
    assert _try(app.test_client(), "viewer", OLD).status_code == 401  # a locked account does not log in
    bearer = {"Authorization": f"Bearer {site['token']}"}
    assert app.test_client().get("/api/v1/cases", headers=bearer).status_code == 401  # nor by its token
    with eng.begin() as c:
        accounts.set_locked(c, "viewer", False)
    assert _try(app.test_client(), "viewer", OLD).status_code == 302


def test_the_password_policy(site):
    eng = site["engine"]
    rules = accounts.PasswordPolicy(min_length=10, classes=3, history=3, max_days=90)
    for bad, why in (("short-1A", "at least 10"), ("onlylowercase-", "at least 3 of"), (OLD, "at least 3 of")):
        with eng.begin() as c, pytest.raises(InputError, match=why):
            accounts.set_password(c, "viewer", bad, rules=rules)
    passwords = ["Second-pass-1", "Third-pass-2", "Fourth-pass-3"]
    with eng.begin() as c:
        for p in passwords:
            accounts.set_password(c, "viewer", p, rules=rules)
    for again in (passwords[-1], passwords[-2]):  # the current one and the ones before, up to `history`
        with eng.begin() as c, pytest.raises(InputError, match="last 3 passwords"):
            accounts.set_password(c, "viewer", again, rules=rules)
    with eng.begin() as c:
        accounts.set_password(c, "viewer", OLD + "-A1", rules=rules)
        accounts.set_password(c, "viewer", passwords[0], rules=rules)  # four changes ago: allowed again


def test_an_expired_password_must_be_changed_first(site):
    app, eng = site["app"], site["engine"]
    with eng.begin() as c:
        c.execute(text("UPDATE users SET password_changed_at = now() - interval '91 days' WHERE username = 'viewer'"))
    client = app.test_client()
    r = _try(client, "viewer", OLD)
    assert r.status_code == 302 and r.headers["Location"] == "/account/password"
    assert client.get("/map").headers["Location"] == "/account/password"
    assert client.get("/api/v1/cases").status_code == 403
    page = client.get("/account/password")
    token = csrf(page.get_data(as_text=True))
    r = client.post("/account/password", data={"current": OLD, "new": OLD, "repeat": OLD, "csrf_token": token})
    assert r.status_code == 400 and "最近 5 次" in r.get_data(as_text=True)
    r = client.post("/account/password", data={"current": OLD, "new": NEW, "repeat": NEW, "csrf_token": token})
    assert r.status_code == 302 and client.get("/map").status_code == 200
    with eng.connect() as c:
        assert c.execute(text("SELECT count(*) FROM audit_log WHERE action = 'password.change'")).scalar() == 1


@pytest.mark.parametrize(
    "target",
    [
        "/\t/evil.example/phish",  # what ?next=/%09/evil.example/phish decodes to
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/a\r\nSet-Cookie: x=1",
    ],
)
def test_login_never_redirects_off_the_app(site, target):
    client = site["app"].test_client()
    token = csrf(client.get("/login").get_data(as_text=True))
    r = client.post(
        "/login", query_string={"next": target}, data={"username": "viewer", "password": OLD, "csrf_token": token}
    )
    assert r.status_code == 302
    assert r.headers["Location"] == "/"  # home, not the target: whatever it decodes to, it is not a local path
    assert "SameSite=Lax" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]


def test_login_keeps_a_local_next(site):
    client = site["app"].test_client()
    token = csrf(client.get("/login").get_data(as_text=True))
    r = client.post(
        "/login",
        query_string={"next": "/cases?tab=all"},
        data={"username": "viewer", "password": OLD, "csrf_token": token},
    )
    assert r.headers["Location"] == "/cases?tab=all"


def test_an_unknown_name_costs_the_same_hash_check_as_a_wrong_password(site, monkeypatch):
    checked = []
    real = accounts.check_password_hash
    monkeypatch.setattr(accounts, "check_password_hash", lambda h, p: checked.append(h) or real(h, p))
    with site["engine"].connect() as c:
        assert accounts.check_login(c, "viewer", "wrong") is None
        assert accounts.check_login(c, "nobody", "wrong") is None
    # both ran a full hash check of the same method (the name's existence is not in the timing)
    assert len(checked) == 2 and checked[0].split("$")[0] == checked[1].split("$")[0]


def _try(client, username, password):
    token = csrf(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def test_failed_logins_wait_with_backoff_kept_in_the_database(site):
    app = site["app"]
    start = datetime(2026, 10, 13, 9, 0, tzinfo=timezone.utc)
    app.config["GRIDMGR_NOW"] = start
    client = app.test_client()
    assert [_try(client, "viewer", "wrong").status_code for _ in range(5)] == [401] * 5
    r = _try(client, "viewer", OLD)  # the right password, but the name must wait now
    assert r.status_code == 429 and r.headers["Retry-After"] == "30" and "30 秒" in r.get_data(as_text=True)
    assert _try(app.test_client(), "other", OLD).status_code == 302  # another account from this address
    # a name that does not exist is throttled the same way: the answers never tell which names exist
    assert [_try(client, "nobody", "x").status_code for _ in range(6)] == [401] * 5 + [429]
    app.config["GRIDMGR_NOW"] = start + timedelta(seconds=31)
    assert _try(client, "viewer", "wrong").status_code == 401
    assert _try(client, "viewer", "wrong").headers["Retry-After"] == "60"  # the wait doubles
    app.config["GRIDMGR_NOW"] = start + timedelta(seconds=100)
    assert _try(client, "viewer", OLD).status_code == 302  # and a success starts the count again
    assert _try(client, "viewer", "wrong").status_code == 401
    with site["engine"].connect() as c:
        rows = c.execute(text("SELECT subject, ok FROM audit_log WHERE action = 'login' ORDER BY id")).all()
        locked = c.execute(text("SELECT count(*) FROM audit_log WHERE action = 'login.locked'")).scalar()
    assert locked == 3  # the three tries the throttle turned away are audited as such
    # every try that reached the password check is in the audit as a login; refused ones as locked
    assert [(u, ok) for u, ok in rows if u == "viewer"] == [("viewer", False)] * 6 + [
        ("viewer", True),
        ("viewer", False),
    ]
    assert ("other", True) in rows and rows.count(("nobody", False)) == 5


def test_the_address_waits_after_many_names_fail(site):
    app = site["app"]
    app.config["GRIDMGR_NOW"] = datetime(2026, 10, 13, 9, 0, tzinfo=timezone.utc)
    client = app.test_client()
    codes = [_try(client, f"guess{i}", "x").status_code for i in range(logins.ADDRESS_FREE)]
    assert codes == [401] * logins.ADDRESS_FREE
    assert _try(client, "viewer", OLD).status_code == 429  # from this address, even the right password waits


def test_behind_a_proxy_the_throttle_sees_each_client(fresh_db):
    """With GRIDMGR_PROXY_HOPS=1 the address is nginx's X-Forwarded-For; without it a forged header changes nothing."""
    url, eng = fresh_db
    now = datetime(2026, 10, 13, 9, 0, tzinfo=timezone.utc)
    for hops, expected in (("1", ["203.0.113.7"]), ("0", ["127.0.0.1"])):
        app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_SECRET_KEY": "k", "GRIDMGR_PROXY_HOPS": hops})
        app.config["GRIDMGR_NOW"] = now
        client = app.test_client()
        token = csrf(client.get("/login").get_data(as_text=True))
        client.post(
            "/login",
            data={"username": f"hops{hops}", "password": "x", "csrf_token": token},
            headers={"X-Forwarded-For": "203.0.113.7"},
        )
        with eng.connect() as c:
            got = c.execute(
                text("SELECT address FROM audit_log WHERE action = 'login' AND subject = :u"), {"u": f"hops{hops}"}
            )
            assert got.scalars().all() == expected
