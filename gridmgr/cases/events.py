"""The audit trail: `case_events`, append-only (a trigger of migration 0003 refuses UPDATE, DELETE, TRUNCATE)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.db.models import Base


class CaseEvent(Base):
    """One step of a case: who did what, when, from which state to which, and the deadline it left."""

    __tablename__ = "case_events"
    __table_args__ = (
        Index("ix_case_events_case_id_at", "case_id", "at"),
        # gridmgr.analytics.accountability (migration 0007): a period's events, the deadlines due in it, closings after it
        Index("ix_case_events_at_case_id", "at", "case_id"),
        Index(
            "ix_case_events_clock_deadline_after",
            "deadline_after",
            postgresql_where=text("action IN ('dispatch', 'approve_extension', 'resume')"),
        ),
        Index(
            "ix_case_events_closing_at_case_id",
            "at",
            "case_id",
            postgresql_where=text("to_state IN ('closed', 'rejected')"),
        ),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16), nullable=False)
    # NULL for the system (imports, rules); the name and role are kept as they were at the time
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    deadline_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deadline_after: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    photos: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default=text("'{}'"))
    data: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
