"""`gridmgr roster import|export`: units, people, their cells and duty grids (定人、定岗、定责)."""

from __future__ import annotations

from datetime import datetime

import click

from gridmgr.commands import Timer, engine, summary
from gridmgr.people import roster

at_option = click.option(
    "--at",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"]),
    default=None,
    help="Resolve cell codes to the grid version valid at this local time (default: now).",
)


@click.group("roster")
def roster_group() -> None:
    """The roster: units, people, their responsibility for cells, duty grids (docs/roster.md)."""


@roster_group.command("import")
@click.argument("file", type=click.Path(exists=True))
@at_option
def import_cmd(file: str, at: datetime | None) -> None:
    """Load FILE (.xlsx, or a folder of CSVs): the whole roster, all or nothing."""
    timer = Timer()
    with engine().begin() as conn:
        result = roster.import_roster(conn, file, at=at.astimezone() if at else None)
    if result.ignored:
        click.secho(
            f"warning: sheet(s) not in the template, not read: {', '.join(result.ignored)}", fg="yellow", err=True
        )
    summary(result.line(), timer)


@roster_group.command("export")
@click.argument("file", type=click.Path())
@at_option
def export_cmd(file: str, at: datetime | None) -> None:
    """Write the roster to FILE (.xlsx, else a folder of CSVs) in the import template."""
    timer = Timer()
    with engine().connect() as conn:
        counts = roster.export_roster(conn, file, at=at.astimezone() if at else None)
    summary(f"roster exported to {file}: " + ", ".join(f"{k} {v}" for k, v in counts.items()), timer)


COMMANDS = [roster_group]
