"""All tables, core and layers: the metadata Alembic compares the migrations against."""

from __future__ import annotations

from gridmgr.cases import dispatch, events, rules  # noqa: F401  (each adds its tables)
from gridmgr.db import models
from gridmgr.people import accounts, audit, credentials  # noqa: F401  (adds their tables)
from gridmgr.plugins import outbox, worker  # noqa: F401  (the outbox's and the job queue's tables)
from gridmgr.plugins.registry import load_layers

load_layers()  # each layer module adds its tables to the shared metadata
metadata = models.Base.metadata
