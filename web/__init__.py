"""The Flask app, installed as gridmgr.web: `create_app(config)` builds it; nothing runs at import."""

from __future__ import annotations

if __name__ != "gridmgr.web":  # pragma: no cover - `web.x` beside `gridmgr.web.x` loads modules twice
    raise ImportError("import this package as gridmgr.web, not " + __name__)

from flask import Flask

from gridmgr.config import Config


def create_app(config: Config | dict | None = None) -> Flask:
    """Build the app: settings, the database hook, languages, error pages and the blueprints."""
    if isinstance(config, dict):
        config = Config.from_env(**config)
    config = config or Config.from_env()
    app = Flask(__name__)
    app.config["GRIDMGR"] = config
    config.flag("GRIDMGR_CLOSE_ON_CHECK")  # a bad value stops the start, not the first passed check
    app.config["SECRET_KEY"] = config.secret_key()
    hops = config.number("GRIDMGR_PROXY_HOPS", low=0, high=5)
    if hops:  # the login throttle's address and the cookies' scheme are the client's, not nginx's
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.config["JSON_AS_ASCII"] = False
    # a report carries at most 4 photos of 5 MB: refuse larger bodies before CSRF reads the whole form
    app.config["MAX_CONTENT_LENGTH"] = 25 * 1024 * 1024

    from gridmgr.web import assets, auth, database, errors, headers, i18n, jsonbody, nav
    from gridmgr.web.views import home, sso

    jsonbody.init_app(app)
    database.init_app(app)
    i18n.init_app(app)
    errors.init_app(app)
    headers.init_app(app)
    auth.init_app(app)
    nav.init_app(app)
    from gridmgr.plugins import hooks

    # the core's pages, then each plug-in's (the `gridmgr_blueprints` hook: templates and scripts of their own)
    for blueprint in (home.bp, auth.bp, sso.bp, assets.bp, *_feature_blueprints(), *hooks.gather("gridmgr_blueprints")):
        app.register_blueprint(blueprint)
    from gridmgr.web.views import tiles

    tiles.serve_beside(app)  # tiles with a plain login skip Flask's request machinery (see there)
    from gridmgr.web import metrics

    metrics.init_app(app)  # outermost: counts the tiles' fast path too
    return app


def _feature_blueprints() -> list:
    """The audience blueprints (one module each), in the order their menus appear."""
    import importlib

    return [importlib.import_module(f"gridmgr.web.views.{name}").bp for name in FEATURE_MODULES]


# supervisor map, case pages, API, Open311, tiles, reports, security and audit: one module each (the layers bring their own)
FEATURE_MODULES = ("cases", "api", "open311", "maps", "tiles", "reports", "security")
