"""Login attempts: every try is recorded (the login audit, kept RETENTION_DAYS) and drives the throttle.

A name or an address that keeps failing waits before its next try, and the wait doubles with each
further failure (FIRST_WAIT_S up to MAX_WAIT_S). Failures count within WINDOW and since the last
success of that name or address. The same rule holds for names that do not exist, so the answer
never tells whether an account does. Everything is in PostgreSQL: every server worker sees it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import BigInteger, Boolean, DateTime, Index, String, func, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.db.models import Base

WINDOW = timedelta(minutes=15)
ACCOUNT_FREE, ADDRESS_FREE = 5, 20  # failures before the wait begins (an office shares one address)
FIRST_WAIT_S, MAX_WAIT_S = 30, 900
RETENTION_DAYS = 180  # 等保 2.0: audit records kept at least six months


class LoginAttempt(Base):
    """One try at the login form: when, which name, from where, whether it succeeded."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    address: Mapped[str] = mapped_column(String(45), nullable=False)  # an IPv6 address in full at most
    ok: Mapped[bool] = mapped_column(Boolean, nullable=False)


def _key(username: str, address: str) -> dict[str, str]:
    return {"u": username[:64], "a": address[:45]}


# failures of one column's value in the window since its last success: how many, and the latest
_FAILURES = """
    SELECT count(*) AS n, max(at) AS last FROM login_attempts
    WHERE {col} = :{p} AND NOT ok AND at > CAST(:now AS timestamptz) - CAST(:window AS interval)
      AND at > coalesce((SELECT max(at) FROM login_attempts WHERE {col} = :{p} AND ok), '-infinity')
"""


def wait_seconds(conn: Connection, username: str, address: str, now: datetime) -> int:
    """Seconds before this name and address may try again (0: now)."""
    params = {**_key(username, address), "now": now, "window": f"{int(WINDOW.total_seconds())} seconds"}
    wait = 0.0
    for col, p, free in (("username", "u", ACCOUNT_FREE), ("address", "a", ADDRESS_FREE)):
        n, last = conn.execute(text(_FAILURES.format(col=col, p=p)), params).one()
        if n >= free:
            backoff = min(FIRST_WAIT_S * 2 ** (n - free), MAX_WAIT_S)
            wait = max(wait, (last + timedelta(seconds=backoff) - now).total_seconds())
    return max(0, int(wait + 0.999))


def record(conn: Connection, username: str, address: str, ok: bool, now: datetime) -> None:
    """Record one try."""
    conn.execute(
        text("INSERT INTO login_attempts (at, username, address, ok) VALUES (:now, :u, :a, :ok)"),
        {**_key(username, address), "now": now, "ok": ok},
    )


def prune(conn: Connection, now: datetime) -> int:
    """Delete the tries older than RETENTION_DAYS; returns how many."""
    deleted: int = conn.execute(
        text("DELETE FROM login_attempts WHERE at < CAST(:now AS timestamptz) - make_interval(days => :d)"),
        {"now": now, "d": RETENTION_DAYS},
    ).rowcount
    return deleted
