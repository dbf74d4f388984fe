"""Engines and sessions; the embedded cluster or GRIDMGR_DATABASE_URL; migrate-when-needed."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from gridmgr.config import Config
from gridmgr.db import migrate
from gridmgr.db.cluster import Cluster
from gridmgr.errors import DatabaseUnavailable, NotMigrated
from gridmgr.paths import var_dir


def embedded_cluster() -> Cluster:
    """The user's private cluster under var/pg/."""
    return Cluster(var_dir() / "pg")


def database_url(config: Config, *, start: bool = True) -> str:
    """The app's URL: GRIDMGR_DATABASE_URL, else the embedded cluster as the app role (started when asked)."""
    if config.database_url:
        return config.database_url
    cluster = embedded_cluster()
    if start:
        cluster.start()
    return cluster.url()


def owner_url(config: Config) -> str:
    """The URL migrations run with: GRIDMGR_OWNER_URL, else GRIDMGR_DATABASE_URL, else the embedded owner."""
    given = config.get("GRIDMGR_OWNER_URL") or config.database_url
    if given:
        return given
    cluster = embedded_cluster()
    cluster.start()
    return cluster.owner_url()


# the server checks every 2 s that the client is still there: a killed CLI's backend stops its
# statement and rolls back at once instead of finishing a long INSERT first
CONNECT_ARGS = {"options": "-c client_connection_check_interval=2000"}


# connections per engine: a server worker's threads each hold at most one of each pool at a time
POOL_SIZE, POOL_OVERFLOW = 5, 5
_made: list[Engine] = []


def _engine(url: str, **kw: Any) -> Engine:
    engine = create_engine(
        url, future=True, connect_args=CONNECT_ARGS, pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW, **kw
    )
    _made.append(engine)
    return engine


def dispose_all() -> None:
    """Close every pooled connection of this process (before a server forks its workers, which open their own)."""
    for engine in _made:
        engine.dispose()


@functools.lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One pooled engine per URL for the life of the process."""
    return _engine(url, pool_pre_ping=True)


@functools.lru_cache(maxsize=8)
def read_engine_for(url: str) -> Engine:
    """A second pool on the same URL for one-statement reads (map tiles): autocommit, no pre-ping.

    Each statement is its own snapshot, so a transaction would only add BEGIN/ROLLBACK round trips;
    and the pre-ping's round trip costs as much as a small tile's overhead, so its callers instead
    retry once on a connection found lost (`is_disconnect`), which is what the ping would have caught.
    """
    return _engine(url, pool_pre_ping=False, isolation_level="AUTOCOMMIT")


def connect(config: Config, *, migrate_if_needed: bool = True) -> Engine:
    """An engine on a database whose schema matches the code.

    The embedded database migrates itself; an external one is never migrated implicitly.
    """
    url = database_url(config)
    engine = engine_for(url)
    try:
        rev = migrate.current(engine)
    except OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach the database: {exc.orig}".strip()) from exc
    if rev != migrate.head():
        if config.database_url and migrate_if_needed:
            raise NotMigrated(
                f"the database is at revision {rev or 'none'}, the code needs {migrate.head()}: "
                "run `gridmgr db migrate`"
            )
        if migrate_if_needed:
            owner = create_engine(owner_url(config), poolclass=NullPool)
            migrate.upgrade(owner)
            owner.dispose()
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on error."""
    with Session(engine) as session, session.begin():
        yield session


def ping(engine: Engine) -> None:
    """Raise DatabaseUnavailable unless the database answers."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise DatabaseUnavailable("the database does not answer") from exc
