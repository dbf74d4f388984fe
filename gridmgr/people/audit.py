"""The security audit: one append-only table for logins, sessions, accounts, credentials and exports.

等保 2.0 asks that such records be kept at least six months and be read by an audit administrator
who can change nothing. The app role may only INSERT and SELECT here; old rows go only through
`audit_log_prune`, a function of the owner's that refuses to keep fewer than MIN_RETENTION_DAYS.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, DateTime, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.db.models import Base

MIN_RETENTION_DAYS = 180

# what is audited; the first word names the area, shown as the audit page's filter
ACTIONS = {
    "login": ("登录", "login"),
    "login.locked": ("登录受限", "login throttled"),
    "logout": ("退出", "logout"),
    "session.end": ("结束会话", "session ended"),
    "password.change": ("修改密码", "password changed"),
    "account.add": ("新建账号", "account created"),
    "account.role": ("变更角色", "role changed"),
    "account.lock": ("锁定账号", "account locked"),
    "account.unlock": ("解锁账号", "account unlocked"),
    "credential.issue": ("签发凭据", "credential issued"),
    "credential.revoke": ("吊销凭据", "credential revoked"),
    "export": ("数据导出", "data export"),
    "audit.prune": ("清理审计", "audit pruned"),
}


class AuditEntry(Base):
    """One audited act: when, who (and in which role, from where), what, on whom, whether it succeeded."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_subject_at", "subject", "at"),
        Index("ix_audit_log_address_at", "address", "at"),
        Index("ix_audit_log_at", "at"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    actor_user_id: Mapped[int | None] = mapped_column(BigInteger)  # no foreign key: the record outlives accounts
    actor: Mapped[str] = mapped_column(Text, nullable=False)  # a username, "anonymous" or "system"
    role: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(45))  # an IPv6 address in full at most
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    subject: Mapped[str | None] = mapped_column(Text)  # the account, client or file acted on
    ok: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    data: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'"))


@dataclass(frozen=True)
class Who:
    """Who acts: an account (id, username, role) or nobody yet, and from which address."""

    user_id: int | None = None
    name: str = "system"
    role: str | None = None
    address: str | None = None


SYSTEM = Who()  # the CLI and the jobs: whoever runs them on the server


def write(
    conn: Connection,
    action: str,
    who: Who,
    *,
    subject: str | None = None,
    ok: bool = True,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Record one act in the caller's transaction (so it stands or falls with what it records)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    conn.execute(
        text("""
        INSERT INTO audit_log (at, actor_user_id, actor, role, address, action, subject, ok, data)
        VALUES (coalesce(CAST(:at AS timestamptz), now()), :uid, :actor, :role, :addr, :action, :subject, :ok,
                CAST(:data AS jsonb))
    """),
        {
            "at": at,
            "uid": who.user_id,
            "actor": who.name[:200],
            "role": who.role,
            "addr": (who.address or None) and who.address[:45],
            "action": action,
            "subject": subject,
            "ok": ok,
            "data": json.dumps(data or {}, ensure_ascii=False, default=str),
        },
    )


PAGE = 100


def entries(
    conn: Connection,
    *,
    action: str | None = None,
    who: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = PAGE,
) -> list[Row[Any]]:
    """The newest entries first, filtered; `before_id` pages on (keyset, so a page never shifts)."""
    return list(
        conn.execute(
            text("""
            SELECT id, at, actor, role, address, action, subject, ok, data FROM audit_log
            WHERE (CAST(:action AS text) IS NULL OR action = :action OR action LIKE :action || '.%')
              AND (CAST(:who AS text) IS NULL OR actor = :who OR subject = :who)
              AND (CAST(:since AS timestamptz) IS NULL OR at >= :since)
              AND (CAST(:until AS timestamptz) IS NULL OR at < :until)
              AND (CAST(:before AS bigint) IS NULL OR id < :before)
            ORDER BY id DESC LIMIT :limit
        """),
            {"action": action, "who": who, "since": since, "until": until, "before": before_id, "limit": limit},
        )
    )


def prune(conn: Connection, keep_days: int, who: Who = SYSTEM) -> int:
    """Delete entries older than `keep_days` (at least MIN_RETENTION_DAYS) through the owner's function."""
    if keep_days < MIN_RETENTION_DAYS:
        raise ValueError(f"audit records are kept at least {MIN_RETENTION_DAYS} days, not {keep_days}")
    deleted = int(conn.execute(text("SELECT audit_log_prune(:d)"), {"d": keep_days}).scalar_one())
    write(conn, "audit.prune", who, data={"keep_days": keep_days, "deleted": deleted})
    return deleted
