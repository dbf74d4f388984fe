"""The supervisor map and the cell pages through HTTP (web/views/maps.py): small pages, the JSON calls, scope, escaping.

Real PostGIS (a fresh database per test: the app commits), real login through /login. The browser side
(tiles drawn, clicks, popups) is tests/test_map_browser.py, on the same seed (`seed_map_site`).
"""

import json
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from werkzeug.security import generate_password_hash

from gridmgr.cases import queries
from gridmgr.cases.intake import NewCase, report
from gridmgr.cases.workflow import Actor
from gridmgr.web import create_app

from support import SMALL_ORIGIN, SMALL_STEP, insert_small_grid, login_client

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 10, 13, 9, 0, tzinfo=TZ)  # a Tuesday, in working hours
PASSWORD = "secret-pass"
X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP
CELLS = {f"110101001001{s:03d}" for s in range(1, 5)}
# the centre of each cell: 001 NW, 002 NE, 003 SW, 004 SE
CENTRE = {
    "110101001001001": (X0 + 0.5 * D, Y0 + 1.5 * D),
    "110101001001002": (X0 + 1.5 * D, Y0 + 1.5 * D),
    "110101001001003": (X0 + 0.5 * D, Y0 + 0.5 * D),
    "110101001001004": (X0 + 1.5 * D, Y0 + 0.5 * D),
}
XSS = '垃圾<script>window.__xss=1</script> 和 <img src=x onerror="window.__xss=1"> & 更多'
# username → (name, role, phone); sup answers for the west column (001, 003), sup2 for the east (002, 004)
ACCOUNTS = {
    "sup": ("张监督", "supervisor", "13900000001"),
    "sup2": ("王监督", "supervisor", "13900000002"),
    "lead": ("钱领导", "leader", None),
    "adm": ("吴管理", "sysadmin", None),
}
# per cell: its grid leader and grid officer, with phones (so a page showing another cell's people is caught)
CELL_PEOPLE = {
    code: ((f"网格长{code[-1]}", f"1370000000{code[-1]}"), (f"网格员{code[-1]}", f"1360000000{code[-1]}"))
    for code in CELLS
}


