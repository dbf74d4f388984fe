"""Open311 GeoReport v2: discovery, services, POST then GET (JSON and XML), filters, paging, errors, keys,
public fields only, escaping; the GET side also through the real `georeport` client on a live server."""

import json
import threading
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import requests
import xmltodict
from georeport import GeoReport
from sqlalchemy import text
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from gridmgr.cases import dispatch
from gridmgr.cases.intake import NewCase, report
from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.cases.workflow import actor_for, apply
from gridmgr.codes import CASE_SOURCES
from gridmgr.people import accounts
from gridmgr.web import create_app

from support import SMALL_ORIGIN, SMALL_STEP, insert_small_grid

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 10, 13, 9, 0, tzinfo=TZ)  # a Tuesday, working hours: the app's "now"
CAL = WorkCalendar.load()
X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP
LAT, LONG = Y0 + 0.5 * D, X0 + 0.5 * D
SCRIPT = "<script>alert('x')</script> 路边 & 垃圾"
# exactly what the public sees of a request
PUBLIC_FIELDS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "lat",
    "long",
    "media_url",
}


def build(c) -> dict:
    """A 2 × 2 grid with units and rules, a supervisor over it, a shift leader, a dispatcher and an API key."""
    cells = insert_small_grid(c)
    units = {
        code: c.execute(
            text("INSERT INTO units (code, name, kind) VALUES (:c, :n, :k) RETURNING id"),
            {"c": code, "n": name, "k": kind},
        ).scalar()
        for code, name, kind in (
            ("JD01", "东华门街道办事处", "street_office"),
            ("ZF01", "第一执法中队", "enforcement_squad"),
            ("HW01", "东城区环卫所", "sanitation"),
        )
    }
    for cell in cells.values():
        for duty, unit in (("territorial", "JD01"), ("enforcement", "ZF01"), ("sanitation", "HW01")):
            c.execute(text("INSERT INTO cell_units VALUES (:c, :d, :u)"), {"c": cell, "d": duty, "u": units[unit]})
    users = {}
    for i, (name, role) in enumerate((("sup", "supervisor"), ("shift", "shift_leader"), ("disp", "dispatcher"))):
        pid = c.execute(
            text("INSERT INTO people (code, name, role) VALUES (:c, :n, 'staff') RETURNING id"),
            {"c": f"P{i}", "n": f"张{name}"},
        ).scalar()
        users[name] = c.execute(
            text("INSERT INTO users (username, person_id, role, password_hash) VALUES (:n, :p, :r, :h) RETURNING id"),
            {"n": name, "p": pid, "r": role, "h": generate_password_hash("x" * 8, "pbkdf2:sha256:1")},
        ).scalar()
        if role == "supervisor":
            g = c.execute(
                text("INSERT INTO duty_grids (code, name, supervisor_id) VALUES ('DG1', '责任网格1', :p) RETURNING id"),
                {"p": pid},
            ).scalar()
            c.execute(text("INSERT INTO duty_grid_cells SELECT :g, id FROM grid_cells"), {"g": g})
    dispatch.load(c)
    return {"users": users, "key": accounts.add_api_key(c, "wechat-app")}


@pytest.fixture
def w(fresh_db):
    url, eng = fresh_db
    with eng.begin() as c:
        built = build(c)
    # this bureau publishes its supervisors' reports too (the default lists only what the public reported)
    app = create_app(
        {
            "GRIDMGR_DATABASE_URL": url,
            "GRIDMGR_SECRET_KEY": "test-secret",
            "GRIDMGR_PUBLIC_SOURCES": "public,hotline_12319,hotline_12345,supervisor",
        }
    )
    app.config["GRIDMGR_NOW"] = NOW
    return SimpleNamespace(app=app, client=app.test_client(), engine=eng, url=url, **built)


def core_case(w, source="supervisor", category="0102", at=NOW, description="垃圾", actions=()):
    """A case made through the core (as the pages would), taken through some actions; returns its number."""
    with w.engine.begin() as c:

        def who(name):
            return actor_for(c, w.users[name])

        cid = report(
            c, who("sup"), NewCase(category, LONG, LAT, source, description, "东华门大街1号"), now=at, calendar=CAL
        )
        for name, action, kw in actions:
            apply(c, who(name), cid, action, now=at, calendar=CAL, **kw)
        return c.execute(text("SELECT case_no FROM cases WHERE id = :i"), {"i": cid}).scalar()


