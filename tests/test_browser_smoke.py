"""Chromium loads the map assets, a folium map and the login page from the app alone: nothing external."""

import folium
from branca.colormap import LinearColormap
from flask import Response, render_template_string, request
from folium import plugins
from markupsafe import Markup

from gridmgr.web import assets

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

# a 0.002° cell at the test grid's corner, and points inside and outside it
CELL = {
    "type": "Feature",
    "properties": {"code": "110101001001001"},
    "geometry": {
        "type": "Polygon",
        "coordinates": [
            [[116.400, 39.900], [116.402, 39.900], [116.402, 39.902], [116.400, 39.902], [116.400, 39.900]]
        ],
    },
}
INSIDE = (39.901, 116.401)
OUTSIDE = (39.9012, 116.4045)

LEAFLET_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>地图 Leaflet</title>
{{ tags }}
<style>html, body, #map { margin: 0; height: 100%; }</style></head>
<body><div id="map"></div>
<script>
  window.events = [];
  var map = L.map('map', {center: [39.901, 116.402], zoom: 16, maxZoom: 19});
  map.on('click', function () { events.push('map'); });
  L.marker([39.9035, 116.4010]).addTo(map);  // the default icon: leaflet.css finds its image
  var cells = L.vectorGrid.slicer({{ cell|tojson }}, {
    rendererFactory: L.canvas.tile, interactive: true, maxZoom: 19,
    vectorTileLayerStyles: {sliced: {fill: true, fillColor: '#3388ff', fillOpacity: 0.5, color: '#0050a0', weight: 2}}
  });
  cells.on('click', function (e) { events.push('cell:' + e.layer.properties.code); });
  cells.on('load', function () { window.ready = true; });
  cells.addTo(map);
</script></body></html>
"""


def setup_live_app(app):
    """Test-only pages (the map pages come later): plain Leaflet from leaflet_urls(), and a folium map."""
    if "assets" not in app.blueprints:  # until create_app registers it
        app.register_blueprint(assets.bp)

    def leaflet_page():
        urls = assets.leaflet_urls("vectorgrid")
        if request.args.get("nofix"):  # VectorGrid 1.3.0 as released, to show what the fix is for
            urls.js.remove("/static/js/vectorgrid-click.js")
        tags = "\n".join(
            [f'<link rel="stylesheet" href="{u}">' for u in urls.css]
            + [f'<script src="{u}"></script>' for u in urls.js]
        )
        return render_template_string(LEAFLET_PAGE, tags=Markup(tags), cell=CELL)

    def folium_page():
        m = folium.Map(
            location=[39.901, 116.401], zoom_start=16, tiles=None, prefer_canvas=True, maxZoom=19
        )  # with tiles=None folium drops max_zoom; MarkerCluster needs it
        plugins.VectorGridProtobuf("/_test/tiles/{z}/{x}/{y}.pbf", "cells", {"interactive": True}).add_to(m)
        plugins.HeatMap([[39.901, 116.401, 1.0], [39.9012, 116.4012, 0.8], [39.9005, 116.4003, 0.6]]).add_to(m)
        plugins.GeoMan().add_to(m)
        cluster = plugins.MarkerCluster().add_to(m)
        for i in range(5):
            folium.Marker([39.9 + i * 0.0004, 116.4 + i * 0.0004], popup=folium.Popup(f"案件 {i}")).add_to(cluster)
        folium.CircleMarker(INSIDE, radius=6, tooltip="网格 110101001001001").add_to(m)
        LinearColormap(["#ffffcc", "#bd0026"], vmin=0, vmax=10, caption="案件数 cases").add_to(m)
        folium.LayerControl().add_to(m)
        return assets.offline(m).get_root().render()

    app.add_url_rule("/_test/leaflet", "test_leaflet", leaflet_page)
    app.add_url_rule("/_test/folium", "test_folium", folium_page)
    # an empty vector tile is a valid one: the folium page's VectorGridProtobuf loads these
    app.add_url_rule(
        "/_test/tiles/<int:z>/<int:x>/<int:y>.pbf",
        "test_tile",
        lambda z, x, y: Response(b"", mimetype="application/x-protobuf"),
    )


def click_at(page, latlng):
    """Click the map at a lat/lon (through the real mouse, so the events take Leaflet's DOM path)."""
    x, y = page.evaluate("ll => { var p = map.latLngToContainerPoint(ll); return [p.x, p.y]; }", list(latlng))
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)


