"""The CLI's command groups, one module each; gridmgr.cli assembles them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
from sqlalchemy.engine import Engine

from gridmgr.config import Config
from gridmgr.db.engine import connect

F = TypeVar("F", bound=Callable[..., Any])


def engine() -> Engine:
    """The database for a command: embedded (started and migrated when needed) or GRIDMGR_DATABASE_URL."""
    return connect(Config.from_env())


def crs_option(f: F) -> F:
    """--crs, shared by every command that reads coordinates."""
    return click.option(
        "--crs",
        default=None,
        help="CRS of the input: wgs84, cgcs2000, gcj02, bd09 or EPSG:n (default: the file's, else wgs84).",
    )(f)


class Timer:
    """Measures a command for its one-line summary."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start


def summary(message: str, timer: Timer) -> None:
    """Print the one-line summary a long command ends with."""
    click.secho(f"{message} in {timer.seconds:.1f} s", fg="green")
