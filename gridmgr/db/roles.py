"""Least privilege: the owner migrates; the app's login role reads and writes rows, and nothing more.

The app role is no superuser and owns nothing, so it can neither disable a trigger nor set
`session_replication_role`; on the append-only tables (the core's audit, and whatever the layers
declare through `gridmgr_append_only_tables`) it may only INSERT and SELECT; it runs no DDL beyond
its own temporary tables. The statements are the same for the embedded cluster and for
`gridmgr db roles` on a bureau's server.
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.errors import InputError
from gridmgr.plugins import hooks

APP_ROLE = "gridmgr_app"
CORE_APPEND_ONLY = ("case_events", "audit_log")
# written by migrations only: the app reads them
READ_ONLY = ("alembic_version", "spatial_ref_sys")
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def _ident(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InputError(f"a role or database name is lower-case letters, digits and _, not {name!r}", field="role")
    return f'"{name}"'


def append_only_tables() -> list[str]:
    """Tables whose rows are never changed or removed: the core's and every layer's."""
    return [*CORE_APPEND_ONLY, *hooks.gather("gridmgr_append_only_tables")]


def role_statements(role: str, password: str | None, database: str) -> list[str]:
    """Create (or correct) the app's login role and let it connect; no password: leave the one it has."""
    r = _ident(role)
    statements = [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {r} LOGIN; "
        "END IF; END $$",
        f"ALTER ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT",
    ]
    if password is not None:
        statements.append(f"ALTER ROLE {r} PASSWORD '{password.replace(chr(39), chr(39) * 2)}'")
    statements.append(f"GRANT CONNECT, TEMPORARY ON DATABASE {_ident(database)} TO {r}")
    return statements


def grant_statements(
    role: str, append_only: list[str] | None = None, read_only: tuple[str, ...] = READ_ONLY
) -> list[str]:
    """The grants of the app role on the tables there are now (run again after every migration)."""
    r = _ident(role)
    tables = append_only_tables() if append_only is None else append_only
    return [
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",  # PostgreSQL 14 still lets anyone create tables
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {r}",
        f"GRANT USAGE ON SCHEMA public TO {r}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {r}",
        *(f"REVOKE INSERT, UPDATE, DELETE ON {_ident(t)} FROM {r}" for t in read_only),
        *(f"REVOKE UPDATE, DELETE ON {_ident(t)} FROM {r}" for t in tables),
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {r}",  # UPDATE: setval
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {r}",
    ]


def role_exists(conn: Connection, role: str) -> bool:
    """True when the database server has this role."""
    return bool(conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar())


def grant(conn: Connection, role: str = APP_ROLE) -> bool:
    """Give the app role its grants on every table there is now; False when the server has no such role."""
    if not role_exists(conn, role):
        return False
    present = set(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
    append_only = [t for t in append_only_tables() if t in present]
    for statement in grant_statements(role, append_only, tuple(t for t in READ_ONLY if t in present)):
        conn.execute(text(statement))
    return True
