"""Where gridmgr finds its shipped data and keeps its working files."""

from __future__ import annotations

import os
from pathlib import Path

# gridmgr is installed editable from its checkout (make setup); data/ and var/ live beside the package.
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


def var_dir() -> Path:
    """The working folder for the embedded database and demo files (GRIDMGR_VAR, default ./var)."""
    return Path(os.environ.get("GRIDMGR_VAR") or ROOT / "var").resolve()
