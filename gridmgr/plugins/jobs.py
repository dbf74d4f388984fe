"""Scheduled jobs: what the plug-ins give through the `gridmgr_jobs` hook, and running them.

`gridmgr jobs run` runs them (all, or those named), each in a transaction of its own, so a failing
job leaves the others' work committed; a scheduler (cron, a systemd timer, the job worker) calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.engine import Engine

from gridmgr.plugins import hooks


def jobs() -> dict[str, hooks.Job]:
    """Every plug-in's jobs by name, in the plug-ins' order."""
    found: dict[str, hooks.Job] = {}
    for job in hooks.gather("gridmgr_jobs"):
        if job.name in found:
            raise ValueError(f"job {job.name!r} is given twice")
        found[job.name] = job
    return found


def run_jobs(
    engine: Engine, now: datetime, names: list[str] | None = None, progress: Callable[[str], None] = lambda m: None
) -> dict[str, str]:
    """Run the jobs (all, or those named), one transaction each; returns job → its one-line summary."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    done = {}
    for job in hooks.chosen(jobs(), names, "job"):
        with engine.begin() as conn:
            done[job.name] = job.run(conn, now)
        progress(f"{job.name}: {done[job.name]}")
    return done
