"""Accounts: one per person of the roster, with a role; hashed passwords, API tokens and Open311 keys."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Integer, String, Text, func, text
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from gridmgr.codes import sql_in
from gridmgr.db.models import Base
from gridmgr.errors import InputError, NotFound

ROLES = ("supervisor", "receiver", "dispatcher", "shift_leader", "unit_handler", "planner", "leader", "admin")
MIN_PASSWORD = 8

# "This login may act": an active account, by id and session epoch (a session) or by API token (its
# hash), as SQL for a statement that checks the login in the same round trip as its own work
# (gridmgr.maps.tiles.fetch), where the web's user loader would cost a query of its own. The same test as
# the loader's (`session_account`) and user_for_token.
ACTIVE_ID_SQL = "EXISTS (SELECT 1 FROM users WHERE id = :account_id AND session_epoch = :epoch AND active)"
ACTIVE_TOKEN_SQL = "EXISTS (SELECT 1 FROM users WHERE token_hash = :token_hash AND active)"


class User(Base):
    """A login: belongs to one person of the roster and has one role."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(sql_in("role", ROLES), name="role"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), nullable=False, unique=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    # only a hash of the API token is kept; the token itself is shown once
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    # raised by a password change: the sessions signed before it (`session_id`) are no longer taken
    session_epoch: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class ApiKey(Base):
    """An Open311 API key of a client application (a hash is kept; revoked keys stay for the record)."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


def token_digest(token: str) -> str:
    """The stored form of a token or key."""
    return hashlib.sha256(token.encode()).hexdigest()


def add_user(conn: Connection, username: str, person_code: str, role: str, password: str) -> int:
    """Create an account for a person of the roster; returns its id."""
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; use one of {', '.join(ROLES)}", field="role")
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters", field="password")
    person = conn.execute(text("SELECT id FROM people WHERE code = :c"), {"c": person_code}).scalar()
    if person is None:
        raise NotFound(f"no person with code {person_code!r} in the roster")
    taken = conn.execute(
        text("SELECT username FROM users WHERE person_id = :p OR username = :u"), {"p": person, "u": username}
    ).scalar()
    if taken:
        raise InputError(f"person {person_code} or username {username!r} already has an account ({taken})")
    return conn.execute(
        text("""
        INSERT INTO users (username, person_id, role, password_hash) VALUES (:u, :p, :r, :h) RETURNING id
    """),
        {"u": username, "p": person, "r": role, "h": generate_password_hash(password)},
    ).scalar_one()


def set_password(conn: Connection, username: str, password: str) -> None:
    """Change a password; the account's sessions end with the old one (its API token stays)."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters", field="password")
    n = conn.execute(
        text("UPDATE users SET password_hash = :h, session_epoch = session_epoch + 1 WHERE username = :u"),
        {"h": generate_password_hash(password), "u": username},
    ).rowcount
    if not n:
        raise NotFound(f"no user {username!r}")


_SESSION_ID = re.compile(r"([0-9]{1,18})\.([0-9]{1,9})")  # ASCII digits only (str.isdigit takes others)


def session_id(account_id: int, epoch: int) -> str:
    """What a session keeps to name its account: id and session epoch, "12.0"."""
    return f"{account_id}.{epoch}"


def parse_session_id(value: object) -> tuple[int, int] | None:
    """(account id, epoch) from `session_id`'s text; None for anything else (an older session's bare id)."""
    found = _SESSION_ID.fullmatch(str(value))
    return (int(found[1]), int(found[2])) if found else None


def new_token(conn: Connection, username: str) -> str:
    """Give a user a new API token (replacing the old one); returns it, shown only this once."""
    token = secrets.token_urlsafe(32)
    n = conn.execute(
        text("UPDATE users SET token_hash = :h WHERE username = :u"), {"h": token_digest(token), "u": username}
    ).rowcount
    if not n:
        raise NotFound(f"no user {username!r}")
    return token


# a hash of nothing anyone can type (random per process), checked when the name is unknown
_NO_USER_HASH = generate_password_hash(secrets.token_hex(16))


def check_login(conn: Connection, username: str, password: str) -> tuple[int, int] | None:
    """(user id, session epoch) when the name and password match an active account.

    The epoch comes from the same row as the password it was checked against, so a session opened
    with a password that is being changed ends with it.
    """
    row = conn.execute(
        text("SELECT id, session_epoch, password_hash FROM users WHERE username = :u AND active"), {"u": username}
    ).first()
    # an unknown name costs the same hash check as a wrong password: the answer's time tells nothing
    matches = check_password_hash(row.password_hash if row else _NO_USER_HASH, password)
    if row and matches:
        return row.id, row.session_epoch
    return None


def user_for_token(conn: Connection, token: str) -> int | None:
    """The user id an API token belongs to."""
    return conn.execute(
        text("SELECT id FROM users WHERE token_hash = :h AND active"), {"h": token_digest(token)}
    ).scalar()


def add_api_key(conn: Connection, name: str) -> str:
    """A new Open311 API key for a client; returns it, shown only this once."""
    key = secrets.token_urlsafe(24)
    conn.execute(text("INSERT INTO api_keys (name, key_hash) VALUES (:n, :h)"), {"n": name, "h": token_digest(key)})
    return key


def api_key_valid(conn: Connection, key: str) -> bool:
    """True for a key that exists and is not revoked."""
    return bool(
        conn.execute(
            text("SELECT 1 FROM api_keys WHERE key_hash = :h AND revoked_at IS NULL"), {"h": token_digest(key)}
        ).scalar()
    )


def api_key_name(conn: Connection, key: str) -> str | None:
    """The client name an API key was issued to (revoked or not), None for an unknown key."""
    name: str | None = conn.execute(
        text("SELECT name FROM api_keys WHERE key_hash = :h"), {"h": token_digest(key)}
    ).scalar()
    return name


ACTIVE_ACCOUNT = """
    SELECT u.id, u.username, u.role, u.session_epoch, p.name, p.id AS person_id, p.unit_id
    FROM users u JOIN people p ON p.id = u.person_id
    WHERE u.id = :id AND u.active AND (CAST(:epoch AS integer) IS NULL OR u.session_epoch = :epoch)
"""


def active_account(conn: Connection, user_id: int, epoch: int | None = None) -> Row[Any] | None:
    """The active account by id with its person; with an epoch, only while its session epoch is that one."""
    return conn.execute(text(ACTIVE_ACCOUNT), {"id": user_id, "epoch": epoch}).first()


def revoke_api_key(conn: Connection, name: str) -> None:
    """Revoke a client's key (kept, marked revoked)."""
    n = conn.execute(
        text("UPDATE api_keys SET revoked_at = now() WHERE name = :n AND revoked_at IS NULL"), {"n": name}
    ).rowcount
    if not n:
        raise NotFound(f"no active API key named {name!r}")
