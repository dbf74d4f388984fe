"""三员分立: the security administrator's sessions and accounts pages, the audit administrator's log, each only theirs."""

import pytest
from sqlalchemy import text

from gridmgr.people import accounts
from gridmgr.web import create_app

from support import csrf, login_client

PASSWORD = "secret-pass"
ROLES = {"sys": "sysadmin", "sec": "secadmin", "aud": "auditor", "alice": "leader"}


@pytest.fixture
def site(fresh_db):
    url, eng = fresh_db
    with eng.begin() as c:
        for i, (name, role) in enumerate(ROLES.items()):
            c.execute(text("INSERT INTO people (code, name, role) VALUES (:c, :n, 'staff')"), {"c": f"P{i}", "n": name})
            accounts.add_user(c, name, f"P{i}", role, PASSWORD)
    app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_SECRET_KEY": "test-secret"})
    return app, eng


def test_each_administrator_has_only_their_own_pages(site):
    app, _ = site
    pages = {"/security/sessions": "sec", "/security/accounts": "sec", "/audit": "aud"}
    for who in ROLES:
        client = login_client(app, who, PASSWORD)
        for path, owner in pages.items():
            assert client.get(path).status_code == (200 if who == owner else 403), (who, path)
    # the start page of each is their work, and the menu shows only their entries
    sec = login_client(app, "sec", PASSWORD)
    assert sec.get("/").headers["Location"] == "/security/sessions"
    menu = sec.get("/security/sessions").get_data(as_text=True)
    assert "审计日志" not in menu and "账号安全" in menu
    assert login_client(app, "aud", PASSWORD).get("/").headers["Location"] == "/audit"


def test_the_security_administrator_ends_a_session_changes_a_role_and_locks(site):
    app, eng = site
    alice = login_client(app, "alice", PASSWORD)
    assert alice.get("/api/v1/me").status_code == 200
    sec = login_client(app, "sec", PASSWORD)
    page = sec.get("/security/sessions", query_string={"user": "alice"}).get_data(as_text=True)
    assert "alice" in page
    token = csrf(page)
    with eng.connect() as c:
        sid = c.execute(
            text("SELECT c.id FROM credentials c JOIN users u ON u.id = c.user_id WHERE u.username = 'alice'")
        ).scalar()
    r = sec.post("/security/sessions/end", data={"username": "alice", "id": sid, "csrf_token": token})
    assert r.status_code == 302
    assert alice.get("/api/v1/me").status_code == 401  # ended: her cookie names nothing now
    r = sec.post("/security/accounts/alice", data={"do": "role", "role": "planner", "csrf_token": token})
    assert r.status_code == 302
    r = sec.post("/security/accounts/alice", data={"do": "lock", "csrf_token": token})
    assert r.status_code == 302
    r = sec.post("/security/accounts/sec", data={"do": "lock", "csrf_token": token})
    assert r.status_code == 400  # not oneself
    r = sec.post("/security/accounts/alice", data={"do": "role", "role": "emperor", "csrf_token": token})
    assert r.status_code == 400 and "emperor" in r.get_data(as_text=True)
    with eng.connect() as c:
        role, active = c.execute(text("SELECT role, active FROM users WHERE username = 'alice'")).one()
        acts = c.execute(
            text("SELECT action, actor, subject FROM audit_log WHERE actor = 'sec' AND action <> 'login' ORDER BY id")
        ).all()
    assert (role, active) == ("planner", False)
    assert acts == [("session.end", "sec", "alice"), ("account.role", "sec", "alice"), ("account.lock", "sec", "alice")]


def test_the_auditor_reads_every_entry_and_changes_nothing(site):
    app, _ = site
    login_client(app, "alice", PASSWORD)
    failed = app.test_client()
    failed.post(
        "/login",
        data={
            "username": "alice",
            "password": "wrong",
            "csrf_token": csrf(failed.get("/login").get_data(as_text=True)),
        },
    )
    aud = login_client(app, "aud", PASSWORD)
    page = aud.get("/audit", query_string={"who": "alice", "action": "login"}).get_data(as_text=True)
    assert page.count("<tr>") == 1 + 2  # the head, alice's login and her failed one
    assert "失败" in page
    assert aud.get("/audit", query_string={"action": "nonsense"}).status_code == 400
    assert aud.get("/audit", query_string={"since": "2026-13-01"}).status_code == 400
    token = csrf(page)
    for path, form in (
        ("/security/sessions/end", {"username": "alice"}),
        ("/security/accounts/alice", {"do": "lock"}),
    ):
        assert aud.post(path, data={**form, "csrf_token": token}).status_code == 403
