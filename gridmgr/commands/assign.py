"""`gridmgr locate` and `gridmgr assign --reassign`."""

from __future__ import annotations

import getpass
from datetime import datetime

import click

from gridmgr.commands import Timer, crs_option, engine, summary
from gridmgr.glossary import bilingual
from gridmgr.grid import assign


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or time") from None
    return moment if moment.tzinfo else moment.astimezone()


@click.command("locate")
@click.argument("lon", type=float)
@click.argument("lat", type=float)
@crs_option
@click.option("--at", help="The moment (ISO 8601) whose grid to use; default now.")
def locate_cmd(lon: float, lat: float, crs: str | None, at: str | None) -> None:
    """Print the cell covering a point, its community, street, responsible units and people."""
    with engine().connect() as conn:
        info = assign.locate(conn, lon, lat, crs or "wgs84", _when(at))
    click.echo(f"单元网格 cell {info.code}  ({info.area_m2:,.0f} m²)")
    for label, region in (("community", info.community), ("street", info.street), ("district", info.district)):
        if region and not (label == "community" and info.district == info.community):
            click.echo(f"  {bilingual(label)}: {region[1]} ({region[0]})")
    for u in info.units:
        phone = f"  ☎ {u['phone']}" if u["phone"] else ""
        click.echo(f"  {bilingual(u['duty'])}: {u['name']} ({u['code']}){phone}")
    for p in info.people:
        phone = f"  ☎ {p['phone']}" if p["phone"] else ""
        click.echo(f"  {bilingual(p['post'])}: {p['name']} ({p['code']}){phone}")
    for g in info.duty_grids:
        click.echo(f"  {bilingual('duty_grid')}: {g['name']} ({g['code']})")
    if not info.units and not info.people:
        click.echo("  (no responsible unit or person recorded: load the roster with `gridmgr roster import`)")


@click.command("assign")
@click.option("--reassign", is_flag=True, help="Move features in closed cells (or out of the grid) to today's cells.")
@click.option("--layer", "layer_names", multiple=True, help="Only these layers (repeatable).")
@click.option("--at", help="The moment whose grid to assign to (ISO 8601); default now.")
@click.option("--actor", default=None, help="Who does this, for the log (default: the OS user).")
def assign_cmd(reassign: bool, layer_names: tuple[str, ...], at: str | None, actor: str | None) -> None:
    """Report features left in closed cells or out of the grid; with --reassign, move them (logged)."""
    timer = Timer()
    moment = _when(at)
    eng = engine()
    if not reassign:
        with eng.connect() as conn:
            rows = assign.pending(conn, moment)
        for p in rows:
            click.echo(f"{p.layer}: {p.in_closed_cells} in closed cells, {p.out_of_grid} out of grid")
        click.echo("Nothing moved; run with --reassign to move them (every move is logged).")
        return
    with eng.begin() as conn:
        moved = assign.reassign(conn, actor or getpass.getuser(), layer_names=list(layer_names) or None, at=moment)
    detail = ", ".join(f"{k} {v}" for k, v in moved.items()) or "no layers"
    summary(f"reassigned {sum(moved.values())} features ({detail}), every move logged", timer)


COMMANDS = [locate_cmd, assign_cmd]
