"""The offline asset layer: /vendor/ serves the allowlist only, and folium maps point at nothing else."""

import json
import re
from pathlib import Path

import folium
import pytest
from branca.colormap import LinearColormap
from flask import render_template_string
from folium import plugins

from gridmgr.web import assets, create_app

ROOT = Path(__file__).resolve().parent.parent
NO_DB = "postgresql+psycopg2://nobody@/none?host=/nonexistent&port=1"  # the asset routes need no database
CDN_WORDS = ("cdn", "unpkg", "jsdelivr", "cdnjs", "bootstrapcdn", "code.jquery", "fontawesome", "d3js.org")
MIME = {".js": "text/javascript", ".css": "text/css", ".map": "application/json", ".png": "image/png"}


@pytest.fixture
def app():
    app = create_app({"GRIDMGR_DATABASE_URL": NO_DB, "GRIDMGR_TILE_URL": None})
    if "assets" not in app.blueprints:  # until create_app registers it (see test_create_app_serves_assets)
        app.register_blueprint(assets.bp)
    return app


@pytest.fixture
def client(app):
    return app.test_client()


def all_assets():
    for package, pkg in assets.PACKAGES.items():
        for path in pkg.files:
            yield package, path
    for path in assets.FOLIUM_FILES:
        yield "folium", path


def test_create_app_serves_assets():
    app = create_app({"GRIDMGR_DATABASE_URL": NO_DB})
    assert "assets" in app.blueprints, "create_app must register gridmgr.web.assets.bp"


def test_allowlist_matches_package_json_and_lock():
    declared = json.loads((ROOT / "package.json").read_text())["dependencies"]
    assert declared == {name: pkg.version for name, pkg in assets.PACKAGES.items()}, (
        "package.json and web/assets.py PACKAGES disagree: update both (and re-check the file lists)"
    )
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    for name, pkg in assets.PACKAGES.items():
        assert lock[f"node_modules/{name}"]["version"] == pkg.version, name


def test_node_modules_installed_at_the_pinned_versions():
    for name, pkg in assets.PACKAGES.items():
        manifest = ROOT / "node_modules" / name / "package.json"
        assert manifest.is_file(), f"{manifest} missing: run `make setup` (npm ci)"
        assert json.loads(manifest.read_text())["version"] == pkg.version, f"{name}: run `make setup` (npm ci)"


