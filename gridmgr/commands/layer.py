"""`gridmgr layer list|import|export`: the thematic layers' bulk I/O."""

from __future__ import annotations

import getpass

import click

from gridmgr.cases import categories
from gridmgr.commands import Timer, crs_option, engine, summary
from gridmgr.people import audit
from gridmgr.plugins import registry


@click.group("layer")
def layer_group() -> None:
    """Thematic layers: cases, parking, construction sites, billboards (import, export, list)."""


@layer_group.command("list")
def list_cmd() -> None:
    """List the registered layers with their feature counts."""
    from sqlalchemy import text

    with engine().connect() as conn:
        for layer in registry.layers():
            n = conn.execute(text(f"SELECT count(*) FROM {layer.table.name}")).scalar()
            geo = "/".join(layer.geometry_types) or "no geometry"
            click.echo(f"{layer.name:18} {layer.title_zh} {layer.title_en}: {n:,} ({geo}; key {layer.natural_key})")


@layer_group.command("import")
@click.argument("layer_name", metavar="LAYER")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@crs_option
@click.option("--map", "maps", multiple=True, metavar="SRC=DST", help="Read column SRC as field DST (repeatable).")
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows; write the rejected ones to --rejects.")
@click.option("--rejects", type=click.Path(dir_okay=False), help="Where rejected rows go (default FILE.rejects.csv).")
def import_cmd(
    layer_name: str, file: str, crs: str | None, maps: tuple[str, ...], skip_invalid: bool, rejects: str | None
) -> None:
    """Import a CSV, XLSX, GeoJSON, GeoPackage or Shapefile into a layer (all or nothing by default)."""
    from gridmgr.io.importer import import_file
    from gridmgr.io.tabular import parse_mapping

    timer = Timer()
    layer = registry.get(layer_name)
    with engine().begin() as conn:
        categories.ensure_loaded(conn)
        result = import_file(
            conn,
            layer,
            file,
            crs=crs,
            mapping=parse_mapping(maps),
            skip_invalid=skip_invalid,
            rejects=rejects,
            actor=getpass.getuser(),
            progress=lambda m: click.echo(f"· {m}"),
        )
    if result.ignored_columns:
        click.echo(f"ignored columns (no such field): {', '.join(result.ignored_columns)}")
    if result.rejected:
        click.secho(f"rejected rows written to {rejects or file.rsplit('.', 1)[0] + '.rejects.csv'}", fg="yellow")
    summary(result.line(), timer)


@layer_group.command("export")
@click.argument("layer_name", metavar="LAYER")
@click.option("-f", "--format", "fmt", type=click.Choice(["geojson", "gpkg", "shp", "csv", "xlsx"]), required=True)
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), required=True)
@click.option("--district", help="Only features in this district (6-digit code).")
@click.option("--street", help="Only features in this street (9-digit code).")
@click.option("--community", help="Only features in this community (12-digit code).")
@click.option("--cell", help="Only features in this cell (15-digit code).")
def export_cmd(
    layer_name: str,
    fmt: str,
    out: str,
    district: str | None,
    street: str | None,
    community: str | None,
    cell: str | None,
) -> None:
    """Export a layer in its import template (re-importable), with each feature's cell code."""
    from gridmgr.io.exporter import export_layer

    timer = Timer()
    areas = [
        (k, v) for k, v in (("district", district), ("street", street), ("community", community), ("cell", cell)) if v
    ]
    if len(areas) > 1:
        raise click.UsageError("give at most one of --district, --street, --community, --cell")
    layer = registry.get(layer_name)
    with engine().begin() as conn:
        n = export_layer(conn, layer, fmt, out, area=areas[0] if areas else None)
        audit.write(conn, "export", audit.SYSTEM, subject=out, data={"layer": layer.name, "format": fmt, "features": n})
    summary(f"{layer.name}: {n:,} features written to {out}", timer)


COMMANDS = [layer_group]
