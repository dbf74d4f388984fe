"""Alembic migrations, installed as gridmgr.migrations: the only way the schema changes."""

if __name__ != "gridmgr.migrations":  # pragma: no cover - a second import name would load twice
    raise ImportError("import this package as gridmgr.migrations, not " + __name__)
