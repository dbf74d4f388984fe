"""The layer registry: every thematic layer, built-in or third-party, declares itself here.

A layer declares in one place its names, feature table, geometry types, fields (types,
validation, import aliases), natural key, map style and popup fields, API serialisation and the
per-cell metrics it adds to reports. Import, export, the map, the API and reports iterate the
registry; none of them names a layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from sqlalchemy import Table

from gridmgr.errors import NotFound
from gridmgr.plugins import hooks

ENTRY_POINT_GROUP = hooks.ENTRY_POINT_GROUP

FIELD_TYPES = ("text", "int", "float", "bool", "date", "datetime", "choice", "ref", "text[]")


@dataclass(frozen=True)
class Field:
    """One attribute of a layer's features: column, type, validation and labels."""

    name: str
    type: str = "text"
    label_zh: str = ""
    label_en: str = ""
    required: bool = False
    generated: bool = False  # filled in by the importer when the input leaves it empty
    choices: tuple[str, ...] = ()  # for type "choice": the allowed English keys
    # for type "ref": (table, key column, stored column): the input names a row by its key,
    # the feature stores that row's key or id, e.g. ("categories", "code", "category_code")
    ref: tuple[str, str, str] | None = None
    # the code list whose labels the choices take where a key means something else there (gridmgr.glossary)
    labels: str | None = None
    max_length: int | None = None
    minimum: float | None = None  # for numbers
    default: Any = None  # used when an import leaves the field empty
    aliases: tuple[str, ...] = ()  # other column names accepted on import (e.g. Chinese headers)
    popup: bool = False  # shown in the map popup
    tile: bool = False  # carried in vector tiles (keep these few)

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"field {self.name}: unknown type {self.type!r}")
        if (self.type == "ref") != (self.ref is not None):
            raise ValueError(f"field {self.name}: type 'ref' and `ref` go together")

    @property
    def column(self) -> str:
        """The table column that stores this field."""
        return self.ref[2] if self.ref else self.name


@dataclass(frozen=True)
class Metric:
    """A per-cell figure a layer adds to reports: a name, labels and an aggregate over its table `f`."""

    name: str
    label_zh: str
    label_en: str
    sql: str  # aggregate expression over the layer's rows aliased `f`, e.g. "count(*) FILTER (WHERE …)"


@dataclass
class Layer:
    """What a layer declares (see the module docstring)."""

    name: str
    title_zh: str
    title_en: str
    table: Table
    geometry_types: tuple[str, ...]  # e.g. ("POINT",) or ("LINESTRING", "POLYGON")
    fields: tuple[Field, ...]
    natural_key: str  # the field that makes a re-import add nothing
    time_column: str = "created_at"  # assigned to the cells valid at this moment
    shares: bool = False  # lines/polygons: list every touched cell in feature_cells
    style: dict = field(default_factory=dict)  # map style (colour, radius, by-status colours)
    metrics: tuple[Metric, ...] = ()
    # columns computed in SQL as a staged row `s` is inserted (geometry `s.geom`), column → expression;
    # e.g. a parking zone's capacity from its length, a case number from a sequence
    computed: dict[str, str] = field(default_factory=dict)
    # a statement run on the rows an import inserted, given as the CTE `ins` (id, geom, cell_id and the
    # time column): e.g. each imported case's first audit event, written in the same statement
    on_insert: str | None = None
    # statements run once after an import's insert (e.g. moving a number sequence past imported numbers)
    after_import: tuple[str, ...] = ()
    # SQL expressions added to exports and the API (derived values, never stored), name → expression on `f`
    derived: dict[str, str] = field(default_factory=dict)
    extras: dict = field(default_factory=dict)

    def field(self, name: str) -> Field:
        """One field by name."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def is_point(self) -> bool:
        return self.geometry_types == ("POINT",)

    @property
    def spatial(self) -> bool:
        """False for attribute-only tables registered as layers (e.g. site inspections)."""
        return bool(self.geometry_types)


_LAYERS: dict[str, Layer] = {}
_loaded = False


def register(layer: Layer) -> Layer:
    """Add a layer; a second layer of the same name is an error."""
    if layer.name in _LAYERS and _LAYERS[layer.name] is not layer:
        raise ValueError(f"layer {layer.name!r} is registered twice")
    _LAYERS[layer.name] = layer
    return layer


def unregister(name: str) -> None:
    """Remove a layer (tests that register a layer of their own clean up with this)."""
    _LAYERS.pop(name, None)


def load_layers() -> None:
    """Register the layers every plug-in gives through the `gridmgr_layers` hook (built-ins included)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for layer in hooks.gather("gridmgr_layers"):
        register(layer)


def add_plugin(module: ModuleType, name: str) -> list[Layer]:
    """Register a plug-in module at run time (as an entry point would) and its layers; returns them."""
    load_layers()
    hooks.manager().register(module, name)
    added = list(getattr(module, "gridmgr_layers", lambda: [])() or [])
    for layer in added:
        register(layer)
    return added


def remove_plugin(name: str) -> None:
    """Undo `add_plugin` (tests that add a plug-in of their own clean up with this)."""
    plugin = hooks.manager().get_plugin(name)
    if plugin is not None:
        for layer in getattr(plugin, "gridmgr_layers", lambda: [])() or []:
            unregister(layer.name)
        hooks.manager().unregister(plugin)


def layers(spatial: bool | None = None) -> list[Layer]:
    """The registered layers in registration order (only the spatial ones with spatial=True)."""
    load_layers()
    return [la for la in _LAYERS.values() if spatial is None or la.spatial == spatial]


def get(name: str) -> Layer:
    """One layer by name, or NotFound listing the known names."""
    load_layers()
    try:
        return _LAYERS[name]
    except KeyError:
        raise NotFound(f"unknown layer {name!r}; known: {', '.join(_LAYERS) or 'none'}") from None
