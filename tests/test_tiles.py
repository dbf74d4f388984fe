"""Vector tiles: MVT content per layer and zoom, aggregation and the feature cap, filters, bad addresses,
login, ETags and the data version (bumped at commit, once per transaction, without holding a lock), and
the LRU tile cache."""

import math
import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import mapbox_vector_tile
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from gridmgr.errors import InputError
from gridmgr.maps import tiles
from gridmgr.people import accounts
from gridmgr.web import create_app

from support import SMALL_ORIGIN, SMALL_STEP, insert_small_grid, record_status

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 10, 13, 11, 0, tzinfo=TZ)
X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP
PASSWORD = "secret-pass"
CODES = [f"110101001001{i:03d}" for i in range(1, 5)]


def middle(seq: int, dx: float = 0.0, dy: float = 0.0) -> tuple[float, float]:
    """The middle of test cell 001 NW, 002 NE, 003 SW or 004 SE (moved by dx, dy degrees)."""
    i, j = {1: (0, 1), 2: (1, 1), 3: (0, 0), 4: (1, 0)}[seq]
    return X0 + (i + 0.5) * D + dx, Y0 + (j + 0.5) * D + dy


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    n = 2**z
    y = (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n
    return z, int((lon + 180) / 360 * n), int(y)


def url(layer: str, lon_lat=None, z: int = 17, query: str = "") -> str:
    # default: the tile of cell 003's middle; at z17 it holds the south half of the grid, a strip of its
    # north half, and every feature `build` makes (the grid straddles tile edges at z15–z17)
    z, x, y = tile_of(*(lon_lat or middle(3)), z)
    return f"/tiles/{layer}/{z}/{x}/{y}.pbf" + (f"?{query}" if query else "")


def decode(body: bytes) -> dict:
    return mapbox_vector_tile.decode(body, default_options={"y_coord_down": True})


def props(body: bytes, layer: str) -> list[dict]:
    return [f["properties"] for f in decode(body).get(layer, {}).get("features", [])]


def add_case(
    c,
    seq: int,
    *,
    status: str = "reported",
    category: str = "0102",
    days_ago: float = 1,
    deadline_in_h: float | None = None,
    dx: float = 0.0,
    dy: float = 0.0,
) -> int:
    lon, lat = middle(seq, dx, dy)
    reported = NOW - timedelta(days=days_ago)
    deadline = NOW + timedelta(hours=deadline_in_h) if deadline_in_h is not None else None
    return c.execute(
        text("""
        INSERT INTO cases (case_no, category_code, source, reported_at, status, deadline, geom, cell_id)
        VALUES (:no, :cat, 'supervisor', :at, :st, :dl, ST_SetSRID(ST_Point(:lon, :lat), 4326),
                (SELECT cell_id FROM cell_for(ST_SetSRID(ST_Point(:lon, :lat), 4326))))
        RETURNING id"""),
        {
            "no": uuid.uuid4().hex[:16],
            "cat": category,
            "at": reported,
            "st": status,
            "dl": deadline,
            "lon": lon,
            "lat": lat,
        },
    ).scalar()


def build(c) -> dict:
    """Grid, a territorial unit per cell, an account, cases, two billboards, a parking zone, a site."""
    cells = insert_small_grid(c)
    for k, (_code, cid) in enumerate(sorted(cells.items())):
        unit = c.execute(
            text("INSERT INTO units (code, name, kind) VALUES (:c, :n, 'street_office') RETURNING id"),
            {"c": f"JD0{k + 1}", "n": f"街道{k + 1}"},
        ).scalar()
        c.execute(text("INSERT INTO cell_units VALUES (:c, 'territorial', :u)"), {"c": cid, "u": unit})
    c.execute(text("INSERT INTO people (code, name, role) VALUES ('P1', '张三', 'staff')"))
    accounts.add_user(c, "viewer", "P1", "leader", PASSWORD)
    token = accounts.new_token(c, "viewer")
    c.execute(text("INSERT INTO people (code, name, role) VALUES ('P2', '李四', 'supervisor')"))
    accounts.add_user(c, "sup", "P2", "supervisor", PASSWORD)  # a supervisor of no cell at all
    cases = {
        "open": add_case(c, 3, status="dispatched", category="0102", deadline_in_h=5),
        "overdue": add_case(c, 4, status="dispatched", category="0201", deadline_in_h=-5),
        "closed": add_case(c, 3, status="closed", category="0102", days_ago=3, dy=0.0002),
        "old": add_case(c, 4, status="closed", category="0201", days_ago=60, dy=0.0002),  # before the window
    }
    for no, lon_lat, valid_to in (
        ("AD-1", middle(3, dy=-0.0002), "2026-10-01"),
        ("AD-2", middle(4, dy=-0.0002), "2027-10-01"),
    ):
        c.execute(
            text("""INSERT INTO billboards (ad_no, type, status, valid_to, geom)
                          VALUES (:no, 'wall', 'permitted', :vt, ST_SetSRID(ST_Point(:lon, :lat), 4326))"""),
            {"no": no, "vt": valid_to, "lon": lon_lat[0], "lat": lon_lat[1]},
        )
    (ax, ay), (bx, by) = middle(3), middle(4)
    c.execute(
        text(f"""INSERT INTO parking_zones (zone_no, name, parking_angle, status, capacity_estimated, geom)
                       VALUES ('PZ-1', '南街', 'parallel', 'painted', 10,
                               ST_GeomFromText('LINESTRING({ax} {ay}, {bx} {by})', 4326))""")
    )
    c.execute(
        text(f"""INSERT INTO construction_sites (permit_no, project_name, status, geom)
                       VALUES ('SG-1', '工地', 'active', ST_Multi(ST_Buffer(ST_SetSRID(ST_Point({ax}, {ay}), 4326),
                                                                            0.0002)))""")
    )
    return {"cells": cells, "cases": cases, "token": token, "sup_token": accounts.new_token(c, "sup")}


def _database(pg_admin_url: str, name: str) -> str:
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE gm_template'))
    admin.dispose()
    return make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def world(pg_admin_url, template_url):
    """One database for the read-only tests of this module: the built world, an app and a token client."""
    name = f"gm_tiles_{uuid.uuid4().hex[:8]}"
    db_url = _database(pg_admin_url, name)
    eng = create_engine(db_url)
    with eng.begin() as c:
        w = build(c)
    app = create_app({"GRIDMGR_DATABASE_URL": db_url, "GRIDMGR_SECRET_KEY": "test-secret"})
    app.config["GRIDMGR_NOW"] = NOW
    yield {**w, "app": app, "engine": eng, "url": db_url}
    eng.dispose()
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def get(w, path: str, **headers):
    return w["app"].test_client().get(path, headers={"Authorization": f"Bearer {w['token']}", **headers})


# ------------------------------------------------------------------------------------------ cells


def test_cell_tile_has_the_known_cells(world):
    r = get(world, url("cells"))
    assert r.status_code == 200 and r.mimetype == "application/vnd.mapbox-vector-tile"
    tile = decode(r.data)
    assert set(tile) == {"cells"}
    got = {p["code"]: p for p in props(r.data, "cells")}
    assert sorted(got) == CODES
    assert got[CODES[0]] == {"code": CODES[0], "community": "110101001001", "unit": "JD01"}
    assert got[CODES[3]]["unit"] == "JD04"
    # polygons in tile space: the NW cell lies up and to the left of the SE one
    boxes = {f["properties"]["code"]: f["geometry"]["coordinates"][0] for f in tile["cells"]["features"]}
    nw, se = boxes[CODES[0]], boxes[CODES[3]]
    assert max(x for x, _ in nw) <= min(x for x, _ in se) + 1 and max(y for _, y in nw) <= min(y for _, y in se) + 1


def test_low_zoom_cells_are_communities_then_streets(world):
    community = props(get(world, url("cells", z=12)).data, "communities")
    assert community == [{"code": "110101001001", "name": "test community", "cells": 4}]
    street = decode(get(world, url("cells", z=8)).data)
    assert list(street) == ["streets"]
    assert street["streets"]["features"][0]["properties"] == {"code": "110101001", "name": "test street", "cells": 4}


def test_too_many_cells_give_their_communities(world, monkeypatch):
    monkeypatch.setattr(tiles, "MAX_FEATURES", 3)
    app = create_app({"GRIDMGR_DATABASE_URL": world["url"]})  # a cache of its own
    app.config["GRIDMGR_NOW"] = NOW
    tile = decode(get({**world, "app": app}, url("cells", z=15)).data)
    assert list(tile) == ["communities"] and tile["communities"]["features"][0]["properties"]["cells"] == 4


def test_world_scale_tiles(world):
    for z, x, y in ((0, 0, 0), (1, 1, 0), (2, 3, 1)):
        for layer in tiles.tile_layers():
            assert get(world, f"/tiles/{layer}/{z}/{x}/{y}.pbf").status_code == 200
        # the buffer of a tile at the world's edge stays on the world: the points are found
        assert {p["ad_no"] for p in props(get(world, f"/tiles/billboards/{z}/{x}/{y}.pbf").data, "billboards")} == {
            "AD-1",
            "AD-2",
        }
        counts = decode(get(world, f"/tiles/cases/{z}/{x}/{y}.pbf?period=2026").data)["cases_counts"]["features"]
        assert sum(f["properties"]["count"] for f in counts) == 4


def test_empty_tile_elsewhere(world):
    r = get(world, url("cells", (100.0, 30.0), z=15))
    assert r.status_code == 200 and r.data == b"" and decode(r.data) == {}


# ------------------------------------------------------------------------------------------ cases


def test_case_points_carry_minimal_attributes(world):
    got = {p["id"]: p for p in props(get(world, url("cases")).data, "cases")}
    ids = world["cases"]
    assert set(got) == {ids["open"], ids["overdue"], ids["closed"]}  # "old" is outside the 30-day window
    assert got[ids["open"]] == {"id": ids["open"], "category": "0102", "status": "dispatched", "overdue": False}
    assert got[ids["overdue"]]["overdue"] is True
    assert got[ids["closed"]]["overdue"] is False


def test_the_same_tiles_for_every_user(world):
    for path in (url("cases"), url("cases", z=13), url("cells"), url("billboards")):
        mine = get(world, path).data
        theirs = world["app"].test_client().get(path, headers={"Authorization": f"Bearer {world['sup_token']}"})
        assert mine and theirs.data == mine and theirs.headers["ETag"] == get(world, path).headers["ETag"]


def test_case_filters(world):
    ids = world["cases"]

    def found(query: str) -> set[int]:
        r = get(world, url("cases", query=query))
        assert r.status_code == 200, r.data
        return {p["id"] for p in props(r.data, "cases")}

    assert found("status=closed") == {ids["closed"]}
    assert found("status=closed,dispatched&category=0201") == {ids["overdue"]}
    assert found("category=0102&category=0201") == {ids["open"], ids["overdue"], ids["closed"]}
    assert found("period=2026") == set(ids.values())
    assert found("period=2026-08-01/2026-08-31") == {ids["old"]}
    assert found("overdue=true") == {ids["overdue"]}
    assert found("overdue=false&status=dispatched") == {ids["open"]}
    assert found("unknown=1") == {ids["open"], ids["overdue"], ids["closed"]}  # other parameters: ignored
    for bad in ("status=lost", "category=xyz", "period=2026-13", "overdue=maybe"):
        assert get(world, url("cases", query=bad)).status_code == 400, bad


def test_low_zoom_cases_are_counts(world):
    for z in (14, 12, 5):
        tile = decode(get(world, url("cases", z=z, query="period=2026")).data)
        assert list(tile) == ["cases_counts"]
        feats = tile["cases_counts"]["features"]
        assert sum(f["properties"]["count"] for f in feats) == 4
        assert sum(f["properties"]["overdue"] for f in feats) == 1
        assert all(f["geometry"]["type"] == "Point" for f in feats) and len(feats) <= tiles.BINS**2
    # at z5 all four fall into one square
    assert len(decode(get(world, url("cases", z=5, query="period=2026")).data)["cases_counts"]["features"]) == 1


def test_a_crowded_tile_turns_into_counts_under_the_cap(fresh_db):
    _, eng = fresh_db
    with eng.begin() as c:
        w = build(c)
        n = tiles.MAX_FEATURES + 50
        c.execute(
            text("""
            INSERT INTO cases (case_no, category_code, source, reported_at, status, geom)
            SELECT 'N' || g, '0102', 'supervisor', :at, 'reported',
                   ST_SetSRID(ST_Point(:x + (g % 50) * :d / 60, :y + (g / 50) * :d / 60), 4326)
            FROM generate_series(1, :n) g"""),
            {"at": NOW - timedelta(hours=1), "x": X0 + 0.3 * D, "y": Y0 + D / 10, "d": D, "n": n},
        )
    app = create_app({"GRIDMGR_DATABASE_URL": fresh_db[0]})
    app.config["GRIDMGR_NOW"] = NOW
    client = app.test_client()
    r = client.get(url("cases"), headers={"Authorization": f"Bearer {w['token']}"})
    tile = decode(r.data)
    assert list(tile) == ["cases_counts"]
    feats = tile["cases_counts"]["features"]
    assert len(feats) <= tiles.MAX_FEATURES
    assert sum(f["properties"]["count"] for f in feats) == n + 3  # every crowded case counted, and build's 3
    # further in, a tile holds fewer than the cap: points again
    z, x, y = tile_of(X0 + 0.3 * D, Y0 + D / 10, 21)
    r = client.get(f"/tiles/cases/{z}/{x}/{y}.pbf", headers={"Authorization": f"Bearer {w['token']}"})
    assert list(decode(r.data)) == ["cases"] and len(props(r.data, "cases")) <= tiles.MAX_FEATURES


# ------------------------------------------------------------------------------------ other layers


def test_billboards_carry_the_expired_flag(world):
    got = {p["ad_no"]: p for p in props(get(world, url("billboards")).data, "billboards")}
    assert set(got) == {"AD-1", "AD-2"}
    assert got["AD-1"]["expired"] is True and got["AD-2"]["expired"] is False
    assert set(got["AD-1"]) == {"id", "ad_no", "status", "expired"}


def test_parking_zones_and_construction_sites(world):
    assert [(p["zone_no"], p["status"]) for p in props(get(world, url("parking_zones")).data, "parking_zones")] == [
        ("PZ-1", "painted")
    ]
    assert [(p["permit_no"], p["status"]) for p in props(get(world, url("construction")).data, "construction")] == [
        ("SG-1", "active")
    ]
    assert get(world, url("parking_spaces")).status_code == 200
    assert get(world, url("parking_zones", z=10)).data == b""  # lines and polygons start at LAYER_MIN_ZOOM


# ----------------------------------------------------------------------------- addresses and login


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/cells/abc/0/0.pbf",
        "/tiles/cells/3/8/0.pbf",
        "/tiles/cells/3/0/8.pbf",
        "/tiles/cells/-1/0/0.pbf",
        "/tiles/cells/25/0/0.pbf",
        "/tiles/cells/3/1.5/0.pbf",
        "/tiles/cells/3/ 1/0.pbf",
        "/tiles/cases/99999999999999999999/0/0.pbf",
    ],
)
def test_bad_addresses_are_400(world, path):
    assert get(world, path).status_code == 400