def seed_map_site(eng, now: datetime) -> dict:
    """The 2 × 2 test grid with units, people, duty grids, accounts, cases (one HTML-laden) and a billboard."""
    hashed = generate_password_hash(PASSWORD)
    out = {"cases": {}}
    with eng.begin() as c:
        cells = out["cells"] = insert_small_grid(c)
        units = {}
        for code, name, kind, phone in (
            ("JD01", "东华门街道办事处", "street_office", "010-65120001"),
            ("ZF01", "第一执法中队", "enforcement_squad", "010-65120002"),
        ):
            units[code] = c.execute(
                text("INSERT INTO units (code, name, kind, phone) VALUES (:c, :n, :k, :p) RETURNING id"),
                {"c": code, "n": name, "k": kind, "p": phone},
            ).scalar()
        for cell in cells.values():
            for duty, unit in (("territorial", "JD01"), ("enforcement", "ZF01")):
                c.execute(text("INSERT INTO cell_units VALUES (:c, :d, :u)"), {"c": cell, "d": duty, "u": units[unit]})
        for code, people in CELL_PEOPLE.items():
            for post, (name, phone) in zip(("grid_leader", "grid_officer"), people):
                pid = c.execute(
                    text("INSERT INTO people (code, name, role, phone) VALUES (:c, :n, :r, :p) RETURNING id"),
                    {"c": f"{post}-{code}", "n": name, "r": post, "p": phone},
                ).scalar()
                c.execute(
                    text("INSERT INTO cell_people VALUES (:c, :p, :post)"), {"c": cells[code], "p": pid, "post": post}
                )
        people = {}
        for i, (username, (name, role, phone)) in enumerate(ACCOUNTS.items()):
            people[username] = c.execute(
                text("INSERT INTO people (code, name, role, phone) VALUES (:c, :n, :r, :p) RETURNING id"),
                {"c": f"M{i}", "n": name, "r": "supervisor" if role == "supervisor" else "staff", "p": phone},
            ).scalar()
            c.execute(
                text("INSERT INTO users (username, person_id, role, password_hash) VALUES (:u, :p, :r, :h)"),
                {"u": username, "p": people[username], "r": role, "h": hashed},
            )
        for code, sup, seqs in (("DG1", "sup", ("001", "003")), ("DG2", "sup2", ("002", "004"))):
            g = c.execute(
                text("INSERT INTO duty_grids (code, name, supervisor_id) VALUES (:c, :n, :p) RETURNING id"),
                {"c": code, "n": f"责任网格{code}", "p": people[sup]},
            ).scalar()
            for s in seqs:
                c.execute(text("INSERT INTO duty_grid_cells VALUES (:g, :c)"), {"g": g, "c": cells[f"110101001001{s}"]})
        sup = Actor(None, "张监督", "supervisor", people["sup"])
        calendar = queries.default_calendar()

        def new(key, cell, description, *, dx=0.0, category="0102"):
            x, y = CENTRE[cell]
            case_id = report(
                c,
                sup,
                NewCase(category, x + dx, y, "supervisor", description, "东华门大街1号"),
                # a few minutes before `now`: only the case given a past deadline below is overdue,
                # whatever the time of day (a working-day report is due within the hour)
                now=now - timedelta(minutes=5),
                calendar=calendar,
            )
            out["cases"][key] = (
                case_id,
                c.execute(text("SELECT case_no FROM cases WHERE id = :i"), {"i": case_id}).scalar(),
            )

        new("xss", "110101001001003", XSS)
        new("overdue", "110101001001003", "人行道上有暴露垃圾", dx=0.0003)
        new("closed", "110101001001001", "已清理的垃圾")
        new("east", "110101001001002", "东边网格的案件")
        c.execute(
            text("UPDATE cases SET deadline = :d WHERE id = :i"),
            {"d": now - timedelta(hours=1), "i": out["cases"]["overdue"][0]},
        )
        closed = out["cases"]["closed"][0]
        c.execute(
            text("""INSERT INTO case_events (case_id, at, action, from_state, to_state, actor, role)
                          VALUES (:i, :at, 'self_handle', 'reported', 'closed', '张监督', 'supervisor')"""),
            {"i": closed, "at": now - timedelta(minutes=1)},
        )
        c.execute(text("UPDATE cases SET status = 'closed', deadline = NULL WHERE id = :i"), {"i": closed})
        x, y = CENTRE["110101001001004"]
        out["billboard"] = c.execute(
            text("""
            INSERT INTO billboards (geom, cell_id, ad_no, type, owner, status, valid_to, address)
            VALUES (ST_SetSRID(ST_MakePoint(:x, :y), 4326), :cell, 'AD-1', 'wall', '<b>某</b>公司', 'permitted',
                    CAST(:vt AS date), '东华门大街2号') RETURNING id
        """),
            {"x": x, "y": y, "cell": cells["110101001001004"], "vt": (now - timedelta(days=10)).date()},
        ).scalar()
    return out


@pytest.fixture
def site(fresh_db, tmp_path):
    """The seeded site and the app on a fixed clock."""
    url, eng = fresh_db
    data = seed_map_site(eng, NOW)
    app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_VAR": str(tmp_path / "var"), "GRIDMGR_TILE_URL": None})
    app.config["GRIDMGR_NOW"] = NOW
    return {"app": app, "eng": eng, **data}


def login(site, username):
    return login_client(site["app"], username, PASSWORD)


def get(client, path, status=200, json_=False):
    r = client.get(path, headers={"Accept": "application/json"} if json_ else {})
    assert r.status_code == status, (path, r.status_code, r.get_data(as_text=True)[:800])
    return r.get_json() if json_ else r.get_data(as_text=True)


