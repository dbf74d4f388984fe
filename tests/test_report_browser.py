"""The report, hot-spot and dashboard pages in headless Chromium: offline (no request beyond 127.0.0.1), no
console or page error, something drawn; the table sorts and the choropleth legend arrives from the JSON."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from test_report_pages import NOW, add_case, t

from browser import (  # noqa: F401
    add_account,
    browser_fixture,
    live_app_fixture,
    live_server_fixture,
    login,
    page_fixture,
    screenshot,
    watch,
)
from support import insert_small_grid


def setup_live_app(app):
    """A fixed clock; and, while gridmgr.web.views.tiles is not registered, the cell tiles from gridmgr.maps.tiles."""
    app.config["GRIDMGR_NOW"] = NOW
    if any(str(r.rule).startswith("/tiles/") for r in app.url_map.iter_rules()):
        return

    def cell_tile(z, x, y):
        # a minimal stand-in for the `cells` MVT layer (code, unit) of gridmgr.web.views.tiles
        from flask import Response

        from gridmgr.web.database import engine

        with engine().connect() as conn:
            body = conn.execute(
                text("""
                SELECT ST_AsMVT(q, 'cells', 4096, 'g') FROM (
                  SELECT c.code, ST_AsMVTGeom(ST_Transform(c.geom, 3857), ST_TileEnvelope(:z, :x, :y), 4096, 64, true) AS g
                  FROM grid_cells c WHERE c.geom && ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326)) q
            """),
                {"z": int(z), "x": int(x), "y": int(y)},
            ).scalar()
        return Response(bytes(body or b""), mimetype="application/vnd.mapbox-vector-tile")

    app.add_url_rule("/tiles/cells/<z>/<x>/<y>.pbf", "t_cell_tile", cell_tile)


@pytest.fixture
def data(fresh_db):
    """The 2 × 2 grid, two squads and a few October cases, committed; a leader's account."""
    _, eng = fresh_db
    with eng.begin() as c:
        cells = insert_small_grid(c)
        units = {
            code: c.execute(
                text("INSERT INTO units (code, name, kind) VALUES (:c, :n, 'enforcement_squad') RETURNING id"),
                {"c": code, "n": name},
            ).scalar()
            for code, name in (("ZF01", "第一执法中队"), ("ZF02", "<b>第二</b>执法中队"))
        }
        cat = c.execute(text("SELECT code FROM categories WHERE kind = 'event' ORDER BY code LIMIT 1")).scalar()
        for day in (2, 6, 9, 13):
            add_case(c, cells["110101001001001"], cat, t(10, day), units["ZF01"])
        add_case(c, cells["110101001001004"], cat, t(10, 15), units["ZF02"], outcome="late")
    add_account(eng, "boss", "secret-pw", role="leader", name="领导")
    return cells


def sign_in(page):
    """Log in as the leader."""
    login(page, "boss", "secret-pw")


def test_report_page_offline(page, data, tmp_path):
    sign_in(page)
    page.goto("/reports?period=2026-10&level=unit&indicator=close_rate")
    page.wait_for_selector("#report-table tbody tr")
    assert "第一执法中队" in page.inner_text("#report-table")
    assert page.locator("#report-table b").count() == 0  # the unit name is text, not markup
    # sort by the name column, then back
    header = page.locator("#report-table thead th[data-key=name]")
    header.click()
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    if page.locator("#report-legend").count():
        page.wait_for_function("!document.getElementById('report-legend').textContent.includes('加载中')")
    shot = screenshot(page, tmp_path / "reports.png", full_page=True)
    assert not shot.blank
    watch(page).assert_clean()


def test_cell_report_and_map_offline(page, data, tmp_path):
    sign_in(page)
    page.goto("/reports?period=2026-10&level=cell&indicator=reported")
    if page.locator("#report-legend").count():  # the map needs the cell tiles (gridmgr.web.views.tiles)
        page.wait_for_selector(".leaflet-container")
        page.wait_for_function("!document.getElementById('report-legend').textContent.includes('加载中')")
        assert "上报数" in page.inner_text("#report-legend")
        page.wait_for_timeout(500)
        assert any("/tiles/cells/" in u for u in watch(page).requests)
        assert any("/reports/values.json" in u for u in watch(page).requests)
    shot = screenshot(page, tmp_path / "cells.png", full_page=True)
    assert not shot.blank
    watch(page).assert_clean()


def test_hotspots_page_offline(page, data, tmp_path):
    sign_in(page)
    page.goto("/hotspots?period=2026-10")
    page.wait_for_selector(".leaflet-container")
    if page.locator("#hot-legend").count():  # the choropleth needs the cell tiles (gridmgr.web.views.tiles)
        page.wait_for_function("!document.getElementById('hot-legend').textContent.includes('加载中')")
    assert "热点 99%" in page.inner_text("main")
    page.wait_for_selector(".leaflet-heatmap-layer")  # folium's HeatMap, from the local leaflet_heat asset
    shot = screenshot(page, tmp_path / "hotspots.png")
    assert not shot.blank
    assert any("/vendor/folium/leaflet_heat.min.js" in u for u in watch(page).requests)
    watch(page).assert_clean()


def test_dashboard_offline(page, data, tmp_path):
    sign_in(page)
    page.goto("/dashboard")
    assert page.locator(".card svg").count() == 4
    shot = screenshot(page, tmp_path / "dashboard.png", full_page=True)
    assert not shot.blank
    watch(page).assert_clean()
