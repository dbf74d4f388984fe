"""The JSON API: scope (cell and unit), token and session auth, CSRF, transitions, filters, overdue and
超时倍数, cells, and an OpenAPI document that validates and matches every route the code serves."""

import json
import re
from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec
from sqlalchemy import text
from werkzeug.security import generate_password_hash

from gridmgr.cases import dispatch, queries
from gridmgr.cases.intake import NewCase, report
from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.cases.workflow import actor_for, apply
from gridmgr.people import accounts
from gridmgr.web import create_app

from support import SMALL_ORIGIN, SMALL_STEP, insert_small_grid, login_client, page_csrf

TZ = ZoneInfo("Asia/Shanghai")
REPORTED = datetime(2026, 10, 13, 9, 0, tzinfo=TZ)  # a Tuesday, working hours
APP_NOW = datetime(2026, 10, 13, 11, 0, tzinfo=TZ)  # the app's "now" (GRIDMGR_NOW)
CAL = WorkCalendar.load()
PASSWORD = "secret-pass"
PASSWORD_HASH = generate_password_hash(PASSWORD)
X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP
SCRIPT = "<script>alert('x')</script> & 垃圾"
# username → (role, unit code); sup_n answers for the north cells 001/002, sup_s for the south 003/004
USERS = {
    "admin": ("sysadmin", None),
    "leader": ("leader", None),
    "receiver": ("receiver", None),
    "dispatcher": ("dispatcher", None),
    "shift": ("shift_leader", None),
    "planner": ("planner", None),
    "sup_n": ("supervisor", None),
    "sup_s": ("supervisor", None),
    "hw": ("unit_handler", "HW01"),
    "zf": ("unit_handler", "ZF01"),
}
UNITS = (
    ("JD01", "东华门街道办事处", "street_office"),
    ("ZF01", "第一执法中队", "enforcement_squad"),
    ("HW01", "东城区环卫所", "sanitation"),
)


def point(cell_seq: int) -> tuple[float, float]:
    """The middle of test cell 001 NW, 002 NE, 003 SW or 004 SE."""
    i, j = {1: (0, 1), 2: (1, 1), 3: (0, 0), 4: (1, 0)}[cell_seq]
    return X0 + (i + 0.5) * D, Y0 + (j + 0.5) * D


def build_world(c) -> dict:
    """Grid, units, people, accounts, duty grids and five cases in known states (committed by the caller)."""
    cells = insert_small_grid(c)
    units = {
        code: c.execute(
            text("INSERT INTO units (code, name, kind) VALUES (:c, :n, :k) RETURNING id"),
            {"c": code, "n": name, "k": kind},
        ).scalar()
        for code, name, kind in UNITS
    }
    for cell in cells.values():
        for duty, unit in (("territorial", "JD01"), ("enforcement", "ZF01"), ("sanitation", "HW01")):
            c.execute(text("INSERT INTO cell_units VALUES (:c, :d, :u)"), {"c": cell, "d": duty, "u": units[unit]})
    users = {}
    for i, (username, (role, unit)) in enumerate(USERS.items()):
        pid = c.execute(
            text("INSERT INTO people (code, name, role, unit_id) VALUES (:c, :n, 'staff', :u) RETURNING id"),
            {"c": f"P{i}", "n": f"人员{username}", "u": units.get(unit)},
        ).scalar()
        users[username] = c.execute(
            text("INSERT INTO users (username, person_id, role, password_hash) VALUES (:n, :p, :r, :h) RETURNING id"),
            {"n": username, "p": pid, "r": role, "h": PASSWORD_HASH},
        ).scalar()
    for sup, seqs in (("sup_n", (1, 2)), ("sup_s", (3, 4))):
        person = c.execute(text("SELECT person_id FROM users WHERE id = :u"), {"u": users[sup]}).scalar()
        g = c.execute(
            text("INSERT INTO duty_grids (code, name, supervisor_id) VALUES (:c, :n, :p) RETURNING id"),
            {"c": f"DG_{sup}", "n": f"责任网格 {sup}", "p": person},
        ).scalar()
        for s in seqs:
            c.execute(text("INSERT INTO duty_grid_cells VALUES (:g, :c)"), {"g": g, "c": cells[f"110101001001{s:03d}"]})
    dispatch.load(c)
    tokens = {u: accounts.new_token(c, u) for u in USERS}

    def who(name):
        return actor_for(c, users[name])

    def new(name, source, category, seq, at=REPORTED, description="垃圾"):
        lon, lat = point(seq)
        return report(
            c, who(name), NewCase(category, lon, lat, source, description, f"测试路{seq}号"), now=at, calendar=CAL
        )

    def act(name, case_id, action, at=REPORTED, **kw):
        return apply(c, who(name), case_id, action, now=at, calendar=CAL, **kw)

    cases = {
        "north_public": new("receiver", "public", "0102", 1),  # verify deadline 11:00 = APP_NOW
        "south_sup": new("sup_s", "supervisor", "0102", 3),  # register deadline 10:00: overdue, 2.0
        "dispatched_zf": new("sup_s", "supervisor", "0101", 4),
        "old_closed": new("sup_n", "supervisor", "0102", 2, at=datetime(2026, 9, 15, 10, 0, tzinfo=TZ)),
        "script": new("receiver", "public", "0102", 2, description=SCRIPT),
    }
    act("shift", cases["dispatched_zf"], "register")
    act("dispatcher", cases["dispatched_zf"], "dispatch")  # 0101 → enforcement → ZF01 by the shipped rules
    act(
        "sup_n",
        cases["old_closed"],
        "self_handle",
        at=datetime(2026, 9, 15, 10, 30, tzinfo=TZ),
        note="已处理",
        data={"photos": ["before.jpg", "after.jpg"]},
    )
    return {"cells": cells, "units": units, "users": users, "tokens": tokens, "cases": cases}