def test_leaflet_page_loads_offline(page, tmp_path):
    page.goto("/_test/leaflet")
    page.wait_for_function("window.ready === true")
    page.wait_for_load_state("networkidle")
    w = watch(page)
    assert any("/vendor/leaflet/dist/leaflet.js" in u for u in w.requests)
    assert any("/vendor/leaflet/dist/images/marker-icon.png" in u for u in w.requests)
    assert page.evaluate("L.version") == "1.9.4"
    shot = screenshot(page, tmp_path / "leaflet.png")
    assert not shot.blank and shot.colours > 10
    w.assert_clean()


def test_vector_tile_click_works_with_the_fix(page):
    page.goto("/_test/leaflet")
    page.wait_for_function("window.ready === true")
    click_at(page, INSIDE)
    click_at(page, OUTSIDE)
    events = page.evaluate("window.events")
    # the feature gets its click and the map still hears both (a map-level lookup works either way)
    assert events == ["cell:110101001001001", "map", "map"], events
    watch(page).assert_clean()


def test_vector_tile_click_crashes_without_the_fix(page):
    """Why web/static/js/vectorgrid-click.js exists: VectorGrid 1.3.0 calls fakeStop, gone in Leaflet 1.8."""
    w = watch(page)
    w.allow("fakeStop is not a function")  # expected here: the fixture would fail the test on it
    page.goto("/_test/leaflet?nofix=1")
    page.wait_for_function("window.ready === true")
    click_at(page, INSIDE)
    page.evaluate("0")  # a round trip, so the errors of the click have arrived
    assert any("fakeStop is not a function" in e for e in w.page_errors), w.page_errors
    assert page.evaluate("window.events") == []  # the crash also keeps the feature's click from firing


def test_folium_map_loads_offline(page, tmp_path):
    page.goto("/_test/folium")
    page.wait_for_load_state("networkidle")
    w = watch(page)
    for path in (
        "/vendor/leaflet/dist/leaflet.js",
        "/vendor/jquery/dist/jquery.min.js",
        "/vendor/leaflet.vectorgrid/",
        "/static/js/vectorgrid-click.js",
        "/vendor/folium/leaflet_heat.min.js",
        "/vendor/@geoman-io/leaflet-geoman-free/",
        "/vendor/leaflet.markercluster/",
        "/vendor/d3/d3.min.js",
        "/_test/tiles/16/",
    ):
        assert any(path in u for u in w.requests), path
    # every plugin is there, working: geoman's toolbar, the cluster's bubble, the heat canvas, the legend
    assert page.locator(".leaflet-pm-toolbar").count() >= 1
    assert page.locator(".marker-cluster").count() >= 1
    assert page.locator("canvas.leaflet-heatmap-layer").count() == 1
    assert page.locator(".legend").count() == 1
    page.locator(".marker-cluster").first.click()  # popups (jQuery) after the cluster opens
    shot = screenshot(page, tmp_path / "folium.png")
    assert not shot.blank and shot.colours > 10
    w.assert_clean()


def test_login_page_and_home_load_offline(page, fresh_db, tmp_path):
    page.goto("/login")
    shot = screenshot(page, tmp_path / "login.png")
    assert not shot.blank
    page.goto("/")
    assert page.locator("main").count() == 1
    add_account(fresh_db[1], "smoke", "smoke-password", role="supervisor", name="王监督")
    login(page, "smoke", "smoke-password")
    assert "王监督" in page.locator("header").inner_text()
    watch(page).assert_clean()


