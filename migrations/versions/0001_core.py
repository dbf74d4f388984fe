"""core: regions, the versioned unit grid, units, people, responsibility, assignment functions

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# The assignment rule, in one place (DESIGN.md "Assignment"); every caller goes through these.
# A point goes to the covering cell valid at `at`; on a shared edge or vertex, to the lowest code.
# A line or polygon goes to the cell with the largest overlap (length or area on the ground),
# ties to the lowest code. SQL functions used in FROM are inlined by the planner, so a bulk
# `LEFT JOIN LATERAL cell_for(...)` is one set-based statement over the GiST index.
CELL_FOR = """
CREATE FUNCTION cell_for(g geometry, at timestamptz DEFAULT now())
RETURNS TABLE (cell_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT c.id FROM grid_cells c
  WHERE c.geom && g AND ST_Intersects(c.geom, g)
    AND c.valid_from <= at AND (c.valid_to IS NULL OR at < c.valid_to)
  ORDER BY CASE ST_Dimension(g)
             WHEN 0 THEN 0
             WHEN 1 THEN -ST_Length(ST_Intersection(c.geom, g)::geography)
             ELSE -ST_Area(ST_Intersection(c.geom, g)::geography) END,
           c.code
  LIMIT 1
$$;
"""

# Every cell a feature touches, with its share of the feature (length or area on the ground).
CELL_SHARES = """
CREATE FUNCTION cell_shares(g geometry, at timestamptz DEFAULT now())
RETURNS TABLE (cell_id bigint, share double precision)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT f.cell_id, 1.0::double precision FROM cell_for(g, at) f WHERE ST_Dimension(g) = 0
  UNION ALL
  SELECT c.id,
         CASE ST_Dimension(g)
           WHEN 1 THEN ST_Length(ST_Intersection(c.geom, g)::geography) / NULLIF(ST_Length(g::geography), 0)
           ELSE ST_Area(ST_Intersection(c.geom, g)::geography) / NULLIF(ST_Area(g::geography), 0) END
  FROM grid_cells c
  WHERE ST_Dimension(g) > 0 AND c.geom && g AND ST_Intersects(c.geom, g)
    AND c.valid_from <= at AND (c.valid_to IS NULL OR at < c.valid_to)
    AND NOT ST_Touches(c.geom, g)
$$;
"""

# Cells valid at the same time never overlap (more than numerical noise, 0.01 m²). Areas here are
# flat lon/lat areas scaled to m² at the cell's latitude: the geography area of a hair-thin sliver
# along a long edge is inflated by the great-circle edges and would refuse correct grids.
NO_OVERLAP = """
CREATE FUNCTION grid_cells_no_overlap() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE other text;
BEGIN
  -- closing a cell (its period only shrinks, its shape unchanged) can never create an overlap
  IF TG_OP = 'UPDATE' AND ST_AsBinary(NEW.geom) = ST_AsBinary(OLD.geom)
     AND NEW.valid_from >= OLD.valid_from
     AND NEW.valid_to IS NOT NULL AND (OLD.valid_to IS NULL OR NEW.valid_to <= OLD.valid_to) THEN
    RETURN NULL;
  END IF;
  SELECT o.code INTO other FROM grid_cells o
  WHERE o.id <> NEW.id AND o.geom && NEW.geom
    AND tstzrange(o.valid_from, o.valid_to) && tstzrange(NEW.valid_from, NEW.valid_to)
    AND ST_Intersects(o.geom, NEW.geom) AND NOT ST_Touches(o.geom, NEW.geom)
    AND ST_Area(ST_Intersection(o.geom, NEW.geom))
        * 111319.49 * 111319.49 * cos(radians(ST_Y(ST_Centroid(NEW.geom)))) > 0.01
  LIMIT 1;
  IF other IS NOT NULL THEN
    RAISE EXCEPTION 'cell % overlaps cell % valid at the same time', NEW.code, other
      USING ERRCODE = 'exclusion_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER grid_cells_no_overlap AFTER INSERT OR UPDATE OF geom, valid_from, valid_to
  ON grid_cells DEFERRABLE INITIALLY IMMEDIATE FOR EACH ROW EXECUTE FUNCTION grid_cells_no_overlap();
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table(
        "meta",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_meta")),
    )
    op.create_table(
        "regions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.CheckConstraint("level IN ('district', 'street', 'community')", name=op.f("ck_regions_level")),
        sa.CheckConstraint(
            "code ~ '^[0-9]+$' AND length(code) = CASE level WHEN 'district' THEN 6 WHEN 'street' THEN 9 ELSE 12 END",
            name=op.f("ck_regions_code_format"),
        ),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_regions_geom_valid")),
        sa.ForeignKeyConstraint(["parent_id"], ["regions.id"], name=op.f("fk_regions_parent_id_regions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regions")),
        sa.UniqueConstraint("code", name=op.f("uq_regions_code")),
    )
    op.create_index(op.f("ix_regions_parent_id"), "regions", ["parent_id"])
    op.create_index("idx_regions_geom", "regions", ["geom"], postgresql_using="gist")
    op.create_table(
        "grid_cells",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=15), nullable=False),
        sa.Column("community_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "geom",
            geoalchemy2.types.Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("area_m2", sa.Float(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), server_default=sa.text("'-infinity'"), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("code ~ '^[0-9]{15}$'", name=op.f("ck_grid_cells_code_format")),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_grid_cells_geom_valid")),
        sa.CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name=op.f("ck_grid_cells_period")),
        sa.CheckConstraint("source IN ('generated', 'imported')", name=op.f("ck_grid_cells_source")),
        sa.ForeignKeyConstraint(["community_id"], ["regions.id"], name=op.f("fk_grid_cells_community_id_regions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grid_cells")),
        postgresql.ExcludeConstraint(
            (sa.column("code"), "="),
            (sa.text("tstzrange(valid_from, valid_to)"), "&&"),
            using="gist",
            name="ex_grid_cells_code_period",
        ),
    )
    op.create_index(op.f("ix_grid_cells_code"), "grid_cells", ["code"])
    op.create_index(op.f("ix_grid_cells_community_id"), "grid_cells", ["community_id"])
    op.create_index("ix_grid_cells_open", "grid_cells", ["community_id"], postgresql_where=sa.text("valid_to IS NULL"))
    op.create_index("idx_grid_cells_geom", "grid_cells", ["geom"], postgresql_using="gist")
    op.create_table(
        "units",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("region_id", sa.BigInteger(), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "kind IN ('enforcement_squad', 'sanitation', 'street_office', 'department', 'company', 'other')",
            name=op.f("ck_units_kind"),
        ),
        sa.ForeignKeyConstraint(["region_id"], ["regions.id"], name=op.f("fk_units_region_id_regions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_units")),
        sa.UniqueConstraint("code", name=op.f("uq_units_code")),
    )
    op.create_index(op.f("ix_units_region_id"), "units", ["region_id"])
    op.create_table(
        "people",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.CheckConstraint(
            "role IN ('grid_leader', 'grid_officer', 'supervisor', 'staff')", name=op.f("ck_people_role")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_people_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
        sa.UniqueConstraint("code", name=op.f("uq_people_code")),
    )
    op.create_index(op.f("ix_people_unit_id"), "people", ["unit_id"])
    op.create_table(
        "cell_units",
        sa.Column("cell_id", sa.BigInteger(), nullable=False),
        sa.Column("duty", sa.String(length=16), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "duty IN ('territorial', 'enforcement', 'sanitation', 'maintenance', 'other')",
            name=op.f("ck_cell_units_duty"),
        ),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["grid_cells.id"], ondelete="CASCADE", name=op.f("fk_cell_units_cell_id_grid_cells")
        ),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_cell_units_unit_id_units")),
        sa.PrimaryKeyConstraint("cell_id", "duty", name=op.f("pk_cell_units")),
    )
    op.create_index(op.f("ix_cell_units_unit_id"), "cell_units", ["unit_id"])
    op.create_table(
        "cell_people",
        sa.Column("cell_id", sa.BigInteger(), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("post", sa.String(length=16), nullable=False),
        sa.CheckConstraint("post IN ('grid_leader', 'grid_officer', 'supervisor')", name=op.f("ck_cell_people_post")),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["grid_cells.id"], ondelete="CASCADE", name=op.f("fk_cell_people_cell_id_grid_cells")
        ),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name=op.f("fk_cell_people_person_id_people")),
        sa.PrimaryKeyConstraint("cell_id", "person_id", "post", name=op.f("pk_cell_people")),
    )
    op.create_index(op.f("ix_cell_people_person_id"), "cell_people", ["person_id"])
    op.create_table(
        "duty_grids",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=True),
        sa.Column("supervisor_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["supervisor_id"], ["people.id"], name=op.f("fk_duty_grids_supervisor_id_people")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_duty_grids_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duty_grids")),
        sa.UniqueConstraint("code", name=op.f("uq_duty_grids_code")),
    )
    op.create_index(op.f("ix_duty_grids_supervisor_id"), "duty_grids", ["supervisor_id"])
    op.create_index(op.f("ix_duty_grids_unit_id"), "duty_grids", ["unit_id"])
    op.create_table(
        "duty_grid_cells",
        sa.Column("duty_grid_id", sa.BigInteger(), nullable=False),
        sa.Column("cell_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cell_id"], ["grid_cells.id"], ondelete="CASCADE", name=op.f("fk_duty_grid_cells_cell_id_grid_cells")
        ),
        sa.ForeignKeyConstraint(
            ["duty_grid_id"],
            ["duty_grids.id"],
            ondelete="CASCADE",
            name=op.f("fk_duty_grid_cells_duty_grid_id_duty_grids"),
        ),
        sa.PrimaryKeyConstraint("duty_grid_id", "cell_id", name=op.f("pk_duty_grid_cells")),
    )
    op.create_index(op.f("ix_duty_grid_cells_cell_id"), "duty_grid_cells", ["cell_id"])
    op.create_table(
        "cell_reassignments",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("layer", sa.String(length=32), nullable=False),
        sa.Column("feature_id", sa.BigInteger(), nullable=False),
        sa.Column("from_cell_id", sa.BigInteger(), nullable=True),
        sa.Column("to_cell_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["from_cell_id"], ["grid_cells.id"], name=op.f("fk_cell_reassignments_from_cell_id_grid_cells")
        ),
        sa.ForeignKeyConstraint(
            ["to_cell_id"], ["grid_cells.id"], name=op.f("fk_cell_reassignments_to_cell_id_grid_cells")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cell_reassignments")),
    )
    op.execute(CELL_FOR)
    op.execute(CELL_SHARES)
    op.execute(NO_OVERLAP)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS grid_cells_no_overlap ON grid_cells")
    op.execute("DROP FUNCTION IF EXISTS grid_cells_no_overlap()")
    op.execute("DROP FUNCTION IF EXISTS cell_shares(geometry, timestamptz)")
    op.execute("DROP FUNCTION IF EXISTS cell_for(geometry, timestamptz)")
    for table in (
        "cell_reassignments",
        "duty_grid_cells",
        "duty_grids",
        "cell_people",
        "cell_units",
        "people",
        "units",
        "grid_cells",
        "regions",
        "meta",
    ):
        op.drop_table(table)
    # the extensions stay: other databases objects may use them, and dropping PostGIS is the admin's call