def page_core(html: str) -> str:
    """The page without what changes per request (CSRF token, folium's random element names)."""
    html = re.sub(r'(csrf[-_]token" (?:value|content)=")[^"]+', r"\1", html)
    return re.sub(r"\b(map|vector_grid_protobuf|layer_control)_[0-9a-f]{32}", r"\1_X", html)


# ---------------------------------------------------------------------------------------------- access


@pytest.mark.parametrize(
    "path",
    [
        "/map",
        "/cells/110101001001001",
        "/cells/110101001001001/indicators",
        "/map/cell?lat=39.9005&lon=116.4005",
        "/map/labels?bbox=116.4,39.9,116.402,39.902",
        "/map/search?q=110101001001001",
        "/map/mine",
        "/map/features/cases/1",
        "/map/values/open_cases",
    ],
)
def test_everything_needs_a_login(site, path):
    r = site["app"].test_client().get(path)
    assert r.status_code == 302 and "/login" in r.headers["Location"]


# ---------------------------------------------------------------------------------------------- /map


def test_map_page_is_small_and_holds_no_data(site):
    html = get(login(site, "sup"), "/map")
    assert len(html.encode()) < 30_000
    assert not re.search(r"(?<![0-9.])[0-9]{15}(?![0-9])", html), "a cell code is inline"
    for key, (_, case_no) in site["cases"].items():
        assert case_no not in html, f"case {key} is inline"
    for leak in (
        "暴露垃圾",
        "东边网格",
        "<script>window.__xss",
        "网格长",
        "13700000001",
        "AD-1",
        "Polygon",
        "coordinates",
    ):
        assert leak not in html, leak
    # the scaffolding is there: local assets, the tile layers, the page's scripts and settings
    assert "/vendor/leaflet/dist/leaflet.js" in html and "/vendor/leaflet.vectorgrid/" in html
    assert "'/tiles/cells/{z}/{x}/{y}.pbf'" in html and "'/tiles/cases/{z}/{x}/{y}.pbf'" in html
    assert "gridmgr.tileOptions('cells')" in html and "/static/js/map-supervisor.js" in html
    assert "jquery" not in html and "https://" not in html and "http://" not in html
    config = json.loads(re.search(r'<script type="application/json" id="map-config">(.*?)</script>', html, re.S)[1])
    assert config["hasMine"] is True and config["style"] is None
    assert [la["name"] for la in config["layers"]][-1] == "cases"


def test_map_page_does_not_grow_with_the_data(site):
    client = login(site, "adm")
    before = page_core(get(client, "/map"))
    with site["eng"].begin() as c:
        c.execute(
            text("""
            INSERT INTO cases (geom, cell_id, case_no, category_code, source, reported_at, description, status)
            SELECT ST_SetSRID(ST_MakePoint(116.4005 + (i % 20) * 0.00005, 39.9005), 4326), NULL,
                   'B' || lpad(i::text, 8, '0'), '0102', 'public', :now, repeat('描述', 50), 'reported'
            FROM generate_series(1, 2000) i
        """),
            {"now": NOW},
        )
    after = page_core(get(client, "/map"))
    assert after == before


def test_map_style_source_must_be_local(site):
    client = login(site, "lead")
    for bad in ("https://evil.example/x.json", "//evil.example/x.json", "javascript:alert(1)", '/x"><script>'):
        html = get(client, f"/map?style={bad}")
        assert '"style": null' in html
        # the language links lead back to this very URL (query encoded): the rest of the page never holds it
        html = re.sub(r'<span class="lang-switch".*?</span>', "", html, flags=re.S)
        assert "evil.example" not in html and '<script>"' not in html
    html = get(client, "/map?style=/map/values/open_cases")
    assert '"style": "/map/values/open_cases"' in html


def test_map_for_a_role_without_cells_opens_on_the_district(site):
    html = get(login(site, "lead"), "/map")
    assert '"hasMine": false' in html
    # the view is the district's bounds (the small grid), given as four numbers to fitBounds
    assert re.search(r"fitBounds\(\s*\[\[39\.9, 116\.4\], \[39\.902, 116\.402\]\]", html), html[-800:]


