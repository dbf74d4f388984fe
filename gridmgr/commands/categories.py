"""`gridmgr categories load`: the case categories and their time limits."""

from __future__ import annotations

import click

from gridmgr.cases import categories
from gridmgr.commands import Timer, engine, summary


@click.group("categories")
def categories_group() -> None:
    """Case categories (事件/部件) and their time limits."""


@categories_group.command("load")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
def load_cmd(file: str | None) -> None:
    """Load data/categories.csv (or FILE): rows inserted or updated by code."""
    timer = Timer()
    with engine().begin() as conn:
        n = categories.load(conn, file or categories.DEFAULT_FILE)
    summary(f"categories: {n} loaded", timer)


COMMANDS = [categories_group]
