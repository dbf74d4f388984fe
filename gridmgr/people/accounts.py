"""Accounts: one per person of the roster, with a role; hashed passwords, API tokens and Open311 keys."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, String, Text, func, text
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from gridmgr.codes import sql_in
from gridmgr.config import Config
from gridmgr.db.models import Base
from gridmgr.errors import InputError, NotFound
from gridmgr.people import audit, credentials

ROLES = (
    "supervisor",
    "receiver",
    "dispatcher",
    "shift_leader",
    "unit_handler",
    "planner",
    "leader",
    # 三员分立: three administrators, none of whom can do another's work (an account has one role)
    "sysadmin",  # 系统管理员: accounts, roster, configuration
    "secadmin",  # 安全管理员: roles, sessions, password policy, locks
    "auditor",  # 审计管理员: reads every audit log, changes nothing
)
ADMINS = ("sysadmin", "secadmin", "auditor")

# "This login may act": an active account by its session or its API token (the secret's hash), as SQL
# for a statement that checks the login in the same round trip as its own work (gridmgr.maps.tiles.fetch),
# where the web's user loader would cost a query of its own. The same test as `session_account` and
# `user_for_token`.
_ACTIVE_BY = (
    "EXISTS (SELECT 1 FROM credentials c JOIN users u ON u.id = c.user_id "
    "WHERE c.secret_hash = :secret_hash AND c.kind = '{kind}' AND " + credentials.LIVE + " AND u.active)"
)
ACTIVE_SESSION_SQL = _ACTIVE_BY.format(kind="session")
ACTIVE_TOKEN_SQL = _ACTIVE_BY.format(kind="api_token")


class User(Base):
    """A login: belongs to one person of the roster and has one role."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(sql_in("role", ROLES), name="role"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), nullable=False, unique=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    password_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class PasswordHistory(Base):
    """The hashes of an account's earlier passwords (the policy refuses to take one back)."""

    __tablename__ = "password_history"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


@dataclass(frozen=True)
class PasswordPolicy:
    """Length, character classes, no reuse of the last few, expiry: settings a bureau's review sets."""

    min_length: int = 8
    classes: int = 2  # of lower case, upper case, digits, other characters
    history: int = 5
    max_days: int = 90  # 0: passwords never expire

    @classmethod
    def from_config(cls, config: Config) -> PasswordPolicy:
        return cls(
            config.number("GRIDMGR_PASSWORD_MIN_LENGTH", 6, 128),
            config.number("GRIDMGR_PASSWORD_CLASSES", 1, 4),
            config.number("GRIDMGR_PASSWORD_HISTORY", 0, 24),
            config.number("GRIDMGR_PASSWORD_MAX_DAYS", 0, 3650),
        )

    def problem(self, password: str) -> str | None:
        """What is wrong with a new password, in both languages; None when it is fit."""
        if len(password) < self.min_length:
            return f"密码至少 {self.min_length} 个字符。A password needs at least {self.min_length} characters."
        kinds = sum(
            any(test(ch) for ch in password)
            for test in (str.islower, str.isupper, str.isdigit, lambda ch: not ch.isalnum())
        )
        if kinds < self.classes:
            return (
                f"密码须含小写字母、大写字母、数字、符号中的至少 {self.classes} 类。"
                f"A password needs at least {self.classes} of: lower case, upper case, digits, symbols."
            )
        return None


def policy() -> PasswordPolicy:
    """The password policy in force (the environment's settings)."""
    return PasswordPolicy.from_config(Config.from_env())


def _check_new(conn: Connection, password: str, user_id: int | None, rules: PasswordPolicy) -> None:
    problem = rules.problem(password)
    if problem:
        raise InputError(problem, field="password")
    if user_id is None or not rules.history:
        return
    earlier = conn.execute(
        text("""
        SELECT password_hash FROM users WHERE id = :u
        UNION ALL (SELECT password_hash FROM password_history WHERE user_id = :u ORDER BY id DESC LIMIT :n)
    """),
        {"u": user_id, "n": rules.history - 1},
    ).scalars()
    if any(check_password_hash(h, password) for h in earlier):
        raise InputError(
            f"不能使用最近 {rules.history} 次用过的密码。The last {rules.history} passwords cannot be used again.",
            field="password",
        )


token_digest = credentials.digest


