"""The parking planner: capacity of known shapes, every refusal with its message, versions, the change log,
demand evidence, the CDS feed, and who may draw, approve and read (CSRF on session writes)."""

import json
import re
from datetime import datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import shapely
from pyproj import Geod
from shapely.geometry import shape
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from werkzeug.security import generate_password_hash

from gridmgr.layers.parking import KERB_PER_STALL, LOT_M2_PER_STALL, MARGIN, cds, checks, demand, estimate_capacity
from gridmgr.people import accounts
from gridmgr.web import create_app

from support import SMALL_ORIGIN, insert_small_grid, login_client, page_csrf

TZ = ZoneInfo("Asia/Shanghai")
APP_NOW = datetime(2026, 10, 13, 11, 0, tzinfo=TZ)
PASSWORD = "secret-pass"
PASSWORD_HASH = generate_password_hash(PASSWORD)
USERS = {"planner": "planner", "planner2": "planner", "leader": "leader", "admin": "sysadmin", "sup": "supervisor"}
GEOD = Geod(ellps="WGS84")
X0, Y0 = SMALL_ORIGIN
ZONES = "/api/v1/parking/zones"
NORTH, EAST, SOUTH, WEST = 0, 90, 180, 270


def walk(lon, lat, azimuth, metres):
    """The point `metres` on the ground from (lon, lat) toward an azimuth (degrees from north)."""
    x, y, _ = GEOD.fwd(lon, lat, azimuth, metres)
    return x, y


def kerb(lon, lat, azimuth, metres):
    """A straight kerb line of an exact ground length, as GeoJSON."""
    return {"type": "LineString", "coordinates": [[lon, lat], list(walk(lon, lat, azimuth, metres))]}


def lot(lon, lat, east_m, north_m, area_m2=None):
    """A lot polygon east_m × north_m with its south-west corner at (lon, lat); with `area_m2`, its sides
    north are stretched until its area on the ground is that (meridians converge: a 50 m × 50 m
    quadrilateral is 2499.992 m² on the ellipsoid)."""

    def ring(h):
        se = walk(lon, lat, EAST, east_m)
        return [
            [lon, lat],
            list(walk(*se, 0, 0)),
            list(walk(*se, NORTH, h)),
            list(walk(lon, lat, NORTH, h)),
            [lon, lat],
        ]

    h = north_m
    for _ in range(3 if area_m2 else 0):
        xs, ys = zip(*ring(h))
        h *= area_m2 / abs(GEOD.polygon_area_perimeter(xs, ys)[0])
    return {"type": "Polygon", "coordinates": [ring(h)]}


# a N-S kerb 120 m long in cells 003 → 001, and the spots the other shapes use
KERB_120 = kerb(X0 + 0.0005, Y0 + 0.0003, NORTH, 120)
KERB_50 = kerb(X0 + 0.0003, Y0 + 0.0015, EAST, 50)
LOT_50 = lot(X0 + 0.0012, Y0 + 0.0012, 50, 50, area_m2=2500)


