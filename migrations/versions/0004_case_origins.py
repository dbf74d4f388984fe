"""case origins: which layer rule raised a case from which feature

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# "At most one open case per (rule, layer, feature)" is a unique index WHERE open; `open` is derived
# here from cases.status, so no code path can forget to keep it in sync:
# - on insert or update of an origin, a BEFORE trigger sets `open` from its case's status (locking the
#   case row, so a concurrent close cannot slip between the read and the commit) and refuses an origin
#   for a case whose source is not 'rule';
# - when a rule case's status crosses between open and closed/rejected, an AFTER trigger on cases
#   updates its origin (which the first trigger recomputes). The WHEN clause keeps every other update
#   of cases, bulk ones included, free of any trigger call.
TRIGGERS = """
CREATE FUNCTION case_origins_derive_open() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  c record;
BEGIN
  SELECT status, source INTO c FROM cases WHERE id = NEW.case_id FOR SHARE;
  IF NOT FOUND THEN
    RETURN NEW;  -- the foreign key reports the missing case
  END IF;
  IF c.source <> 'rule' THEN
    RAISE EXCEPTION 'case % has source %: only cases raised by a rule (source rule) have an origin',
      NEW.case_id, c.source USING ERRCODE = 'check_violation';
  END IF;
  NEW.open := c.status NOT IN ('closed', 'rejected');
  RETURN NEW;
END $$;
CREATE TRIGGER case_origins_derive_open BEFORE INSERT OR UPDATE ON case_origins
  FOR EACH ROW EXECUTE FUNCTION case_origins_derive_open();

CREATE FUNCTION cases_sync_origin() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE case_origins SET open = NEW.status NOT IN ('closed', 'rejected') WHERE case_id = NEW.id;
  RETURN NULL;
END $$;
CREATE TRIGGER cases_sync_origin AFTER UPDATE OF status ON cases
  FOR EACH ROW WHEN (NEW.source = 'rule'
                     AND (OLD.status IN ('closed', 'rejected')) IS DISTINCT FROM (NEW.status IN ('closed', 'rejected')))
  EXECUTE FUNCTION cases_sync_origin();
"""


def upgrade() -> None:
    op.create_table(
        "case_origins",
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("feature_id", sa.BigInteger(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("open", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_origins_case_id_cases")),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_origins")),
    )
    op.create_index("ix_case_origins_layer_feature_id", "case_origins", ["layer", "feature_id"], unique=False)
    op.create_index(
        "uq_case_origins_open_feature",
        "case_origins",
        ["rule", "layer", "feature_id"],
        unique=True,
        postgresql_where=sa.text("open"),
    )
    op.execute(TRIGGERS)


def downgrade() -> None:
    op.execute("DROP TRIGGER cases_sync_origin ON cases")
    op.execute("DROP FUNCTION cases_sync_origin()")
    op.execute("DROP TRIGGER case_origins_derive_open ON case_origins")
    op.execute("DROP FUNCTION case_origins_derive_open()")
    op.drop_index("uq_case_origins_open_feature", table_name="case_origins", postgresql_where=sa.text("open"))
    op.drop_index("ix_case_origins_layer_feature_id", table_name="case_origins")
    op.drop_table("case_origins")
