"""Alembic, driven from code: upgrade, downgrade and the current revision of a database.

The core's revisions are migrations/versions/; a plug-in that adds tables ships a version directory of
its own (the `gridmgr_migrations` hook), a branch whose first revision depends on the core's. A
database is then at several heads at once: `head()` and `current()` give them joined by commas.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

import gridmgr.migrations
from gridmgr.db import roles
from gridmgr.plugins import hooks


def alembic_config(connection: Connection | None = None) -> AlembicConfig:
    """An Alembic config pointing at our migrations, optionally bound to a connection."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(gridmgr.migrations.__file__).parent))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in version_locations()))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def version_locations() -> list[Path]:
    """The core's version directory and each plug-in's."""
    return [Path(gridmgr.migrations.__file__).parent / "versions", *hooks.gather("gridmgr_migrations")]


def _joined(revisions: tuple[str, ...] | list[str]) -> str | None:
    """The revisions that are no ancestor or dependency of another, sorted and joined by commas.

    Alembic's heads and a database's version table may differ on a revision another branch depends
    on (one lists it, the other not); both reduced this way compare equal when nothing is pending.
    """
    script = ScriptDirectory.from_config(alembic_config())

    def below(rev: str) -> set[str]:
        seen: set[str] = set()
        todo = [rev]
        while todo:
            sc = script.get_revision(todo.pop())
            if sc is None:
                continue
            for down in (*_tuple(sc.down_revision), *_tuple(sc.dependencies)):
                down_rev = script.get_revision(down)
                if down_rev is not None and down_rev.revision not in seen:
                    seen.add(down_rev.revision)
                    todo.append(down_rev.revision)
        return seen

    under = set().union(*(below(r) for r in revisions)) if revisions else set()
    return ",".join(sorted(r for r in revisions if r not in under)) or None


def _tuple(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def head() -> str | None:
    """The newest revisions the code knows: the core's head and each plug-in branch's, joined by commas."""
    return _joined(ScriptDirectory.from_config(alembic_config()).get_heads())


def current(engine: Engine) -> str | None:
    """The revisions a database is at, joined by commas (None when never migrated)."""
    with engine.connect() as conn:
        return _joined(MigrationContext.configure(conn).get_current_heads())


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Migrate a database up to a revision, in one transaction, and give the app role its grants on what is new."""
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
        roles.grant(conn)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate a database down to a revision, in one transaction."""
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), revision)
