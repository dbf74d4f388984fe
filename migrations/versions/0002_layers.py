"""layers: cases, categories, parking, construction, billboards

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # case numbers given by imports that bring none: year + this sequence
    op.execute("CREATE SEQUENCE case_no_seq")
    op.create_table(
        "import_log",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("layer", sa.String(length=32), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("imported", sa.BigInteger(), nullable=False),
        sa.Column("existing", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_log")),
    )
    op.create_index("ix_import_log_layer_sha256", "import_log", ["layer", "sha256"], unique=False)
    op.create_table(
        "categories",
        sa.Column("code", sa.String(length=8), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("major_code", sa.String(length=2), nullable=False),
        sa.Column("major_name", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=True),
        sa.Column("verify_limit", sa.String(length=8), nullable=True),
        sa.Column("register_limit", sa.String(length=8), nullable=True),
        sa.Column("dispatch_limit", sa.String(length=8), nullable=True),
        sa.Column("handle_limit", sa.String(length=8), nullable=True),
        sa.Column("handle_limit_urgent", sa.String(length=8), nullable=True),
        sa.Column("check_limit", sa.String(length=8), nullable=True),
        sa.Column("register_condition", sa.Text(), nullable=True),
        sa.Column("close_condition", sa.Text(), nullable=True),
        sa.CheckConstraint("code ~ '^C?[0-9]{4}$'", name=op.f("ck_categories_code_format")),
        sa.CheckConstraint("kind IN ('event', 'component')", name=op.f("ck_categories_kind")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_categories")),
    )
    op.create_geospatial_table(
        "billboards",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
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
        sa.Column("ad_no", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("carrier", sa.String(length=32), nullable=True),
        sa.Column("width_m", sa.Float(), nullable=True),
        sa.Column("height_m", sa.Float(), nullable=True),
        sa.Column("height_above_ground_m", sa.Float(), nullable=True),
        sa.Column("illuminated", sa.Boolean(), nullable=True),
        sa.Column("owner", sa.String(length=300), nullable=True),
        sa.Column("owner_credit_code", sa.String(length=18), nullable=True),
        sa.Column("permit_no", sa.String(length=64), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("last_inspection", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.CheckConstraint(
            "carrier IN ('building', 'ground', 'municipal_facility', 'shelter', 'other')",
            name=op.f("ck_billboards_carrier"),
        ),
        sa.CheckConstraint("status IN ('permitted', 'unpermitted', 'removed')", name=op.f("ck_billboards_status")),
        sa.CheckConstraint(
            "type IN ('wall', 'rooftop', 'pole', 'led_screen', 'hoarding', 'light_box', 'neon', 'other')",
            name=op.f("ck_billboards_type"),
        ),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_billboards_geom_valid")),
        sa.CheckConstraint("height_above_ground_m >= 0", name=op.f("ck_billboards_height_above_ground_m_min")),
        sa.CheckConstraint("height_m >= 0", name=op.f("ck_billboards_height_m_min")),
        sa.CheckConstraint("width_m >= 0", name=op.f("ck_billboards_width_m_min")),
        sa.ForeignKeyConstraint(["cell_id"], ["grid_cells.id"], name=op.f("fk_billboards_cell_id_grid_cells")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billboards")),
        sa.UniqueConstraint("ad_no", name=op.f("uq_billboards_ad_no")),
    )
    op.create_geospatial_index(
        "idx_billboards_geom", "billboards", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_billboards_cell_id"), "billboards", ["cell_id"], unique=False)
    op.create_geospatial_table(
        "cases",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
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
        sa.Column("case_no", sa.String(length=16), nullable=False),
        sa.Column("category_code", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("urgency", sa.String(length=32), server_default=sa.text("'normal'"), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("photos", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'"), nullable=False),
        sa.Column("status", sa.String(length=16), server_default=sa.text("'reported'"), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unit_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "source IN ('supervisor', 'public', 'hotline_12319', 'hotline_12345', 'video', 'leader', 'rule')",
            name=op.f("ck_cases_source"),
        ),
        sa.CheckConstraint(
            "status IN ('reported', 'verified', 'registered', 'rejected', 'dispatched', 'handled', 'checked', 'closed', 'returned', 'rework', 'suspended', 'deferred')",
            name=op.f("ck_cases_status"),
        ),
        sa.CheckConstraint("urgency IN ('normal', 'urgent')", name=op.f("ck_cases_urgency")),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_cases_geom_valid")),
        sa.ForeignKeyConstraint(["category_code"], ["categories.code"], name=op.f("fk_cases_category_code_categories")),
        sa.ForeignKeyConstraint(["cell_id"], ["grid_cells.id"], name=op.f("fk_cases_cell_id_grid_cells")),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"], name=op.f("fk_cases_unit_id_units")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cases")),
        sa.UniqueConstraint("case_no", name=op.f("uq_cases_case_no")),
    )
    op.create_geospatial_index(
        "idx_cases_geom", "cases", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_cases_category_code"), "cases", ["category_code"], unique=False)
    op.create_index(op.f("ix_cases_cell_id"), "cases", ["cell_id"], unique=False)
    op.create_index("ix_cases_reported_at", "cases", ["reported_at"], unique=False)
    op.create_index("ix_cases_status", "cases", ["status"], unique=False)
    op.create_index(op.f("ix_cases_unit_id"), "cases", ["unit_id"], unique=False)
    op.create_geospatial_table(
        "construction_sites",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
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
        sa.Column("permit_no", sa.String(length=64), nullable=False),
        sa.Column("project_name", sa.String(length=300), nullable=False),
        sa.Column("builder", sa.String(length=300), nullable=True),
        sa.Column("manager", sa.String(length=100), nullable=True),
        sa.Column("manager_phone", sa.String(length=32), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("planned_end", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=32), server_default=sa.text("'active'"), nullable=False),
        sa.Column("hoarding", sa.Boolean(), nullable=True),
        sa.Column("covering", sa.Boolean(), nullable=True),
        sa.Column("washing", sa.Boolean(), nullable=True),
        sa.Column("hardening", sa.Boolean(), nullable=True),
        sa.Column("wet_work", sa.Boolean(), nullable=True),
        sa.Column("closed_transport", sa.Boolean(), nullable=True),
        sa.CheckConstraint(
            "status IN ('planned', 'active', 'suspended', 'finished')", name=op.f("ck_construction_sites_status")
        ),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_construction_sites_geom_valid")),
        sa.ForeignKeyConstraint(["cell_id"], ["grid_cells.id"], name=op.f("fk_construction_sites_cell_id_grid_cells")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_construction_sites")),
        sa.UniqueConstraint("permit_no", name=op.f("uq_construction_sites_permit_no")),
    )
    op.create_geospatial_index(
        "idx_construction_sites_geom",
        "construction_sites",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_construction_sites_cell_id"), "construction_sites", ["cell_id"], unique=False)
    op.create_table(
        "feature_cells",
        sa.Column("layer", sa.String(length=32), nullable=False),
        sa.Column("feature_id", sa.BigInteger(), nullable=False),
        sa.Column("cell_id", sa.BigInteger(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["cell_id"], ["grid_cells.id"], name=op.f("fk_feature_cells_cell_id_grid_cells")),
        sa.PrimaryKeyConstraint("layer", "feature_id", "cell_id", name=op.f("pk_feature_cells")),
    )
    op.create_index("ix_feature_cells_cell_id", "feature_cells", ["cell_id"], unique=False)
    op.create_geospatial_table(
        "parking_zones",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
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
        sa.Column("zone_no", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("street_name", sa.String(length=200), nullable=True),
        sa.Column("street_side", sa.String(length=32), nullable=True),
        sa.Column("parking_angle", sa.String(length=32), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("capacity_reason", sa.String(length=500), nullable=True),
        sa.Column("fee_rule", sa.String(length=500), nullable=True),
        sa.Column("time_rules", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=32), server_default=sa.text("'draft'"), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("length_m", sa.Float(), nullable=True),
        sa.Column("area_m2", sa.Float(), nullable=True),
        sa.Column("capacity_estimated", sa.Integer(), nullable=False),
        sa.Column("prev_zone_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "ST_GeometryType(geom) IN ('ST_LineString', 'ST_Polygon')", name=op.f("ck_parking_zones_geom_type")
        ),
        sa.CheckConstraint(
            "parking_angle IN ('parallel', 'perpendicular', 'angled_30', 'angled_45', 'angled_60')",
            name=op.f("ck_parking_zones_parking_angle"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'approved', 'painted', 'retired')", name=op.f("ck_parking_zones_status")
        ),
        sa.CheckConstraint(
            "street_side IN ('north', 'south', 'east', 'west', 'both')", name=op.f("ck_parking_zones_street_side")
        ),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_parking_zones_geom_valid")),
        sa.CheckConstraint("capacity >= 0", name=op.f("ck_parking_zones_capacity_min")),
        sa.ForeignKeyConstraint(["cell_id"], ["grid_cells.id"], name=op.f("fk_parking_zones_cell_id_grid_cells")),
        sa.ForeignKeyConstraint(
            ["prev_zone_id"], ["parking_zones.id"], name=op.f("fk_parking_zones_prev_zone_id_parking_zones")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parking_zones")),
        sa.UniqueConstraint("zone_no", name=op.f("uq_parking_zones_zone_no")),
    )
    op.create_geospatial_index(
        "idx_parking_zones_geom", "parking_zones", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_parking_zones_cell_id"), "parking_zones", ["cell_id"], unique=False)
    op.create_geospatial_table(
        "parking_spaces",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
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
        sa.Column("space_no", sa.String(length=40), nullable=False),
        sa.Column("zone_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=32), server_default=sa.text("'standard'"), nullable=False),
        sa.CheckConstraint(
            "ST_GeometryType(geom) IN ('ST_Point', 'ST_Polygon')", name=op.f("ck_parking_spaces_geom_type")
        ),
        sa.CheckConstraint(
            "type IN ('standard', 'disabled', 'ev_charging', 'loading', 'motorcycle')",
            name=op.f("ck_parking_spaces_type"),
        ),
        sa.CheckConstraint("ST_IsValid(geom)", name=op.f("ck_parking_spaces_geom_valid")),
        sa.ForeignKeyConstraint(["cell_id"], ["grid_cells.id"], name=op.f("fk_parking_spaces_cell_id_grid_cells")),
        sa.ForeignKeyConstraint(
            ["zone_id"], ["parking_zones.id"], name=op.f("fk_parking_spaces_zone_id_parking_zones")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parking_spaces")),
        sa.UniqueConstraint("space_no", name=op.f("uq_parking_spaces_space_no")),
    )
    op.create_geospatial_index(
        "idx_parking_spaces_geom", "parking_spaces", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(op.f("ix_parking_spaces_cell_id"), "parking_spaces", ["cell_id"], unique=False)
    op.create_index(op.f("ix_parking_spaces_zone_id"), "parking_spaces", ["zone_id"], unique=False)
    op.create_table(
        "site_inspections",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("inspection_no", sa.String(length=40), nullable=False),
        sa.Column("site_id", sa.BigInteger(), nullable=False),
        sa.Column("inspected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("inspector", sa.String(length=100), nullable=False),
        sa.Column("hoarding", sa.Boolean(), nullable=True),
        sa.Column("covering", sa.Boolean(), nullable=True),
        sa.Column("washing", sa.Boolean(), nullable=True),
        sa.Column("hardening", sa.Boolean(), nullable=True),
        sa.Column("wet_work", sa.Boolean(), nullable=True),
        sa.Column("closed_transport", sa.Boolean(), nullable=True),
        sa.Column("note", sa.String(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["construction_sites.id"], name=op.f("fk_site_inspections_site_id_construction_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site_inspections")),
        sa.UniqueConstraint("inspection_no", name=op.f("uq_site_inspections_inspection_no")),
    )
    op.create_index(op.f("ix_site_inspections_site_id"), "site_inspections", ["site_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_site_inspections_site_id"), table_name="site_inspections")
    op.drop_table("site_inspections")
    op.drop_index(op.f("ix_parking_spaces_zone_id"), table_name="parking_spaces")
    op.drop_index(op.f("ix_parking_spaces_cell_id"), table_name="parking_spaces")
    op.drop_geospatial_index(
        "idx_parking_spaces_geom", table_name="parking_spaces", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("parking_spaces")
    op.drop_index(op.f("ix_parking_zones_cell_id"), table_name="parking_zones")
    op.drop_geospatial_index(
        "idx_parking_zones_geom", table_name="parking_zones", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("parking_zones")
    op.drop_index("ix_feature_cells_cell_id", table_name="feature_cells")
    op.drop_table("feature_cells")
    op.drop_index(op.f("ix_construction_sites_cell_id"), table_name="construction_sites")
    op.drop_geospatial_index(
        "idx_construction_sites_geom", table_name="construction_sites", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("construction_sites")
    op.drop_index(op.f("ix_cases_unit_id"), table_name="cases")
    op.drop_index("ix_cases_status", table_name="cases")
    op.drop_index("ix_cases_reported_at", table_name="cases")
    op.drop_index(op.f("ix_cases_cell_id"), table_name="cases")
    op.drop_index(op.f("ix_cases_category_code"), table_name="cases")
    op.drop_geospatial_index("idx_cases_geom", table_name="cases", postgresql_using="gist", column_name="geom")
    op.drop_geospatial_table("cases")
    op.drop_index(op.f("ix_billboards_cell_id"), table_name="billboards")
    op.drop_geospatial_index(
        "idx_billboards_geom", table_name="billboards", postgresql_using="gist", column_name="geom"
    )
    op.drop_geospatial_table("billboards")
    op.drop_table("categories")
    op.drop_table("import_log")
    op.execute("DROP SEQUENCE case_no_seq")