@pytest.mark.parametrize("package,path", list(all_assets()))
def test_every_allowlisted_asset_is_served(client, package, path):
    url = assets.vendor_url(package, path)
    r = client.get(url)
    assert r.status_code == 200, f"{url}: {r.status_code} (run `make setup` if node_modules is missing)"
    assert r.mimetype == MIME[Path(path).suffix], url
    assert r.headers["Content-Type"].count("charset") <= 1, r.headers["Content-Type"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    cc = r.cache_control
    assert cc.public and cc.max_age == 365 * 24 * 3600 and cc.immutable, r.headers["Cache-Control"]
    source = assets.folium_file(path) if package == "folium" else ROOT / "node_modules" / package / path
    assert r.data == source.read_bytes()


def test_unversioned_url_revalidates_daily(client):
    r = client.get("/vendor/leaflet/dist/images/marker-icon.png")  # as leaflet.css refers to it
    assert r.status_code == 200 and r.mimetype == "image/png"
    assert r.cache_control.max_age == 24 * 3600 and not r.cache_control.immutable
    again = client.get("/vendor/leaflet/dist/images/marker-icon.png", headers={"If-None-Match": r.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(
    "url",
    [
        "/vendor/leaflet/../../etc/passwd",
        "/vendor/leaflet/%2e%2e/%2e%2e/etc/passwd",
        "/vendor/leaflet/dist/../../../setup.cfg",
        "/vendor/..%2f..%2fetc/passwd",
        "/vendor/leaflet//etc/passwd",
        "/vendor/leaflet/dist/",
        "/vendor/leaflet/dist",
        "/vendor/leaflet",
        "/vendor/",
        "/vendor/leaflet/package.json",
        "/vendor/leaflet/dist/leaflet-src.js",
        "/vendor/lodash/lodash.js",  # installed (a dependency) but not allowlisted
        "/vendor/nonexistent/x.js",
        "/vendor/folium/folium.py",
        "/vendor/folium/../folium.py",
        "/vendor/folium/pa7_hm.min.js",  # ships with folium, not used by the pages
    ],
)
def test_anything_else_is_404(client, url):
    r = client.get(url)
    assert r.status_code == 404, url
    assert b"root:" not in r.data and b"[metadata]" not in r.data


def test_missing_node_modules_is_a_clear_503_page(app, client, tmp_path):
    app.config["GRIDMGR_NODE_MODULES"] = str(tmp_path / "nothing-here")
    r = client.get(assets.vendor_url("leaflet", "dist/leaflet.js"))
    assert r.status_code == 503
    body = r.get_data(as_text=True)
    assert "make setup" in body and "Traceback" not in body
    assert client.get(assets.vendor_url("folium", "leaflet_heat.min.js")).status_code == 200  # from the package


def test_vectorgrid_click_fix_is_served(client):
    r = client.get("/static/js/vectorgrid-click.js")
    assert r.status_code == 200 and r.mimetype == "text/javascript"
    assert b"L.Canvas.Tile.include" in r.data


def test_folium_class_defaults_point_at_the_app():
    for cls, (js, css) in assets._folium_defaults().items():
        assert cls.default_js == js and cls.default_css == css, cls.__name__
        for _, url in [*js, *css]:
            assert url.startswith("/") and not url.startswith("//"), url


def full_map() -> folium.Map:
    """A map with everything the pages may use: vector tiles, heat, drawing, clusters, popups, a legend."""
    m = folium.Map(location=[39.9, 116.4], zoom_start=14, tiles=None, prefer_canvas=True)
    plugins.VectorGridProtobuf("/tiles/cells/{z}/{x}/{y}.pbf", "cells", {"interactive": True}).add_to(m)
    plugins.HeatMap([[39.9, 116.4, 1.0], [39.901, 116.401, 0.5]]).add_to(m)
    plugins.GeoMan().add_to(m)
    cluster = plugins.MarkerCluster().add_to(m)
    folium.Marker([39.9, 116.4], popup=folium.Popup("案件 &lt;1&gt;")).add_to(cluster)
    plugins.FastMarkerCluster([[39.902, 116.402]]).add_to(m)
    folium.CircleMarker([39.9, 116.4], radius=5, tooltip="网格").add_to(m)
    LinearColormap(["#ffffcc", "#bd0026"], vmin=0, vmax=10, caption="案件数").add_to(m)
    folium.LayerControl().add_to(m)
    return m


def test_offline_folium_map_has_no_external_url(app, client):
    html = assets.offline(full_map()).get_root().render()
    assert not re.search(r"https?://", html), re.findall(r"https?://\S+", html)
    assert not [u for u in re.findall(r'(?:src|href)="([^"]*)"', html) if u.startswith("//")]
    for word in CDN_WORDS:
        assert word not in html.lower(), word
    links = re.findall(r'<(?:script src|link rel="stylesheet" href)="([^"]+)"', html)
    assert len(links) == 12 and all(u.startswith(("/vendor/", "/static/")) for u in links), links
    for url in links:
        assert client.get(url).status_code == 200, url


def test_offline_prefixes_the_mount_point(app):
    with app.test_request_context("/", environ_overrides={"SCRIPT_NAME": "/gm"}):
        html = assets.offline(full_map()).get_root().render()
        urls = assets.leaflet_urls("vectorgrid")
    links = re.findall(r'<(?:script src|link rel="stylesheet" href)="([^"]+)"', html)
    assert links and all(u.startswith(("/gm/vendor/", "/gm/static/")) for u in links), links
    assert urls.js == [
        "/gm/vendor/leaflet/dist/leaflet.js?v=1.9.4",
        "/gm/vendor/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js?v=1.3.0",
        "/gm/static/js/vectorgrid-click.js",
    ]


def test_rendering_twice_and_by_parts(app):
    m = assets.offline(assets.offline(full_map()))
    fig = m.get_root()
    first = fig.render()
    fig.render()
    head = fig.header.render()
    assert "/vendor/leaflet/dist/leaflet.js" in head and "/vendor/leaflet/dist/leaflet.js" in first
    assert not re.search(r"https?://", head)


@pytest.mark.parametrize(
    "build,words",
    [
        (lambda m: None, "tiles=None"),  # default OSM basemap
        (lambda m: folium.Marker([39.9, 116.4], icon=folium.Icon(color="red")).add_to(m), "awesome-markers"),
        (lambda m: plugins.Draw().add_to(m), "Draw loads https://"),
        (lambda m: plugins.Fullscreen().add_to(m), "Fullscreen loads https://"),
        (
            lambda m: plugins.VectorGridProtobuf("https://tiles.example.com/{z}/{x}/{y}.pbf", "x").add_to(m),
            "VectorGridProtobuf loads https://tiles.example.com",
        ),
    ],
)
def test_offline_refuses_what_it_cannot_serve(build, words):
    m = folium.Map(location=[39.9, 116.4]) if words == "tiles=None" else folium.Map(tiles=None)
    build(m)
    with pytest.raises(assets.UnsupportedMapAsset, match=re.escape(words)):
        assets.offline(m).get_root().render()


def test_configured_basemap_is_allowed(app):
    url = "https://tiles.intranet.example/{z}/{x}/{y}.png"
    app.config["GRIDMGR"].values["GRIDMGR_TILE_URL"] = url
    m = folium.Map(location=[39.9, 116.4], tiles=None)
    folium.TileLayer(url, attr="内网底图").add_to(m)
    with app.app_context():
        html = assets.offline(m).get_root().render()
    assert url in html
    with pytest.raises(assets.UnsupportedMapAsset):  # without the app's setting it is an outside URL
        assets.offline(m).get_root().render()


def test_leaflet_urls_and_tags(app):
    urls = assets.leaflet_urls()
    assert urls.css == ["/vendor/leaflet/dist/leaflet.css?v=1.9.4"]
    assert urls.js == ["/vendor/leaflet/dist/leaflet.js?v=1.9.4"]
    everything = assets.leaflet_urls(*assets.PLUGINS)
    assert len(everything.js) == 6 and len(everything.css) == 4
    with pytest.raises(KeyError, match="draw"):
        assets.leaflet_urls("draw")
    with app.test_request_context("/"):
        html = render_template_string("{{ leaflet_tags('markercluster') }}|{{ leaflet_urls().js[0] }}")
    assert html.count("<script src=") == 2 and html.count('<link rel="stylesheet"') == 3
    assert html.endswith("|/vendor/leaflet/dist/leaflet.js?v=1.9.4")


@pytest.mark.parametrize(
    "raw",
    [
        "/vendor/leaflet/../../etc/passwd",
        "/vendor/leaflet/dist/../../../../etc/passwd",
        "/vendor/leaflet/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/vendor/folium/../__init__.py",
    ],
)
def test_traversal_over_real_http_is_404(app, raw):
    """The same through a real server, with the raw path on the wire (test clients may normalise it)."""
    import http.client

    from browser import serve

    with serve(app) as server:
        conn = http.client.HTTPConnection("127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=10)
        conn.putrequest("GET", raw, skip_accept_encoding=True)
        conn.endheaders()
        r = conn.getresponse()
        body = r.read()
        conn.close()
    assert r.status == 404 and b"root:" not in body and b"import" not in body
