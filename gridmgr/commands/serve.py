"""`gridmgr serve`: the web app on the production server (gunicorn), or Flask's reloader with --dev."""

from __future__ import annotations

import click
from sqlalchemy import text

from gridmgr.config import Config
from gridmgr.errors import ConfigError


def serve_app(host: str, port: int, *, dev: bool = False) -> None:
    """Check and migrate the database, then serve the app until stopped."""
    from gridmgr.db.engine import connect

    config = Config.from_env()
    engine = connect(config)  # start and migrate the embedded database before the first request
    base = f"http://{host}:{port}"
    # `/` opens the map (through the login); the figures of the grid moved to /overview
    how = "Flask's development server, reloading on changes" if dev else "gunicorn"
    click.secho(
        f"gridmgr serving on {base}/ — the map of the cells; figures: {base}/overview  ({how}; Ctrl-C to stop)",
        fg="green",
    )
    if dev:
        from gridmgr.web import create_app

        create_app(config).run(host=host, port=port, threaded=True, use_reloader=True)
        return
    from gridmgr.web import server

    with engine.connect() as conn:
        max_connections = int(conn.execute(text("SHOW max_connections")).scalar_one())
    try:
        server.run(config, host, port, max_connections)
    except ValueError as exc:  # a setting that does not fit: say which, never a traceback
        raise ConfigError(str(exc)) from None


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--dev", is_flag=True, help="Flask's development server with the reloader, for working on the code.")
def serve_cmd(host: str, port: int, dev: bool) -> None:
    """Serve the web app (gunicorn: GRIDMGR_WORKERS × GRIDMGR_THREADS; HUP reloads, TERM stops gracefully)."""
    serve_app(host, port, dev=dev)


COMMANDS = [serve_cmd]
