"""The schema is built only by migrations: up, down, up again, and no drift from the models."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import alembic_helpers
from sqlalchemy import inspect, text

from gridmgr.db import migrate
from gridmgr.db.schema import metadata


def test_up_down_up(owner_db):
    _, eng = owner_db
    assert migrate.current(eng) == migrate.head()
    migrate.downgrade(eng, "base")
    assert migrate.current(eng) is None
    assert "grid_cells" not in inspect(eng).get_table_names()
    migrate.upgrade(eng)
    assert migrate.current(eng) == migrate.head()
    assert {
        "regions",
        "grid_cells",
        "units",
        "people",
        "cell_units",
        "cell_people",
        "duty_grids",
        "duty_grid_cells",
        "cell_reassignments",
    } <= set(inspect(eng).get_table_names())


def test_models_match_migrations(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": alembic_helpers.include_object, "compare_type": True}
        )
        diff = compare_metadata(ctx, metadata)
    assert diff == []


def test_invalid_geometry_refused_by_database(conn):
    bowtie = "ST_Multi(ST_GeomFromText('POLYGON((116.40 39.90, 116.41 39.91, 116.41 39.90, 116.40 39.91, 116.40 39.90))', 4326))"
    import pytest
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError, match="ck_regions_geom_valid"):
        conn.execute(
            text(
                f"INSERT INTO regions (level, code, name, geom, area_m2) "
                f"VALUES ('district', '110101', 'x', {bowtie}, 1)"
            )
        )
