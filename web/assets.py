"""Map assets from the app itself, never a CDN: Leaflet and plugins from node_modules, folium's own scripts.

Government intranets have no internet (DESIGN.md "Web"), so every script, stylesheet and image a map
page loads comes from this app:

- `/vendor/<npm package>/<file>`: an allowlisted file of a package that `make setup` (`npm ci`) put in
  `node_modules/` from package.json and its lock file;
- `/vendor/folium/<file>`: a script that ships inside the installed folium package (the HeatMap's
  patched leaflet_heat.min.js is not on npm);
- `/static/js/vectorgrid-click.js`: our fix for Leaflet.VectorGrid 1.3.0 on Leaflet 1.9 (PITFALLS.md).

This module is also the ONE place that points folium at those files: importing it replaces the CDN
defaults of folium.Map and of the plugins the pages use, and `offline(m)` guards a map so that
rendering it fails loudly, naming the culprit, if anything still points outside the app.
Hand-written Leaflet pages take their tags from `leaflet_urls()` / `leaflet_tags()`.

What the pages keep of folium's defaults: Leaflet, and jQuery (folium.Popup and keep_in_front call `$`).
Dropped: Bootstrap 5 and the Bootstrap 3 glyphicons (they would restyle our own pages),
Leaflet.awesome-markers, its rotate CSS and Font Awesome (so `folium.Icon` is refused: use
CircleMarker, DivIcon or plain markers). Drawing uses Leaflet-Geoman (free), not Leaflet.draw:
Geoman is maintained and built for Leaflet 1.9 (snapping, cutting, editing), while Leaflet.draw's
last release (1.0.4) is from 2018. d3 3.x is kept for branca colormap legends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path

import folium
from branca.element import CssLink, Element, Figure, JavascriptLink
from flask import (
    Blueprint,
    abort,
    current_app,
    has_app_context,
    has_request_context,
    request,
    send_file,
)
from folium import plugins
from folium.elements import JSCSSMixin
from markupsafe import Markup, escape

log = logging.getLogger(__name__)

bp = Blueprint("assets", __name__)


@dataclass(frozen=True)
class Package:
    """An npm package whose listed files the app serves (its version is the one in package.json)."""

    version: str
    files: tuple[str, ...]


# The allowlist: only these files are served, nothing else under node_modules/ (no listing, no
# traversal). The versions are package.json's exact pins; tests/test_assets.py fails when they differ.
PACKAGES: dict[str, Package] = {
    "leaflet": Package(
        "1.9.4",
        (
            "dist/leaflet.js",
            "dist/leaflet.js.map",
            "dist/leaflet.css",
            # leaflet.css refers to these (url(images/...)); Leaflet finds the marker icon through it
            "dist/images/layers.png",
            "dist/images/layers-2x.png",
            "dist/images/marker-icon.png",
            "dist/images/marker-icon-2x.png",
            "dist/images/marker-shadow.png",
        ),
    ),
    "jquery": Package("3.7.1", ("dist/jquery.min.js", "dist/jquery.min.map")),
    "leaflet.vectorgrid": Package("1.3.0", ("dist/Leaflet.VectorGrid.bundled.min.js",)),
    "leaflet.markercluster": Package(
        "1.5.3",
        (
            "dist/leaflet.markercluster.js",
            "dist/leaflet.markercluster.js.map",
            "dist/MarkerCluster.css",
            "dist/MarkerCluster.Default.css",
        ),
    ),
    "@geoman-io/leaflet-geoman-free": Package(
        "2.20.2",
        (
            "dist/leaflet-geoman.min.js",
            "dist/leaflet-geoman.min.js.map",
            "dist/leaflet-geoman.css",
            "dist/leaflet-geoman.css.map",
        ),
    ),
    "d3": Package("3.5.17", ("d3.min.js",)),
}

# Files served from the installed folium package's templates/ folder.
FOLIUM_FILES: tuple[str, ...] = ("leaflet_heat.min.js",)

# werkzeug adds "; charset=utf-8" to the text types itself
MIME_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".map": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}

# a versioned URL (?v=<its version>) never changes: browsers keep it a year; others revalidate daily
CACHE_VERSIONED = 365 * 24 * 3600
CACHE_PLAIN = 24 * 3600

NOT_INSTALLED = (
    "地图资源未安装：请在服务器上运行 make setup（npm ci）。"
    "The map assets are not installed: run `make setup` (npm ci) on the server."
)
VECTORGRID_CLICK = "/static/js/vectorgrid-click.js"


def node_modules() -> Path:
    """Where `npm ci` put the packages: app.config["GRIDMGR_NODE_MODULES"] or the checkout's node_modules/."""
    configured = current_app.config.get("GRIDMGR_NODE_MODULES") if has_app_context() else None
    return Path(configured) if configured else Path(__file__).resolve().parent.parent / "node_modules"