def build_world(c) -> dict:
    """The 2 × 2 test grid (district 110101) plus a second district east of it, units, accounts, an active
    construction site, and 0505 cases (committed by the caller)."""
    cells = insert_small_grid(c)
    parent = None
    box = f"ST_Multi(ST_MakeEnvelope({X0 + 0.002}, {Y0}, {X0 + 0.003}, {Y0 + 0.001}, 4326))"
    for level, code in (("district", "110102"), ("street", "110102001"), ("community", "110102001001")):
        parent = c.execute(
            text(
                f"INSERT INTO regions (level, code, name, parent_id, geom, area_m2) VALUES "
                f"(:l, :c, :n, :p, {box}, 1) RETURNING id"
            ),
            {"l": level, "c": code, "n": f"第二 {level}", "p": parent},
        ).scalar()
    cells["110102001001001"] = c.execute(
        text(
            f"INSERT INTO grid_cells (code, community_id, geom, area_m2, valid_from, source) VALUES "
            f"('110102001001001', :cm, {box}, 1, '-infinity', 'generated') RETURNING id"
        ),
        {"cm": parent},
    ).scalar()
    c.execute(text("UPDATE regions SET name = '东城区' WHERE code = '110101'"))
    c.execute(text("UPDATE regions SET name = '西城区' WHERE code = '110102'"))
    unit = c.execute(
        text("INSERT INTO units (code, name, kind) VALUES ('JD01', '东华门街道办事处', 'street_office') RETURNING id")
    ).scalar()
    for cell in cells.values():
        c.execute(text("INSERT INTO cell_units VALUES (:c, 'territorial', :u)"), {"c": cell, "u": unit})
    users = {}
    for i, (name, role) in enumerate(USERS.items()):
        pid = c.execute(
            text("INSERT INTO people (code, name, role) VALUES (:c, :n, 'staff') RETURNING id"),
            {"c": f"P{i}", "n": f"人员{name}"},
        ).scalar()
        users[name] = c.execute(
            text("INSERT INTO users (username, person_id, role, password_hash) VALUES (:n, :p, :r, :h) RETURNING id"),
            {"n": name, "p": pid, "r": role, "h": PASSWORD_HASH},
        ).scalar()
    tokens = {u: accounts.new_token(c, u) for u in USERS}
    # an active site over the middle of the SE cell, a finished one beside it
    for permit, status, x in (("SG-001", "active", 0.0015), ("SG-002", "finished", 0.0011)):
        env = f"ST_Multi(ST_MakeEnvelope({X0 + x}, {Y0 + 0.0001}, {X0 + x + 0.0002}, {Y0 + 0.0004}, 4326))"
        c.execute(
            text(
                f"INSERT INTO construction_sites (geom, cell_id, permit_no, project_name, status) "
                f"SELECT {env}, (SELECT cell_id FROM cell_for({env})), :p, '学校改扩建工程', :s"
            ),
            {"p": permit, "s": status},
        )
    # 0505 cases: five near the 120 m kerb in the last 90 days, one old, one of another category
    for i, (dx, dy, days, cat) in enumerate(
        [
            (0.0006, 0.0005, 3, "0505"),
            (0.0006, 0.0008, 10, "0505"),
            (0.0004, 0.0010, 30, "0505"),
            (0.0007, 0.0012, 60, "0505"),
            (0.0005, 0.0013, 89, "0505"),
            (0.0006, 0.0006, 120, "0505"),
            (0.0006, 0.0007, 5, "0102"),
        ]
    ):
        pt = f"ST_SetSRID(ST_MakePoint({X0 + dx}, {Y0 + dy}), 4326)"
        c.execute(
            text(
                f"INSERT INTO cases (geom, cell_id, case_no, category_code, source, reported_at) "
                f"SELECT {pt}, (SELECT cell_id FROM cell_for({pt})), :n, :cat, 'public', :at"
            ),
            {"n": f"2026{i:07d}", "cat": cat, "at": APP_NOW - timedelta(days=days)},
        )
    return {"cells": cells, "users": users, "tokens": tokens}


@pytest.fixture
def world(fresh_db):
    url, eng = fresh_db
    with eng.begin() as c:
        w = build_world(c)
    app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_SECRET_KEY": "test-secret"})
    app.config["GRIDMGR_NOW"] = APP_NOW
    yield SimpleNamespace(app=app, engine=eng, **w)
    app.extensions["gridmgr.engine"] and app.extensions["gridmgr.engine"].dispose()


def call(w, user, method, path, **kw):
    """A bearer-token request as `user`."""
    headers = kw.pop("headers", {})
    headers["Authorization"] = f"Bearer {w.tokens[user]}"
    return w.app.test_client().open(path, method=method, headers=headers, **kw)


def draw(w, geometry, user="planner", **fields):
    body = {"name": fields.pop("name", "测试停车区"), "geometry": geometry, **fields}
    body.setdefault("parking_angle", "parallel")
    return call(w, user, "POST", ZONES, json=body)


def created(w, geometry, **fields) -> dict:
    r = draw(w, geometry, **fields)
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.json


def act(w, user, zone_id, action, **kw):
    return call(w, user, "POST", f"{ZONES}/{zone_id}/actions/{action}", **kw)


def publish(w, zone_id, painted=False):
    assert act(w, "planner", zone_id, "submit").status_code == 200
    assert act(w, "leader", zone_id, "approve").status_code == 200
    if painted:
        assert act(w, "planner", zone_id, "paint").status_code == 200