# ---------------------------------------------------------------------------------------------- JSON calls


def test_cell_panel_at_a_point(site):
    client = login(site, "sup")
    x, y = CENTRE["110101001001003"]
    data = get(client, f"/map/cell?lat={y}&lon={x}", json_=True)
    assert data["code"] == "110101001001003"
    assert data["community"]["code"] == "110101001001" and data["street"]["code"] == "110101001"
    assert [(p["post"], p["name"], p["phone"]) for p in data["people"]] == [
        ("grid_leader", "网格长3", "13700000003"),
        ("grid_officer", "网格员3", "13600000003"),
    ]
    assert {(u["duty_label"], u["name"], u["phone"]) for u in data["units"]} == {
        ("属地", "东华门街道办事处", "010-65120001"),
        ("执法", "第一执法中队", "010-65120002"),
    }
    assert data["duty_grids"] == [{"code": "DG1", "name": "责任网格DG1"}]
    inventory = {m["name"]: m["value"] for m in data["inventory"]}
    assert inventory["open_cases"] == 2 and inventory["expired_billboards"] == 0
    assert data["open_cases"]["total"] == 2
    assert {k["case_no"] for k in data["open_cases"]["items"]} == {site["cases"]["xss"][1], site["cases"]["overdue"][1]}
    assert [k["overdue"] for k in data["open_cases"]["items"] if k["case_no"] == site["cases"]["overdue"][1]] == [True]
    assert data["url"] == "/cells/110101001001003"


def test_cell_panel_by_code_outside_the_grid_and_bad_input(site):
    client = login(site, "sup2")
    data = get(client, "/map/cell?code=110101001001004", json_=True)
    assert data["code"] == "110101001001004"
    assert {m["name"]: m["value"] for m in data["inventory"]}["expired_billboards"] == 1  # judged on NOW
    assert data["open_cases"]["total"] == 0  # sup2 sees only the cases of their own cells (none here)
    outside = get(client, "/map/cell?lat=39.95&lon=116.45", json_=True)  # a click beside the grid: an answer
    assert outside["code"] is None and outside["message"] == "此处不在任何网格内。"
    assert client.get("/map/cell?lat=x&lon=1", headers={"Accept": "application/json"}).status_code == 400
    assert client.get("/map/cell?code=999999999999999", headers={"Accept": "application/json"}).status_code == 404


def test_the_panel_reply_escapes_html(site):
    client = login(site, "sup")
    x, y = CENTRE["110101001001003"]
    r = client.get(f"/map/cell?lat={y}&lon={x}")
    body = r.get_data(as_text=True)
    assert "<script>" not in body and "<img" not in body and "\\u003cscript\\u003e" in body
    assert r.headers["Content-Type"].startswith("application/json") and r.headers["X-Content-Type-Options"] == "nosniff"


def test_labels_in_a_box(site):
    client = login(site, "sup")
    data = get(client, "/map/labels?bbox=116.4,39.9,116.4012,39.9012", json_=True)
    assert sorted(c[0] for c in data["cells"]) == sorted(CELLS) and data["truncated"] is False
    data = get(client, "/map/labels?bbox=116.4015,39.9015,116.403,39.903", json_=True)
    assert [c[0] for c in data["cells"]] == ["110101001001002"]
    lat, lon = data["cells"][0][1:]
    assert 39.901 < lat < 39.902 and 116.401 < lon < 116.402
    assert client.get("/map/labels?bbox=1,2,3", headers={"Accept": "application/json"}).status_code == 400


def test_my_cells(site):
    data = get(login(site, "sup"), "/map/mine", json_=True)
    assert data["codes"] == ["110101001001001", "110101001001003"]
    assert data["bounds"] == [[39.9, 116.4], [39.902, 116.401]]
    assert get(login(site, "lead"), "/map/mine", json_=True) == {"codes": [], "bounds": None}


