"""`gridmgr jobs list|run`: the plug-ins' scheduled jobs (e.g. the daily layer rules)."""

from __future__ import annotations

from datetime import datetime

import click

from gridmgr.commands import Timer, engine, summary


@click.group("jobs")
def jobs_group() -> None:
    """Scheduled jobs the layers give; run them from cron or a timer."""


@jobs_group.command("list")
def list_cmd() -> None:
    """List the jobs: name, how often, what they do."""
    from gridmgr.plugins.jobs import jobs

    for job in jobs().values():
        when = f"daily at {job.at}" if job.every == "daily" else job.every
        click.echo(f"{job.name:24} {when:16} {job.title_zh} {job.title_en}")


@jobs_group.command("run")
@click.argument("names", nargs=-1)
def run_cmd(names: tuple[str, ...]) -> None:
    """Run the jobs now (all, or those named), each in its own transaction."""
    from gridmgr.codes import TZ
    from gridmgr.plugins.jobs import run_jobs

    timer = Timer()
    done = run_jobs(engine(), datetime.now(TZ), list(names) or None, progress=click.echo)
    summary(f"{len(done)} job{'s' if len(done) != 1 else ''} run", timer)


COMMANDS = [jobs_group]