def refused(r, status: int, rule: str) -> dict:
    assert r.status_code == status, r.get_data(as_text=True)
    err = r.json["error"]
    assert err["rule"] == rule and f"[{rule}]" in err["message"], err
    return err


# ---------------------------------------------------------------- capacity


def test_capacity_of_known_geometries(world):
    assert created(world, KERB_120, parking_angle="parallel")["capacity"] == 20
    z = created(world, KERB_50, parking_angle="perpendicular")
    assert (z["capacity"], z["capacity_estimated"], z["kind"]) == (20, 20, "kerb")
    assert abs(z["length_m"] - 50) < 0.01
    z = created(world, LOT_50, parking_angle=None)
    assert (z["capacity"], z["kind"]) == (100, "lot") and z["area_m2"] == 2500.0
    assert z["parking_angle"] == checks.LOT_ANGLE and z["depth_m"] is None


@pytest.mark.parametrize("angle", list(KERB_PER_STALL))
def test_capacity_by_angle_is_the_layers_estimate(conn, angle):
    """The server measures with the parking layer's own SQL; it agrees with estimate_capacity for every angle."""
    for metres in (5.9, 6.0, 50, 120, 333.3):
        wkb = shapely.to_wkb(shape(kerb(X0, Y0, NORTH, metres)), hex=True)
        m = checks.measure(conn, wkb, angle)
        assert m.capacity_estimated == estimate_capacity(angle, length_m=m.length_m)
        assert abs(m.length_m - metres) < 0.01 and m.depth_m == checks.DEPTH_M[angle]


def test_parking_depth_by_angle():
    assert checks.DEPTH_M["parallel"] == 2.5 and checks.DEPTH_M["perpendicular"] == 5.3
    # an angled stall reaches l·sinθ + w·cosθ from the kerb
    assert checks.DEPTH_M["angled_30"] == pytest.approx(5.3 * 0.5 + 2.5 * 3**0.5 / 2, abs=1e-3)
    assert checks.DEPTH_M["angled_60"] == pytest.approx(5.3 * 3**0.5 / 2 + 2.5 * 0.5, abs=1e-3)


def test_page_serves_the_layers_constants(world):
    client, _ = login(world, "planner")
    html = client.get("/planner").get_data(as_text=True)
    cfg = json.loads(
        re.search(r'<script type="application/json" id="planner-config">(.*?)</script>', html, re.DOTALL)[1]
    )
    assert cfg["capacity"] == {"kerb_per_stall": KERB_PER_STALL, "lot_m2_per_stall": LOT_M2_PER_STALL, "margin": MARGIN}
    assert cfg["depth_m"] == checks.DEPTH_M and cfg["can_draw"] and not cfg["can_approve"]
    assert "/vendor/@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.min.js" in html
    assert "planner-map.js" in html and "planner-capacity.js" in html


# ---------------------------------------------------------------- refusals


def test_geometry_of_the_wrong_type_or_invalid_is_refused(world):
    err = refused(draw(world, {"type": "Point", "coordinates": [X0 + 0.0005, Y0 + 0.0005]}), 400, "geometry_type")
    assert "not a Point" in err["message"]
    refused(draw(world, {"type": "LineString", "coordinates": [[1, 2]]}), 400, "geometry_type")
    bowtie = {
        "type": "Polygon",
        "coordinates": [
            [
                [X0 + 0.0002, Y0 + 0.0002],
                [X0 + 0.0008, Y0 + 0.0008],
                [X0 + 0.0008, Y0 + 0.0002],
                [X0 + 0.0002, Y0 + 0.0008],
                [X0 + 0.0002, Y0 + 0.0002],
            ]
        ],
    }
    err = refused(draw(world, bowtie), 400, "geometry_valid")
    assert "Self-intersection" in err["message"]
    loop = {
        "type": "LineString",
        "coordinates": [
            [X0 + 0.0002, Y0 + 0.0002],
            [X0 + 0.0008, Y0 + 0.0008],
            [X0 + 0.0008, Y0 + 0.0002],
            [X0 + 0.0002, Y0 + 0.0008],
        ],
    }
    assert "crosses itself" in refused(draw(world, loop), 400, "geometry_valid")["message"]
    far = kerb(100.0, 30.0, NORTH, 50)
    assert "outside the city" in refused(draw(world, far), 400, "geometry_valid")["message"]
    r = call(world, "planner", "POST", ZONES, json={"name": "x"})
    assert r.status_code == 400 and "geometry" in r.json["error"]["message"]
    r = call(world, "planner", "POST", ZONES, json={"geometry": KERB_50, "name": "x", "colour": "red"})
    assert r.status_code == 400 and "colour" in r.json["error"]["message"]


