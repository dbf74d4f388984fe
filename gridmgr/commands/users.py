"""`gridmgr users …` and `gridmgr apikey …`: accounts, API tokens and Open311 keys."""

from __future__ import annotations

import click
from sqlalchemy import text

from gridmgr.commands import engine
from gridmgr.people import accounts


@click.group("users")
def users_group() -> None:
    """Accounts: one per person of the roster, with a role."""


@users_group.command("add")
@click.argument("username")
@click.option("--person", "person_code", required=True, help="The person's code in the roster.")
@click.option("--role", type=click.Choice(accounts.ROLES), required=True)
@click.password_option(help="The password (asked for when not given).")
def add_cmd(username: str, person_code: str, role: str, password: str) -> None:
    """Create an account for a person of the roster."""
    with engine().begin() as conn:
        accounts.add_user(conn, username, person_code, role, password)
    click.echo(f"user {username} ({role}) created for person {person_code}")


@users_group.command("list")
def list_cmd() -> None:
    """List the accounts with their person, role and unit."""
    with engine().connect() as conn:
        rows = conn.execute(
            text("""
            SELECT u.username, u.role, u.active, p.code, p.name, un.name AS unit, u.token_hash IS NOT NULL AS token
            FROM users u JOIN people p ON p.id = u.person_id LEFT JOIN units un ON un.id = p.unit_id
            ORDER BY u.username""")
        ).all()
    for r in rows:
        flags = ("" if r.active else " (inactive)") + (" [token]" if r.token else "")
        click.echo(f"{r.username:16} {r.role:13} {r.name} ({r.code}){' · ' + r.unit if r.unit else ''}{flags}")
    click.echo(f"{len(rows)} accounts")


@users_group.command("passwd")
@click.argument("username")
@click.password_option(help="The new password (asked for when not given).")
def passwd_cmd(username: str, password: str) -> None:
    """Change a password (the account's open sessions end with it)."""
    with engine().begin() as conn:
        accounts.set_password(conn, username, password)
    click.echo(f"password of {username} changed; its sessions have ended")


@users_group.command("token")
@click.argument("username")
def token_cmd(username: str) -> None:
    """Give a user a new API token (printed once; the old one stops working)."""
    with engine().begin() as conn:
        token = accounts.new_token(conn, username)
    click.echo(token)


@click.group("apikey")
def apikey_group() -> None:
    """Open311 API keys of client applications."""


@apikey_group.command("add")
@click.argument("name")
def apikey_add(name: str) -> None:
    """Create a key for a client (printed once)."""
    with engine().begin() as conn:
        key = accounts.add_api_key(conn, name)
    click.echo(key)


@apikey_group.command("list")
def apikey_list() -> None:
    """List the keys (names and dates; the keys themselves are not kept)."""
    with engine().connect() as conn:
        rows = conn.execute(text("SELECT name, created_at, revoked_at FROM api_keys ORDER BY name")).all()
    for r in rows:
        state = f"revoked {r.revoked_at:%Y-%m-%d}" if r.revoked_at else "active"
        click.echo(f"{r.name:24} created {r.created_at:%Y-%m-%d}  {state}")


@apikey_group.command("revoke")
@click.argument("name")
def apikey_revoke(name: str) -> None:
    """Revoke a client's key."""
    with engine().begin() as conn:
        accounts.revoke_api_key(conn, name)
    click.echo(f"key {name} revoked")


COMMANDS = [users_group, apikey_group]
