"""The 门前三包 frontage layer, a plug-in of one folder: the demo's shops, the map, the reports, its rules' cases."""

from __future__ import annotations

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from gridmgr.analytics.accountability import Period, compute
from gridmgr.glossary import zh
from gridmgr.layers.frontage import contracts
from gridmgr.layers.frontage.demo import SETBACK_M, SHOPS
from gridmgr.maps import tiles
from gridmgr.plugins import hooks, registry
from gridmgr.web import create_app

from support import DEMO_ANCHOR, login_client, tile_at


@pytest.fixture(scope="module")
def demo(test_demo):
    return test_demo[1]


@pytest.fixture(scope="module")
def leader(test_demo):
    app = create_app({"GRIDMGR_DATABASE_URL": test_demo[0], "GRIDMGR_SECRET_KEY": "test-secret"})
    return login_client(app, "leader", "demo-leader")


def test_found_through_its_entry_point_with_its_own_migration_branch():
    layer = registry.get("frontage")
    assert layer.shares and layer.geometry_types == ("LINESTRING",) and "frontage" in tiles.tile_layers()
    assert registry.get("frontage_inspections").natural_key == "inspection_no"
    assert any(p.name == "versions" and (p / "f001_frontage.py").exists() for p in hooks.gather("gridmgr_migrations"))
    assert zh("four", "frontage_package") == "门前四包" and zh("orderly", "frontage_duty") == "秩序规范"
    public = next(c for c in hooks.gather("gridmgr_collections") if c.layer == "frontage").public_fields
    assert "owner" not in public and "owner_phone" not in public and "shop_name" in public


def test_demo_shops_face_the_demo_roads(demo):
    with demo.connect() as c:
        rows = c.execute(
            text("""
            SELECT f.contract_no, f.cell_id, f.package, ST_Length(f.geom::geography) AS m,
                   (SELECT min(ST_Distance(f.geom::geography, r.geom::geography)) FROM roads r
                    WHERE r.name = f.road) AS to_road,
                   (SELECT count(*) FROM feature_cells s WHERE s.layer = 'frontage' AND s.feature_id = f.id) AS shares
            FROM frontage_contracts f""")
        ).all()
        crossing = c.execute(
            text("""SELECT count(*) FROM frontage_contracts a JOIN frontage_contracts b
                    ON a.id < b.id AND ST_Intersects(a.geom, b.geom)""")
        ).scalar()
        inspected = c.execute(text("SELECT count(DISTINCT contract_id) FROM frontage_inspections")).scalar()
    assert len(rows) == SHOPS["test"] and crossing == 0
    assert all(r.cell_id is not None and r.shares >= 1 for r in rows)
    # each frontage lies along the road it names, set back from its centre line, 14 m of kerb
    assert all(r.to_road == pytest.approx(SETBACK_M, abs=1.0) for r in rows)
    assert all(r.m == pytest.approx(14, abs=0.5) for r in rows)
    assert {r.package for r in rows} == {"three", "four"} and inspected > len(rows) / 2


def test_the_rules_raised_what_the_data_says(demo):
    """One case per contract whose latest inspection failed, one per contract that ran out: no more."""
    with demo.connect() as c:
        failed = c.execute(
            text("""
            SELECT c.id FROM frontage_contracts c CROSS JOIN LATERAL (
                SELECT * FROM frontage_inspections f WHERE f.contract_id = c.id
                ORDER BY f.inspected_at DESC, f.id DESC LIMIT 1) f
            WHERE c.status = 'active' AND NOT (f.tidy IS NOT FALSE AND f.clean IS NOT FALSE
                  AND f.orderly IS NOT FALSE AND f.green IS NOT FALSE)""")
        ).scalars()
        expired = c.execute(
            text("SELECT id FROM frontage_contracts WHERE status = 'active' AND valid_until < :d"), {"d": DEMO_ANCHOR}
        ).scalars()
        raised = c.execute(
            text("""SELECT o.rule, o.feature_id, f.category_code, f.description, f.cell_id, c.cell_id AS shop_cell
                    FROM case_origins o JOIN cases f ON f.id = o.case_id
                    JOIN frontage_contracts c ON c.id = o.feature_id WHERE o.layer = 'frontage'""")
        ).all()
        failed, expired = sorted(failed), sorted(expired)
    by_rule = {
        rule: sorted(r.feature_id for r in raised if r.rule == rule)
        for rule in ("frontage_inspection_failed", "frontage_contract_expired")
    }
    assert by_rule == {"frontage_inspection_failed": failed, "frontage_contract_expired": expired}
    assert failed and expired  # the demo shows both
    assert {r.category_code for r in raised if r.rule == "frontage_inspection_failed"} == {"0504"}
    assert all(r.description.startswith(("门前三包检查不合格", "门前三包责任书已过期")) for r in raised)


def test_on_the_map_with_its_popup_and_its_tiles(demo, leader):
    with demo.connect() as c:
        shop = c.execute(
            text("""SELECT f.id, f.contract_no, f.shop_name, f.owner_phone, g.code,
                           ST_X(ST_LineInterpolatePoint(f.geom, 0.5)) AS lon,
                           ST_Y(ST_LineInterpolatePoint(f.geom, 0.5)) AS lat
                    FROM frontage_contracts f JOIN grid_cells g ON g.id = f.cell_id ORDER BY f.id LIMIT 1""")
        ).one()
    page = leader.get("/map").get_data(as_text=True)
    assert "门前三包" in page and "责任书过期" in page  # the layer and its flag in the legend
    popup = leader.get(f"/map/features/frontage/{shop.id}").get_json()
    values = {f["label"]: f["value"] for f in popup["fields"]}
    assert values["商户名称"] == shop.shop_name and shop.owner_phone not in str(popup)
    r = leader.get(tile_at("frontage", shop.lon, shop.lat, 17))
    assert r.status_code == 200
    found = [f["properties"] for f in mapbox_vector_tile.decode(r.data)["frontage"]["features"]]
    assert shop.contract_no in {p["contract_no"] for p in found}
    assert shop.shop_name in leader.get(f"/cells/{shop.code}").get_data(as_text=True)


def test_per_cell_metrics_in_the_reports(demo):
    with demo.connect() as c:
        rep = compute(c, period=Period.parse(f"{DEMO_ANCHOR:%Y-%m}"), level="cell", today=DEMO_ANCHOR)
        active = c.execute(text("SELECT count(*) FROM frontage_contracts WHERE status = 'active'")).scalar()
        expired = c.execute(
            text("SELECT count(*) FROM frontage_contracts WHERE status = 'active' AND valid_until < :d"),
            {"d": DEMO_ANCHOR},
        ).scalar()
    keys = {d.key for d in rep.definitions if d.kind == "inventory"}
    assert {m.name for m in contracts.CONTRACTS.metrics} <= keys
    assert sum(r["frontage_contracts"] or 0 for r in rep.rows) == active
    assert sum(r["frontage_expired"] or 0 for r in rep.rows) == expired