def folium_file(name: str) -> Path:
    """A file inside the installed folium package's templates/ folder."""
    return Path(str(resources.files("folium") / "templates" / name))


def _prefix() -> str:
    # an app mounted below a path (SCRIPT_NAME) serves /vendor there too
    return request.script_root if has_request_context() else ""


def vendor_url(package: str, path: str) -> str:
    """The app's URL of an allowlisted file (KeyError when it is not allowlisted)."""
    if package == "folium":
        if path not in FOLIUM_FILES:
            raise KeyError(f"folium/{path} is not in web/assets.py's FOLIUM_FILES")
        return f"{_prefix()}/vendor/folium/{path}?v={folium.__version__}"
    pkg = PACKAGES[package]
    if path not in pkg.files:
        raise KeyError(f"{package}/{path} is not in web/assets.py's PACKAGES allowlist")
    return f"{_prefix()}/vendor/{package}/{path}?v={pkg.version}"


def _static(path: str) -> str:
    return _prefix() + path


# --- hand-written Leaflet pages -----------------------------------------------------------------


@dataclass(frozen=True)
class AssetUrls:
    """The stylesheets and scripts a Leaflet page loads, in order."""

    css: list[str] = field(default_factory=list)
    js: list[str] = field(default_factory=list)


def _plugin_assets() -> dict[str, AssetUrls]:
    return {
        "vectorgrid": AssetUrls(
            [], [vendor_url("leaflet.vectorgrid", "dist/Leaflet.VectorGrid.bundled.min.js"), _static(VECTORGRID_CLICK)]
        ),
        "markercluster": AssetUrls(
            [
                vendor_url("leaflet.markercluster", "dist/MarkerCluster.css"),
                vendor_url("leaflet.markercluster", "dist/MarkerCluster.Default.css"),
            ],
            [vendor_url("leaflet.markercluster", "dist/leaflet.markercluster.js")],
        ),
        "geoman": AssetUrls(
            [vendor_url("@geoman-io/leaflet-geoman-free", "dist/leaflet-geoman.css")],
            [vendor_url("@geoman-io/leaflet-geoman-free", "dist/leaflet-geoman.min.js")],
        ),
        "heat": AssetUrls([], [vendor_url("folium", "leaflet_heat.min.js")]),
    }


PLUGINS = ("vectorgrid", "markercluster", "geoman", "heat")


def leaflet_urls(*plugin_names: str) -> AssetUrls:
    """Leaflet's CSS and JS URLs, then those of the named plugins (see PLUGINS), for a hand-written page."""
    urls = AssetUrls([vendor_url("leaflet", "dist/leaflet.css")], [vendor_url("leaflet", "dist/leaflet.js")])
    known = _plugin_assets()
    for name in plugin_names:
        if name not in known:
            raise KeyError(f"unknown map plugin {name!r}; gridmgr ships {', '.join(PLUGINS)}")
        urls.css.extend(known[name].css)
        urls.js.extend(known[name].js)
    return urls