def test_unknown_layer_is_404(world):
    assert get(world, "/tiles/site_inspections/1/0/0.pbf").status_code == 404
    assert get(world, "/tiles/nope/1/0/0.pbf").status_code == 404


def test_login_required(world):
    client = world["app"].test_client()
    r = client.get(url("cells"))
    assert r.status_code == 401 and r.mimetype != tiles.MEDIA_TYPE  # no tile for nobody
    assert client.get(url("cells"), headers={"Authorization": "Bearer wrong"}).status_code == 401
    # a session login (the maps' own requests) is enough
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    r = client.post("/login", data={"username": "viewer", "password": PASSWORD, "csrf_token": csrf})
    assert r.status_code == 302
    assert client.get(url("cells")).status_code == 200


# ---------------------------------------------------------------------------- ETags, versions, cache


def test_headers_etag_and_304(world):
    r = get(world, url("cells"))
    assert r.headers["Cache-Control"].split(",")[0] == "private"
    etag = r.headers["ETag"]
    assert etag and get(world, url("cells")).headers["ETag"] == etag
    r304 = get(world, url("cells"), **{"If-None-Match": etag})
    assert r304.status_code == 304 and r304.data == b"" and r304.headers["ETag"] == etag
    # another tile, filter or layer: another ETag
    assert get(world, url("cells", z=16)).headers["ETag"] != etag
    a = get(world, url("cases", query="status=closed")).headers["ETag"]
    assert a != get(world, url("cases")).headers["ETag"]
    assert a == get(world, url("cases", query="status=closed&_=123")).headers["ETag"]