def test_wrong_password_is_refused(page, fresh_db):
    add_account(fresh_db[1], "smoke2", "right-password")
    try:
        login(page, "smoke2", "wrong-password")
    except AssertionError as exc:
        assert "用户名或密码错误" in str(exc)
    else:
        raise AssertionError("a wrong password logged in")


def test_cjk_text_renders_as_glyphs_not_boxes(page, tmp_path):
    """Without a CJK font every Chinese character is the same empty box (PITFALLS.md)."""
    page.goto("/login")
    distinct = page.evaluate("""() => {
        const draw = ch => {
            const c = document.createElement('canvas'); c.width = c.height = 40;
            const g = c.getContext('2d'); g.font = '32px sans-serif'; g.fillText(ch, 2, 34);
            return Array.from(g.getImageData(0, 0, 40, 40).data).join(',');
        };
        const glyphs = ['网', '格', '案', '件'].map(draw);
        return new Set(glyphs).size;
    }""")
    assert distinct == 4, "Chinese characters render as identical boxes: install fonts-noto-cjk (make setup)"
    screenshot(page, tmp_path / "login-cjk.png")
    watch(page).assert_clean()


def test_harness_blocks_and_reports_external_requests(browser, live_server):
    """The harness itself: a page reaching outside is stopped, recorded and fails assert_clean()."""
    context = browser.new_context(base_url=live_server.url)
    try:
        p = context.new_page()
        w = watch(p)
        p.set_content(f"""<img src="http://example.com/x.png"><script src="https://unpkg.com/leaflet"></script>
            <link rel="stylesheet" href="{live_server.url}/vendor/leaflet/dist/leaflet.css">
            <script>fetch('http://localhost.example.org/api').catch(function () {{}});</script>""")
        p.wait_for_load_state("networkidle")
        assert sorted(w.external) == [
            "http://example.com/x.png",
            "http://localhost.example.org/api",
            "https://unpkg.com/leaflet",
        ]
        assert any(u.endswith("/vendor/leaflet/dist/leaflet.css") for u in w.requests)
        try:
            w.assert_clean(console=False)
        except AssertionError as exc:
            assert "external request (blocked): https://unpkg.com/leaflet" in str(exc)
        else:
            raise AssertionError("assert_clean() let external requests through")
    finally:
        context.close()


def test_the_language_switch_in_chromium(page, fresh_db):
    """中文 | English are plain links; the choice stays with the browser, and the pages' scripts follow it."""
    add_account(fresh_db[1], "lang", "lang-password", role="supervisor", name="王监督")
    login(page, "lang", "lang-password")
    page.goto("/cases/new")
    assert page.locator("html").get_attribute("lang") == "zh-CN" and page.locator("h1").inner_text() == "上报案件"
    with page.expect_navigation():
        page.locator(".lang-switch a", has_text="English").click()
    assert page.url.endswith("/cases/new")  # the same page, without ?lang=
    assert page.locator("html").get_attribute("lang") == "en" and page.locator("h1").inner_text() == "Report a case"
    # the form's script writes its preview in the page's language (a point in no cell: the grid is empty)
    page.fill("input[name=lon]", "116.40")
    page.fill("input[name=lat]", "39.90")
    page.wait_for_function("document.getElementById('preview-body').textContent.includes('in no current cell')")
    assert "网格" not in page.inner_text("#preview-body")
    # remembered on the next page: the map's legend and search box, built by its scripts
    page.goto("/map")
    page.wait_for_selector("#map-legend summary")
    assert page.inner_text("#map-legend summary") == "Legend"
    assert page.get_attribute("#map-search-input", "placeholder") == "cell code, case no., lon,lat"
    page.wait_for_load_state("networkidle")
    with page.expect_navigation():
        page.locator(".lang-switch a", has_text="中文").click()
    page.wait_for_selector("#map-legend summary")
    assert page.inner_text("#map-legend summary") == "图例"
    watch(page).assert_clean()