@pytest.fixture
def world(fresh_db):
    url, eng = fresh_db
    with eng.begin() as c:
        w = build_world(c)
    app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_SECRET_KEY": "test-secret"})
    app.config["GRIDMGR_NOW"] = APP_NOW
    return SimpleNamespace(app=app, engine=eng, url=url, **w)


def call(w, user, method, path, token=None, **kw):
    """A bearer-token request as `user` (or with an explicit token)."""
    headers = kw.pop("headers", {})
    headers["Authorization"] = f"Bearer {token or w.tokens[user]}"
    return w.app.test_client().open(path, method=method, headers=headers, **kw)


def login(w, username):
    """A test client logged in through the form; returns (client, CSRF token of its pages)."""
    client = login_client(w.app, username, PASSWORD)
    return client, page_csrf(client)


def n_events(w, case_id):
    with w.engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM case_events WHERE case_id = :c"), {"c": case_id}).scalar()


def listed(r):
    assert r.status_code == 200, r.get_data(as_text=True)
    return [item["case_no"] for item in r.json["items"]]


def numbers(w, *keys):
    with w.engine.connect() as c:
        return {k: c.execute(text("SELECT case_no FROM cases WHERE id = :i"), {"i": w.cases[k]}).scalar() for k in keys}


# ---------------------------------------------------------------- scope


def test_other_cells_case_is_404_and_own_cells_case_is_served(world):
    w, north = world, world.cases["north_public"]
    r = call(w, "sup_s", "GET", f"/api/v1/cases/{north}")
    missing = call(w, "sup_s", "GET", "/api/v1/cases/99999999")
    assert r.status_code == missing.status_code == 404
    assert r.json["error"]["message"] == f"no case {north}"  # the same words as a case that does not exist
    assert "垃圾" not in r.get_data(as_text=True)
    ok = call(w, "sup_n", "GET", f"/api/v1/cases/{north}")
    assert ok.status_code == 200 and ok.json["id"] == north and "verify" in ok.json["allowed_actions"]
    # the list holds only the cases of the caller's cells
    nos = numbers(w, *w.cases)
    assert set(listed(call(w, "sup_s", "GET", "/api/v1/cases"))) == {nos["south_sup"], nos["dispatched_zf"]}
    before = n_events(w, north)
    r = call(w, "sup_s", "POST", f"/api/v1/cases/{north}/actions/verify", json={"note": "x"})
    assert r.status_code == 404 and n_events(w, north) == before


def test_other_units_case_is_404_and_wrong_role_is_403(world):
    w, case = world, world.cases["dispatched_zf"]
    assert call(w, "hw", "GET", f"/api/v1/cases/{case}").status_code == 404
    assert call(w, "zf", "GET", f"/api/v1/cases/{case}").status_code == 200
    assert listed(call(w, "hw", "GET", "/api/v1/cases")) == []
    before = n_events(w, case)
    assert call(w, "hw", "POST", f"/api/v1/cases/{case}/actions/handle", json={"note": "x"}).status_code == 404
    # a supervisor sees the south cases, but registering is the shift leader's
    r = call(w, "sup_s", "POST", f"/api/v1/cases/{w.cases['south_sup']}/actions/register")
    assert r.status_code == 403 and "shift_leader" in r.json["error"]["message"]
    assert n_events(w, case) == before


