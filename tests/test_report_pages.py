"""The leader's pages through HTTP: dashboard, report (table, values JSON, CSV and XLSX), hot spots; roles; escaping.

Real PostGIS on a fresh database per test (the app reads through its own engine), real login with CSRF.
The data: the 2 × 2 test grid, three units (one named with a <script>), two duty grids and a dozen cases
with their audit trails in October and September 2026; the app's clock is fixed on 10 November 2026.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from werkzeug.security import generate_password_hash

from gridmgr.web import create_app

from support import insert_small_grid, login_client

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 10, 9, 0, tzinfo=TZ)
PASSWORD = "secret-pass"
HASH = generate_password_hash(PASSWORD)
EVIL = "<script>alert('unit')</script>中队"
ROLES = {"leader": "leader", "adm": "sysadmin", "sup": "supervisor", "dsp": "dispatcher"}


def t(month: int, day: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=TZ)


def add_case(
    c,
    cell_id: int,
    category: str,
    reported: datetime,
    unit: int | None,
    *,
    due: datetime | None = None,
    outcome: str = "closed",
    no: list = [0],  # noqa: B006 - a counter for case numbers
) -> int:
    """A case with the audit trail the workflow writes: report, register, dispatch, then handle/close or not."""
    no[0] += 1
    steps = [("report", reported, None, "reported", reported + timedelta(hours=1))]
    if unit is not None:
        due = due or reported + timedelta(days=2)
        steps += [
            ("register", reported + timedelta(minutes=30), "reported", "registered", reported + timedelta(hours=2)),
            ("dispatch", reported + timedelta(hours=1), "registered", "dispatched", due),
        ]
        if outcome in ("closed", "late"):
            at = due - timedelta(hours=2) if outcome == "closed" else due + timedelta(hours=5)
            steps += [
                ("handle", at, "dispatched", "handled", at + timedelta(hours=4)),
                ("check_pass", at + timedelta(hours=1), "handled", "checked", at + timedelta(hours=3)),
                ("close", at + timedelta(hours=2), "checked", "closed", None),
            ]
    state = steps[-1][3]
    cid = c.execute(
        text("""
        INSERT INTO cases (geom, cell_id, case_no, category_code, source, urgency, reported_at, status, unit_id)
        SELECT ST_PointOnSurface(g.geom), g.id, :no, :cat, 'supervisor', 'normal', :at, :st, :unit
        FROM grid_cells g WHERE g.id = :cell RETURNING id
    """),
        {"no": f"R{no[0]:07d}", "cat": category, "at": reported, "st": state, "unit": unit, "cell": cell_id},
    ).scalar()
    before = None
    for action, at, src, dst, after in steps:
        c.execute(
            text("""
            INSERT INTO case_events (case_id, at, action, from_state, to_state, actor, role, unit_id,
                                     deadline_before, deadline_after)
            VALUES (:c, :at, :a, :f, :t, 'test', 'system', :u, :db, :da)
        """),
            {
                "c": cid,
                "at": at,
                "a": action,
                "f": src,
                "t": dst,
                "u": unit if action == "dispatch" else None,
                "db": before,
                "da": after,
            },
        )
        before = after
    return cid


@pytest.fixture
def site(fresh_db, tmp_path):
    """The small city with units, duty grids, accounts and cases; the app on a fixed clock."""
    url, eng = fresh_db
    with eng.begin() as c:
        cells = insert_small_grid(c)
        units = {}
        for code, name, kind in (
            ("JD01", "东华门街道办事处", "street_office"),
            ("ZF01", "第一执法中队", "enforcement_squad"),
            ("ZF02", EVIL, "enforcement_squad"),
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
        for i, (username, role) in enumerate(ROLES.items()):
            people[username] = c.execute(
                text("INSERT INTO people (code, name, role) VALUES (:c, :n, :r) RETURNING id"),
                {"c": f"P{i}", "n": f"用户{username}", "r": "supervisor" if role == "supervisor" else "staff"},
            ).scalar()
            c.execute(
                text("INSERT INTO users (username, person_id, role, password_hash) VALUES (:u, :p, :r, :h)"),
                {"u": username, "p": people[username], "r": role, "h": HASH},
            )
        g = c.execute(
            text("INSERT INTO duty_grids (code, name, supervisor_id) VALUES ('DG1', 'DG1', :p) RETURNING id"),
            {"p": people["sup"]},
        ).scalar()
        for code in ("110101001001001", "110101001001003"):
            c.execute(text("INSERT INTO duty_grid_cells VALUES (:g, :c)"), {"g": g, "c": cells[code]})
        cats = c.execute(text("SELECT code FROM categories WHERE kind = 'event' ORDER BY code LIMIT 3")).scalars().all()
        nw, ne, sw, se = (cells[f"110101001001{s:03d}"] for s in range(1, 5))
        for day in (2, 6, 9, 13, 16, 20):  # October: the NW cell busy, most cases closed on time
            add_case(c, nw, cats[0], t(10, day), units["ZF01"])
        add_case(c, nw, cats[1], t(10, 21), units["ZF02"], outcome="late")
        add_case(c, ne, cats[1], t(10, 8), units["ZF02"], outcome="open")
        add_case(c, sw, cats[2], t(10, 12), units["HW01"])
        add_case(c, se, cats[0], t(10, 27), None)
        for day in (3, 14):  # September
            add_case(c, ne, cats[0], t(9, day), units["ZF01"])
        add_case(c, nw, cats[0], t(11, 3), units["ZF01"], outcome="open")  # this month: overdue now
    app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_VAR": str(tmp_path / "var")})
    app.config["GRIDMGR_NOW"] = NOW
    yield {"app": app, "eng": eng, "cells": cells, "units": units, "cats": cats}
    engine = app.extensions.get("gridmgr.engine")
    if engine is not None:
        engine.dispose()


def login(site, username):
    return login_client(site["app"], username, PASSWORD)


def get(client, path, status=200):
    r = client.get(path)
    assert r.status_code == status, (path, r.status_code, r.get_data(as_text=True)[:800])
    return r


PAGES = (
    "/dashboard",
    "/reports",
    "/hotspots",
    "/reports/values.json",
    "/hotspots/values.json",
    "/reports/download.csv",
    "/reports/download.xlsx",
)


def test_pages_need_a_leader_or_an_admin(site):
    anonymous = site["app"].test_client()
    for path in PAGES:
        r = anonymous.get(path)
        assert r.status_code in (302, 401), (path, r.status_code)
        if r.status_code == 302:
            assert "/login" in r.headers["Location"]
    for user in ("sup", "dsp"):
        client = login(site, user)
        for path in PAGES:
            get(client, path, 403)
    for user in ("leader", "adm"):
        client = login(site, user)
        for path in ("/dashboard", "/reports", "/hotspots"):
            get(client, path)


def test_menu_links_for_the_leader(site):
    html = get(login(site, "leader"), "/overview").get_data(as_text=True)
    for path in ("/dashboard", "/reports", "/hotspots", "/overview"):
        assert f'href="{path}"' in html


def test_report_page_defaults_to_the_last_full_month(site):
    html = get(login(site, "leader"), "/reports?level=unit").get_data(as_text=True)
    assert 'value="2026-10"' in html
    assert "第一执法中队" in html and "东城区环卫所" in html
    for label in ("结案率", "按期结案率", "处置率", "按期处置率", "返工率", "超期待处置率", "延期率", "排名变化"):
        assert label in html, label
    assert "—" in html and ">None<" not in html  # rates with nothing due, ranks not given
    assert "结案数 / 应结案数" in html  # definitions on the page, each rate with its population in words
    assert "本期上报（不含自行处置）的案件中，截至期末已立案的比例" in html
    assert "the share registered by the cutoff" not in html  # the Chinese page shows the Chinese definition
    assert "<summary>统计口径</summary>" in html  # and the counting rules
    assert "/reports/download.csv?" in html and "/reports/download.xlsx?" in html


def test_report_table_figures_and_links(site):
    client = login(site, "leader")
    html = get(client, "/reports?period=2026-10&level=cell").get_data(as_text=True)
    assert 'data-href="/cells/110101001001001"' in html
    table = html.split('id="report-table"')[1].split("</table>")[0]
    nw_row = re.search(r'<tr data-href="/cells/110101001001001">(.*?)</tr>', table, re.DOTALL).group(1)
    assert "110101001001001" in nw_row
    html = get(client, "/reports?period=2026-10&level=street").get_data(as_text=True)
    assert "level=community" in html and "area=110101001" in html  # a street drills down to its communities


def test_unit_names_are_escaped(site):
    client = login(site, "adm")
    for path in ("/reports?period=2026-10&level=unit", "/dashboard"):
        html = get(client, path).get_data(as_text=True)
        assert "<script>alert('unit')" not in html
        assert "&lt;script&gt;alert(" in html, path


def test_units_rank_within_their_kind(site):
    client = login(site, "leader")
    r = get(client, "/reports/values.json?period=2026-10&level=unit&indicator=score")
    data = r.get_json()
    assert data["key"] == "unit"
    assert set(data["values"]) >= {"ZF01", "ZF02", "HW01"}
    html = get(client, "/reports?period=2026-10&level=unit").get_data(as_text=True)
    assert ">组别</th>" in html  # the squads form one group, the sanitation unit another
    table = html.split('id="report-table"')[1].split("</table>")[0]
    assert "<td>执法中队</td>" in table and "enforcement squad" not in table  # the group's label, in Chinese


def test_values_json_for_the_choropleth(site):
    client = login(site, "leader")
    data = get(client, "/reports/values.json?period=2026-10&level=cell&indicator=reported").get_json()
    assert data["key"] == "prefix" and data["prefix"] == 15
    assert data["values"]["110101001001001"] == 7
    assert set(data["classes"]) == set(data["values"])
    data = get(client, "/reports/values.json?period=2026-10&level=street&indicator=close_rate").get_json()
    assert data["prefix"] == 9 and list(data["values"]) == ["110101001"]
    data = get(client, "/reports/values.json?period=2026-10&level=supervisor&indicator=reported").get_json()
    assert data["key"] == "cell" and set(data["values"]) == {"110101001001001", "110101001001003"}
    r = client.get("/reports/values.json?indicator=nonsense")
    assert r.status_code == 400


def test_csv_and_xlsx_downloads(site):
    from openpyxl import load_workbook

    client = login(site, "leader")
    r = get(client, "/reports/download.csv?period=2026-10&level=unit&scheme=jinniu")
    assert r.headers["Content-Disposition"].startswith("attachment")
    body = r.data.decode("utf-8-sig")
    assert "第一执法中队" in body and "结案率" in body
    r = get(client, "/reports/download.xlsx?period=2026-10&level=unit&scheme=jinhua")
    wb = load_workbook(io.BytesIO(r.data))
    assert "定义 Definitions" in wb.sheetnames
    sheet = wb[wb.sheetnames[0]]
    names = [c.value for c in next(sheet.iter_rows(min_row=1, max_row=1))]
    assert any("得分" in str(n) for n in names)
    values = [c.value for row in sheet.iter_rows() for c in row]
    assert EVIL in values  # stored as text, never a formula
    get(client, "/reports/download.pdf", 400)


def test_bad_input_is_reported_on_the_page(site):
    client = login(site, "leader")
    html = get(client, "/reports?period=2026-13x&level=nowhere").get_data(as_text=True)
    assert "bad period" in html and "unknown level" in html
    html = get(client, "/hotspots?category=<b>&area=abc").get_data(as_text=True)
    assert "<b>" not in html.split("<main>")[1].split("</form>")[1]


def test_hotspots_page(site):
    client = login(site, "leader")
    html = get(client, "/hotspots?period=2026-10").get_data(as_text=True)
    assert "热点 99%" in html and "冷点 90%" in html  # the plain legend
    assert "leaflet_heat.min.js" in html  # folium HeatMap on the local asset
    assert "HeatMap" in html or "heatLayer" in html
    assert "unpkg.com" not in html and "cdn.jsdelivr" not in html
    assert "有效上报案件 10 件" in html
    html = get(client, "/hotspots?period=2026-10&category=01&area=110101").get_data(as_text=True)
    assert 'value="01" selected' in html
    data = get(client, "/hotspots/values.json?period=2026-10&show=spot").get_json()
    assert set(data["values"]) == set(site["cells"])
    assert data["categorical"] and data["legend"][0][0] == "hot_99"
    data = get(client, "/hotspots/values.json?period=2026-10&show=class").get_json()
    assert data["values"]["110101001001001"] == 7 and data["breaks"]
    data = get(client, "/hotspots/values.json?period=2026-10&show=change").get_json()
    assert set(data["values"].values()) <= {
        "became_hot",
        "stayed_hot",
        "cooled",
        "became_cold",
        "stayed_cold",
        "warmed",
        "not_significant",
    }


def test_dashboard(site):
    html = get(login(site, "leader"), "/dashboard").get_data(as_text=True)
    assert "2026-11" in html and "2026-10" in html
    for label in ("上报案件", "结案率", "按期结案率", "当前超期"):
        assert label in html
    assert html.count("<svg") >= 4 and "<polyline" in html  # trends drawn on the server
    assert "<script src" not in html.split("<main>")[1]  # no chart library
    assert "第一执法中队" in html and "test street" in html  # best/worst units and streets
    assert 'href="/reports?' in html and 'href="/hotspots?' in html