def test_zone_outside_the_grid_or_across_districts_is_refused(world):
    out = kerb(X0 + 0.0015, Y0 + 0.0015, EAST, 170)  # runs 42 m past the grid's east edge
    err = refused(draw(world, out), 400, "inside_grid")
    assert "outside the current grid" in err["message"]
    across = kerb(X0 + 0.0015, Y0 + 0.0005, EAST, 85)  # from 东城区 into 西城区
    err = refused(draw(world, across), 400, "one_district")
    assert "东城区 (110101)" in err["message"] and "西城区 (110102)" in err["message"]
    assert {c["code"] for c in err["conflicts"]} == {"110101", "110102"}


def test_overlapping_zones_valid_at_the_same_time_are_refused(world):
    a = created(world, KERB_120, name="东侧泊位", street_side="east", valid_from="2026-11-01", valid_to="2027-01-01")
    lon, lat = KERB_120["coordinates"][0]
    west_kerb = kerb(*walk(lon, lat, WEST, 7), NORTH, 120)  # the kerb across a 7 m road
    # parallel stalls on both kerbs leave the road between them
    created(world, west_kerb, name="西侧平行", street_side="west")
    # perpendicular stalls on the west kerb reach 5.3 m into the road, over the east kerb's 2.5 m
    west_2 = kerb(*walk(*walk(lon, lat, WEST, 7), NORTH, 0), NORTH, 120)
    err = refused(
        draw(world, west_2, parking_angle="perpendicular", street_side="west", valid_from="2026-12-01"),
        409,
        "no_overlap",
    )
    assert a["zone_no"] in err["message"] and "东侧泊位" in err["message"]
    assert any(c["zone_no"] == a["zone_no"] and c["overlap_m2"] > 90 for c in err["conflicts"])
    # the same kerb after the first zone ends is free, and so is the kerb just beyond its end
    created(world, KERB_120, name="明年", street_side="east", valid_from="2027-01-01")
    end = KERB_120["coordinates"][1]
    created(world, kerb(*end, NORTH, 60), name="北段", street_side="east")
    # a lot drawn behind the kerb (east of it) shares no ground with stalls that face the road
    created(world, lot(lon + 0.00001, lat, 20, 30), name="路边停车场")


def test_construction_site_is_a_warning_the_planner_confirms(world):
    across_site = kerb(X0 + 0.0014, Y0 + 0.00025, EAST, 40)
    r = draw(world, across_site)
    err = refused(r, 409, "construction_site")
    assert err["needs_confirmation"] is True and "SG-001" in err["message"] and "SG-002" not in err["message"]
    assert err["conflicts"][0]["permit_no"] == "SG-001"
    z = created(world, across_site, confirm_construction=True)
    assert [w["permit_no"] for w in z["confirmed_warnings"]] == ["SG-001"]
    assert z["events"][0]["changes"]["confirmed_warnings"][0]["rule"] == "construction_site"


def test_capacity_other_than_the_estimate_needs_a_reason(world):
    err = refused(draw(world, KERB_120, capacity=15), 400, "capacity_reason")
    assert "15" in err["message"] and "20" in err["message"]
    z = created(world, KERB_120, capacity=15, capacity_reason="避让消防栓")
    assert (z["capacity"], z["capacity_estimated"], z["capacity_reason"]) == (15, 20, "避让消防栓")
    # the planner's number survives a metadata edit; clearing it goes back to the estimate
    r = call(world, "planner", "PATCH", f"{ZONES}/{z['id']}", json={"fee_rule": "首小时免费"})
    assert r.status_code == 200 and r.json["capacity"] == 15
    r = call(world, "planner", "PATCH", f"{ZONES}/{z['id']}", json={"capacity": None})
    assert r.json["capacity"] == 20 and r.json["capacity_reason"] is None


