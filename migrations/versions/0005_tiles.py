"""tiles: a Web Mercator copy of the cells, and a data version per map layer

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import geoalchemy2
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The tables whose rows a map layer's tiles are drawn from, and that layer's name (gridmgr.maps.tiles):
# cell tiles carry the community and the territorial unit, so regions, cell_units and units count too.
TRACKED = {
    "grid_cells": "cells",
    "regions": "cells",
    "cell_units": "cells",
    "units": "cells",
    "cases": "cases",
    "parking_zones": "parking_zones",
    "parking_spaces": "parking_spaces",
    "construction_sites": "construction",
    "billboards": "billboards",
}

# A layer's version goes up by one for every committed transaction that wrote any of its tables
# (insert, update, delete, truncate, COPY). Tile ETags and the tile cache key include it.
#
# The bump happens at commit, not when the rows are written: a statement trigger only notes the layer
# in a transaction-local setting and, once per transaction, queues a deferred constraint trigger (the
# one row of `layer_version_pending` it inserts). At commit that trigger raises the versions of the
# noted layers in one statement, in layer order. So the row lock on a layer's version is held from
# commit to commit, never through a long import, and two committing transactions cannot deadlock;
# versions become visible in commit order, together with the rows they describe. A savepoint rolled
# back undoes its note together with its writes.
#
# A new layer's migration tracks its table with
#   CREATE TRIGGER layer_version_<table> AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON <table>
#     FOR EACH STATEMENT EXECUTE FUNCTION layer_version_touch('<layer>');
# (its versions row appears at its first change).
FUNCTIONS = """
CREATE FUNCTION layer_version_touch() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  noted text := coalesce(current_setting('gridmgr.layers_changed', true), '');
BEGIN
  IF position(',' || TG_ARGV[0] || ',' IN noted) = 0 THEN
    IF noted = '' THEN
      INSERT INTO layer_version_pending DEFAULT VALUES;  -- fires layer_version_commit() at commit
      noted := ',';
    END IF;
    PERFORM set_config('gridmgr.layers_changed', noted || TG_ARGV[0] || ',', true);
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION layer_version_commit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  changed text[] := array_remove(string_to_array(
    coalesce(current_setting('gridmgr.layers_changed', true), ''), ','), '');
BEGIN
  DELETE FROM layer_version_pending WHERE id = NEW.id;
  -- later writes of this transaction (after SET CONSTRAINTS ... IMMEDIATE) queue a bump of their own
  PERFORM set_config('gridmgr.layers_changed', '', true);
  INSERT INTO layer_versions AS v (layer, version, changed_at)
    SELECT l, 1, clock_timestamp() FROM unnest(changed) AS l ORDER BY l
  ON CONFLICT (layer) DO UPDATE SET version = v.version + 1, changed_at = EXCLUDED.changed_at;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER layer_version_commit AFTER INSERT ON layer_version_pending
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION layer_version_commit();
"""


def upgrade() -> None:
    # cells are drawn in every cell tile: keep them in EPSG:3857 instead of transforming per tile
    op.add_column(
        "grid_cells",
        sa.Column(
            "geom_3857",
            geoalchemy2.types.Geometry(
                geometry_type="MULTIPOLYGON",
                srid=3857,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            sa.Computed("ST_Transform(geom, 3857)", persisted=True),
            nullable=True,
        ),
    )
    op.create_index("idx_grid_cells_geom_3857", "grid_cells", ["geom_3857"], postgresql_using="gist")
    op.create_table(
        "layer_versions",
        sa.Column("layer", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("layer", name=op.f("pk_layer_versions")),
    )
    op.create_table(
        "layer_version_pending",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_layer_version_pending")),
    )
    op.execute(FUNCTIONS)
    layers = sorted(set(TRACKED.values()))
    op.execute("INSERT INTO layer_versions (layer) VALUES " + ", ".join(f"('{name}')" for name in layers))
    for table, layer in TRACKED.items():
        op.execute(
            f"CREATE TRIGGER layer_version_{table} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION layer_version_touch('{layer}')"
        )


def downgrade() -> None:
    for table in TRACKED:
        op.execute(f"DROP TRIGGER layer_version_{table} ON {table}")
    op.execute("DROP TRIGGER layer_version_commit ON layer_version_pending")
    op.execute("DROP FUNCTION layer_version_commit()")
    op.execute("DROP FUNCTION layer_version_touch()")
    op.drop_table("layer_version_pending")
    op.drop_table("layer_versions")
    op.drop_index("idx_grid_cells_geom_3857", table_name="grid_cells", postgresql_using="gist")
    op.drop_column("grid_cells", "geom_3857")
