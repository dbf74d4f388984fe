"""parking history: the zone change log (append-only) and the parking footprint of a zone

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
# 0005 is being written beside this one; until it lands this follows 0004 (the head when written)
down_revision = "0005"
branch_labels = None
depends_on = None

# Like case_events: the log is append-only, enforced by the database.
APPEND_ONLY = """
CREATE FUNCTION parking_zone_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'parking_zone_events is append-only: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER parking_zone_events_no_update_delete BEFORE UPDATE OR DELETE ON parking_zone_events
  FOR EACH ROW EXECUTE FUNCTION parking_zone_events_append_only();
CREATE TRIGGER parking_zone_events_no_truncate BEFORE TRUNCATE ON parking_zone_events
  FOR EACH STATEMENT EXECUTE FUNCTION parking_zone_events_append_only();
"""

# The ground a zone's stalls take: a lot is its polygon; a kerb line is buffered (flat ends) by the
# parking depth, toward the roadway when the street side says where that is (a zone on the north side
# of a street parks south of its kerb), on both sides when it does not (no side, `both`, or a kerb
# running across the named side). The depth comes from the caller (gridmgr.layers.parking.checks.depth_sql), so the
# stall sizes stay in one place; the geometry rule is here, used by the overlap check and the CDS feed.
FOOTPRINT = """
CREATE FUNCTION parking_footprint(g geometry, depth double precision, street_side text)
RETURNS geometry LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN ST_Dimension(g) = 2 THEN g
    ELSE ST_Buffer(g::geography, depth, 'endcap=flat join=mitre side=' || CASE
        WHEN r.x IS NULL OR d.len = 0 THEN 'both'
        WHEN d.dx * r.y - d.dy * r.x > 0.3 * d.len THEN 'left'
        WHEN d.dx * r.y - d.dy * r.x < -0.3 * d.len THEN 'right'
        ELSE 'both' END)::geometry
  END
  FROM (SELECT v.dx, v.dy, sqrt(v.dx * v.dx + v.dy * v.dy) AS len
        FROM (SELECT (ST_X(ST_EndPoint(g)) - ST_X(ST_StartPoint(g))) * cos(radians(ST_Y(ST_StartPoint(g)))) AS dx,
                     ST_Y(ST_EndPoint(g)) - ST_Y(ST_StartPoint(g)) AS dy) v) d,
       (SELECT CASE street_side WHEN 'east' THEN -1 WHEN 'west' THEN 1 WHEN 'north' THEN 0 WHEN 'south' THEN 0 END AS x,
               CASE street_side WHEN 'north' THEN -1 WHEN 'south' THEN 1 WHEN 'east' THEN 0 WHEN 'west' THEN 0 END AS y) r
$$;
"""


def upgrade() -> None:
    op.create_table(
        "parking_zone_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("zone_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "to_status IN ('draft', 'submitted', 'approved', 'painted', 'retired')",
            name=op.f("ck_parking_zone_events_to_status"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_parking_zone_events_user_id_users")),
        sa.ForeignKeyConstraint(
            ["zone_id"], ["parking_zones.id"], name=op.f("fk_parking_zone_events_zone_id_parking_zones")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parking_zone_events")),
    )
    op.create_index("ix_parking_zone_events_zone_id_at", "parking_zone_events", ["zone_id", "at"], unique=False)
    op.create_index(op.f("ix_parking_zone_events_user_id"), "parking_zone_events", ["user_id"], unique=False)
    op.execute(APPEND_ONLY)
    op.execute(FOOTPRINT)


def downgrade() -> None:
    op.execute("DROP FUNCTION parking_footprint(geometry, double precision, text)")
    op.execute("DROP TRIGGER parking_zone_events_no_truncate ON parking_zone_events")
    op.execute("DROP TRIGGER parking_zone_events_no_update_delete ON parking_zone_events")
    op.execute("DROP FUNCTION parking_zone_events_append_only()")
    op.drop_index(op.f("ix_parking_zone_events_user_id"), table_name="parking_zone_events")
    op.drop_index("ix_parking_zone_events_zone_id_at", table_name="parking_zone_events")
    op.drop_table("parking_zone_events")
