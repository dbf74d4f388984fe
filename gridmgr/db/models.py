"""The core tables: regions, the versioned unit grid, units, people and their responsibility."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, ExcludeConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# stable constraint and index names, so migrations and the database always agree
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

REGION_LEVELS = ("district", "street", "community")
UNIT_KINDS = ("enforcement_squad", "sanitation", "street_office", "department", "company", "other")
CELL_DUTIES = ("territorial", "enforcement", "sanitation", "maintenance", "other")
POSTS = ("grid_leader", "grid_officer", "supervisor")
PERSON_ROLES = (*POSTS, "staff")
# region code length by level: 6 district + 3 street + 3 community (GB/T 2260 + 统计用区划代码)
CODE_LENGTH = {"district": 6, "street": 9, "community": 12}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    """Declarative base with the naming convention."""

    metadata = MetaData(naming_convention=NAMING)


class Meta(Base):
    """Small key/value facts about this database (the demo's anchor date and size)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[dict] = mapped_column(JSONB, nullable=False)


class Region(Base):
    """A district (区/县), street (街道/乡镇) or community (社区/村) with its polygon."""

    __tablename__ = "regions"
    __table_args__ = (
        CheckConstraint(_in("level", REGION_LEVELS), name="level"),
        CheckConstraint(
            "code ~ '^[0-9]+$' AND length(code) = CASE level WHEN 'district' THEN 6 WHEN 'street' THEN 9 ELSE 12 END",
            name="code_format",
        ),
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    level: Mapped[str] = mapped_column(String(16), nullable=False)
    code: Mapped[str] = mapped_column(String(12), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)
    area_m2: Mapped[float] = mapped_column(Float, nullable=False)


class GridCell(Base):
    """A unit grid cell (单元网格): 15-digit code, polygon, community, validity period."""

    __tablename__ = "grid_cells"
    __table_args__ = (
        CheckConstraint("code ~ '^[0-9]{15}$'", name="code_format"),
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="period"),
        CheckConstraint("source IN ('generated', 'imported')", name="source"),
        # a code names one cell at any moment; versions of the grid coexist in time
        ExcludeConstraint(
            ("code", "="),
            (text("tstzrange(valid_from, valid_to)"), "&&"),
            name="ex_grid_cells_code_period",
            using="gist",
        ),
        Index("ix_grid_cells_open", "community_id", postgresql_where=text("valid_to IS NULL")),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(String(15), nullable=False, index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("regions.id"), nullable=False, index=True)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)
    # the same polygon in Web Mercator, kept by the database, for vector tiles (gridmgr.maps.tiles)
    geom_3857 = mapped_column(
        Geometry("MULTIPOLYGON", srid=3857, spatial_index=True),
        Computed("ST_Transform(geom, 3857)", persisted=True),
        deferred=True,
    )
    area_m2: Mapped[float] = mapped_column(Float, nullable=False)
    valid_from: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=text("'-infinity'")
    )
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class LayerVersion(Base):
    """A map layer's data version: one up with every committed transaction that changes it (tile ETags)."""

    __tablename__ = "layer_versions"
    layer: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class LayerVersionPending(Base):
    """A version bump queued until commit (a row lives only inside its transaction; migration 0005)."""

    __tablename__ = "layer_version_pending"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class Unit(Base):
    """A responsible unit: enforcement squad (执法中队), sanitation office (环卫所), department, street office."""

    __tablename__ = "units"
    __table_args__ = (CheckConstraint(_in("kind", UNIT_KINDS), name="kind"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))


class Person(Base):
    """A person of the roster: grid leader (网格长), grid officer (网格员), supervisor (监督员) or unit staff."""

    __tablename__ = "people"
    __table_args__ = (CheckConstraint(_in("role", PERSON_ROLES), name="role"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))