def test_search(site):
    client = login(site, "sup")
    found = get(client, "/map/search?q=110101001001002", json_=True)
    assert found["kind"] == "cell" and found["code"] == "110101001001002" and found["url"] == "/cells/110101001001002"
    assert found["bounds"] == [[39.901, 116.401], [39.902, 116.402]]
    case_id, case_no = site["cases"]["xss"]
    found = get(client, f"/map/search?q={case_no}", json_=True)
    assert found["kind"] == "case" and found["case"]["id"] == case_id and found["url"] == f"/cases/{case_no}"
    assert found["point"] == [pytest.approx(CENTRE["110101001001003"][1]), pytest.approx(CENTRE["110101001001003"][0])]
    # a case out of the supervisor's cells is not found, exactly as a case that does not exist
    missing = get(client, f"/map/search?q={site['cases']['east'][1]}", json_=True)
    assert missing["kind"] is None and "没有找到" in missing["message"] and "Nothing" not in missing["message"]
    x, y = CENTRE["110101001001004"]
    for q in (f"{x},{y}", f"{y}, {x}", f"{x} {y} wgs84"):
        found = get(client, f"/map/search?q={q}", json_=True)
        assert found["kind"] == "point" and found["code"] == "110101001001004", q
    found = get(client, "/map/search?q=110101001", json_=True)
    assert found["kind"] == "region" and found["code"] == "110101001"
    found = get(client, "/map/search?q=test community", json_=True)
    assert found["kind"] == "region" and found["code"] == "110101001001"
    far = client.get("/map/search?q=121.47,31.23", headers={"Accept": "application/json"})
    assert far.status_code == 400 and "坐标无效" in far.get_json()["error"]["message"]
    assert get(client, "/map/search?q=nothing-like-this", json_=True)["kind"] is None
    assert client.get("/map/search?q=", headers={"Accept": "application/json"}).status_code == 400


def test_case_popup_follows_scope_and_escapes(site):
    case_id, case_no = site["cases"]["xss"]
    r = login(site, "sup").get(f"/map/features/cases/{case_id}")
    assert r.status_code == 200
    body = r.get_data(as_text=True)
    assert "<script>" not in body and "\\u003cscript\\u003e" in body
    data = r.get_json()
    assert data["title"] == f"案件 {case_no}" and data["url"] == f"/cases/{case_no}"
    assert {"label": "问题描述", "value": XSS} in data["fields"]
    overdue = get(login(site, "sup"), f"/map/features/cases/{site['cases']['overdue'][0]}", json_=True)
    assert overdue["flags"] == ["超期"]
    # sup2 sees the point on the map (tiles are the same for everyone) but not the case's text
    other = get(login(site, "sup2"), f"/map/features/cases/{case_id}", json_=True)
    assert other["url"] is None and "不在您的责任范围内" in other["note"]
    assert XSS not in json.dumps(other, ensure_ascii=False) and case_no not in json.dumps(other)
    assert login(site, "sup").get("/map/features/cases/999999").status_code == 404


def test_layer_feature_popup(site):
    data = get(login(site, "sup"), f"/map/features/billboards/{site['billboard']}", json_=True)
    assert data["title"] == "户外广告 AD-1" and data["cell"] == "110101001001004"
    assert data["url"] == "/cells/110101001001004#layer-billboards"
    assert data["flags"] == ["许可过期"]
    fields = {f["label"]: f["value"] for f in data["fields"]}
    assert fields["类型"] == "墙面广告" and fields["设置单位"] == "<b>某</b>公司"
    client = login(site, "sup")
    client.get("/map?lang=en")  # the page's language, for its JSON calls too
    english = get(client, f"/map/features/billboards/{site['billboard']}", json_=True)
    assert english["flags"] == ["permit expired"] and english["title"] == "billboards AD-1"
    assert {f["label"]: f["value"] for f in english["fields"]}["type"] == "wall sign"
    client = login(site, "sup")
    assert client.get("/map/features/billboards/999", headers={"Accept": "application/json"}).status_code == 404
    assert client.get("/map/features/nope/1", headers={"Accept": "application/json"}).status_code == 404