def post(w, fmt="json", **fields):
    data = {"api_key": w.key, "service_code": "0102", "lat": str(LAT), "long": str(LONG), **fields}
    data = {k: v for k, v in data.items() if v is not None}
    return w.client.post(f"/open311/v2/requests.{fmt}", data=data)


def errors_of(r):
    """The spec's error list, from JSON or XML."""
    if r.mimetype == "text/xml":
        root = ET.fromstring(r.data)
        assert root.tag == "errors"
        return [{"code": int(e.findtext("code")), "description": e.findtext("description")} for e in root]
    return r.json


def count_cases(w):
    with w.engine.connect() as c:
        return c.execute(text("SELECT count(*) FROM cases")).scalar()


# ---------------------------------------------------------------- discovery and services


def test_discovery_services_and_definitions(w):
    d = w.client.get("/open311/v2/discovery.json").json
    endpoint = d["endpoints"][0]
    assert (
        endpoint["url"].endswith("/open311/v2") and endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    )
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    x = ET.fromstring(w.client.get("/open311/v2/discovery.xml").data)
    assert [f.text for f in x.find("endpoints/endpoint/formats")] == ["text/xml", "application/json"]
    r = w.client.get("/open311/v2/services.json")
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    garbage = next(s for s in r.json if s["service_code"] == "0102")
    assert garbage == {
        "service_code": "0102",
        "service_name": "暴露垃圾",
        "description": "公共区域有暴露垃圾",
        "metadata": False,
        "type": "realtime",
        "keywords": "exposed garbage, 市容环境, 事件",
        "group": "市容环境",
    }
    r = w.client.get("/open311/v2/services.xml")
    assert r.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert r.data.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    services = ET.fromstring(r.data)
    assert services.tag == "services" and len(services) == len(w.client.get("/open311/v2/services.json").json) > 40
    assert services.find("service[service_code='0102']/metadata").text == "false"
    assert w.client.get("/open311/v2/services/0102.json").json == {"service_code": "0102", "attributes": []}
    x = ET.fromstring(w.client.get("/open311/v2/services/0102.xml").data)
    assert x.tag == "service_definition" and x.findtext("service_code") == "0102"
    for fmt in ("json", "xml"):
        r = w.client.get(f"/open311/v2/services/9999.{fmt}")
        assert r.status_code == 404 and errors_of(r)[0]["code"] == 404 and "9999" in errors_of(r)[0]["description"]


def test_unknown_resources_are_404_in_the_spec_format(w):
    for path in ("/open311/v2/nothing.json", "/open311/v2/", "/open311/v2/requests.csv", "/open311/v2/tokens/1.xml"):
        r = w.client.get(path)
        assert r.status_code == 404, path
        assert errors_of(r)[0]["code"] == 404
    assert ET.fromstring(w.client.get("/open311/v2/tokens/1.xml").data).tag == "errors"


def test_database_down_is_a_503_in_the_spec_format():
    app = create_app({"GRIDMGR_DATABASE_URL": "postgresql+psycopg2://nobody@/none?host=/nonexistent&port=1"})
    for fmt in ("json", "xml"):
        r = app.test_client().get(f"/open311/v2/services.{fmt}")
        assert r.status_code == 503 and errors_of(r)[0]["code"] == 503
        assert b"psycopg2" not in r.data and b"nonexistent" not in r.data


# ---------------------------------------------------------------- POST then GET