@pytest.mark.parametrize("role_user", ["leader", "admin", "planner"])
def test_leaders_read_everything_and_change_no_case(world, role_user):
    w = world
    assert call(w, role_user, "GET", "/api/v1/cases").json["total"] == len(w.cases)
    case = w.cases["south_sup"]
    detail = call(w, role_user, "GET", f"/api/v1/cases/{case}").json
    assert detail["allowed_actions"] == [] and detail["events"]
    before = n_events(w, case)
    r = call(w, role_user, "POST", f"/api/v1/cases/{case}/actions/register", json={"note": "x"})
    assert r.status_code == 403 and n_events(w, case) == before
    assert call(w, role_user, "GET", "/api/v1/me").json["acts_on_cases"] is False


# ---------------------------------------------------------------- authentication and CSRF


def test_token_from_the_cli_works_and_a_bad_token_is_401(world, cli):
    w = world
    token = cli("users", "token", "sup_n").output.strip()
    me = call(w, None, "GET", "/api/v1/me", token=token)
    assert me.status_code == 200 and me.json["username"] == "sup_n" and me.json["auth"] == "token"
    assert call(w, None, "GET", "/api/v1/me", token=w.tokens["sup_n"]).status_code == 401  # replaced by the new one
    for bad in ("nonsense", token + "x"):
        r = call(w, None, "GET", "/api/v1/cases", token=bad)
        assert r.status_code == 401 and r.json["error"]["status"] == 401
        r = call(w, None, "POST", f"/api/v1/cases/{w.cases['north_public']}/actions/verify", token=bad)
        assert r.status_code == 401
    assert w.app.test_client().get("/api/v1/cases").status_code == 401  # nobody
    assert w.app.test_client().get("/api/v1/openapi.json").status_code == 200  # the document is public
    with w.engine.begin() as c:
        c.execute(text("UPDATE users SET active = false WHERE username = 'sup_n'"))
    assert call(w, None, "GET", "/api/v1/me", token=token).status_code == 401


def test_database_down_is_a_json_503_without_internals():
    app = create_app({"GRIDMGR_DATABASE_URL": "postgresql+psycopg2://nobody@/none?host=/nonexistent&port=1"})
    r = app.test_client().get("/api/v1/cases", headers={"Authorization": "Bearer whatever"})
    assert r.status_code == 503 and r.json["error"]["status"] == 503
    assert "psycopg2" not in r.get_data(as_text=True) and "nonexistent" not in r.get_data(as_text=True)


def test_a_bad_token_beside_a_session_is_still_401(world):
    w = world
    client, _ = login(w, "sup_n")
    assert client.get("/api/v1/me").json["auth"] == "session"
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer nonsense"}).status_code == 401


def test_session_writes_need_the_csrf_token(world):
    w, case = world, world.cases["north_public"]
    client, csrf = login(w, "sup_n")
    url = f"/api/v1/cases/{case}/actions/verify"
    before = n_events(w, case)
    r = client.post(url, json={"note": "现场核实"})
    assert r.status_code == 400 and "CSRF" in r.json["error"]["message"]
    r = client.post(url, json={"note": "现场核实"}, headers={"X-CSRFToken": csrf[:-4] + "abcd"})
    assert r.status_code == 400
    assert n_events(w, case) == before
    r = client.post(url, json={"note": "现场核实"}, headers={"X-CSRFToken": csrf})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.json["outcome"]["to_state"] == "verified" and n_events(w, case) == before + 1


# ---------------------------------------------------------------- transitions


