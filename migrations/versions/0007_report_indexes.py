"""report indexes: the sets of cases a period counts, the recurrence probe, open cases per cell

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from alembic import op
from sqlalchemy import text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# gridmgr.analytics.accountability reads only the cases a period can count (reported in it, touched by an event in it,
# due in it, open now, closed after its cutoff) instead of every case and event since the start; each
# index below finds one of those sets by a range instead of a full scan, or serves a per-case probe.
# The partial indexes' predicates are repeated word for word by the report's statements (the planner
# uses a partial index only when the query's condition implies it).
# Plain CREATE INDEX (a migration runs in a transaction, CONCURRENTLY cannot): on 10⁶ cases and
# 5.8·10⁶ events each takes seconds, during which writes to the table wait.
CLOCK = "action IN ('dispatch', 'approve_extension', 'resume')"  # events that set a handling deadline
CLOSING = "to_state IN ('closed', 'rejected')"  # events that end a case
OPEN = "status NOT IN ('closed', 'rejected')"


def upgrade() -> None:
    # recurrence (反复回潮): an earlier case of the same category in the same cell within the window
    op.create_index(
        "ix_cases_cell_id_category_code_reported_at", "cases", ["cell_id", "category_code", "reported_at"], unique=False
    )
    # cases open now (a few thousand of 10⁶): the report's stock, and the open_cases inventory per cell
    op.create_index("ix_cases_open_cell_id", "cases", ["cell_id"], unique=False, postgresql_where=text(OPEN))
    # the cases an event of the period touched
    op.create_index("ix_case_events_at_case_id", "case_events", ["at", "case_id"], unique=False)
    # the due cohort: handling deadlines that fall in the period
    op.create_index(
        "ix_case_events_clock_deadline_after",
        "case_events",
        ["deadline_after"],
        unique=False,
        postgresql_where=text(CLOCK),
    )
    # cases closed or rejected after the cutoff (so open at it)
    op.create_index(
        "ix_case_events_closing_at_case_id",
        "case_events",
        ["at", "case_id"],
        unique=False,
        postgresql_where=text(CLOSING),
    )


def downgrade() -> None:
    op.drop_index("ix_case_events_closing_at_case_id", table_name="case_events")
    op.drop_index("ix_case_events_clock_deadline_after", table_name="case_events")
    op.drop_index("ix_case_events_at_case_id", table_name="case_events")
    op.drop_index("ix_cases_open_cell_id", table_name="cases")
    op.drop_index("ix_cases_cell_id_category_code_reported_at", table_name="cases")
