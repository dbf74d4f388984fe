"""Creating and dropping scratch databases on the tests' server (for tests that need an unmigrated one)."""

import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def create_empty_db(admin_url: str) -> str:
    """A new, empty database; returns its URL."""
    name = f"gm_empty_{uuid.uuid4().hex[:8]}"
    with create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_db(admin_url: str, url: str) -> None:
    """Drop a scratch database, closing its connections."""
    name = make_url(url).database
    with create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