def test_transitions_through_the_api_write_their_events(world):
    w, case = world, world.cases["north_public"]
    r = call(w, "sup_n", "POST", f"/api/v1/cases/{case}/actions/verify", json={"note": "现场核实属实"})
    assert r.status_code == 200, r.get_data(as_text=True)
    out, after = r.json["outcome"], r.json["case"]
    assert (out["from_state"], out["to_state"]) == ("reported", "verified")
    last = after["events"][-1]
    assert (last["action"], last["note"], last["role"], last["user_id"]) == (
        "verify",
        "现场核实属实",
        "supervisor",
        w.users["sup_n"],
    )
    with w.engine.connect() as c:
        row = c.execute(
            text("SELECT id, action, user_id, note FROM case_events WHERE case_id = :c ORDER BY id DESC LIMIT 1"),
            {"c": case},
        ).first()
    assert (row.id, row.action, row.user_id, row.note) == (out["event_id"], "verify", w.users["sup_n"], "现场核实属实")
    # the wrong state is a 409, a missing note or bad data a 400, an unknown action a 404: none writes a row
    before = n_events(w, case)
    assert call(w, "sup_n", "POST", f"/api/v1/cases/{case}/actions/verify").status_code == 409
    assert call(w, "shift", "POST", f"/api/v1/cases/{case}/actions/reject").status_code == 400
    r = call(w, "shift", "POST", f"/api/v1/cases/{case}/actions/register", json={"data": {"colour": "red"}})
    assert r.status_code == 400 and "colour" in r.json["error"]["message"]
    r = call(
        w,
        "shift",
        "POST",
        f"/api/v1/cases/{case}/actions/register",
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert call(w, "shift", "POST", f"/api/v1/cases/{case}/actions/fly").status_code == 404
    assert n_events(w, case) == before
    # register, dispatch to a unit named by code, then that unit (and only it) handles
    assert call(w, "shift", "POST", f"/api/v1/cases/{case}/actions/register").status_code == 200
    r = call(w, "dispatcher", "POST", f"/api/v1/cases/{case}/actions/dispatch", json={"data": {"unit": "NOPE"}})
    assert r.status_code == 400 and "data.unit" in r.json["error"]["message"]
    r = call(w, "dispatcher", "POST", f"/api/v1/cases/{case}/actions/dispatch", json={"data": {"unit": "ZF01"}})
    assert r.status_code == 200 and r.json["case"]["unit"]["code"] == "ZF01"
    assert r.json["case"]["deadline_step"] == "handle"
    assert call(w, "hw", "POST", f"/api/v1/cases/{case}/actions/handle", json={"note": "x"}).status_code == 404
    r = call(
        w, "zf", "POST", f"/api/v1/cases/{case}/actions/handle", json={"note": "已清理", "data": {"photos": ["a.jpg"]}}
    )
    assert r.status_code == 200 and r.json["case"]["status"] == "handled"
    assert [e["action"] for e in r.json["case"]["events"]] == ["report", "verify", "register", "dispatch", "handle"]


@pytest.mark.parametrize("setting, after_pass", [(None, "checked"), ("on", "closed")])
def test_close_on_check_lets_a_passed_check_close_the_case(world, setting, after_pass):
    w, case = world, world.cases["dispatched_zf"]
    if setting:
        w.app = create_app({"GRIDMGR_DATABASE_URL": w.url, "GRIDMGR_CLOSE_ON_CHECK": setting})
        w.app.config["GRIDMGR_NOW"] = APP_NOW
    r = call(w, "zf", "POST", f"/api/v1/cases/{case}/actions/handle", json={"note": "已拆除"})
    assert r.status_code == 200, r.get_data(as_text=True)
    r = call(w, "sup_s", "POST", f"/api/v1/cases/{case}/actions/check_pass", json={"note": "复查合格"})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert (r.json["outcome"]["to_state"], r.json["case"]["status"]) == (after_pass, after_pass)
    assert r.json["case"]["events"][-1]["action"] == "check_pass"  # one event: no separate close


def test_a_bad_close_on_check_value_stops_the_app(fresh_db):
    with pytest.raises(ValueError, match="GRIDMGR_CLOSE_ON_CHECK"):
        create_app({"GRIDMGR_DATABASE_URL": fresh_db[0], "GRIDMGR_CLOSE_ON_CHECK": "sometimes"})


# ---------------------------------------------------------------- filters, paging, timing


def test_filters(world):
    w = world
    nos = numbers(w, *w.cases)

    def q(**params):
        return set(listed(call(w, "dispatcher", "GET", "/api/v1/cases", query_string=params)))

    everything = set(nos.values())
    assert q() == everything
    assert q(status="reported") == {nos["north_public"], nos["south_sup"], nos["script"]}
    assert q(status="dispatched,closed") == {nos["dispatched_zf"], nos["old_closed"]}
    assert q(category="0101") == {nos["dispatched_zf"]}
    assert q(cell="110101001001004") == {nos["dispatched_zf"]}
    assert q(cell="110101001001002") == {nos["old_closed"], nos["script"]}
    assert q(street="110101001") == everything and q(street="110101002") == set()
    assert q(unit="ZF01") == {nos["dispatched_zf"]}
    assert q(period="2026-09") == {nos["old_closed"]}
    assert q(period="2026-10-13") == everything - {nos["old_closed"]}
    assert q(period="2026-09-15/2026-09-15") == {nos["old_closed"]}  # a date as the end includes that day
    assert q(period="2026-10-13T08:00:00+08:00/2026-10-13T09:00:00+08:00") == set()  # half-open
    assert q(overdue="true") == {nos["south_sup"]}
    assert q(overdue="false") == everything - {nos["south_sup"]}
    north_half = f"{X0},{Y0 + D},{X0 + 2 * D},{Y0 + 2 * D}"
    assert q(bbox=north_half) == {nos["north_public"], nos["old_closed"], nos["script"]}
    assert q(case_no=nos["script"]) == {nos["script"]}
    assert q(status="reported", category="0102", cell="110101001001003", overdue="true") == {nos["south_sup"]}
    both = call(w, "dispatcher", "GET", "/api/v1/cases?status=dispatched&status=closed")  # repeated = listed
    assert set(listed(both)) == {nos["dispatched_zf"], nos["old_closed"]}
    for params, field in (
        ({"status": "lost"}, "status"),
        ({"bbox": "1,2"}, "bbox"),
        ({"page": "0"}, "page"),
        ({"page_size": "501"}, "page_size"),
        ({"sort": "colour"}, "sort"),
        ({"overdue": "maybe"}, "overdue"),
        ({"period": "2026-13"}, "period"),
        ({"cell": "123"}, "cell"),
    ):
        r = call(w, "dispatcher", "GET", "/api/v1/cases", query_string=params)
        assert r.status_code == 400 and f"'{field}'" in r.json["error"]["message"], (params, r.json)


def test_paging_and_sorting(world):
    w = world
    seen = []
    for page in (1, 2, 3):
        r = call(w, "leader", "GET", "/api/v1/cases", query_string={"page": page, "page_size": 2, "sort": "case_no"})
        body = r.json
        assert (body["total"], body["pages"], body["page"], r.headers["X-Total-Count"]) == (5, 3, page, "5")
        seen += [i["case_no"] for i in body["items"]]
    assert seen == sorted(seen) and len(set(seen)) == 5
    r = call(w, "leader", "GET", "/api/v1/cases", query_string={"page": 4, "page_size": 2})
    assert r.json["items"] == [] and r.json["total"] == 5
    newest = listed(call(w, "leader", "GET", "/api/v1/cases"))
    assert newest[-1] == numbers(w, "old_closed")["old_closed"]


def test_overdue_and_overtime_ratio_are_consistent(world):
    w = world

    def items():
        """Each case as the list sends it, with the 超时倍数 of its single-case answer (the list has none)."""
        by_id = {i["id"]: i for i in call(w, "leader", "GET", "/api/v1/cases").json["items"]}
        for k, v in by_id.items():
            v["overtime_ratio"] = call(w, "leader", "GET", f"/api/v1/cases/{k}").json["overtime_ratio"]
        return by_id

    def check_consistent(by_id):
        overdue_ids = {
            i["id"] for i in call(w, "leader", "GET", "/api/v1/cases", query_string={"overdue": "true"}).json["items"]
        }
        assert overdue_ids == {k for k, v in by_id.items() if v["overdue"]}
        for v in by_id.values():
            if v["overtime_ratio"] is not None and v["overtime_ratio"] > 1:
                assert v["overdue"]
            if v["overdue"]:
                assert v["overtime_ratio"] >= 1
            detail = call(w, "leader", "GET", f"/api/v1/cases/{v['id']}").json
            assert detail["overdue"] == v["overdue"]  # the list's in SQL, the single case's in Python

    now = items()
    south, north, closed = (now[w.cases[k]] for k in ("south_sup", "north_public", "old_closed"))
    assert (south["overdue"], south["overtime_ratio"]) == (True, 2.0)  # 09:00 → 10:00 allowed, 11:00 now
    assert south["overtime_ratio"] == round(CAL.overtime_ratio(REPORTED, REPORTED + timedelta(hours=1), APP_NOW), 4)
    assert (north["overdue"], north["overtime_ratio"]) == (False, 1.0)  # due at 11:00 sharp: not yet overdue
    assert (closed["overdue"], closed["overtime_ratio"], closed["deadline"]) == (False, None, None)
    check_consistent(now)
    # the now hook takes an ISO string or a callable too; in the lunch break no working time is added
    w.app.config["GRIDMGR_NOW"] = "2026-10-13T12:30:00+08:00"
    later = items()
    assert (later[w.cases["north_public"]]["overdue"], later[w.cases["north_public"]]["overtime_ratio"]) == (True, 1.5)
    check_consistent(later)
    w.app.config["GRIDMGR_NOW"] = lambda: datetime(2026, 10, 13, 10, 0, tzinfo=TZ)
    early = items()
    assert early[w.cases["south_sup"]]["overdue"] is False and early[w.cases["south_sup"]]["overtime_ratio"] == 1.0
    check_consistent(early)


TIMES = ("reported_at", "deadline")


def test_the_list_sends_the_list_fields_as_the_single_case_has_them(world):
    w = world
    doc = _doc(w)
    fields = doc["components"]["schemas"]["CaseSummary"]["required"]
    assert tuple(fields) == queries.SUMMARY_FIELDS
    assert set(fields) < set(doc["components"]["schemas"]["Case"]["required"])
    for user in ("leader", "sup_s", "zf"):
        body = call(w, user, "GET", "/api/v1/cases", query_string={"page_size": 500}).json
        assert body["items"], user
        for item in body["items"]:
            assert list(item) == fields  # only the list's fields, in the documented order
            detail = call(w, user, "GET", f"/api/v1/cases/{item['id']}").json
            for key in fields:
                if key in TIMES and item[key] is not None:  # PostgreSQL and Python may write fractions apart
                    assert item[key].endswith("+08:00"), (key, item[key])
                    assert datetime.fromisoformat(item[key]) == datetime.fromisoformat(detail[key])
                else:
                    assert item[key] == detail[key], (user, item["case_no"], key)
    by_no = {i["case_no"]: i for i in call(w, "leader", "GET", "/api/v1/cases").json["items"]}
    zf = by_no[numbers(w, "dispatched_zf")["dispatched_zf"]]
    assert zf["unit"]["code"] == "ZF01" and zf["deadline_step"] == "handle"
    assert by_no[numbers(w, "old_closed")["old_closed"]]["deadline"] is None


def test_an_empty_page_and_filters_on_joined_tables_list_right(world):
    w = world
    nos = numbers(w, *w.cases)
    r = call(w, "hw", "GET", "/api/v1/cases")
    assert r.json == {"items": [], "total": 0, "page": 1, "page_size": 50, "pages": 1}
    assert r.headers["X-Total-Count"] == "0"
    # filters on the cell, the street and the unit join their tables for the count and the page alike
    for params, expected in (
        ({"street": "110101001", "unit": "ZF01"}, {nos["dispatched_zf"]}),
        ({"street": "110101001", "cell": "110101001001002"}, {nos["old_closed"], nos["script"]}),
    ):
        r = call(w, "dispatcher", "GET", "/api/v1/cases", query_string=params)
        assert set(listed(r)) == expected and r.json["total"] == len(expected), params


# ---------------------------------------------------------------- cells, categories, escaping


def test_cells_by_code_and_by_point(world):
    w = world
    r = call(w, "sup_n", "GET", "/api/v1/cells/110101001001001")
    assert r.status_code == 200 and r.json["code"] == "110101001001001"
    assert r.json["street"]["code"] == "110101001" and {u["code"] for u in r.json["units"]} == {"JD01", "ZF01", "HW01"}
    assert r.json["duty_grids"] == [{"code": "DG_sup_n", "name": "责任网格 sup_n"}]
    lon, lat = point(4)
    r = call(w, "sup_n", "GET", "/api/v1/cells", query_string={"lon": lon, "lat": lat})
    assert r.status_code == 200 and r.json["code"] == "110101001001004"
    assert (
        call(w, "sup_n", "GET", "/api/v1/cells", query_string={"lon": X0 + 0.01, "lat": Y0 + 0.01}).status_code == 404
    )
    assert call(w, "sup_n", "GET", "/api/v1/cells", query_string={"lon": lon}).status_code == 400
    assert call(w, "sup_n", "GET", "/api/v1/cells", query_string={"lon": "east", "lat": lat}).status_code == 400
    assert call(w, "sup_n", "GET", "/api/v1/cells/123").status_code == 400
    assert call(w, "sup_n", "GET", "/api/v1/cells/110101001001999").status_code == 404
    cats = call(w, "sup_n", "GET", "/api/v1/categories").json
    assert {"code": "0102", "name": "暴露垃圾"}.items() <= next(c for c in cats if c["code"] == "0102").items()


def test_user_text_comes_back_as_escaped_json_data(world):
    w = world
    r = call(w, "receiver", "GET", f"/api/v1/cases/{w.cases['script']}")
    raw = r.get_data(as_text=True)
    assert r.mimetype == "application/json" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script" not in raw and "\\u003cscript\\u003e" in raw
    assert json.loads(raw)["description"] == SCRIPT
    r = call(w, "receiver", "GET", "/api/v1/cases", query_string={"case_no": numbers(w, "script")["script"]})
    raw = r.get_data(as_text=True)  # the list's JSON is made by PostgreSQL, and escaped the same way
    assert r.mimetype == "application/json" and r.headers["X-Content-Type-Options"] == "nosniff"
    assert "<script" not in raw and "'" not in raw and "\\u003cscript\\u003e" in raw
    assert json.loads(raw)["items"][0]["description"] == SCRIPT


# ---------------------------------------------------------------- the OpenAPI document


def _doc(w):
    r = w.app.test_client().get("/api/v1/openapi.json")
    assert r.status_code == 200
    return r.json


def _documented(doc):
    base = doc["servers"][0]["url"]
    return {(base + path, method.upper()) for path, ops in doc["paths"].items() for method in ops}


def test_openapi_document_validates_and_lists_exactly_the_served_routes(world):
    doc = _doc(world)
    validate_spec(doc)
    served = set()
    for rule in world.app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            served |= {(path, m) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == _documented(doc)
    from gridmgr.cases.filters import FILTER_PARAMS

    documented = {p["name"] for p in doc["paths"]["/cases"]["get"]["parameters"]}
    assert set(FILTER_PARAMS) <= documented


def _check_body(doc, op, response):
    """The response's status is documented for the operation, and its body matches the documented schema."""
    documented = op["responses"].get(str(response.status_code))
    assert documented, f"status {response.status_code} not documented: {response.get_data(as_text=True)}"
    schema = documented["content"]["application/json"]["schema"]
    OAS31Validator({**schema, "components": doc["components"]}).validate(response.json)


def test_every_documented_path_answers_for_a_logged_in_admin(world):
    w = world
    doc = _doc(w)
    client, csrf = login(w, "admin")
    base = doc["servers"][0]["url"]
    values = {"case_id": w.cases["south_sup"], "action": "register", "code": "110101001001003", "zone_id": 1}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            params = op.get("parameters", [])
            url = base + re.sub(r"\{(\w+)\}", lambda m: str(values[m[1]]), path)
            required = {p["name"]: p["example"] for p in params if p["in"] == "query" and p.get("required")}
            every = {p["name"]: p["example"] for p in params if p["in"] == "query" and "example" in p}
            for query in {json.dumps(required), json.dumps(every)}:
                r = client.open(
                    url,
                    method=method.upper(),
                    query_string=json.loads(query),
                    headers={"X-CSRFToken": csrf},
                    json={"note": "x"} if method == "post" else None,
                )
                assert r.status_code < 500, (method, url, query, r.get_data(as_text=True))
                assert r.mimetype == "application/json"
                _check_body(doc, op, r)
    # the success bodies of the other roles match the schemas too
    for user, url in (("sup_s", f"/cases/{w.cases['south_sup']}"), ("zf", "/cases"), ("sup_n", "/me")):
        path = re.sub(r"/\d+", "/{case_id}", url)
        r = call(w, user, "GET", base + url)
        assert r.status_code == 200
        _check_body(doc, doc["paths"][path]["get"], r)
    r = call(
        w,
        "sup_s",
        "POST",
        f"{base}/cases/{w.cases['south_sup']}/actions/self_handle",
        json={"note": "已处理", "data": {"photos": ["a.jpg", "b.jpg"]}},
    )
    assert r.status_code == 200
    _check_body(doc, doc["paths"]["/cases/{case_id}/actions/{action}"]["post"], r)