def add_user(
    conn: Connection,
    username: str,
    person_code: str,
    role: str,
    password: str,
    *,
    rules: PasswordPolicy | None = None,
    by: audit.Who = audit.SYSTEM,
) -> int:
    """Create an account for a person of the roster; returns its id."""
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; use one of {', '.join(ROLES)}", field="role")
    _check_new(conn, password, None, rules or policy())
    person = conn.execute(text("SELECT id FROM people WHERE code = :c"), {"c": person_code}).scalar()
    if person is None:
        raise NotFound(f"no person with code {person_code!r} in the roster")
    taken = conn.execute(
        text("SELECT username FROM users WHERE person_id = :p OR username = :u"), {"p": person, "u": username}
    ).scalar()
    if taken:
        raise InputError(f"person {person_code} or username {username!r} already has an account ({taken})")
    uid: int = conn.execute(
        text("""
        INSERT INTO users (username, person_id, role, password_hash) VALUES (:u, :p, :r, :h) RETURNING id
    """),
        {"u": username, "p": person, "r": role, "h": generate_password_hash(password)},
    ).scalar_one()
    audit.write(conn, "account.add", by, subject=username, data={"role": role, "person": person_code})
    return uid


def user_id(conn: Connection, username: str) -> int:
    """The id of an account by its username (NotFound for none)."""
    uid = conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username}).scalar()
    if uid is None:
        raise NotFound(f"no user {username!r}")
    return int(uid)


def security_view(conn: Connection) -> list[Row[Any]]:
    """Every account with its role, lock, password age, last login and live sessions (the security administrator's list)."""
    return list(
        conn.execute(
            text(f"""
            SELECT u.username, u.role, u.active, p.name, un.name AS unit, u.password_changed_at,
                   (SELECT max(at) FROM audit_log a WHERE a.subject = u.username AND a.action = 'login' AND a.ok)
                     AS last_login,
                   (SELECT count(*) FROM credentials c WHERE c.user_id = u.id AND c.kind = 'session'
                      AND {credentials.LIVE}) AS sessions
            FROM users u JOIN people p ON p.id = u.person_id LEFT JOIN units un ON un.id = p.unit_id
            ORDER BY u.username
        """)
        )
    )


def set_password(
    conn: Connection,
    username: str,
    password: str,
    *,
    rules: PasswordPolicy | None = None,
    by: audit.Who = audit.SYSTEM,
) -> None:
    """Change a password (by the policy); every session of the account ends with the old one (its API token stays)."""
    uid = user_id(conn, username)
    _check_new(conn, password, uid, rules or policy())
    conn.execute(
        text("""
        INSERT INTO password_history (user_id, password_hash, set_at)
        SELECT id, password_hash, password_changed_at FROM users WHERE id = :u
    """),
        {"u": uid},
    )
    conn.execute(
        text("UPDATE users SET password_hash = :h, password_changed_at = now() WHERE id = :u"),
        {"h": generate_password_hash(password), "u": uid},
    )
    ended = credentials.revoke(conn, "password changed", user_id=uid, kind="session")
    audit.write(conn, "password.change", by, subject=username, data={"sessions_ended": ended})


def set_role(conn: Connection, username: str, role: str, *, by: audit.Who = audit.SYSTEM) -> None:
    """Give an account another role; its sessions end (the next login acts in the new role)."""
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; use one of {', '.join(ROLES)}", field="role")
    uid = user_id(conn, username)
    before = conn.execute(text("SELECT role FROM users WHERE id = :u"), {"u": uid}).scalar_one()
    if before == role:
        return
    conn.execute(text("UPDATE users SET role = :r WHERE id = :u"), {"r": role, "u": uid})
    credentials.revoke(conn, "role changed", user_id=uid, kind="session")
    audit.write(conn, "account.role", by, subject=username, data={"from": before, "to": role})


def set_locked(conn: Connection, username: str, locked: bool, *, by: audit.Who = audit.SYSTEM) -> None:
    """Lock an account (no login, its sessions and token refused) or unlock it (its failed tries forgiven)."""
    uid = user_id(conn, username)
    conn.execute(text("UPDATE users SET active = :a WHERE id = :u"), {"a": not locked, "u": uid})
    if locked:
        credentials.revoke(conn, "account locked", user_id=uid, kind="session")
    audit.write(conn, "account.lock" if locked else "account.unlock", by, subject=username)


