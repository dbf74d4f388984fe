"""a case's status changes only with its event in case_events

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# The workflow writes the event, then the case. An UPDATE that moves a case to a status no event of
# this transaction moved it to is refused: the audit trail is the only way a case's status changes.
# recorded_at defaults to now(), the transaction's start, the same in every savepoint of it.
STATUS_NEEDS_EVENT = """
CREATE FUNCTION cases_status_needs_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM case_events e
                 WHERE e.case_id = NEW.id AND e.to_state = NEW.status AND e.recorded_at = now()) THEN
    RAISE EXCEPTION 'case %: status % needs its event in case_events', NEW.id, NEW.status
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER cases_status_needs_event BEFORE UPDATE OF status ON cases
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION cases_status_needs_event();
"""


def upgrade() -> None:
    op.execute(STATUS_NEEDS_EVENT)


def downgrade() -> None:
    op.execute("DROP TRIGGER cases_status_needs_event ON cases")
    op.execute("DROP FUNCTION cases_status_needs_event()")