def test_bad_fields_name_the_field(world):
    for body, name in (
        ({"parking_angle": "diagonal"}, "parking_angle"),
        ({"valid_from": "13/10/2026"}, "valid_from"),
        ({"capacity": -1}, "capacity"),
        ({"time_rules": [{"days": ["mon"], "from": "25:00", "to": "26:00"}]}, "time_rules[0]"),
        ({"valid_from": "2026-12-01", "valid_to": "2026-11-01"}, "valid_to"),
    ):
        r = draw(world, KERB_50, **body)
        assert r.status_code == 400 and f"field '{name}'" in r.json["error"]["message"], (body, r.json)


def test_time_rules_are_stored_structured(world):
    rules = [{"days": ["fri", "mon", "tue"], "from": "07:00", "to": "21:00"}]
    z = created(world, KERB_50, time_rules=rules, fee_rule="按北京市路侧停车收费标准")
    assert z["time_rules"] == [{"days": ["mon", "tue", "fri"], "from": "07:00", "to": "21:00"}]
    assert created(world, KERB_120, time_rules="全天开放")["time_rules"] == "全天开放"


# ---------------------------------------------------------------- lifecycle and versions


def test_lifecycle_with_its_log(world):
    z = created(world, KERB_120, street_side="east")
    zid = z["id"]
    assert z["status"] == "draft" and z["allowed_actions"] == ["submit", "retire"]
    refused(act(world, "leader", zid, "approve"), 409, "lifecycle")  # a draft is not approved
    r = act(world, "planner", zid, "submit")
    assert r.json["outcome"] == {
        "zone_id": zid,
        "action": "submit",
        "from_status": "draft",
        "to_status": "submitted",
        "event_id": r.json["outcome"]["event_id"],
    }
    refused(call(world, "planner", "PATCH", f"{ZONES}/{zid}", json={"name": "x"}), 409, "lifecycle")
    assert act(world, "planner", zid, "withdraw").json["zone"]["status"] == "draft"
    publish(world, zid, painted=True)
    z = call(world, "planner", "GET", f"{ZONES}/{zid}").json
    assert z["status"] == "painted" and z["valid_from"] == APP_NOW.date().isoformat()
    assert [(e["action"], e["from_status"], e["to_status"], e["actor"]) for e in z["events"]] == [
        ("create", None, "draft", "人员planner"),
        ("submit", "draft", "submitted", "人员planner"),
        ("withdraw", "submitted", "draft", "人员planner"),
        ("submit", "draft", "submitted", "人员planner"),
        ("approve", "submitted", "approved", "人员leader"),
        ("paint", "approved", "painted", "人员planner"),
    ]
    assert all(e["at"] == APP_NOW.isoformat() for e in z["events"])  # Asia/Shanghai, like every time of the API
    # metadata edits keep the id and are logged with what changed
    r = call(world, "planner", "PATCH", f"{ZONES}/{zid}", json={"name": "东四北大街东侧", "fee_rule": "按标准收费"})
    assert r.status_code == 200 and r.json["id"] == zid
    assert r.json["events"][-1]["action"] == "edit"
    assert r.json["events"][-1]["changes"] == {
        "name": ["测试停车区", "东四北大街东侧"],
        "fee_rule": [None, "按标准收费"],
    }
    refused(call(world, "planner", "PATCH", f"{ZONES}/{zid}", json={"valid_from": "2026-12-01"}), 409, "start_date")
    r = act(world, "planner", zid, "retire", json={"note": "道路改造"})
    assert r.json["zone"]["status"] == "retired" and r.json["zone"]["valid_to"] == APP_NOW.date().isoformat()
    assert r.json["zone"]["events"][-1]["note"] == "道路改造"
    assert act(world, "planner", zid, "nonsense").status_code == 404


def test_a_draft_geometry_change_keeps_the_id(world):
    z = created(world, KERB_120)
    r = call(
        world, "planner", "PATCH", f"{ZONES}/{z['id']}", json={"geometry": KERB_50, "parking_angle": "perpendicular"}
    )
    assert r.status_code == 200 and r.json["id"] == z["id"] and r.json["capacity"] == 20
    assert r.json["events"][-1]["changes"]["geometry"] == "changed"
    assert {c["code"] for c in r.json["cells"]} == {"110101001001001"}
    # the geometry as the API gave it back is no change
    r = call(world, "planner", "PATCH", f"{ZONES}/{z['id']}", json={"geometry": r.json["geometry"]})
    assert r.status_code == 200 and len(r.json["events"]) == 2


