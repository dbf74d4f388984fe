"""`gridmgr users …`, `gridmgr audit …` and `gridmgr apikey …`: accounts, sessions, the audit, API keys."""

from __future__ import annotations

import click
from sqlalchemy import text

from gridmgr.commands import engine
from gridmgr.config import Config
from gridmgr.people import accounts, audit, credentials


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
            SELECT u.username, u.role, u.active, p.code, p.name, un.name AS unit,
                   EXISTS (SELECT 1 FROM credentials c
                           WHERE c.user_id = u.id AND c.kind = 'api_token' AND c.revoked_at IS NULL) AS token
            FROM users u JOIN people p ON p.id = u.person_id LEFT JOIN units un ON un.id = p.unit_id
            ORDER BY u.username""")
        ).all()
    for r in rows:
        flags = ("" if r.active else " (locked)") + (" [token]" if r.token else "")
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


@users_group.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(accounts.ROLES))
def role_cmd(username: str, role: str) -> None:
    """Give an account another role (its sessions end; audited)."""
    with engine().begin() as conn:
        accounts.set_role(conn, username, role)
    click.echo(f"{username} is now {role}; its sessions have ended")


@users_group.command("lock")
@click.argument("username")
@click.option("--unlock", is_flag=True, help="Unlock instead (its failed logins are forgiven).")
def lock_cmd(username: str, unlock: bool) -> None:
    """Lock an account (no login, its sessions end) or unlock it."""
    with engine().begin() as conn:
        accounts.set_locked(conn, username, not unlock)
    click.echo(f"{username} {'unlocked' if unlock else 'locked'}")


@users_group.command("sessions")
@click.argument("username", required=False)
@click.option("--end", "end", is_flag=True, help="End them (all of the account's, or the one given by --id).")
@click.option("--id", "credential_id", type=int, default=None, help="With --end: only this session.")
def sessions_cmd(username: str | None, end: bool, credential_id: int | None) -> None:
    """List the live login sessions (of one account, or all), or end an account's."""
    if end:
        if not username:
            raise click.UsageError("--end needs the account's username")
        with engine().begin() as conn:
            n = accounts.end_sessions(conn, username, credential_id=credential_id)
        click.echo(f"{n} session{'s' if n != 1 else ''} of {username} ended")
        return
    with engine().connect() as conn:
        rows = credentials.live(conn, user_id=accounts.user_id(conn, username) if username else None, kind="session")
    for r in rows:
        click.echo(
            f"{r.id:>8} {r.username:16} since {r.created_at:%Y-%m-%d %H:%M}  last {r.last_used_at:%H:%M}  "
            f"from {r.address or '-':15} {(r.user_agent or '')[:40]}"
        )
    click.echo(f"{len(rows)} live sessions")


@click.group("audit")
def audit_group() -> None:
    """The security audit: logins, sessions, accounts, credentials, exports."""


@audit_group.command("list")
@click.option("--action", default=None, help="An action or its area (login, account, credential, export …).")
@click.option("--who", default=None, help="Acting or acted-on account or client.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
def audit_list(action: str | None, who: str | None, limit: int) -> None:
    """The newest audit entries first."""
    with engine().connect() as conn:
        rows = audit.entries(conn, action=action, who=who, limit=limit)
    for r in rows:
        mark = "" if r.ok else " FAILED"
        click.echo(
            f"{r.at:%Y-%m-%d %H:%M:%S} {r.action:18} {r.actor:16} {r.subject or '':16} {r.address or '':15}{mark}"
        )
    click.echo(f"{len(rows)} entries")


@audit_group.command("prune")
@click.option("--keep-days", type=int, default=None, help="Days kept (default GRIDMGR_AUDIT_DAYS; at least 180).")
def audit_prune(keep_days: int | None) -> None:
    """Remove audit entries older than the retention (never younger than 180 days)."""
    days = keep_days if keep_days is not None else Config.from_env().number("GRIDMGR_AUDIT_DAYS", 180, 36500)
    if days < audit.MIN_RETENTION_DAYS:
        raise click.UsageError(f"audit records are kept at least {audit.MIN_RETENTION_DAYS} days")
    with engine().begin() as conn:
        n = audit.prune(conn, days)
    click.echo(f"{n:,} audit entries older than {days} days removed")


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
        rows = conn.execute(
            text("""SELECT name, created_at, revoked_at, last_used_at FROM credentials
                    WHERE kind = 'open311_key' ORDER BY name, created_at""")
        ).all()
    for r in rows:
        state = f"revoked {r.revoked_at:%Y-%m-%d}" if r.revoked_at else "active"
        used = f"last used {r.last_used_at:%Y-%m-%d}" if r.last_used_at else "never used"
        click.echo(f"{r.name:24} created {r.created_at:%Y-%m-%d}  {state}  {used}")


@apikey_group.command("revoke")
@click.argument("name")
def apikey_revoke(name: str) -> None:
    """Revoke a client's key."""
    with engine().begin() as conn:
        accounts.revoke_api_key(conn, name)
    click.echo(f"key {name} revoked")


COMMANDS = [users_group, audit_group, apikey_group]
