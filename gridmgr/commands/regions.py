"""`gridmgr regions import`: districts, streets and communities from a GIS file."""

from __future__ import annotations

import click

from gridmgr.commands import Timer, crs_option, engine, summary
from gridmgr.geo.gisfile import read_features
from gridmgr.grid import regions


@click.group("regions")
def regions_group() -> None:
    """Administrative regions: district (区/县) → street (街道/乡镇) → community (社区/村)."""


@regions_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--level", type=click.Choice(["district", "street", "community"]), required=True)
@crs_option
@click.option("--code-field", default="code", show_default=True)
@click.option("--name-field", default="name", show_default=True)
@click.option("--parent-field", default=None, help="Field with the parent's code (default: the code's prefix).")
def import_cmd(
    file: str, level: str, crs: str | None, code_field: str, name_field: str, parent_field: str | None
) -> None:
    """Import regions of one level; all or nothing; a re-import updates by code."""
    timer = Timer()
    rows = regions.prepare(read_features(file, crs), level, code_field, name_field, parent_field)
    with engine().begin() as conn:
        inserted, updated = regions.store(conn, rows, level)
    summary(f"{level}: {inserted} imported, {updated} updated, 0 rejected", timer)


COMMANDS = [regions_group]