def test_a_geometry_change_after_approval_makes_a_new_version_and_keeps_the_old(world):
    old = created(world, KERB_120, name="东四北大街", street_side="east", valid_from="2026-10-01")
    publish(world, old["id"], painted=True)
    longer = kerb(*KERB_120["coordinates"][0], NORTH, 150)
    r = call(world, "planner", "PATCH", f"{ZONES}/{old['id']}", json={"geometry": longer})
    assert r.status_code == 201, r.get_data(as_text=True)
    new = r.json
    assert new["id"] != old["id"] and new["prev_zone_id"] == old["id"] and new["status"] == "draft"
    assert new["zone_no"] == f"{old['zone_no']}-v2" and new["capacity"] == 25 and new["name"] == "东四北大街"
    assert r.headers["Location"].endswith(f"{ZONES}/{new['id']}")
    kept = call(world, "planner", "GET", f"{ZONES}/{old['id']}").json
    assert kept["status"] == "painted" and kept["valid_to"] is None and kept["next_zone_id"] == new["id"]
    assert kept["events"][-1]["action"] == "new_version" and kept["events"][-1]["changes"] == {"new_zone_id": new["id"]}
    # one pending version at a time
    refused(call(world, "planner", "PATCH", f"{ZONES}/{old['id']}", json={"geometry": KERB_50}), 409, "version_pending")
    # approving the version ends the old one the day it starts; both stay, linked
    publish(world, new["id"])
    kept = call(world, "planner", "GET", f"{ZONES}/{old['id']}").json
    new = call(world, "planner", "GET", f"{ZONES}/{new['id']}").json
    assert new["valid_from"] == kept["valid_to"] == APP_NOW.date().isoformat()
    assert kept["events"][-1]["action"] == "supersede"
    assert [v["id"] for v in new["versions"]] == [old["id"], new["id"]]
    current = call(world, "planner", "GET", ZONES).json["items"]
    assert [z["id"] for z in current] == [new["id"]]
    history = call(world, "planner", "GET", f"{ZONES}?history=true").json["items"]
    assert {z["id"] for z in history} == {old["id"], new["id"]}


def test_zone_is_assigned_to_every_cell_it_touches(world):
    z = created(world, KERB_120)
    shares = {c["code"]: c["share"] for c in z["cells"]}
    assert set(shares) == {"110101001001001", "110101001001003"} and sum(shares.values()) == pytest.approx(1, abs=1e-3)
    assert z["cell"]["code"] == max(shares, key=shares.get)
    assert z["cells"][0]["units"][0]["name"] == "东华门街道办事处"
    with world.engine.connect() as c:
        rows = c.execute(
            text("SELECT count(*) FROM feature_cells WHERE layer = 'parking_zones' AND feature_id = :i"), {"i": z["id"]}
        ).scalar()
    assert rows == 2


def test_the_change_log_is_append_only(world):
    z = created(world, KERB_50)
    for sql in (
        "UPDATE parking_zone_events SET actor = 'x'",
        "DELETE FROM parking_zone_events",
        "TRUNCATE parking_zone_events",
    ):
        # the app's role is granted none of these (as the owner, the table's trigger refuses them: append-only)
        with (
            pytest.raises(DBAPIError, match="permission denied for table parking_zone_events"),
            world.engine.begin() as c,
        ):
            c.execute(text(sql))
    with world.engine.connect() as c:
        assert (
            c.execute(text("SELECT count(*) FROM parking_zone_events WHERE zone_id = :z"), {"z": z["id"]}).scalar() == 1
        )


# ---------------------------------------------------------------- evidence and overview


