"""What every layer's feature table has: id, geometry, its cell, out-of-grid flag, timestamps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.schema import SchemaItem

from gridmgr.codes import sql_in
from gridmgr.db.models import Base
from gridmgr.plugins.registry import Field

_SIMPLE: dict[str, Callable[[], Any]] = {
    "int": Integer,
    "float": Float,
    "bool": Boolean,
    "date": Date,
    "datetime": lambda: DateTime(timezone=True),
}


def field_columns(fields: tuple[Field, ...]) -> list:
    """The columns and CHECK constraints that store a layer's declared fields."""
    out: list = []
    for f in fields:
        nullable = not (f.required or f.generated or f.default is not None)
        if f.type == "ref":
            assert f.ref is not None  # Field.__post_init__ requires ref exactly for type ref
            table, key, stored = f.ref
            if stored.endswith("_id"):
                out.append(Column(stored, BigInteger, ForeignKey(f"{table}.id"), nullable=nullable, index=True))
            else:
                out.append(Column(stored, String(32), ForeignKey(f"{table}.{key}"), nullable=nullable, index=True))
        elif f.type == "choice":
            out.append(
                Column(
                    f.name, String(32), nullable=nullable, server_default=text(repr(f.default)) if f.default else None
                )
            )
            out.append(CheckConstraint(sql_in(f.name, f.choices), name=f.name))
        elif f.type == "text[]":
            out.append(Column(f.name, ARRAY(Text), nullable=False, server_default=text("'{}'")))
        elif f.type == "text":
            out.append(Column(f.name, String(f.max_length) if f.max_length else Text, nullable=nullable))
        else:
            out.append(Column(f.name, _SIMPLE[f.type](), nullable=nullable))
        if f.minimum is not None:
            out.append(CheckConstraint(f"{f.name} >= {f.minimum}", name=f"{f.name}_min"))
    return out


ST_NAMES = {
    "POINT": "ST_Point",
    "LINESTRING": "ST_LineString",
    "POLYGON": "ST_Polygon",
    "MULTIPOLYGON": "ST_MultiPolygon",
    "MULTILINESTRING": "ST_MultiLineString",
}


def feature_table(
    name: str, geometry_type: str, fields: tuple[Field, ...], *columns: SchemaItem, allowed: tuple[str, ...] = ()
) -> Table:
    """A layer's feature table: the shared columns, the declared fields' columns, and any others.

    `geometry_type` is the column's typmod (POINT, POLYGON, GEOMETRY); `allowed` restricts a
    GEOMETRY column to some types (a parking zone is a kerb line or a lot polygon).
    """
    checks = [CheckConstraint("ST_IsValid(geom)", name="geom_valid")]
    if allowed:
        types = ", ".join(f"'{ST_NAMES[t]}'" for t in allowed)
        checks.append(CheckConstraint(f"ST_GeometryType(geom) IN ({types})", name="geom_type"))
    return Table(
        name,
        Base.metadata,
        Column("id", BigInteger, primary_key=True),
        Column("geom", Geometry(geometry_type, srid=4326, spatial_index=True), nullable=False),
        # NULL: the feature lies in no cell; kept and reported, never dropped
        Column("cell_id", BigInteger, ForeignKey("grid_cells.id"), index=True),
        Column("out_of_grid", Boolean, Computed("cell_id IS NULL", persisted=True), nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        *field_columns(fields),
        *columns,
        *checks,
    )


def record_table(name: str, fields: tuple[Field, ...], *columns: SchemaItem) -> Table:
    """An attribute-only layer's table (inspections of a site or a contract): id, created_at and the fields."""
    return Table(
        name,
        Base.metadata,
        Column("id", BigInteger, primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        *field_columns(fields),
        *columns,
    )


# every cell a line or polygon feature touches, with its share (length or area on the ground)
feature_cells = Table(
    "feature_cells",
    Base.metadata,
    Column("layer", String(32), primary_key=True),
    Column("feature_id", BigInteger, primary_key=True),
    Column("cell_id", BigInteger, ForeignKey("grid_cells.id"), primary_key=True),
    Column("share", Float, nullable=False),
    Index("ix_feature_cells_cell_id", "cell_id"),
)
