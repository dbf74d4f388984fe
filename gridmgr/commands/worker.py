"""`gridmgr worker`: the job worker, running the plug-ins' jobs when due and the queued ones as they come."""

from __future__ import annotations

import logging
import sys
from datetime import datetime

import click

from gridmgr.commands import Timer, engine, summary


@click.command("worker")
@click.option("--once", is_flag=True, help="Run what is due now, scheduled or queued, then exit (1 if a job failed).")
def worker_cmd(once: bool) -> None:
    """Run the jobs (`gridmgr jobs list`) when due and the queued ones; TERM or Ctrl-C stops it after the running job."""
    from gridmgr.codes import TZ
    from gridmgr.plugins import worker
    from gridmgr.plugins.jobs import jobs

    timer = Timer()
    eng = engine()
    # procrastinate's own lines only when something is wrong: the worker prints one line per job run
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def report(line: str) -> None:
        click.echo(f"{datetime.now(TZ):%Y-%m-%d %H:%M:%S} {line}")

    schedule = ", ".join(f"{j.name} ({f'daily at {j.at}' if j.every == 'daily' else j.every})" for j in jobs().values())
    report(f"worker {'running what is due' if once else 'started'}: {schedule}")
    runs = worker.run(eng, once=once, report=report)
    failed = f", {runs.failed} failed" if runs.failed else ""
    summary(f"worker stopped: {runs.done} job{'s' if runs.done != 1 else ''} run{failed}", timer)
    if once and runs.failed:
        sys.exit(1)


COMMANDS = [worker_cmd]
