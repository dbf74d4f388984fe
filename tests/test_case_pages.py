"""The case pages through HTTP: report, queues per role, the full cycle, scope, escaping, CSRF and uploads.

Real PostGIS (a fresh database per test, since the app commits), real login through /login, CSRF on:
every token is read from the page the form is on, as a browser would.
"""

import io
import re
import struct
import zlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from werkzeug.security import generate_password_hash

from gridmgr.cases import dispatch
from gridmgr.geo import crs
from gridmgr.web import create_app

from support import SMALL_ORIGIN, SMALL_STEP, csrf, insert_small_grid, login_client

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 10, 13, 9, 0, tzinfo=TZ)  # a Tuesday, in working hours
PASSWORD = "secret-pass"
HASH = generate_password_hash(PASSWORD)
X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP
SW = (X0 + 0.5 * D, Y0 + 0.5 * D)  # in cell 110101001001003, the supervisor's
XSS_DESCRIPTION = "垃圾<script>alert(1)</script> 和 <img src=x onerror=alert(1)>"


def _png() -> bytes:
    """A real 1×1 PNG."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


PNG = _png()
# username → (name, role, unit code)
PEOPLE = {
    "sup": ("张监督", "supervisor", None),
    "sup2": ("王监督", "supervisor", None),
    "rcv": ("李受理", "receiver", None),
    "dsp": ("赵派遣", "dispatcher", None),
    "lead": ("钱值班", "shift_leader", None),
    "hw": ("孙环卫", "unit_handler", "HW01"),
    "zf": ("周执法", "unit_handler", "ZF01"),
    "adm": ("吴管理", "sysadmin", None),
}


@pytest.fixture
def site(fresh_db, tmp_path):
    """A small city (2 × 2 cells), its units, rules, people and one account each; the app on a fixed clock."""
    url, eng = fresh_db
    with eng.begin() as c:
        cells = insert_small_grid(c)
        units = {}
        for code, name, kind in (
            ("JD01", "东华门街道办事处", "street_office"),
            ("ZF01", "第一执法中队", "enforcement_squad"),
            ("HW01", "东城区环卫所", "sanitation"),
        ):
            units[code] = c.execute(
                text("INSERT INTO units (code, name, kind) VALUES (:c, :n, :k) RETURNING id"),
                {"c": code, "n": name, "k": kind},
            ).scalar()
        for cell in cells.values():
            for duty, unit in (("territorial", "JD01"), ("enforcement", "ZF01"), ("sanitation", "HW01")):
                c.execute(text("INSERT INTO cell_units VALUES (:c, :d, :u)"), {"c": cell, "d": duty, "u": units[unit]})
        people = {}
        for i, (username, (name, role, unit)) in enumerate(PEOPLE.items()):
            people[username] = c.execute(
                text("INSERT INTO people (code, name, role, unit_id) VALUES (:c, :n, :r, :u) RETURNING id"),
                {"c": f"P{i}", "n": name, "r": "supervisor" if role == "supervisor" else "staff", "u": units.get(unit)},
            ).scalar()
            c.execute(
                text("INSERT INTO users (username, person_id, role, password_hash) VALUES (:u, :p, :r, :h)"),
                {"u": username, "p": people[username], "r": role, "h": HASH},
            )
        # the west column of cells is sup's duty grid, the east column sup2's
        for code, sup, seqs in (("DG1", "sup", ("001", "003")), ("DG2", "sup2", ("002", "004"))):
            g = c.execute(
                text("INSERT INTO duty_grids (code, name, supervisor_id) VALUES (:c, :c, :p) RETURNING id"),
                {"c": code, "p": people[sup]},
            ).scalar()
            for s in seqs:
                c.execute(text("INSERT INTO duty_grid_cells VALUES (:g, :c)"), {"g": g, "c": cells[f"110101001001{s}"]})
        dispatch.load(c)
    app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_VAR": str(tmp_path / "var")})
    clock = {"now": NOW}
    app.config["GRIDMGR_NOW"] = lambda: clock["now"]
    return {
        "app": app,
        "eng": eng,
        "cells": cells,
        "units": units,
        "clock": clock,
        "uploads": tmp_path / "var" / "uploads",
    }


def login(site, username):
    return login_client(site["app"], username, PASSWORD)


def get(client, path, status=200):
    r = client.get(path)
    assert r.status_code == status, (path, r.status_code, r.get_data(as_text=True)[:500])
    return r.get_data(as_text=True)


def act(client, case_no, action, from_page=None, photos=(), **form):
    """Take an action the way the page does: the token from the page the form is on, then POST it."""
    html = get(client, from_page or f"/cases/{case_no}")
    data = {"csrf_token": csrf(html), **form}
    if photos:
        data["photos"] = [(io.BytesIO(content), name) for name, content in photos]
    return client.post(f"/cases/{case_no}/actions/{action}", data=data, content_type="multipart/form-data")


def flashes(client, path):
    return [m.strip() for m in re.findall(r'<p class="flash(?: error)?">(.*?)</p>', get(client, path), re.S)]


def report(client, status=302, photos=(), **fields):
    html = get(client, "/cases/new")
    data = {
        "csrf_token": csrf(html),
        "mode": "point",
        "lon": str(SW[0]),
        "lat": str(SW[1]),
        "crs": "wgs84",
        "category": "0102",
        "urgency": "normal",
        "description": "人行道上有暴露垃圾",
        "address": "东华门大街1号",
        **fields,
    }
    data["photos"] = [(io.BytesIO(content), name) for name, content in photos]
    r = client.post("/cases/new", data=data, content_type="multipart/form-data")
    assert r.status_code == status, r.get_data(as_text=True)[:2000]
    return r


def case_row(site, **where):
    cond = " AND ".join(f"{k} = :{k}" for k in where) or "true"
    with site["eng"].connect() as c:
        return (
            c.execute(
                text(
                    f"SELECT f.*, g.code AS cell_code FROM cases f "
                    f"LEFT JOIN grid_cells g ON g.id = f.cell_id "
                    f"WHERE {cond} ORDER BY f.id DESC LIMIT 1"
                ),
                where,
            )
            .mappings()
            .first()
        )


def stored_files(site):
    return sorted(p for p in site["uploads"].rglob("*") if p.is_file()) if site["uploads"].exists() else []


def test_supervisor_reports_a_case_with_a_photo(site):
    sup = login(site, "sup")
    form = get(sup, "/cases/new")
    assert 'label="事件 01 市容环境"' in form and "0102 暴露垃圾" in form  # categories grouped by major class
    assert 'name="lon"' in form and 'name="cell"' in form and "GCJ02" in form  # typed coordinates work without a map
    assert 'name="source"' not in form  # a supervisor's own report is source supervisor

    # before saving: the JSON preview (fetch + CSRF header) names the cell and the unit the rules choose
    r = sup.post(
        "/cases/preview",
        json={"mode": "point", "lon": SW[0], "lat": SW[1], "crs": "wgs84", "category": "0102"},
        headers={"X-CSRFToken": csrf(form), "Accept": "application/json"},
    )
    assert r.status_code == 200 and r.json["ok"], r.json
    assert r.json["cell"]["code"] == "110101001001003" and r.json["cell"]["url"] == "/cells/110101001001003"
    assert r.json["unit"]["name"] == "东城区环卫所" and "市容环境类" in r.json["rule"]
    assert r.json["first_step"]["step"] == "register"  # supervisors' reports skip verification
    # the same preview for browsers without scripts: the server answers the Preview button, saving nothing
    html = report(sup, status=200, preview="1").get_data(as_text=True)
    assert "110101001001003" in html and "东城区环卫所" in html and case_row(site) is None

    r = report(sup, photos=[("现场.png", PNG)], source="public")  # a supervisor cannot claim another source
    row = case_row(site)
    assert r.headers["Location"].endswith(f"/cases/{row['case_no']}")
    assert row["source"] == "supervisor" and row["status"] == "reported" and row["cell_code"] == "110101001001003"
    assert len(row["photos"]) == 1 and re.fullmatch(r"[0-9a-f]{32}\.png", row["photos"][0])
    [stored] = stored_files(site)
    assert stored.name == row["photos"][0] and stored.read_bytes() == PNG  # under var/uploads, by a random name

    html = get(sup, f"/cases/{row['case_no']}")
    assert "已上报案件" in html and "人行道上有暴露垃圾" in html and "监督员上报" in html
    assert 'href="/cells/110101001001003"' in html and "张监督" in html
    photo_url = f"/cases/{row['case_no']}/photos/{row['photos'][0]}"
    assert photo_url in html
    r = sup.get(photo_url)
    assert r.status_code == 200 and r.mimetype == "image/png" and r.data == PNG
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    # a receiver reporting a hotline case chooses its source
    rcv = login(site, "rcv")
    assert 'name="source"' in get(rcv, "/cases/new")
    report(rcv, source="hotline_12345")
    assert case_row(site)["source"] == "hotline_12345"


def test_close_on_check_closes_the_case_on_a_passed_check(site):
    site["app"] = create_app(
        {
            "GRIDMGR_DATABASE_URL": site["app"].config["GRIDMGR"].database_url,
            "GRIDMGR_VAR": site["app"].config["GRIDMGR"].get("GRIDMGR_VAR"),
            "GRIDMGR_CLOSE_ON_CHECK": "on",
        }
    )
    site["app"].config["GRIDMGR_NOW"] = lambda: site["clock"]["now"]
    sup, lead, dsp, hw = (login(site, u) for u in ("sup", "lead", "dsp", "hw"))
    report(sup)
    no = case_row(site)["case_no"]
    for client, action, form in ((lead, "register", {}), (dsp, "dispatch", {}), (hw, "handle", {"note": "已清理"})):
        assert act(client, no, action, **form).status_code == 302
        assert case_row(site)["status"] != "reported", action
    assert case_row(site)["status"] == "handled"
    act(sup, no, "check_pass", from_page="/cases?tab=check", next="/cases?tab=check")
    assert case_row(site)["status"] == "closed"
    assert flashes(sup, "/cases?tab=check") == [f"案件 {no}：核查通过，处置完成 → 结案。"]
    html = get(sup, f"/cases/{no}")
    assert html.count("<td>核查通过") == 1 and "<td>结案" not in html  # one event, no separate closing
    assert get(lead, "/cases?tab=close").count(f">{no}<") == 0  # nothing left for the shift leader to close


def test_full_cycle_through_the_pages(site):
    clock = site["clock"]
    users = {u: login(site, u) for u in ("sup", "rcv", "dsp", "lead", "hw", "adm")}

    def later():
        clock["now"] += timedelta(minutes=10)

    # a receiver enters a public report by the cell's code (its representative point)
    report(users["rcv"], mode="cell", cell="110101001001003", lon="", lat="", source="public")
    no = case_row(site)["case_no"]
    assert case_row(site)["cell_code"] == "110101001001003"
    steps = [
        ("sup", "verify", "/cases?tab=verify", {}),
        ("rcv", "propose_register", "/cases?tab=register", {}),
        ("lead", "register", "/cases?tab=register", {}),
        ("dsp", "dispatch", "/cases?tab=dispatch", {}),
        ("hw", "handle", "/cases?tab=tasks", {"note": "已清理", "photos": [("after.png", PNG)]}),
        ("sup", "check_fail", "/cases?tab=check", {"note": "仍有垃圾"}),
        ("hw", "handle", "/cases?tab=tasks", {"note": "彻底清理"}),
        ("sup", "check_pass", "/cases?tab=check", {}),
        ("lead", "close", "/cases?tab=close", {}),
    ]
    for who, action, queue, form in steps:
        later()
        listing = get(users[who], queue)
        assert f">{no}<" in listing, f"{who} does not see {no} in {queue}"
        if action == "dispatch":
            assert "派遣至 东城区环卫所" in listing  # one click to the unit the rules choose
        if action == "check_fail":  # the check fails without a note: refused with the workflow's message
            r = act(users[who], no, action, from_page=queue, next=queue)
            assert r.status_code == 302 and "未完成" in flashes(users[who], queue)[0]
            assert case_row(site)["status"] == "handled"
        r = act(users[who], no, action, from_page=queue, next=queue, **form)
        assert r.status_code == 302 and r.headers["Location"].endswith(queue)
        assert "未完成" not in "".join(flashes(users[who], queue)), action
    row = case_row(site)
    assert (row["status"], row["rework_count"]) == ("closed", 1)
    with site["eng"].connect() as c:
        events = c.execute(
            text("SELECT action, actor, at FROM case_events WHERE case_id = :c ORDER BY id"), {"c": row["id"]}
        ).all()
    assert [e.action for e in events] == [
        "report",
        "verify",
        "propose_register",
        "register",
        "dispatch",
        "handle",
        "check_fail",
        "handle",
        "check_pass",
        "close",
    ]
    html = get(users["adm"], f"/cases/{no}")
    history = html.split("办理记录", 1)[1]
    assert history.count("<tr>") == len(events) + 1  # the header row and one row per event
    for e in events:
        assert e.actor in history
        assert e.at.astimezone(TZ).strftime("%Y-%m-%d %H:%M") in history
    for label in (
        "核实",
        "建议立案",
        "立案",
        "派遣",
        "处置反馈",
        "核查不通过",
        "核查通过",
        "结案",
        "仍有垃圾",
        "彻底清理",
    ):
        assert label in history
    assert "→ 东城区环卫所" in history and history.count("/photos/") == 1  # the handling photo
    assert "当前没有您可办理的操作" in html  # a closed case offers no action


def test_user_text_is_escaped(site):
    sup = login(site, "sup")
    report(sup, description=XSS_DESCRIPTION, address='"><svg onload=alert(2)>')
    no = case_row(site)["case_no"]
    act(login(site, "lead"), no, "register", note="<b>立案</b><script>alert(3)</script>")
    for path in (f"/cases/{no}", "/cases?tab=mine"):
        html = get(sup, path)
        assert "<script>alert" not in html and "<img src=x" not in html and "<svg" not in html and "<b>立案" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
    html = get(sup, f"/cases/{no}")
    assert "&#34;&gt;&lt;svg onload=alert(2)&gt;" in html and "&lt;b&gt;立案&lt;/b&gt;&lt;script&gt;alert(3)" in html


def test_other_cell_supervisor_and_other_unit_see_nothing(site):
    sup, sup2, zf = login(site, "sup"), login(site, "sup2"), login(site, "zf")
    report(login(site, "rcv"), source="public", photos=[("p.png", PNG)])
    row = case_row(site)
    no, photo_url = row["case_no"], f"/cases/{row['case_no']}/photos/{row['photos'][0]}"
    get(sup2, f"/cases/{no}", status=404)
    assert sup2.get(photo_url).status_code == 404
    token = csrf(get(sup2, "/cases"))
    assert sup2.post(f"/cases/{no}/actions/verify", data={"csrf_token": token}).status_code == 404
    assert f">{no}<" not in get(sup2, "/cases?tab=verify") and f">{no}<" in get(sup, "/cases?tab=verify")
    assert case_row(site)["status"] == "reported"
    act(sup, no, "verify")
    act(login(site, "lead"), no, "register")
    act(login(site, "dsp"), no, "dispatch")
    assert case_row(site)["unit_id"] == site["units"]["HW01"]
    get(zf, f"/cases/{no}", status=404)  # another unit's handler
    assert zf.get(photo_url).status_code == 404
    token = csrf(get(zf, "/cases"))
    r = zf.post(f"/cases/{no}/actions/handle", data={"csrf_token": token, "note": "x"})
    assert r.status_code == 404 and case_row(site)["status"] == "dispatched"
    assert get(login(site, "hw"), f"/cases/{no}")  # its own unit's handler sees it
    # a role that sees the case but may not take the action gets the workflow's refusal, not a traceback
    rcv = login(site, "rcv")
    r = act(rcv, no, "close")
    assert r.status_code == 302
    [message] = flashes(rcv, f"/cases/{no}")
    assert "未完成" in message and "Traceback" not in message and case_row(site)["status"] == "dispatched"
    assert get(login(site, "dsp"), "/cases/new", status=403)  # reporting is for supervisors, receivers, admins


def test_posts_without_csrf_token_are_refused(site):
    sup = login(site, "sup")
    report(sup)
    no = case_row(site)["case_no"]
    form = {"mode": "point", "lon": str(SW[0]), "lat": str(SW[1]), "crs": "wgs84", "category": "0102"}
    assert sup.post("/cases/new", data=form).status_code == 400
    assert sup.post(f"/cases/{no}/actions/self_handle", data={"note": "x"}).status_code == 400
    r = sup.post("/cases/preview", json=form, headers={"Accept": "application/json"})
    assert r.status_code == 400 and r.json["error"]["status"] == 400
    r = sup.post("/cases/preview", json=form, headers={"X-CSRFToken": "forged", "Accept": "application/json"})
    assert r.status_code == 400
    with site["eng"].connect() as c:
        assert c.execute(text("SELECT count(*) FROM cases")).scalar() == 1
        assert c.execute(text("SELECT count(*) FROM case_events")).scalar() == 1


def test_upload_that_is_not_an_image_is_refused(site):
    sup = login(site, "sup")
    r = report(sup, status=400, photos=[("invoice.jpg", b"%PDF-1.4 not an image at all")])
    html = r.get_data(as_text=True)
    assert "invoice.jpg" in html and "不是 JPEG、PNG 或 WebP 图片" in html and "is not a JPEG" not in html
    assert "人行道上有暴露垃圾" in html  # the form keeps what was typed
    assert case_row(site) is None and stored_files(site) == []
    big = b"\xff\xd8\xff\xe0" + b"\0" * (5 * 1024 * 1024)
    assert "超过 5 MB" in report(sup, status=400, photos=[("big.jpg", big)]).get_data(as_text=True)
    # a bad photo with a good one: nothing is kept
    report(sup, status=400, photos=[("ok.png", PNG), ("x.webp", b"RIFF\0\0\0\0WAVEfmt ")])
    assert case_row(site) is None and stored_files(site) == []
    # on an action too: refused with the message, the case unchanged
    report(sup)
    no = case_row(site)["case_no"]
    r = act(sup, no, "self_handle", note="已清理", photos=[("a.png", PNG), ("b.txt", b"hello")])
    assert r.status_code == 302
    assert "不是 JPEG、PNG 或 WebP 图片" in flashes(sup, f"/cases/{no}")[0]
    assert case_row(site)["status"] == "reported" and len(stored_files(site)) == 0
    r = act(
        sup, no, "self_handle", note="已清理", photos=[("before.png", PNG), ("after.webp", b"RIFF\0\0\0\0WEBPVP8 ")]
    )
    assert case_row(site)["status"] == "closed" and len(stored_files(site)) == 2


def test_dispatch_override_needs_a_reason_and_overdue_is_red(site):
    sup, lead, dsp = login(site, "sup"), login(site, "lead"), login(site, "dsp")
    report(sup)
    no = case_row(site)["case_no"]
    act(lead, no, "register")
    site["clock"]["now"] = NOW + timedelta(hours=3)  # the 1 h dispatch limit has passed
    desk = get(dsp, "/cases?tab=dispatch")
    row = desk.split(f">{no}<", 1)[1].split("</tr>", 1)[0]
    assert 'class="overdue"' in row and "超期" in row and "派遣至 东城区环卫所" in row
    zf = str(site["units"]["ZF01"])
    act(dsp, no, "dispatch", from_page="/cases?tab=dispatch", unit_id=zf, next="/cases?tab=dispatch")
    assert "理由" in flashes(dsp, "/cases?tab=dispatch")[0] and case_row(site)["status"] == "registered"
    act(dsp, no, "dispatch", unit_id=zf, note="商户店外经营，属执法")
    row = case_row(site)
    assert row["status"] == "dispatched" and row["unit_id"] == site["units"]["ZF01"]
    html = get(dsp, f"/cases/{no}")
    assert "人工指定" in html and "→ 第一执法中队" in html and "商户店外经营" in html


def test_unit_asks_for_extension_and_return_shift_leader_decides(site):
    sup, lead, dsp, hw = (login(site, u) for u in ("sup", "lead", "dsp", "hw"))
    report(sup)
    no = case_row(site)["case_no"]
    act(lead, no, "register")
    act(dsp, no, "dispatch")
    before = case_row(site)["deadline"]
    act(hw, no, "request_extension", from_page="/cases?tab=tasks", limit="1d", note="需调车清运")
    assert "延期申请 1d" in get(lead, "/cases?tab=extensions")
    act(lead, no, "approve_extension", from_page="/cases?tab=extensions")
    row = case_row(site)
    assert row["deadline"] > before and row["extension_request"] is None
    act(lead, no, "suspend", note="冬季无法施工")
    assert case_row(site)["status"] == "suspended" and f">{no}<" in get(lead, "/cases?tab=paused")
    act(lead, no, "resume", from_page="/cases?tab=paused")
    assert case_row(site)["status"] == "dispatched"
    act(hw, no, "return", note="不属本单位职责")
    assert case_row(site)["status"] == "returned" and f">{no}<" in get(dsp, "/cases?tab=dispatch")
    html = get(lead, f"/cases/{no}")
    for label in ("申请延期", "批准延期", "挂账", "恢复办理", "申请回退", "需调车清运", "不属本单位职责"):
        assert label in html


def test_coordinates_in_gcj02_and_bad_places(site):
    rcv = login(site, "rcv")
    nw = (X0 + 0.5 * D, Y0 + 1.5 * D)  # in cell 001
    gx, gy = crs.from_wgs84([nw[0]], [nw[1]], "gcj02")
    report(rcv, lon=str(float(gx[0])), lat=str(float(gy[0])), crs="gcj02", source="hotline_12319")
    assert case_row(site)["cell_code"] == "110101001001001"
    html = report(rcv, status=400, lon="39.9", lat="116.4", source="public").get_data(as_text=True)
    assert "swapped" in html
    html = report(rcv, status=400, mode="cell", cell="110101001001999", source="public").get_data(as_text=True)
    assert "110101001001999" in html
    html = report(rcv, status=400, lon="", lat="", source="public").get_data(as_text=True)
    assert "请在地图上点选位置" in html
    anonymous = site["app"].test_client()
    r = anonymous.get("/cases")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
