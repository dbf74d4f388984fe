"""`gridmgr demo`: load the demo district, then serve the app."""

from __future__ import annotations

import click

from gridmgr.commands import Timer, engine, summary
from gridmgr.paths import var_dir


@click.command("demo")
@click.option(
    "--size",
    type=click.Choice(["test", "demo"]),
    default="demo",
    show_default=True,
    help="`test` is small, for the test suite.",
)
@click.option("--no-serve", is_flag=True, help="Only load; do not start the web app.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def demo_cmd(size: str, no_serve: bool, host: str, port: int) -> None:
    """Load the demo district (Beijing Dongcheng, synthetic streets and communities) and serve it."""
    from gridmgr.demo import accounts as demo_accounts
    from gridmgr.demo import loader  # the loader pulls in geopandas and the grid generator: only when asked

    timer = Timer()
    with engine().begin() as conn:
        result = loader.load(conn, size, var_dir() / "demo" / size, step=lambda msg: click.echo(f"· {msg}"))
    figures = ", ".join(f"{v:,} {k}" for k, v in result.counts.items())
    if result.loaded:
        summary(f"demo ({size}) loaded, anchor date {result.anchor}: {figures}, 0 rejected", timer)
    else:
        click.echo(f"demo ({size}) already loaded (anchor date {result.anchor}); nothing changed: {figures}")
    with engine().begin() as conn:
        logins = demo_accounts.create(conn)
    click.echo("演示账号 demo logins (username / password):")
    for username, role, name, password in logins:
        click.echo(f"  {username:14} {password:20} {name} ({role})")
    if not no_serve:
        from gridmgr.commands.serve import serve_app

        serve_app(host, port)


COMMANDS = [demo_cmd]
