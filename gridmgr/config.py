"""Settings: one declarative table (name, default, help), read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Setting:
    """One setting: its environment name, default and help text."""

    name: str
    default: str | None
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "GRIDMGR_DATABASE_URL",
        None,
        "PostgreSQL+PostGIS URL of an existing server; unset: the embedded cluster under var/pg/.",
    ),
    Setting("GRIDMGR_VAR", None, "Working folder for the embedded cluster and demo files (default ./var)."),
    Setting("GRIDMGR_SECRET_KEY", None, "Flask secret key for sessions; a random one per start when unset."),
    Setting(
        "GRIDMGR_EXTENT",
        None,
        "City extent lon_min,lat_min,lon_max,lat_max for coordinate checks; default: the loaded "
        "districts' bounds plus 5 km, or mainland China before any district is loaded.",
    ),
    Setting("GRIDMGR_TILE_URL", None, "Basemap tile URL template for the maps; unset: no basemap."),
    Setting(
        "GRIDMGR_CLOSE_ON_CHECK",
        "off",
        "on: a passed check (核查通过) closes the case directly, with no separate closing (结案) step.",
    ),
)
TRUE = ("1", "on", "true", "yes")
FALSE = ("", "0", "off", "false", "no")


@dataclass
class Config:
    """The settings in force: the environment over the defaults, overridable per app or test."""

    values: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: str | None) -> Config:
        vals = {s.name: os.environ.get(s.name, s.default) for s in SETTINGS}
        vals.update(overrides)
        return cls(vals)

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def flag(self, name: str) -> bool:
        """An on/off setting (on, true, yes, 1 / off, false, no, 0); anything else is a ValueError naming it."""
        value = (self.get(name) or "").strip().lower()
        if value not in TRUE + FALSE:
            raise ValueError(f"{name} must be on or off, not {self.get(name)!r}")
        return value in TRUE

    @property
    def database_url(self) -> str | None:
        return self.get("GRIDMGR_DATABASE_URL") or None