def test_values_for_the_styling_hook(site):
    client = login(site, "lead")
    data = get(client, "/map/values/open_cases", json_=True)
    assert data["values"] == {"110101001001003": 2, "110101001001002": 1}
    assert data["title"] == "未结案件"
    assert get(client, "/map/values/expired_billboards", json_=True)["values"] == {"110101001001004": 1}
    assert client.get("/map/values/nope", headers={"Accept": "application/json"}).status_code == 404


# ---------------------------------------------------------------------------------------------- /cells


def test_cell_page_shows_its_people_and_only_theirs(site):
    html = get(login(site, "sup"), "/cells/110101001001003")
    assert "110101001001003" in html and "test community" in html
    people = html.split('id="cell-people"')[1].split("</table>")[0]
    assert "网格长3" in people and "13700000003" in people and "网格员3" in people and "13600000003" in people
    for other in ("1", "2", "4"):
        assert f"网格长{other}" not in html and f"1370000000{other}" not in html
    units = html.split('id="cell-units"')[1].split("</table>")[0]
    assert "东华门街道办事处" in units and "010-65120001" in units and "属地" in units
    assert "责任网格DG1" in html
    # neighbours: every other cell of the 2 × 2 grid touches this one
    for code in ("110101001001001", "110101001001002", "110101001001004"):
        assert f'href="/cells/{code}"' in html


def test_cell_page_lists_cases_and_features_escaped(site):
    html = get(login(site, "sup"), "/cells/110101001001003")
    assert site["cases"]["xss"][1] in html and site["cases"]["overdue"][1] in html
    assert "<script>window.__xss" not in html and "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert 'class="overdue"' in html
    closed = get(login(site, "sup"), "/cells/110101001001001")
    section = closed.split('id="closed-cases"')[1].split("</table>")[0]
    assert site["cases"]["closed"][1] in section and "已清理的垃圾" in section
    east = get(login(site, "sup"), "/cells/110101001001004")
    layer = east.split('id="layer-billboards"')[1].split("</table>")[0]
    assert "AD-1" in layer and "&lt;b&gt;某&lt;/b&gt;公司" in layer and "许可过期" in layer
    # the small map: tiles and the selected cell, no geometry inline
    assert '"selected": "110101001001004"' in east and "Polygon" not in east


def test_cell_page_404(site):
    client = login(site, "sup")
    for code in ("110101001001099", "123", "11010100100100x"):
        r = client.get(f"/cells/{code}")
        assert r.status_code == 404, code
        assert "网格" in r.get_data(as_text=True)
    assert client.get("/cells/110101001001099/indicators").status_code == 404


def test_cell_indicators_for_the_month(site):
    html = get(login(site, "sup"), "/cells/110101001001003/indicators")
    assert "统计期 2026-10" in html
    reported = re.search(r'data-key="reported">([^<]*)<', html)[1]
    assert reported == "2"  # the two cases reported in this cell this month
    assert re.search(r'data-key="open_cases">([^<]*)<', html)[1] == "2"
    assert "<html" not in html  # a fragment for the page to insert


def test_basemap_from_the_setting(site, fresh_db, tmp_path):
    url, _ = fresh_db
    app = create_app(
        {
            "GRIDMGR_DATABASE_URL": url,
            "GRIDMGR_VAR": str(tmp_path / "var2"),
            "GRIDMGR_TILE_URL": "http://tiles.intranet.example/{z}/{x}/{y}.png",
        }
    )
    html = get(login({"app": app}, "lead"), "/map")
    assert "http://tiles.intranet.example/{z}/{x}/{y}.png" in html  # the configured one, and nothing else
    assert len(re.findall(r"https?://", html)) == 1
