"""The production server: gunicorn running the app in worker processes (HUP: graceful reload, TERM: graceful stop).

Each worker builds its own app and engines after the fork; the master only checks and migrates the
database first, then closes its connections, so no worker inherits a socket another process uses.
Everything the workers must agree on lives in PostgreSQL or in var/ (the secret key), not in a
worker's memory.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from gridmgr.config import Config
from gridmgr.db import engine as db_engine
from gridmgr.web import metrics  # imports no prometheus_client: the master sets its folder first

# a worker that answers nothing for this long is restarted; a long report export stays well inside it
TIMEOUT_S = 120
GRACEFUL_S = 30  # a reload or stop lets requests in flight finish for this long
RESERVED_CONNECTIONS = 10  # kept free for the CLI, the migrations and an operator's psql


class Server(BaseApplication):
    """gunicorn with its settings from gridmgr's, serving `create_app(config)` in every worker."""

    def __init__(self, config: Config, options: dict[str, Any]) -> None:
        self.config, self.options = config, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from gridmgr.web import create_app

        return create_app(self.config)


def options(config: Config, host: str, port: int) -> dict[str, Any]:
    """gunicorn's settings: threaded workers, timeouts, logs to stderr, no version in any header."""
    return {
        "bind": f"{host}:{port}",
        "workers": config.number("GRIDMGR_WORKERS", high=64),
        "worker_class": "gthread",
        "threads": config.number("GRIDMGR_THREADS", high=64),
        "timeout": TIMEOUT_S,
        "graceful_timeout": GRACEFUL_S,
        "keepalive": 5,
        "accesslog": "-",
        "errorlog": "-",
        "access_log_format": '%(h)s "%(r)s" %(s)s %(B)s %(M)sms',
        "proc_name": "gridmgr",
        # behind nginx on the same host: trust its X-Forwarded-* headers only from there
        "forwarded_allow_ips": "127.0.0.1,::1",
        # HUP and TERM do what an operator needs; a control socket in $HOME would clash between two servers
        "control_socket_disable": True,
        # a stopped worker's live gauges (requests in progress) leave the sum; its counts stay
        "child_exit": metrics.child_exit,
    }


def connections_needed(config: Config) -> int:
    """The most connections the workers' pools may open (two engines each: the app's and the tiles')."""
    per_engine = db_engine.POOL_SIZE + db_engine.POOL_OVERFLOW
    return config.number("GRIDMGR_WORKERS", high=64) * 2 * per_engine


def run(config: Config, host: str, port: int, max_connections: int) -> None:
    """Serve until stopped, after checking that the workers' pools fit the database's connections."""
    needed = connections_needed(config)
    if needed + RESERVED_CONNECTIONS > max_connections:
        raise ValueError(
            f"GRIDMGR_WORKERS={config.get('GRIDMGR_WORKERS')} may open {needed} database connections, "
            f"and the database allows {max_connections} (max_connections, {RESERVED_CONNECTIONS} kept free): "
            "use fewer workers or raise max_connections"
        )
    db_engine.dispose_all()  # the workers open their own after the fork
    # the workers inherit PROMETHEUS_MULTIPROC_DIR (a clean var/metrics) and share their counts there
    metrics.prepare_workers()
    Server(config, options(config, host, port)).run()