def test_repeated_tile_comes_from_the_cache(world):
    first = get(world, url("cells", z=15))
    cache = world["app"].extensions["gridmgr.tile_cache"]
    hits = cache.hits
    again = get(world, url("cells", z=15))
    assert again.data == first.data and again.headers["ETag"] == first.headers["ETag"] and cache.hits == hits + 1
    with world["engine"].connect() as c:  # the cached copy is the one the database would make
        assert (
            tiles.render(
                c,
                tiles.parse_tile(
                    "cells", *url("cells", z=15).split("/")[3:5], url("cells", z=15).split("/")[5][:-4], {}, NOW
                ),
            )
            == first.data
        )


def test_no_cache_when_turned_off(world):
    app = create_app({"GRIDMGR_DATABASE_URL": world["url"]})
    app.config.update(GRIDMGR_NOW=NOW, GRIDMGR_TILE_CACHE_BYTES=0)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {world['token']}"}
    first = client.get(url("cells"), headers=auth)
    assert client.get(url("cells"), headers=auth).data == first.data
    assert len(app.extensions["gridmgr.tile_cache"]) == 0


def version(eng, layer: str) -> int:
    with eng.connect() as c:
        return tiles.data_version(c, layer)


def test_a_change_gives_a_new_version_etag_and_tile(fresh_db):
    db_url, eng = fresh_db
    with eng.begin() as c:
        w = build(c)
    app = create_app({"GRIDMGR_DATABASE_URL": db_url})
    app.config["GRIDMGR_NOW"] = NOW
    client = app.test_client()
    auth = {"Authorization": f"Bearer {w['token']}"}
    before = client.get(url("cases"), headers=auth)
    v0 = version(eng, "cases")
    with eng.begin() as c:
        record_status(c, w["cases"]["open"], "closed")
        c.execute(text("UPDATE cases SET status = 'closed' WHERE id = :i"), {"i": w["cases"]["open"]})
    assert version(eng, "cases") == v0 + 1
    after = client.get(url("cases"), headers=auth)
    assert after.headers["ETag"] != before.headers["ETag"]
    assert {p["id"]: p["status"] for p in props(after.data, "cases")}[w["cases"]["open"]] == "closed"
    assert client.get(url("cases"), headers={**auth, "If-None-Match": before.headers["ETag"]}).status_code == 200
    # the cell tiles follow their units, communities and cells
    v = version(eng, "cells")
    with eng.begin() as c:
        c.execute(text("UPDATE units SET code = 'JD99' WHERE code = 'JD01'"))
    assert version(eng, "cells") == v + 1
    units = {p["code"]: p["unit"] for p in props(client.get(url("cells"), headers=auth).data, "cells")}
    assert units[CODES[0]] == "JD99"


