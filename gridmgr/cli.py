"""The `gridmgr` command: assembles the command groups and turns our errors into clear messages."""

from __future__ import annotations

import sys
from typing import Any

import click
from sqlalchemy.exc import DBAPIError

from gridmgr.errors import GridmgrError, TopologyError


class ErrorsAsMessages(click.Group):
    """A group that prints a GridmgrError as one clear message (never a traceback) and exits 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TopologyError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)
        except GridmgrError as exc:
            click.secho(f"error: {exc.message}", fg="red", err=True)
            sys.exit(1)
        except DBAPIError as exc:
            # the server went away or was stopped mid-command; the transaction never committed
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "connection lost"
            click.secho(f"error: the database connection failed ({reason}); nothing was committed", fg="red", err=True)
            sys.exit(1)


@click.group(cls=ErrorsAsMessages)
@click.version_option(package_name="gridmgr")
def main() -> None:
    """网格化城市管理平台 gridmgr — the unit grid, its layers, workflow and reports."""


def _register() -> None:
    from gridmgr.commands import (  # backup adds `db backup` / `db restore` to the db group
        assign,
        backup,
        categories,
        db,
        demo,
        grid,
        jobs,
        layer,
        regions,
        report,
        roster,
        rules,
        serve,
        users,
        worker,
    )

    modules = (
        db,
        backup,
        regions,
        grid,
        roster,
        categories,
        layer,
        rules,
        jobs,
        assign,
        report,
        users,
        demo,
        serve,
        worker,
    )
    for module in modules:
        for cmd in module.COMMANDS:
            main.add_command(cmd)


_register()

if __name__ == "__main__":
    main()
