"""The accounts' scheduled upkeep, as jobs of the worker: ended sessions cleared, the audit kept its time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from gridmgr.config import Config
from gridmgr.people import audit, credentials
from gridmgr.plugins.hooks import Job, hookimpl


def _sessions(conn: Connection, now: datetime) -> str:
    """Credentials revoked or expired a month ago go (the audit keeps their story)."""
    return f"{credentials.prune(conn):,} ended credentials removed"


def _audit(conn: Connection, now: datetime) -> str:
    """Audit entries past GRIDMGR_AUDIT_DAYS go, never younger than 180 days."""
    days = Config.from_env().number("GRIDMGR_AUDIT_DAYS", audit.MIN_RETENTION_DAYS, 36500)
    return f"{audit.prune(conn, days):,} audit entries older than {days} days removed"


@hookimpl
def gridmgr_jobs() -> list[Job]:
    """Session cleanup every hour, audit retention every night."""
    return [
        Job("sessions", "会话清理", "session cleanup", "hourly", _sessions),
        Job("audit_retention", "审计保留", "audit retention", "daily", _audit, at="03:30"),
    ]
