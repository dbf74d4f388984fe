"""`gridmgr db backup` / `gridmgr db restore`: the database and its photos in one file, and back."""

from __future__ import annotations

from pathlib import Path

import click

from gridmgr.commands.db import db_group
from gridmgr.config import Config
from gridmgr.db import backup as bundle
from gridmgr.db.engine import owner_url
from gridmgr.paths import var_dir


def uploads_folder(config: Config) -> Path:
    """The photos' folder, as web/uploads.py finds it: <GRIDMGR_VAR>/uploads."""
    var = config.get("GRIDMGR_VAR")
    return (Path(var).resolve() if var else var_dir()) / "uploads"


@db_group.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup_cmd(file: Path) -> None:
    """Back up the database (pg_dump custom format, as its owner) and every uploaded photo into FILE."""
    config = Config.from_env()
    summary = bundle.backup(owner_url(config), uploads_folder(config), file, click.echo)
    for name in summary.missing[:5]:
        click.secho(f"warning: photo {name} is named by a row but not in the uploads folder", fg="yellow", err=True)
    click.echo(summary.line("backup", file))


@db_group.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--replace", is_flag=True, help="Drop everything in a non-empty database first (stop the app and worker)."
)
def restore_cmd(file: Path, replace: bool) -> None:
    """Restore FILE into an empty database and its photos into the uploads folder, then verify rows and photos."""
    config = Config.from_env()
    summary = bundle.restore(owner_url(config), uploads_folder(config), file, click.echo, replace=replace)
    click.echo(summary.line("restored", file))


COMMANDS: list[click.Command] = []  # both commands live in the `db` group, registered by importing this module
