"""workflow: users, api keys, case events, dispatch rules

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The audit trail is append-only, enforced by the database, not by the code's good manners.
APPEND_ONLY = """
CREATE FUNCTION case_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'case_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER case_events_no_update_delete BEFORE UPDATE OR DELETE ON case_events
  FOR EACH ROW EXECUTE FUNCTION case_events_append_only();
CREATE TRIGGER case_events_no_truncate BEFORE TRUNCATE ON case_events
  FOR EACH STATEMENT EXECUTE FUNCTION case_events_append_only();
"""


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
    )
    op.create_table(
        "dispatch_rules",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("area", sa.String(length=15), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=True),
        sa.Column("duty", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "area ~ '^(\\*|[0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$'", name=op.f("ck_dispatch_rules_area_format")
        ),
        sa.CheckConstraint(
            "category ~ '^(\\*|C?[0-9]{4}|(event|component):[0-9]{2})$'", name=op.f("ck_dispatch_rules_category_format")
        ),
        sa.CheckConstraint("(unit_id IS NULL) <> (duty IS NULL)", name=op.f("ck_dispatch_rules_one_target")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_dispatch_rules_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_rules")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "role IN ('supervisor', 'receiver', 'dispatcher', 'shift_leader', 'unit_handler', 'planner', 'leader', 'admin')",
            name=op.f("ck_users_role"),
        ),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_users_person_id_people")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("person_id", name=op.f("uq_users_person_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_users_token_hash")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "case_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=True),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("unit_id", sa.BigInteger(), nullable=True),
        sa.Column("deadline_before", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("photos", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_case_events_case_id_cases")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_case_events_unit_id_units")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_case_events_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_events")),
    )
    op.create_index("ix_case_events_case_id_at", "case_events", ["case_id", "at"], unique=False)
    op.create_index(op.f("ix_case_events_user_id"), "case_events", ["user_id"], unique=False)
    op.add_column("cases", sa.Column("deadline_step", sa.String(length=16), nullable=True))
    op.add_column("cases", sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("cases", sa.Column("reporter_user_id", sa.BigInteger(), nullable=True))
    op.add_column("cases", sa.Column("self_handled", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.add_column("cases", sa.Column("rework_count", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("cases", sa.Column("extension_request", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column("cases", sa.Column("resume_state", sa.String(length=16), nullable=True))
    op.create_foreign_key(op.f("fk_cases_reporter_user_id_users"), "cases", "users", ["reporter_user_id"], ["id"])
    op.execute(APPEND_ONLY)


def downgrade() -> None:
    op.execute("DROP TRIGGER case_events_no_truncate ON case_events")
    op.execute("DROP TRIGGER case_events_no_update_delete ON case_events")
    op.execute("DROP FUNCTION case_events_append_only()")
    op.drop_constraint(op.f("fk_cases_reporter_user_id_users"), "cases", type_="foreignkey")
    op.drop_column("cases", "resume_state")
    op.drop_column("cases", "extension_request")
    op.drop_column("cases", "rework_count")
    op.drop_column("cases", "self_handled")
    op.drop_column("cases", "reporter_user_id")
    op.drop_column("cases", "step_started_at")
    op.drop_column("cases", "deadline_step")
    op.drop_index(op.f("ix_case_events_user_id"), table_name="case_events")
    op.drop_index("ix_case_events_case_id_at", table_name="case_events")
    op.drop_table("case_events")
    op.drop_table("users")
    op.drop_table("dispatch_rules")
    op.drop_table("api_keys")