def test_demand_evidence_for_a_drawn_zone(world):
    client, csrf = login(world, "planner")
    body = {"geometry": KERB_120, "parking_angle": "parallel", "distance_m": 100}
    r = client.post("/planner/preview", json=body, headers={"X-CSRFToken": csrf})
    assert r.status_code == 200, r.get_data(as_text=True)
    d = r.json
    assert d["measure"]["capacity_estimated"] == 20 and d["problems"] == [] and d["warnings"] == []
    ev = d["evidence"]
    assert ev["cases"] == 5 and len(ev["case_points"]) == 5  # the 120-day-old case and the 0102 one are left out
    assert {c["code"] for c in ev["cells"]} == {"110101001001001", "110101001001003"}
    assert ev["cells"][0]["units"][0]["duty"] == "territorial"
    near = created(world, KERB_50, parking_angle="perpendicular")
    publish(world, near["id"])
    ev = client.post("/planner/preview", json=body, headers={"X-CSRFToken": csrf}).json["evidence"]
    assert [z["zone_no"] for z in ev["zones"]] == [near["zone_no"]] and ev["capacity_nearby"] == 20
    ev = client.post("/planner/preview", json={**body, "distance_m": 5}, headers={"X-CSRFToken": csrf}).json["evidence"]
    assert ev["cases"] == 1  # the one on the kerb; the others are 8 m and more away
    # the rules show without saving
    d = client.post("/planner/preview", json={**body, "geometry": KERB_50}, headers={"X-CSRFToken": csrf}).json
    assert [p["rule"] for p in d["problems"]] == ["no_overlap"]
    d = client.post(
        "/planner/preview",
        json={**body, "geometry": {"type": "Point", "coordinates": [0, 0]}},
        headers={"X-CSRFToken": csrf},
    ).json
    assert d["problems"][0]["rule"] == "geometry_type" and d["measure"] is None


def test_overview_ranks_cells_by_cases_per_space(world):
    with world.engine.connect() as c:
        rows = demand.overview(c, now=APP_NOW)
    assert rows[0]["cases"] >= 1 and all(r["spaces"] == 0 for r in rows)
    before = {r["code"]: r for r in rows}
    z = created(world, KERB_50, parking_angle="perpendicular")  # 20 spaces in cell 001
    publish(world, z["id"])
    with world.engine.connect() as c:
        after = {r["code"]: r for r in demand.overview(c, now=APP_NOW)}
    assert after["110101001001001"]["spaces"] == 20
    assert after["110101001001001"]["cases_per_space"] == pytest.approx(
        before["110101001001001"]["cases"] / 21, abs=0.01
    )
    client, _ = login(world, "leader")
    page = client.get("/planner/overview").get_data(as_text=True)
    assert "110101001001001" in page and "每泊位案件" in page


# ---------------------------------------------------------------- the CDS feed


def test_cds_feed(world):
    draft = created(world, KERB_50, parking_angle="perpendicular")
    z = created(
        world,
        KERB_120,
        name="东四北大街",
        street_side="east",
        parking_angle="angled_60",
        street_name="东四北大街",
        valid_from="2026-10-01",
    )
    publish(world, z["id"], painted=True)
    r = world.app.test_client().get("/api/v1/curbs/zones")  # public, as CDS asks
    assert r.status_code == 200
    feed = r.json
    assert feed["time_zone"] == "Asia/Shanghai" and isinstance(feed["last_updated"], int)
    zones = feed["data"]["zones"]
    assert [c["user_zone_id"] for c in zones] == [z["zone_no"]]  # the draft is not published
    c = zones[0]
    assert c["curb_zone_id"] == cds.curb_zone_id(z["id"]) and re.fullmatch(r"[0-9a-f-]{36}", c["curb_zone_id"])
    assert (c["name"], c["street_name"], c["street_side"], c["parking_angle"], c["num_spaces"]) == (
        "东四北大街",
        "东四北大街",
        "E",
        "angled",
        41,
    )
    assert c["start_date"] == int(datetime(2026, 10, 1, tzinfo=TZ).timestamp() * 1000) and "end_date" not in c
    assert c["prev_curb_zone_ids"] == [] and c["last_updated_date"] == int(APP_NOW.timestamp() * 1000)
    assert c["geometry"]["type"] == "Polygon" and c["length"] == 12000 and c["width"] == 584
    # a new version: the old one keeps its id with an end date, the new one lists it as previous
    r = call(
        world, "planner", "PATCH", f"{ZONES}/{z['id']}", json={"geometry": kerb(*KERB_120["coordinates"][0], NORTH, 90)}
    )
    publish(world, r.json["id"])
    zones = {c["user_zone_id"]: c for c in world.app.test_client().get("/api/v1/curbs/zones").json["data"]["zones"]}
    old, new = zones[z["zone_no"]], zones[r.json["zone_no"]]
    assert old["end_date"] == new["start_date"] == int(datetime(2026, 10, 13, tzinfo=TZ).timestamp() * 1000)
    assert new["prev_curb_zone_ids"] == [old["curb_zone_id"]]
    later = int(datetime(2026, 11, 1, tzinfo=TZ).timestamp() * 1000)
    at_time = world.app.test_client().get(f"/api/v1/curbs/zones?time={later}&include_geometry=false").json
    assert [c["user_zone_id"] for c in at_time["data"]["zones"]] == [new["user_zone_id"]]
    assert "geometry" not in at_time["data"]["zones"][0]
    assert draft["id"] not in [c["curb_zone_id"] for c in zones.values()]


