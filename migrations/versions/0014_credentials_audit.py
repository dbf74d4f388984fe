"""credentials and audit: one model for sessions, tokens and keys; one audit log; separated administrators

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

OLD_ROLES = "'supervisor', 'receiver', 'dispatcher', 'shift_leader', 'unit_handler', 'planner', 'leader', 'admin'"
NEW_ROLES = (
    "'supervisor', 'receiver', 'dispatcher', 'shift_leader', 'unit_handler', 'planner', 'leader', "
    "'sysadmin', 'secadmin', 'auditor'"
)

# the audit is append-only, like case_events; only the owner's prune function removes rows, and only
# those older than 180 days (等保 2.0's six months), whatever it is asked
AUDIT_RULES = """
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND OLD.at < now() - interval '180 days' AND current_setting('gridmgr.pruning', true) = 'on' THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
CREATE FUNCTION audit_log_prune(keep_days integer) RETURNS bigint
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE n bigint;
BEGIN
  IF keep_days < 180 THEN
    RAISE EXCEPTION 'audit records are kept at least 180 days, not %', keep_days USING ERRCODE = 'check_violation';
  END IF;
  PERFORM set_config('gridmgr.pruning', 'on', true);
  DELETE FROM audit_log WHERE at < now() - make_interval(days => keep_days);
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM set_config('gridmgr.pruning', 'off', true);
  RETURN n;
END $$;
REVOKE ALL ON FUNCTION audit_log_prune(integer) FROM PUBLIC;
"""


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idle_minutes", sa.Integer(), nullable=True),
        sa.Column("idle_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.Column("address", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('session', 'api_token', 'open311_key', 'intake_key')", name=op.f("ck_credentials_kind")
        ),
        sa.CheckConstraint(
            "(kind IN ('session', 'api_token')) = (user_id IS NOT NULL)", name=op.f("ck_credentials_owner")
        ),
        sa.CheckConstraint("user_id IS NOT NULL OR name IS NOT NULL", name=op.f("ck_credentials_named")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_credentials_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_credentials_secret_hash")),
    )
    op.create_index("ix_credentials_user_id_kind", "credentials", ["user_id", "kind"], unique=False)
    op.create_index(
        "uq_credentials_live_key_name",
        "credentials",
        ["kind", "name"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL AND user_id IS NULL"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=True),
        sa.Column("address", sa.String(length=45), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("ok", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_subject_at", "audit_log", ["subject", "at"], unique=False)
    op.create_index("ix_audit_log_address_at", "audit_log", ["address", "at"], unique=False)
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.create_table(
        "password_history",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_password_history_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_password_history")),
    )
    op.create_index("ix_password_history_user_id", "password_history", ["user_id"], unique=False)
    op.add_column(
        "users",
        sa.Column("password_changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
    )
    # what was there moves in: API tokens, Open311 keys, the login tries
    op.execute("""
        INSERT INTO credentials (kind, user_id, secret_hash, created_at)
        SELECT 'api_token', id, token_hash, created_at FROM users WHERE token_hash IS NOT NULL
    """)
    op.execute("""
        INSERT INTO credentials (kind, name, secret_hash, created_at, revoked_at, revoked_reason)
        SELECT 'open311_key', name, key_hash, created_at, revoked_at, CASE WHEN revoked_at IS NOT NULL THEN 'revoked' END
        FROM api_keys
    """)
    op.execute("""
        INSERT INTO audit_log (at, actor, address, action, subject, ok)
        SELECT at, username, address, 'login', username, ok FROM login_attempts ORDER BY id
    """)
    op.execute(AUDIT_RULES)
    op.drop_table("login_attempts")
    op.drop_table("api_keys")
    op.drop_constraint(op.f("uq_users_token_hash"), "users", type_="unique")
    op.drop_column("users", "token_hash")
    op.drop_column("users", "session_epoch")
    # 三员分立: the one administrator becomes the system administrator
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.execute("UPDATE users SET role = 'sysadmin' WHERE role = 'admin'")
    op.create_check_constraint(op.f("ck_users_role"), "users", f"role IN ({NEW_ROLES})")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_users_role"), "users", type_="check")
    op.execute("UPDATE users SET role = 'admin' WHERE role IN ('sysadmin', 'secadmin', 'auditor')")
    op.create_check_constraint(op.f("ck_users_role"), "users", f"role IN ({OLD_ROLES})")
    op.add_column("users", sa.Column("session_epoch", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("users", sa.Column("token_hash", sa.String(length=64), nullable=True))
    op.create_unique_constraint(op.f("uq_users_token_hash"), "users", ["token_hash"])
    op.execute("""
        UPDATE users u SET token_hash = c.secret_hash FROM credentials c
        WHERE c.user_id = u.id AND c.kind = 'api_token' AND c.revoked_at IS NULL
    """)
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
    op.execute("""
        INSERT INTO api_keys (name, key_hash, created_at, revoked_at)
        SELECT DISTINCT ON (name) name, secret_hash, created_at, revoked_at FROM credentials
        WHERE kind = 'open311_key' ORDER BY name, revoked_at DESC NULLS FIRST
    """)
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=45), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    op.create_index("ix_login_attempts_username_at", "login_attempts", ["username", "at"], unique=False)
    op.create_index("ix_login_attempts_address_at", "login_attempts", ["address", "at"], unique=False)
    op.drop_column("users", "password_changed_at")
    op.drop_index("ix_password_history_user_id", table_name="password_history")
    op.drop_table("password_history")
    op.execute("DROP FUNCTION audit_log_prune(integer)")
    op.drop_table("audit_log")
    op.execute("DROP FUNCTION audit_log_append_only()")
    op.drop_index("uq_credentials_live_key_name", table_name="credentials")
    op.drop_index("ix_credentials_user_id_kind", table_name="credentials")
    op.drop_table("credentials")
