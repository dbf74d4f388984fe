"""Alembic environment: runs on the connection gridmgr.db.migrate hands over (or a URL)."""

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine

from gridmgr.db.schema import metadata

config = context.config


def include_object(obj, name, type_, reflected, compare_to):
    """Leave PostGIS's own tables and GeoAlchemy2's spatial indexes to their owners."""
    if type_ == "table" and name in {"spatial_ref_sys"}:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=include_object,
        process_revision_directives=alembic_helpers.writer,
        render_item=alembic_helpers.render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    with create_engine(config.get_main_option("sqlalchemy.url")).begin() as conn:
        run(conn)
