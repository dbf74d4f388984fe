"""`gridmgr grid generate | import | check`: the unit grid (单元网格)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import click

from gridmgr.commands import Timer, crs_option, engine, summary
from gridmgr.errors import TopologyError
from gridmgr.geo.gisfile import read_features
from gridmgr.grid import cells as grid

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar


def _when(value: str | None) -> datetime | None:
    """An ISO 8601 date or time; without a zone it is local time."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or time", param_hint="--valid-from") from None
    return moment if moment.tzinfo else moment.astimezone()


class _Bar:
    """A click progress bar over the communities, opened when generation knows how many there are."""

    def __init__(self, label: str):
        self.label = label
        self.bar: ProgressBar[int] | None = None

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=self.label)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


valid_from_option = click.option(
    "--valid-from",
    default=None,
    help="When the new cells start (ISO 8601; default: -infinity for an area's first grid, else now). "
    "The area's open cells are closed at that moment.",
)


@click.group("grid")
def grid_group() -> None:
    """The unit grid (单元网格): generate square cells, import drawn cells, check the topology."""


@grid_group.command("generate")
@click.option("--district-code", required=True, help="The 6-digit district code (GB/T 2260).")
@click.option("--cell-size", type=float, required=True, help="Side of the square cells in metres.")
@click.option(
    "--boundary",
    type=click.Path(exists=True, dir_okay=False),
    help="Load or update the district boundary from this GIS file first.",
)
@crs_option
@valid_from_option
@click.option(
    "--sliver-ratio",
    type=float,
    default=0.3,
    show_default=True,
    help="A clipped piece smaller than this share of a full cell joins its neighbour.",
)
def generate_cmd(
    district_code: str,
    cell_size: float,
    boundary: str | None,
    crs: str | None,
    valid_from: str | None,
    sliver_ratio: float,
) -> None:
    """Lay square cells over every community of a district (or the district itself when it has none)."""
    timer = Timer()
    moment = _when(valid_from)
    bar = _Bar("communities")
    with engine().begin() as conn:
        if boundary:
            grid.store_boundary(conn, read_features(boundary, crs), district_code)
        try:
            result = grid.generate(
                conn, district_code, cell_size, valid_from=moment, sliver_ratio=sliver_ratio, progress=bar
            )
        finally:
            bar.close()
    summary(result.line(), timer)


@grid_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@crs_option
@click.option(
    "--code-field",
    default=None,
    help="Field holding each cell's 15-digit code (default: number them west→east, north→south).",
)
@valid_from_option
@click.option(
    "--tolerance",
    type=float,
    default=1.0,
    show_default=True,
    help="Overlaps and gaps up to this many m² are fixed and reported; larger ones are refused.",
)
def import_cmd(file: str, crs: str | None, code_field: str | None, valid_from: str | None, tolerance: float) -> None:
    """Import cells drawn in a GIS file; every topology problem is reported; all or nothing."""
    timer = Timer()
    moment = _when(valid_from)
    features = read_features(file, crs)
    with engine().begin() as conn:
        result = grid.import_cells(conn, features, code_field=code_field, valid_from=moment, tolerance_m2=tolerance)
    for line in result.fixed:
        click.echo(f"fixed: {line}")
    summary(result.line(), timer)


@grid_group.command("check")
@click.option("--district-code", default=None, help="Only this district (default: every district).")
@click.option(
    "--tolerance",
    type=float,
    default=1.0,
    show_default=True,
    help="Gaps and parts outside a community up to this many m² are not reported.",
)
def check_cmd(district_code: str | None, tolerance: float) -> None:
    """Check the cells valid now: validity, communities, codes, overlaps, gaps; exit 1 on any problem."""
    with engine().begin() as conn:
        problems = grid.check(conn, district_code, tolerance_m2=tolerance)
        cells, communities = grid.counts(conn, district_code)
    if problems:
        raise TopologyError(f"{len(problems)} problem(s) in the grid valid now", problems=problems)
    click.echo(f"ok: {cells} cells in {communities} communities, no gaps, no overlaps")


COMMANDS = [grid_group]