def end_sessions(
    conn: Connection, username: str, *, credential_id: int | None = None, by: audit.Who = audit.SYSTEM
) -> int:
    """End an account's sessions (one, or all); returns how many ended."""
    uid = user_id(conn, username)
    n = credentials.revoke(conn, f"ended by {by.name}", user_id=uid, kind="session", credential_id=credential_id)
    audit.write(conn, "session.end", by, subject=username, data={"ended": n, "credential": credential_id})
    return n


def new_token(conn: Connection, username: str, *, by: audit.Who = audit.SYSTEM) -> str:
    """Give a user a new API token (revoking the old one); returns it, shown only this once."""
    uid = user_id(conn, username)
    credentials.revoke(conn, "replaced", user_id=uid, kind="api_token")
    token, _ = credentials.issue(conn, "api_token", user_id=uid, scopes=("api",))
    audit.write(conn, "credential.issue", by, subject=username, data={"kind": "api_token"})
    return token


# a hash of nothing anyone can type (random per process), checked when the name is unknown
_NO_USER_HASH = generate_password_hash(secrets.token_hex(16))


def check_login(conn: Connection, username: str, password: str) -> int | None:
    """The account's id when the name and password match an active account."""
    row = conn.execute(
        text("SELECT id, password_hash FROM users WHERE username = :u AND active"), {"u": username}
    ).first()
    # an unknown name costs the same hash check as a wrong password: the answer's time tells nothing
    matches = check_password_hash(row.password_hash if row else _NO_USER_HASH, password)
    return row.id if row and matches else None


def user_for_token(conn: Connection, token: str) -> int | None:
    """The active account an API token belongs to (its use recorded)."""
    found = credentials.find(conn, token, "api_token")
    if found is None:
        return None
    active = conn.execute(text("SELECT active FROM users WHERE id = :u"), {"u": found.user_id}).scalar()
    return found.user_id if active else None


def add_api_key(conn: Connection, name: str, *, by: audit.Who = audit.SYSTEM, kind: str = "open311_key") -> str:
    """A new key for a client application (Open311 by default); returns it, shown only this once."""
    taken = conn.execute(
        text("SELECT 1 FROM credentials WHERE kind = :k AND name = :n AND revoked_at IS NULL"), {"k": kind, "n": name}
    ).scalar()
    if taken:
        raise InputError(f"client {name!r} already has a live key: revoke it first", field="name")
    key, _ = credentials.issue(conn, kind, name=name, scopes=(kind,))
    audit.write(conn, "credential.issue", by, subject=name, data={"kind": kind})
    return key


def api_key_valid(conn: Connection, key: str, kind: str = "open311_key") -> bool:
    """True for a key that exists, is of this kind and is live (its use recorded)."""
    return credentials.find(conn, key, kind) is not None


def api_key_name(conn: Connection, key: str) -> str | None:
    """The client name a key was issued to (revoked or not), None for an unknown key."""
    name: str | None = conn.execute(
        text("SELECT name FROM credentials WHERE secret_hash = :h AND user_id IS NULL"), {"h": token_digest(key)}
    ).scalar()
    return name


def revoke_api_key(conn: Connection, name: str, *, by: audit.Who = audit.SYSTEM, kind: str = "open311_key") -> None:
    """Revoke a client's key (kept, marked revoked)."""
    if not credentials.revoke(conn, f"revoked by {by.name}", kind=kind, name=name):
        raise NotFound(f"no active API key named {name!r}")
    audit.write(conn, "credential.revoke", by, subject=name, data={"kind": kind})


ACCOUNT = """
    SELECT u.id, u.username, u.role, p.name, p.id AS person_id, p.unit_id,
           (CAST(:max_days AS integer) > 0
            AND u.password_changed_at < now() - make_interval(days => CAST(:max_days AS integer))) AS password_expired
    FROM users u JOIN people p ON p.id = u.person_id
    WHERE u.id = :id AND u.active
"""


def active_account(conn: Connection, user_id: int, max_days: int = 0) -> Row[Any] | None:
    """The active account by id with its person, and whether its password is older than `max_days`."""
    return conn.execute(text(ACCOUNT), {"id": user_id, "max_days": max_days}).first()


def session_account(conn: Connection, secret: str, max_days: int = 0) -> Row[Any] | None:
    """The active account of a live session (its use recorded), None when the session ended or expired."""
    found = credentials.find(conn, secret, "session")
    return active_account(conn, found.user_id, max_days) if found is not None else None
