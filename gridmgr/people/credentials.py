"""One model for every secret that lets someone in: sessions, API tokens, Open311 and intake keys.

Each is a random secret shown once and kept only as its SHA-256; scoped, revocable, with its last use
and its expiry (absolute, and for sessions an idle limit as well). A session's cookie names its
credential, so ending the credential ends the session wherever the cookie was copied.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.codes import sql_in
from gridmgr.db.models import Base

KINDS = ("session", "api_token", "open311_key", "intake_key")
FOR_ACCOUNTS = ("session", "api_token")  # the others belong to a client application, by name
TOUCH_EVERY_S = 60  # a credential's last use is written at most once a minute (a map sends dozens of tiles)

# "this credential lets in now": as SQL, for statements that check a login in their own round trip
LIVE = (
    "c.revoked_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > now()) "
    "AND (c.idle_until IS NULL OR c.idle_until > now())"
)


class Credential(Base):
    """A secret's hash, what kind it is, whose, what it may do, and its life."""

    __tablename__ = "credentials"
    __table_args__ = (
        CheckConstraint(sql_in("kind", KINDS), name="kind"),
        CheckConstraint(f"({sql_in('kind', FOR_ACCOUNTS)}) = (user_id IS NOT NULL)", name="owner"),
        CheckConstraint("user_id IS NOT NULL OR name IS NOT NULL", name="named"),
        Index("ix_credentials_user_id_kind", "user_id", "kind"),
        Index(
            "uq_credentials_live_key_name",
            "kind",
            "name",
            unique=True,
            postgresql_where=text("revoked_at IS NULL AND user_id IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str | None] = mapped_column(Text)  # the client application a key was issued to
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default=text("'{}'"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    idle_minutes: Mapped[int | None] = mapped_column(Integer)
    idle_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(Text)


def digest(secret: str) -> str:
    """The stored form of a secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def issue(
    conn: Connection,
    kind: str,
    *,
    user_id: int | None = None,
    name: str | None = None,
    scopes: Sequence[str] = (),
    lifetime_minutes: int | None = None,
    idle_minutes: int | None = None,
    address: str | None = None,
    user_agent: str | None = None,
) -> tuple[str, int]:
    """A new credential; returns (its secret, shown only this once, and its id)."""
    if kind not in KINDS:
        raise ValueError(f"unknown credential kind {kind!r}")
    secret = secrets.token_urlsafe(32)
    cid = conn.execute(
        text("""
        INSERT INTO credentials (kind, user_id, name, secret_hash, scopes, expires_at, idle_minutes, idle_until,
                                 last_used_at, address, user_agent)
        VALUES (:kind, :uid, :name, :h, :scopes,
                now() + make_interval(mins => CAST(:life AS integer)),
                :idle, now() + make_interval(mins => CAST(:idle AS integer)),
                CASE WHEN CAST(:idle AS integer) IS NOT NULL THEN now() END, :addr, :ua)
        RETURNING id
    """),
        {
            "kind": kind,
            "uid": user_id,
            "name": name,
            "h": digest(secret),
            "scopes": list(scopes),
            "life": lifetime_minutes,
            "idle": idle_minutes,
            "addr": (address or None) and address[:45],
            "ua": (user_agent or None) and user_agent[:300],
        },
    ).scalar_one()
    return secret, cid


def find(conn: Connection, secret: str, kind: str) -> Row[Any] | None:
    """The live credential of this secret and kind, its last use (and idle limit) moved on if stale."""
    row = conn.execute(
        text(f"""
        SELECT c.id, c.user_id, c.name, c.scopes, c.last_used_at < now() - make_interval(secs => :every) AS stale
        FROM credentials c WHERE c.secret_hash = :h AND c.kind = :kind AND {LIVE}
    """),
        {"h": digest(secret), "kind": kind, "every": TOUCH_EVERY_S},
    ).first()
    if row is not None and (row.stale is None or row.stale):
        touch(conn, row.id)
    return row


def touch(conn: Connection, credential_id: int) -> None:
    """Record a use: its last-used time and, for a session, a new idle limit."""
    conn.execute(
        text("""
        UPDATE credentials SET last_used_at = now(),
               idle_until = now() + make_interval(mins => idle_minutes)
        WHERE id = :id
    """),
        {"id": credential_id},
    )


def revoke(
    conn: Connection,
    reason: str,
    *,
    credential_id: int | None = None,
    user_id: int | None = None,
    kind: str | None = None,
    name: str | None = None,
    secret: str | None = None,
) -> int:
    """Revoke the live credentials matching every filter given; returns how many."""
    if credential_id is None and user_id is None and name is None and secret is None:
        raise ValueError("say which credentials to revoke")
    n: int = conn.execute(
        text("""
        UPDATE credentials SET revoked_at = now(), revoked_reason = :reason
        WHERE revoked_at IS NULL
          AND (CAST(:id AS bigint) IS NULL OR id = :id)
          AND (CAST(:uid AS bigint) IS NULL OR user_id = :uid)
          AND (CAST(:kind AS text) IS NULL OR kind = :kind)
          AND (CAST(:name AS text) IS NULL OR name = :name)
          AND (CAST(:h AS text) IS NULL OR secret_hash = :h)
    """),
        {
            "reason": reason,
            "id": credential_id,
            "uid": user_id,
            "kind": kind,
            "name": name,
            "h": digest(secret) if secret is not None else None,
        },
    ).rowcount
    return n


def live(conn: Connection, *, user_id: int | None = None, kind: str | None = None) -> list[Row[Any]]:
    """The live credentials (of an account, of a kind), newest first, with their account's name."""
    return list(
        conn.execute(
            text(f"""
            SELECT c.id, c.kind, c.user_id, u.username, c.name, c.scopes, c.created_at, c.last_used_at,
                   c.expires_at, c.idle_until, c.address, c.user_agent
            FROM credentials c LEFT JOIN users u ON u.id = c.user_id
            WHERE {LIVE} AND (CAST(:uid AS bigint) IS NULL OR c.user_id = :uid)
              AND (CAST(:kind AS text) IS NULL OR c.kind = :kind)
            ORDER BY c.created_at DESC, c.id DESC
        """),
            {"uid": user_id, "kind": kind},
        )
    )


def prune(conn: Connection, keep_days: int = 30) -> int:
    """Delete credentials revoked or expired more than `keep_days` ago (the audit keeps their story)."""
    n: int = conn.execute(
        text("""
        DELETE FROM credentials
        WHERE coalesce(revoked_at, least(expires_at, idle_until)) < now() - make_interval(days => :d)
    """),
        {"d": keep_days},
    ).rowcount
    return n
