"""The layer registry: every thematic layer, built-in or third-party, registers itself here."""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points

from sqlalchemy import Table

from gridmgr.errors import NotFound

ENTRY_POINT_GROUP = "gridmgr.layers"


@dataclass
class Layer:
    """What a layer declares: names, its feature table, geometry type and assignment time column."""

    name: str
    title_zh: str
    title_en: str
    table: Table
    geometry_type: str  # POINT, POLYGON, LINESTRING, GEOMETRY
    # the feature's own timestamp: it is assigned to the cells valid at that moment
    time_column: str = "created_at"
    extras: dict = field(default_factory=dict)


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
    """Import every layer module named by a `gridmgr.layers` entry point (built-ins included)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def layers() -> list[Layer]:
    """The registered layers, in registration order."""
    load_layers()
    return list(_LAYERS.values())


def get(name: str) -> Layer:
    """One layer by name, or NotFound listing the known names."""
    load_layers()
    try:
        return _LAYERS[name]
    except KeyError:
        raise NotFound(f"unknown layer {name!r}; known: {', '.join(_LAYERS) or 'none'}") from None