# ---------------------------------------------------------------- permissions


def login(w, username):
    """A test client logged in through the form; returns (client, CSRF token of its pages)."""
    client = login_client(w.app, username, PASSWORD)
    return client, page_csrf(client)


def test_only_planners_draw_and_only_leaders_and_admins_approve(world):
    for user in ("leader", "admin", "sup"):
        r = draw(world, KERB_50, user=user)
        assert r.status_code == 403 and "cannot draw" in r.json["error"]["message"], user
    z = created(world, KERB_50)
    assert call(world, "leader", "PATCH", f"{ZONES}/{z['id']}", json={"name": "x"}).status_code == 403
    assert act(world, "planner", z["id"], "submit").status_code == 200
    r = act(world, "planner", z["id"], "approve")
    assert r.status_code == 403 and "approve" in r.json["error"]["message"]
    assert act(world, "sup", z["id"], "approve").status_code == 403
    assert act(world, "leader", z["id"], "retire").status_code == 403  # a leader's one kind of write: approval
    r = act(world, "admin", z["id"], "approve")
    assert r.status_code == 200 and r.json["zone"]["status"] == "approved"
    assert r.json["zone"]["events"][-1]["role"] == "sysadmin"
    # reading: planners, leaders and admins; the others get the public feed only
    assert call(world, "leader", "GET", f"{ZONES}/{z['id']}").status_code == 200
    assert call(world, "sup", "GET", ZONES).status_code == 403
    assert world.app.test_client().get(ZONES).status_code == 401
    assert world.app.test_client().get("/api/v1/curbs/zones").status_code == 200
    r = world.app.test_client().get(ZONES, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401


def test_session_writes_need_the_csrf_token(world):
    client, csrf = login(world, "planner")
    body = {"name": "会话", "geometry": KERB_50, "parking_angle": "parallel"}
    r = client.post(ZONES, json=body)
    assert r.status_code == 400 and "CSRF" in r.get_data(as_text=True)
    assert client.post("/planner/preview", json={"geometry": KERB_50}).status_code == 400
    r = client.post(ZONES, json=body, headers={"X-CSRFToken": csrf})
    assert r.status_code == 201, r.get_data(as_text=True)
    zid = r.json["id"]
    assert client.patch(f"{ZONES}/{zid}", json={"name": "y"}).status_code == 400
    assert client.patch(f"{ZONES}/{zid}", json={"name": "y"}, headers={"X-CSRFToken": csrf}).status_code == 200
    assert client.post(f"{ZONES}/{zid}/actions/submit").status_code == 400
    assert client.post(f"{ZONES}/{zid}/actions/submit", headers={"X-CSRFToken": csrf}).status_code == 200
    # a bearer-token client sends no CSRF token
    assert draw(world, KERB_120).status_code == 201


def test_pages_by_role(world):
    for user, status in (("planner", 200), ("leader", 200), ("admin", 200), ("sup", 403)):
        client, _ = login(world, user)
        assert client.get("/planner").status_code == status, user
        assert client.get("/planner/overview").status_code == status, user
    client, _ = login(world, "leader")
    html = client.get("/planner").get_data(as_text=True)
    assert 'id="zone-form" autocomplete="off" hidden' in html
    assert world.app.test_client().get("/planner").status_code == 302  # to the login page


def test_a_body_nested_too_deeply_is_a_400_not_a_500(world):
    """100,000 nested [ made Python's JSON reader recurse out of stack: a 500; now it is a body that is not JSON."""
    client, csrf = login(world, "planner")
    r = client.post(ZONES, data="[" * 100_000, content_type="application/json", headers={"X-CSRFToken": csrf})
    assert r.status_code == 400 and "Traceback" not in r.get_data(as_text=True)
