"""All tables, core and layers: the metadata Alembic compares the migrations against."""
from __future__ import annotations

from gridmgr import accounts, dispatch, events, models, planner, rules  # noqa: F401  (each adds its tables)
from gridmgr.registry import load_layers

load_layers()  # each layer module adds its tables to the shared metadata
metadata = models.Base.metadata