class CellUnit(Base):
    """Which unit answers for a cell in which duty; `territorial` is the default owner (属地兜底)."""

    __tablename__ = "cell_units"
    __table_args__ = (CheckConstraint(_in("duty", CELL_DUTIES), name="duty"),)
    cell_id: Mapped[int] = mapped_column(ForeignKey("grid_cells.id", ondelete="CASCADE"), primary_key=True)
    duty: Mapped[str] = mapped_column(String(16), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), nullable=False, index=True)


class CellPerson(Base):
    """Who answers for a cell in which post (定人、定岗、定责)."""

    __tablename__ = "cell_people"
    __table_args__ = (CheckConstraint(_in("post", POSTS), name="post"),)
    cell_id: Mapped[int] = mapped_column(ForeignKey("grid_cells.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True, index=True)
    post: Mapped[str] = mapped_column(String(16), primary_key=True)


class DutyGrid(Base):
    """A duty grid (责任网格): cells grouped under one supervisor or unit."""

    __tablename__ = "duty_grids"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    supervisor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)


class DutyGridCell(Base):
    """Membership of a cell in a duty grid."""

    __tablename__ = "duty_grid_cells"
    duty_grid_id: Mapped[int] = mapped_column(ForeignKey("duty_grids.id", ondelete="CASCADE"), primary_key=True)
    cell_id: Mapped[int] = mapped_column(ForeignKey("grid_cells.id", ondelete="CASCADE"), primary_key=True, index=True)


class CellReassignment(Base):
    """One feature moved to another cell by `gridmgr assign --reassign` (the log of it)."""

    __tablename__ = "cell_reassignments"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    actor: Mapped[str] = mapped_column(Text, nullable=False)
    layer: Mapped[str] = mapped_column(String(32), nullable=False)
    feature_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    from_cell_id: Mapped[int | None] = mapped_column(ForeignKey("grid_cells.id"))
    to_cell_id: Mapped[int | None] = mapped_column(ForeignKey("grid_cells.id"))


class Category(Base):
    """A case category (事件/部件 class), with its time limits; loaded from data/categories.csv."""

    __tablename__ = "categories"
    __table_args__ = (
        CheckConstraint("kind IN ('event', 'component')", name="kind"),
        CheckConstraint("code ~ '^C?[0-9]{4}$'", name="code_format"),
    )
    # events keep their 4-digit code (0102 暴露垃圾); components are prefixed C (C0102 污水井盖),
    # because the national lists number both from 0101 and one key must name one category
    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    major_code: Mapped[str] = mapped_column(String(2), nullable=False)
    major_name: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    name_en: Mapped[str | None] = mapped_column(Text)
    # time limits: "<n>h" working hours or "<n>d" working days; empty = the bureau's default
    verify_limit: Mapped[str | None] = mapped_column(String(8))
    register_limit: Mapped[str | None] = mapped_column(String(8))
    dispatch_limit: Mapped[str | None] = mapped_column(String(8))
    handle_limit: Mapped[str | None] = mapped_column(String(8))
    handle_limit_urgent: Mapped[str | None] = mapped_column(String(8))
    check_limit: Mapped[str | None] = mapped_column(String(8))
    register_condition: Mapped[str | None] = mapped_column(Text)
    close_condition: Mapped[str | None] = mapped_column(Text)


class ImportLog(Base):
    """One layer import: the file, its content hash (a re-import of it adds nothing) and the counts."""

    __tablename__ = "import_log"
    __table_args__ = (Index("ix_import_log_layer_sha256", "layer", "sha256"),)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    layer: Mapped[str] = mapped_column(String(32), nullable=False)
    file_name: Mapped[str] = mapped_column(Text, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    rows: Mapped[int] = mapped_column(BigInteger, nullable=False)
    imported: Mapped[int] = mapped_column(BigInteger, nullable=False)
    existing: Mapped[int] = mapped_column(BigInteger, nullable=False)
    rejected: Mapped[int] = mapped_column(BigInteger, nullable=False)
    actor: Mapped[str] = mapped_column(Text, nullable=False)