def leaflet_tags(*plugin_names: str) -> Markup:
    """The <link> and <script> tags of `leaflet_urls(...)`, for a template's head."""
    urls = leaflet_urls(*plugin_names)
    tags = [f'<link rel="stylesheet" href="{escape(u)}">' for u in urls.css]
    tags += [f'<script src="{escape(u)}"></script>' for u in urls.js]
    return Markup("\n".join(tags))


# --- folium -----------------------------------------------------------------------------------


def _folium_defaults() -> dict[type, tuple[list, list]]:
    """(default_js, default_css) of each folium class the pages use, local URLs, folium's link names."""
    mc_js = [("markerclusterjs", vendor_url("leaflet.markercluster", "dist/leaflet.markercluster.js"))]
    mc_css = [
        ("markerclustercss", vendor_url("leaflet.markercluster", "dist/MarkerCluster.css")),
        ("markerclusterdefaultcss", vendor_url("leaflet.markercluster", "dist/MarkerCluster.Default.css")),
    ]
    return {
        folium.Map: (
            [
                ("leaflet", vendor_url("leaflet", "dist/leaflet.js")),
                ("jquery", vendor_url("jquery", "dist/jquery.min.js")),
            ],
            [("leaflet_css", vendor_url("leaflet", "dist/leaflet.css"))],
        ),
        plugins.VectorGridProtobuf: (
            [
                ("vectorGrid", vendor_url("leaflet.vectorgrid", "dist/Leaflet.VectorGrid.bundled.min.js")),
                ("vectorgrid_click", _static(VECTORGRID_CLICK)),
            ],
            [],
        ),
        plugins.HeatMap: ([("leaflet-heat.js", vendor_url("folium", "leaflet_heat.min.js"))], []),
        plugins.GeoMan: (
            [("leaflet_geoman_js", vendor_url("@geoman-io/leaflet-geoman-free", "dist/leaflet-geoman.min.js"))],
            [("leaflet_geoman_css", vendor_url("@geoman-io/leaflet-geoman-free", "dist/leaflet-geoman.css"))],
        ),
        plugins.MarkerCluster: (mc_js, mc_css),
        plugins.FastMarkerCluster: (mc_js, mc_css),
    }


# links that elements add by name while rendering (not through default_js): name -> local URL
def _named_links() -> dict[str, str]:
    return {"d3": vendor_url("d3", "d3.min.js")}  # branca's ColorMap legend (d3 3.5.x)


def _override_folium_defaults() -> None:
    """Replace the CDN defaults on the folium classes themselves (run once, at import)."""
    for cls, (js, css) in _folium_defaults().items():
        cls.default_js = list(js)
        cls.default_css = list(css)


_override_folium_defaults()

SUPPORTED = (
    "folium.Map",
    "VectorGridProtobuf",
    "HeatMap",
    "GeoMan",
    "MarkerCluster",
    "FastMarkerCluster",
    "branca colormaps",
)


class UnsupportedMapAsset(ValueError):
    """A map element needs an asset gridmgr does not serve (it would load from the internet or fail)."""


def offline(m: folium.Map) -> folium.Map:
    """Guard a folium map: its page loads only the app's own assets, or rendering raises UnsupportedMapAsset.

    The class defaults are already local (this module's import); the guard, run when the figure's
    header renders (after every element added its links), prefixes the app's mount point, maps the
    links that elements add by name (branca's d3) to local copies, and refuses anything else that
    points outside the app: an unsupported plugin, folium.Icon (awesome-markers are not shipped), or
    a tile layer other than a local one or the configured GRIDMGR_TILE_URL.
    """
    header = m.get_root().header
    if not getattr(header, "_gridmgr_offline", False):
        header.render = partial(_guarded_header_render, m, header, header.render)
        header._gridmgr_offline = True
    return m