def test_post_then_get_the_same_request_json_and_xml(w):
    r = post(
        w,
        description="人行道上有垃圾",
        address_string="东华门大街1号",
        media_url="https://img.example.cn/1.jpg",
        email="li@example.cn",
        phone="13800000000",
        first_name="李",
        last_name="四",
        device_id="dev-1",
        account_id="acc-9",
        jurisdiction_id="example.gov.cn",
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    [created] = r.json
    rid = created["service_request_id"]
    assert created["account_id"] is None and "核实" in created["service_notice"]
    with w.engine.connect() as c:
        case = (
            c.execute(
                text(
                    "SELECT id, status, source, description, address, photos, reporter_user_id "
                    "FROM cases WHERE case_no = :n"
                ),
                {"n": rid},
            )
            .mappings()
            .one()
        )
        event = c.execute(
            text("SELECT action, to_state, actor, role FROM case_events WHERE case_id = :c"), {"c": case["id"]}
        ).one()
    assert (case["status"], case["source"], case["description"], case["address"], case["photos"]) == (
        "reported",
        "public",
        "人行道上有垃圾",
        "东华门大街1号",
        ["https://img.example.cn/1.jpg"],
    )
    assert case["reporter_user_id"] is None
    assert tuple(event) == ("report", "reported", "Open311 wechat-app", "public")

    got = w.client.get(f"/open311/v2/requests/{rid}.json")
    assert got.status_code == 200
    [req] = got.json
    assert set(req) == PUBLIC_FIELDS
    assert req == {
        "service_request_id": rid,
        "status": "open",
        "status_notes": "上报 (reported)",
        "service_name": "暴露垃圾",
        "service_code": "0102",
        "description": "人行道上有垃圾",
        "agency_responsible": None,
        "service_notice": None,
        "requested_datetime": "2026-10-13T09:00:00+08:00",
        "updated_datetime": "2026-10-13T09:00:00+08:00",
        "expected_datetime": "2026-10-13T11:00:00+08:00",  # verification within 2 working hours
        "address": "东华门大街1号",
        "lat": pytest.approx(LAT),
        "long": pytest.approx(LONG),
        "media_url": "https://img.example.cn/1.jpg",
    }
    body = got.get_data(as_text=True)
    for personal in ("li@example.cn", "13800000000", "李", "dev-1", "acc-9", "wechat-app", "张sup"):
        assert personal not in body

    r = post(w, "xml", description="第二个")
    assert r.status_code == 201 and r.headers["Content-Type"] == "text/xml; charset=utf-8"
    root = ET.fromstring(r.data)
    rid2 = root.findtext("request/service_request_id")
    assert root.tag == "service_requests" and rid2 and root.find("request/account_id").text is None
    x = ET.fromstring(w.client.get(f"/open311/v2/requests/{rid2}.xml").data)
    assert {e.tag for e in x.find("request")} == PUBLIC_FIELDS
    assert (
        x.findtext("request/service_request_id"),
        x.findtext("request/status"),
        x.findtext("request/description"),
    ) == (rid2, "open", "第二个")
    assert w.client.get("/open311/v2/requests/20269999999.json").status_code == 404


def test_post_errors_use_the_spec_format_and_create_nothing(w, cli):
    before = count_cases(w)
    key = cli("apikey", "add", "old-app").output.strip()
    assert post(w, api_key=key).status_code == 201
    cli("apikey", "revoke", "old-app")
    before += 1
    cases = [
        ({"api_key": None}, 403, "api_key"),
        ({"api_key": "wrong"}, 403, "api_key"),
        ({"api_key": key}, 403, "api_key"),
        ({"api_key": ""}, 403, "api_key"),
        ({"service_code": None}, 400, "service_code"),
        ({"service_code": "9999"}, 404, "9999"),
        ({"lat": None}, 400, "lat"),
        ({"long": "east"}, 400, "long"),
        ({"lat": "91"}, 400, "lat"),
        ({"lat": "0", "long": "0"}, 400, "extent"),
        ({"media_url": "javascript:alert(1)"}, 400, "media_url"),
        ({"address_string": "路" * 301}, 400, "address_string"),
        ({"description": "长" * 2001}, 400, "description"),
    ]
    in_url = w.client.post(
        f"/open311/v2/requests.json?api_key={w.key}", data={"service_code": "0102", "lat": str(LAT), "long": str(LONG)}
    )
    assert in_url.status_code == 403  # the key goes in the body: a key in a URL ends up in access logs
    for fields, status, word in cases:
        for fmt in ("json", "xml"):
            r = post(w, fmt, **fields)
            assert r.status_code == status, (fields, r.get_data(as_text=True))
            [error] = errors_of(r)
            assert error["code"] == status and word in error["description"], (fields, error)
    assert count_cases(w) == before


# ---------------------------------------------------------------- GET requests: mapping, filters, paging


def test_status_mapping_agency_and_filters(w):
    open_no = core_case(w, actions=[("shift", "register", {}), ("disp", "dispatch", {})])
    closed_no = core_case(
        w, category="0101", actions=[("sup", "self_handle", {"note": "已处理", "data": {"photos": ["a.jpg", "b.jpg"]}})]
    )
    rejected_no = core_case(
        w,
        source="hotline_12345",
        category="0101",
        description="市民王先生 139xxxx 反映",
        actions=[("sup", "verify", {}), ("shift", "reject", {"note": "不属于城管职责"})],
    )

    def get(**params):
        r = w.client.get("/open311/v2/requests.json", query_string=params)
        assert r.status_code == 200, r.get_data(as_text=True)
        return {i["service_request_id"]: i for i in r.json}

    everything = get()
    assert set(everything) == {open_no, closed_no, rejected_no}
    dispatched = everything[open_no]
    assert (dispatched["status"], dispatched["status_notes"], dispatched["agency_responsible"]) == (
        "open",
        "派遣 (dispatched)",
        "东城区环卫所",
    )
    with w.engine.connect() as c:
        deadline = c.execute(text("SELECT deadline FROM cases WHERE case_no = :n"), {"n": open_no}).scalar()
    assert dispatched["expected_datetime"] == deadline.astimezone(TZ).isoformat()
    assert (everything[closed_no]["status"], everything[closed_no]["status_notes"]) == ("closed", "结案 (closed)")
    assert everything[closed_no]["expected_datetime"] is None and everything[closed_no]["media_url"] is None
    rejected = everything[rejected_no]
    assert (rejected["status"], rejected["status_notes"]) == ("closed", "不予立案 (rejected)")
    assert rejected["description"] is None  # a hotline transcript may name the caller: never public
    assert set(get(status="open")) == {open_no}
    assert set(get(status="closed")) == {closed_no, rejected_no}
    assert set(get(status="open,closed")) == set(everything)
    assert set(get(service_code="0101")) == {closed_no, rejected_no}
    assert set(get(service_code="0101,0102", status="open")) == {open_no}
    r = w.client.get("/open311/v2/requests.json?service_code=0101&service_code=0102&status=closed")
    assert {i["service_request_id"] for i in r.json} == {closed_no, rejected_no}  # repeated = comma-separated
    # service_request_id overrides every other argument
    assert set(get(service_request_id=f"{closed_no},{open_no}", status="open", service_code="0199")) == {
        closed_no,
        open_no,
    }
    for params in ({"status": "pending"}, {"start_date": "yesterday"}, {"page_size": "0"}, {"page": "x"}):
        r = w.client.get("/open311/v2/requests.xml", query_string=params)
        assert r.status_code == 400 and errors_of(r)[0]["code"] == 400, params


def test_date_window_and_paging(w):
    old = core_case(w, at=NOW - timedelta(days=100))
    recent = [core_case(w, at=NOW - timedelta(hours=h)) for h in range(1, 6)]

    def ids(**params):
        r = w.client.get("/open311/v2/requests.json", query_string=params)
        assert r.status_code == 200, r.get_data(as_text=True)
        return [i["service_request_id"] for i in r.json], r

    default, r = ids()
    assert default == recent and r.headers["X-Total-Count"] == "5"  # the last 90 days, newest first
    window = {"start_date": (NOW - timedelta(days=101)).isoformat(), "end_date": (NOW - timedelta(days=99)).isoformat()}
    assert ids(**window)[0] == [old]
    assert ids(start_date="2026-07-01T00:00:00Z")[0] == [old]  # start only: the 90 days after it
    assert ids(end_date=(NOW - timedelta(hours=3)).isoformat())[0] == recent[2:]  # end_date is inclusive
    r = w.client.get(
        "/open311/v2/requests.json",
        query_string={"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-10-01T00:00:00Z"},
    )
    assert r.status_code == 400 and "90 days" in r.json[0]["description"]
    pages = [ids(page=p, page_size=2) for p in (1, 2, 3)]
    assert [p[0] for p in pages] == [recent[:2], recent[2:4], recent[4:]]
    assert all(p[1].headers["X-Total-Count"] == "5" for p in pages)
    assert ids(page=4, page_size=2)[0] == []


def test_description_with_script_is_returned_as_data(w):
    rid = post(w, description=SCRIPT).json[0]["service_request_id"]
    r = w.client.get(f"/open311/v2/requests/{rid}.json")
    raw = r.get_data(as_text=True)
    assert "<script" not in raw and "\\u003cscript\\u003e" in raw and r.headers["X-Content-Type-Options"] == "nosniff"
    assert json.loads(raw)[0]["description"] == SCRIPT
    r = w.client.get(f"/open311/v2/requests/{rid}.xml")
    assert b"<script" not in r.data and b"&lt;script&gt;" in r.data
    assert ET.fromstring(r.data).findtext("request/description") == SCRIPT


# ---------------------------------------------------------------- the real client on a live server


@pytest.fixture
def live(w, monkeypatch):
    """The app behind a real HTTP server on 127.0.0.1 (a free port), for the georeport client."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    server = make_server("127.0.0.1", 0, w.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/open311/v2"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_georeport_client_reads_what_was_posted_json_and_xml(w, live):
    first = post(w, description=SCRIPT, address_string="东华门大街1号", media_url="https://img.example.cn/1.jpg").json[
        0
    ]["service_request_id"]
    second = post(w, service_code="0101", description="违建").json[0]["service_request_id"]
    expected = {i["service_request_id"]: i for i in w.client.get("/open311/v2/requests.json").json}

    as_json = GeoReport(live)
    services = as_json.get_service_list()
    assert {"service_code": "0102", "service_name": "暴露垃圾"}.items() <= next(
        s for s in services if s["service_code"] == "0102"
    ).items()
    assert as_json.get_service_definition("0102") == {"service_code": "0102", "attributes": []}
    assert {r["service_request_id"]: r for r in as_json.get_service_requests()} == expected
    assert [r["service_request_id"] for r in as_json.get_service_requests(service_code="0101", status="open")] == [
        second
    ]
    assert as_json.get_service_request(first) == expected[first]
    assert as_json.get_service_request(first)["description"] == SCRIPT
    with pytest.raises(requests.HTTPError) as missing:
        as_json.get_service_request("20269999999")
    assert missing.value.response.status_code == 404 and missing.value.response.json()[0]["code"] == 404

    as_xml = GeoReport(live, output_format="xml")
    xml_services = as_xml.get_service_list()
    assert len(xml_services) == len(services)
    assert next(s for s in xml_services if s["service_code"] == "0102")["metadata"] == "false"
    assert as_xml.get_service_definition("0102")["service_code"] == "0102"
    one = as_xml.get_service_request(first)
    assert one["description"] == SCRIPT and one["media_url"] == "https://img.example.cn/1.jpg"
    assert {
        k: one[k]
        for k in (
            "service_request_id",
            "status",
            "status_notes",
            "service_code",
            "address",
            "requested_datetime",
            "expected_datetime",
        )
    } == {
        k: expected[first][k]
        for k in (
            "service_request_id",
            "status",
            "status_notes",
            "service_code",
            "address",
            "requested_datetime",
            "expected_datetime",
        )
    }
    assert float(one["lat"]) == pytest.approx(expected[first]["lat"])
    many = as_xml.get_service_requests(service_code="0101,0102")
    assert sorted(r["service_request_id"] for r in many) == sorted(expected)
    only = as_xml.get_service_requests(service_request_id=second)  # one element: xmltodict gives a dict
    assert only["service_request_id"] == second and only["status"] == "open"
    # the paging extension through the same server (georeport does not know it: plain requests)
    page = requests.get(f"{live}/requests.xml", params={"page": 2, "page_size": 1}, timeout=10)
    parsed = xmltodict.parse(page.content)["service_requests"]["request"]
    assert page.headers["X-Total-Count"] == "2" and parsed["service_request_id"] == first


def test_by_default_the_public_sees_only_what_the_public_reported(w):
    """Supervisors', leaders', video and rule cases stay internal; a rule's description (巡查人 …) never shows."""
    mine = {source: core_case(w, source=source, description=f"巡查人 张三 {source}") for source in CASE_SOURCES}
    app = create_app({"GRIDMGR_DATABASE_URL": w.url, "GRIDMGR_SECRET_KEY": "k"})
    app.config["GRIDMGR_NOW"] = NOW
    listed = {i["service_request_id"]: i for i in app.test_client().get("/open311/v2/requests.json").json}
    assert set(listed) == {mine["public"], mine["hotline_12319"], mine["hotline_12345"]}
    for source in ("supervisor", "rule", "leader", "video"):  # not by its id either
        assert app.test_client().get(f"/open311/v2/requests/{mine[source]}.json").status_code == 404
    # a citizen's own words are public; a hotline transcript may name the caller
    assert [listed[mine[s]]["description"] for s in ("hotline_12319", "hotline_12345")] == [None, None]
    wide = create_app({"GRIDMGR_DATABASE_URL": w.url, "GRIDMGR_SECRET_KEY": "k", "GRIDMGR_PUBLIC_SOURCES": "rule"})
    wide.config["GRIDMGR_NOW"] = NOW
    (rule,) = wide.test_client().get("/open311/v2/requests.json").json
    assert rule["service_request_id"] == mine["rule"] and rule["description"] is None


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH"])
def test_other_methods_are_a_405_in_the_spec_format_with_allow(w, method):
    for path in ("/open311/v2/requests.json", "/open311/v2/requests.xml", "/open311/v2/services.json"):
        r = w.client.open(path, method=method)
        assert r.status_code == 405, (path, r.status_code, r.get_data(as_text=True))
        assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"GET"}
        assert errors_of(r)[0]["code"] == 405  # <errors><error><code>, not a CSRF refusal in JSON