def test_versions_count_transactions_not_statements(fresh_db, as_owner):
    db_url, eng = fresh_db
    with eng.begin() as c:
        build(c)
    v = {layer: version(eng, layer) for layer in ("cases", "billboards", "cells", "parking_zones")}
    with eng.begin() as c:  # insert, update, delete in two layers: one step each
        add_case(c, 1)
        c.execute(text("UPDATE cases SET urgency = 'urgent'"))
        c.execute(text("DELETE FROM billboards WHERE ad_no = 'AD-2'"))
    assert version(eng, "cases") == v["cases"] + 1 and version(eng, "billboards") == v["billboards"] + 1
    assert version(eng, "cells") == v["cells"] and version(eng, "parking_zones") == v["parking_zones"]
    with eng.connect() as c:  # rolled back: no change
        tx = c.begin()
        c.execute(text("DELETE FROM billboards"))
        tx.rollback()
    assert version(eng, "billboards") == v["billboards"] + 1
    with eng.begin() as c:  # a savepoint rolled back takes its note with it; the rest still counts
        with c.begin_nested() as sp:
            c.execute(text("DELETE FROM parking_zones"))
            sp.rollback()
        c.execute(text("UPDATE construction_sites SET status = 'finished'"))
    assert version(eng, "parking_zones") == v["parking_zones"]
    with create_engine(as_owner(db_url)).begin() as c:  # TRUNCATE is the owner's (the app role has no grant)
        c.execute(text("TRUNCATE billboards"))
    assert version(eng, "billboards") == v["billboards"] + 2
    with eng.connect() as c:
        assert c.execute(text("SELECT count(*) FROM layer_version_pending")).scalar() == 0


