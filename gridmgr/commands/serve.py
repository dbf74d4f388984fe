"""`gridmgr serve`: the web app."""

from __future__ import annotations

import click

from gridmgr.config import Config


def serve_app(host: str, port: int) -> None:
    """Check the database, then serve the app until interrupted."""
    from gridmgr.db.engine import connect
    from gridmgr.web import create_app

    config = Config.from_env()
    connect(config)  # start and migrate the embedded database before the first request
    app = create_app(config)
    base = f"http://{host}:{port}"
    # `/` opens the map (through the login); the figures of the grid moved to /overview
    click.secho(
        f"gridmgr serving on {base}/ — the map of the cells; figures: {base}/overview  (Ctrl-C to stop)", fg="green"
    )
    app.run(host=host, port=port, threaded=True, use_reloader=False)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve_cmd(host: str, port: int) -> None:
    """Serve the web app."""
    serve_app(host, port)


COMMANDS = [serve_cmd]
