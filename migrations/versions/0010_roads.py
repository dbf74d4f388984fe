"""roads: road centre lines with their grade and cleaning unit, tracked for map tiles

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# the same shape as every feature table (gridmgr.plugins.features.feature_table) and, like 0005 did for the
# others, a statement trigger so a write bumps the roads layer's tile data version at commit


def upgrade() -> None:
    op.create_geospatial_table(
        "roads",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="LINESTRING",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("cell_id", sa.BigInteger(), nullable=True),
        sa.Column("out_of_grid", sa.Boolean(), sa.Computed("cell_id IS NULL", persisted=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("road_no", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("grade", sa.String(length=32), nullable=False),
        sa.Column("cleaning_unit_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("grade IN ('expressway', 'arterial', 'secondary', 'branch')", name=op.f("ck_roads_grade")),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_roads_geom_valid")),
        sa.ForeignKeyConstraint(["cell_id"], ["grid_cells.id"], name=op.f("fk_roads_cell_id_grid_cells")),
        sa.ForeignKeyConstraint(["cleaning_unit_id"], ["units.id"], name=op.f("fk_roads_cleaning_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roads")),
        sa.UniqueConstraint("road_no", name=op.f("uq_roads_road_no")),
    )
    op.create_geospatial_index(
        "idx_roads_geom", "roads", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_roads_cell_id"), "roads", ["cell_id"], unique=False)
    op.create_index(op.f("ix_roads_cleaning_unit_id"), "roads", ["cleaning_unit_id"], unique=False)
    op.execute(
        "CREATE TRIGGER layer_version_roads AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        "ON roads FOR EACH STATEMENT EXECUTE FUNCTION layer_version_touch('roads')"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER layer_version_roads ON roads")
    op.execute("DELETE FROM feature_cells WHERE layer = 'roads'")
    op.execute("DELETE FROM layer_versions WHERE layer = 'roads'")
    op.drop_index(op.f("ix_roads_cleaning_unit_id"), table_name="roads")
    op.drop_index(op.f("ix_roads_cell_id"), table_name="roads")
    op.drop_geospatial_index("idx_roads_geom", table_name="roads", postgresql_using="gist", column_name="geom")
    op.drop_geospatial_table("roads")