def _guarded_header_render(m: folium.Map, header: Element, render, **kwargs) -> str:
    _check_elements(m.get_root())
    prefix, named = _prefix(), _named_links()
    for name, child in list(header._children.items()):
        if not isinstance(child, (JavascriptLink, CssLink)):
            continue
        url = child.url
        if name in named:
            child.url = named[name]
        elif _local(url):
            if prefix and not url.startswith(prefix + "/"):
                child.url = prefix + url
        else:
            raise UnsupportedMapAsset(
                f"map asset {name!r} points outside the app ({url}); gridmgr serves {', '.join(SUPPORTED)} "
                "offline: add the asset to web/assets.py (package.json, PACKAGES, _folium_defaults) or "
                "drop the element"
            )
    return render(**kwargs)


def _check_elements(root: Figure) -> None:
    config = current_app.config.get("GRIDMGR") if has_app_context() else None
    allowed_tiles = config.get("GRIDMGR_TILE_URL") if config is not None else None
    served = tuple(_folium_defaults())
    for el in _walk(root):
        if isinstance(el, folium.Icon):
            raise UnsupportedMapAsset(
                "folium.Icon needs Leaflet.awesome-markers and Font Awesome, which gridmgr does not ship: "
                "use folium.CircleMarker, folium.DivIcon or a plain folium.Marker"
            )
        url = (
            getattr(el, "tiles", None)
            if isinstance(el, folium.TileLayer)
            else (
                getattr(el, "url", None) if isinstance(el, (folium.WmsTileLayer, plugins.VectorGridProtobuf)) else None
            )
        )
        if isinstance(url, str) and not _local(url) and url != allowed_tiles:
            raise UnsupportedMapAsset(
                f"{type(el).__name__} loads {url} from outside the app: build maps with tiles=None and "
                "take the basemap from GRIDMGR_TILE_URL"
            )
        if isinstance(el, JSCSSMixin) and type(el) not in served:
            for _, url in [*el.default_js, *el.default_css]:
                if not _local(url):
                    raise UnsupportedMapAsset(
                        f"{type(el).__name__} loads {url}: gridmgr serves {', '.join(SUPPORTED)} offline; "
                        "add it to web/assets.py or use another element"
                    )


def _local(url: str) -> bool:
    return url.startswith("/") and not url.startswith("//")


def _walk(el: Element):
    yield el
    if isinstance(el, Figure):
        for part in (el.header, el.html, el.script):
            yield from _walk(part)
    for child in list(el._children.values()):
        yield from _walk(child)


# --- serving ----------------------------------------------------------------------------------


@bp.get("/vendor/<path:asset>")
def vendor(asset: str):
    """One allowlisted file of an npm package or of folium; 404 for anything else."""
    path = _allowlisted(asset)
    if path is None:
        abort(404)
    if not path.is_file():
        log.warning("map asset %s missing at %s: node_modules not installed?", asset, path)
        abort(503, description=NOT_INSTALLED)
    version = folium.__version__ if asset.startswith("folium/") else PACKAGES[_package_of(asset)].version
    versioned = request.args.get("v") == version
    resp = send_file(
        path,
        mimetype=MIME_TYPES.get(path.suffix, "application/octet-stream"),
        max_age=CACHE_VERSIONED if versioned else CACHE_PLAIN,
        conditional=True,
        etag=True,
    )
    resp.cache_control.public = True
    if versioned:
        resp.cache_control.immutable = True
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


def _package_of(asset: str) -> str | None:
    for name in PACKAGES:
        if asset.startswith(name + "/"):
            return name
    return None


def _allowlisted(asset: str) -> Path | None:
    """The file on disk for an allowlisted URL path, else None (the only way a path reaches the disk)."""
    if asset.startswith("folium/"):
        name = asset[len("folium/") :]
        return folium_file(name) if name in FOLIUM_FILES else None
    package = _package_of(asset)
    if package is None:
        return None
    rest = asset[len(package) + 1 :]
    if rest not in PACKAGES[package].files:
        return None
    return node_modules() / package / rest


@bp.app_template_global("leaflet_urls")
def _leaflet_urls_global(*plugin_names: str) -> AssetUrls:
    return leaflet_urls(*plugin_names)


@bp.app_template_global("leaflet_tags")
def _leaflet_tags_global(*plugin_names: str) -> Markup:
    return leaflet_tags(*plugin_names)