def test_a_long_writer_does_not_block_others(fresh_db):
    """The version row is locked only at commit: an open import blocks no other writer of the layer."""
    _, eng = fresh_db
    with eng.begin() as c:
        build(c)
    v = version(eng, "cases")
    with eng.connect() as long:
        long.begin()
        add_case(long, 1)  # an import in progress
        with eng.begin() as other:
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            try:
                add_case(other, 2)
            except OperationalError as exc:  # pragma: no cover - the failure this test is about
                pytest.fail(f"a second writer waited for the first: {exc}")
        assert version(eng, "cases") == v + 1
        long.commit()
    assert version(eng, "cases") == v + 2


# ---------------------------------------------------------------------------------- the LRU cache


def test_cache_is_lru_bounded_by_bytes():
    entry = tiles.TileCache.ENTRY_OVERHEAD + 1 + 40  # a one-letter key and 40 bytes
    cache = tiles.TileCache(max_bytes=2 * entry + 10)
    cache.put("a", 1, b"x" * 40)
    cache.put("b", 1, b"y" * 40)
    assert cache.get("a") == (1, b"x" * 40)  # a is now the most recently used
    cache.put("c", 1, b"z" * 40)  # over the bound: b goes
    assert cache.get("b") is None and cache.get("a") and cache.get("c")
    assert cache.bytes == 2 * entry and len(cache) == 2
    cache.put("huge", 1, b"h" * 1000)  # larger than the whole cache: not kept, nothing evicted
    assert cache.get("huge") is None and len(cache) == 2
    cache.put("a", 2, b"x")  # a new version replaces the entry and counts its new size
    assert cache.get("a") == (2, b"x") and cache.bytes == 2 * entry - 39
    empty = tiles.TileCache(max_bytes=10 * tiles.TileCache.ENTRY_OVERHEAD)
    for i in range(100):  # empty tiles count too
        empty.put(f"t{i}", 1, b"")
    assert len(empty) < 10


def test_etag_names_tile_and_version():
    a, b = tiles.etag("cells/1/0/0", 7), tiles.etag("cells/1/0/1", 7)
    assert a != b and a != tiles.etag("cells/1/0/0", 8)
    assert tiles.etag_versions("cells/1/0/0", [a, b, "junk", tiles.etag("cells/1/0/0", 12)]) == [7, 12]


def test_parse_zxy():
    assert tiles.parse_zxy("0", "0", "0") == (0, 0, 0)
    assert tiles.parse_zxy("17", "107907", "49703") == (17, 107907, 49703)
    for bad in (("1", "2", "0"), ("x", "0", "0"), ("25", "0", "0"), ("1", "-1", "0")):
        with pytest.raises(InputError):
            tiles.parse_zxy(*bad)
