"""`gridmgr db …`: the embedded cluster and migrations."""

from __future__ import annotations

import secrets

import click
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from gridmgr.config import Config
from gridmgr.db import migrate, roles
from gridmgr.db.engine import connect, database_url, embedded_cluster, engine_for, owner_url


@click.group("db")
def db_group() -> None:
    """The database: embedded cluster (var/pg/) or GRIDMGR_DATABASE_URL."""


@db_group.command("up")
def up() -> None:
    """Start the embedded PostGIS cluster (initialising it the first time) and migrate it to the code's schema."""
    config = Config.from_env()
    if config.database_url:
        click.echo("GRIDMGR_DATABASE_URL is set: using that server; nothing to start.")
        return
    cluster = embedded_cluster()
    cluster.start()
    click.echo(f"embedded PostGIS running: {cluster.data} (socket {cluster.socket_dir}, port {cluster.port})")
    # a fresh cluster has no PostGIS until migrated: do it here, as every other command would
    engine = connect(config)
    click.echo(f"schema at revision {migrate.current(engine)} (PostGIS and every table in place)")


@db_group.command("down")
def down() -> None:
    """Stop the embedded cluster."""
    cluster = embedded_cluster()
    was = cluster.running()
    cluster.stop()
    click.echo("embedded PostGIS stopped" if was else "embedded PostGIS was not running")


@db_group.command("status")
def status() -> None:
    """Say which database is in use, whether it runs, and its migration revision."""
    config = Config.from_env()
    if config.database_url:
        click.echo("database: external (GRIDMGR_DATABASE_URL)")
    else:
        cluster = embedded_cluster()
        state = "running" if cluster.running() else ("stopped" if cluster.initialised() else "not created")
        click.echo(f"database: embedded, {state}, {cluster.data}")
        if state != "running":
            return
    engine = engine_for(database_url(config, start=False))
    rev = migrate.current(engine)
    click.echo(f"revision: {rev or 'none'} (code: {migrate.head()})")


@db_group.command("url")
def url() -> None:
    """Print the SQLAlchemy URL in use (starting the embedded cluster if needed)."""
    click.echo(database_url(Config.from_env()))


@db_group.command("migrate")
@click.option(
    "--revision", default="heads", show_default=True, help="Target revision (heads: the core's and every plug-in's)."
)
def migrate_cmd(revision: str) -> None:
    """Migrate the database (embedded or external) to the code's schema, as its owner (GRIDMGR_OWNER_URL)."""
    engine = create_engine(owner_url(Config.from_env()), poolclass=NullPool)
    before = migrate.current(engine)
    migrate.upgrade(engine, revision)
    click.echo(f"migrated: {before or 'none'} → {migrate.current(engine)}")
    engine.dispose()


@db_group.command("roles")
@click.option("--role", default=roles.APP_ROLE, show_default=True, help="The app's login role.")
@click.option("--password", default=None, help="Its password (with --apply and none given: a new one, shown once).")
@click.option("--apply", "apply_", is_flag=True, help="Run the statements as the owner instead of printing them.")
def roles_cmd(role: str, password: str | None, apply_: bool) -> None:
    """The app's least-privilege login role and its grants: print the SQL, or apply it as the owner."""
    config = Config.from_env()
    url = make_url(owner_url(config))
    if apply_ and password is None:
        password = secrets.token_urlsafe(24)
        click.echo(f"password of {role} (shown once): {password}")
    statements = [*roles.role_statements(role, password, url.database or "gridmgr"), *roles.grant_statements(role)]
    if not apply_:
        if password is None:
            click.echo(f"-- then give it a password: ALTER ROLE \"{role}\" PASSWORD '…';")
        click.echo("\n".join(f"{s};" for s in statements))
        return
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        for statement in roles.role_statements(role, password, url.database or "gridmgr"):
            conn.execute(text(statement))
        roles.grant(conn, role)
    engine.dispose()
    app_url = url.set(username=role, password=password).render_as_string(hide_password=True)
    click.echo(f"{role}: login role with {len(statements)} statements applied; connect the app with {app_url}")


COMMANDS = [db_group]
