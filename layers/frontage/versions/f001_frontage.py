"""frontage: 门前三包 contracts with their frontage lines, and their inspections, on a branch of their own

Revision ID: f001
Depends on: 0010 (the core's schema with the roads the demo's frontages are cut from)
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "f001"
down_revision = None
branch_labels = ("frontage",)
depends_on = "0010"

# written out rather than created from the layer's Table: a later change of the model must not change
# what this revision did (tests/test_migrations.py checks the two agree)


def upgrade() -> None:
    op.create_geospatial_table(
        "frontage_contracts",
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
        sa.Column("contract_no", sa.String(length=40), nullable=False),
        sa.Column("shop_name", sa.String(length=200), nullable=False),
        sa.Column("licence_no", sa.String(length=64), nullable=True),
        sa.Column("owner", sa.String(length=100), nullable=True),
        sa.Column("owner_phone", sa.String(length=32), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("road", sa.String(length=200), nullable=True),
        sa.Column("package", sa.String(length=32), server_default=sa.text("'three'"), nullable=False),
        sa.Column("signed_on", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=32), server_default=sa.text("'active'"), nullable=False),
        sa.CheckConstraint("package IN ('three', 'four')", name=op.f("ck_frontage_contracts_package")),
        sa.CheckConstraint("status IN ('active', 'terminated')", name=op.f("ck_frontage_contracts_status")),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_frontage_contracts_geom_valid")),
        sa.ForeignKeyConstraint(["cell_id"], ["grid_cells.id"], name=op.f("fk_frontage_contracts_cell_id_grid_cells")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_frontage_contracts")),
        sa.UniqueConstraint("contract_no", name=op.f("uq_frontage_contracts_contract_no")),
    )
    op.create_geospatial_index(
        "idx_frontage_contracts_geom",
        "frontage_contracts",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_frontage_contracts_cell_id"), "frontage_contracts", ["cell_id"], unique=False)
    op.create_table(
        "frontage_inspections",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("inspection_no", sa.String(length=40), nullable=False),
        sa.Column("contract_id", sa.BigInteger(), nullable=False),
        sa.Column("inspected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("inspector", sa.String(length=100), nullable=False),
        sa.Column("tidy", sa.Boolean(), nullable=True),
        sa.Column("clean", sa.Boolean(), nullable=True),
        sa.Column("orderly", sa.Boolean(), nullable=True),
        sa.Column("green", sa.Boolean(), nullable=True),
        sa.Column("photo", sa.String(length=500), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["frontage_contracts.id"],
            name=op.f("fk_frontage_inspections_contract_id_frontage_contracts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_frontage_inspections")),
        sa.UniqueConstraint("inspection_no", name=op.f("uq_frontage_inspections_inspection_no")),
    )
    op.create_index(op.f("ix_frontage_inspections_contract_id"), "frontage_inspections", ["contract_id"], unique=False)
    # the map's tiles of the layer are versioned like every other layer's (migration 0005)
    op.execute(
        "CREATE TRIGGER layer_version_frontage_contracts AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
        "ON frontage_contracts FOR EACH STATEMENT EXECUTE FUNCTION layer_version_touch('frontage')"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER layer_version_frontage_contracts ON frontage_contracts")
    op.execute("DELETE FROM feature_cells WHERE layer = 'frontage'")
    op.execute("DELETE FROM layer_versions WHERE layer = 'frontage'")
    op.drop_index(op.f("ix_frontage_inspections_contract_id"), table_name="frontage_inspections")
    op.drop_table("frontage_inspections")
    op.drop_index(op.f("ix_frontage_contracts_cell_id"), table_name="frontage_contracts")
    op.drop_geospatial_index(
        "idx_frontage_contracts_geom", table_name="frontage_contracts", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("frontage_contracts")
