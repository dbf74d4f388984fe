"""The job worker (`gridmgr worker`): the plug-ins' jobs when they are due, and one-off jobs as they are queued.

The queue is procrastinate's, in PostgreSQL (migration 0012 holds its schema): a worker takes a job with
`FOR UPDATE SKIP LOCKED`, so no two workers take the same one, and is woken by LISTEN/NOTIFY. Every
`gridmgr_jobs` job is a procrastinate periodic task; each worker defers the runs that are due, and the
unique key of `procrastinate_periodic_defers` (task, job, due time) keeps one deferral of each due time
however many workers try. A worker that starts defers each job's latest due run unless some worker
already did: a run missed while no worker ran is run once on start (and so is a job never run before).

Queued jobs are runs of the same jobs, with arguments: `enqueue(conn, name, **args)` inserts one on the
caller's connection, so it commits or rolls back with the caller's work. A job runs as `gridmgr jobs run`
runs it, in a transaction of its own, and no two runs of one job overlap (procrastinate's `lock`), but
for a run queued for later (see `enqueue`).

procrastinate's worker runs on psycopg 3 and asyncio; the jobs themselves run in a thread of it on our
synchronous SQLAlchemy engine (psycopg2). Deferring from our code goes through procrastinate's SQLAlchemy
connector on the caller's connection, so the web app needs no second pool.
"""

from __future__ import annotations

import asyncio
import functools
import re
import signal
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ENUM, JSONB
from sqlalchemy.engine import URL, Connection, Engine

from gridmgr.codes import TZ
from gridmgr.db.models import Base
from gridmgr.plugins import hooks
from gridmgr.plugins.hooks import Job
from gridmgr.plugins.jobs import jobs

if TYPE_CHECKING:
    import procrastinate

TASK = "gridmgr.job"  # the one procrastinate task: it runs a gridmgr job by name
STALLED_TASK, STALLED_CRON = "gridmgr.stalled", "*/10 * * * *"
QUEUE = "gridmgr"
# how late a due run may still be deferred when a worker starts: beyond a day, so a daily job's latest
# due run is always within it and a run missed while no worker ran is run on start
MAX_DELAY_S = 2 * 24 * 3600
POOL_MIN, POOL_MAX = 1, 3  # the worker's own psycopg 3 connections: its listener, fetching, deferring
_AT = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")

# procrastinate's tables as migration 0012 creates them, declared so that autogenerate compares them too
# (tests/test_migrations.py); procrastinate queries them, gridmgr only reads them in tests
JOB_STATUS = ENUM(
    "todo", "doing", "succeeded", "failed", "cancelled", "aborting", "aborted",
    name="procrastinate_job_status", create_type=False,
)  # fmt: skip
EVENT_TYPE = ENUM(
    "deferred", "started", "deferred_for_retry", "failed", "succeeded", "cancelled", "abort_requested",
    "aborted", "scheduled", "retried",
    name="procrastinate_job_event_type", create_type=False,
)  # fmt: skip
procrastinate_workers = Table(
    "procrastinate_workers",
    Base.metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    Column("last_heartbeat", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Index("idx_procrastinate_workers_last_heartbeat", "last_heartbeat"),
)
procrastinate_jobs = Table(
    "procrastinate_jobs",
    Base.metadata,
    Column("id", BigInteger, primary_key=True),
    Column("queue_name", String(128), nullable=False),
    Column("task_name", String(128), nullable=False),
    Column("priority", Integer, nullable=False, server_default=text("0")),
    Column("lock", Text),
    Column("queueing_lock", Text),
    Column("args", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("status", JOB_STATUS, nullable=False, server_default=text("'todo'::procrastinate_job_status")),
    Column("scheduled_at", DateTime(timezone=True)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("abort_requested", Boolean, nullable=False, server_default=text("false")),
    Column("worker_id", BigInteger, ForeignKey("procrastinate_workers.id", ondelete="SET NULL")),
    CheckConstraint("NOT (status = 'todo' AND abort_requested = true)", name="check_not_todo_abort_requested"),
    Index(
        "procrastinate_jobs_queueing_lock_idx_v1",
        "queueing_lock",
        unique=True,
        postgresql_where=text("status = 'todo'"),
    ),
    Index("procrastinate_jobs_lock_idx_v1", "lock", unique=True, postgresql_where=text("status = 'doing'")),
    Index(
        "idx_procrastinate_jobs_worker_not_null",
        "worker_id",
        postgresql_where=text("worker_id IS NOT NULL AND status = 'doing'::procrastinate_job_status"),
    ),
    Index("procrastinate_jobs_queue_name_idx_v1", "queue_name"),
    Index(
        "procrastinate_jobs_id_lock_idx_v1",
        "id",
        "lock",
        postgresql_where=text(
            "status = ANY (ARRAY['todo'::procrastinate_job_status, 'doing'::procrastinate_job_status])"
        ),
    ),
    Index(
        "procrastinate_jobs_priority_idx_v1",
        text("priority DESC"),
        "id",
        postgresql_where=text("status = 'todo'::procrastinate_job_status"),
    ),
)
procrastinate_periodic_defers = Table(
    "procrastinate_periodic_defers",
    Base.metadata,
    Column("id", BigInteger, primary_key=True),
    Column("task_name", String(128), nullable=False),
    Column("defer_timestamp", BigInteger),
    Column("job_id", BigInteger, ForeignKey("procrastinate_jobs.id")),
    Column("periodic_id", String(128), nullable=False, server_default=text("''")),
    UniqueConstraint("task_name", "periodic_id", "defer_timestamp", name="procrastinate_periodic_defers_unique"),
    Index("procrastinate_periodic_defers_job_id_fkey_v1", "job_id"),
)
procrastinate_events = Table(
    "procrastinate_events",
    Base.metadata,
    Column("id", BigInteger, primary_key=True),
    Column("job_id", BigInteger, ForeignKey("procrastinate_jobs.id", ondelete="CASCADE"), nullable=False),
    Column("type", EVENT_TYPE),
    Column("at", DateTime(timezone=True), server_default=text("now()")),
    Index("procrastinate_events_job_id_fkey_v1", "job_id"),
)


def cron(job: Job, tz: tzinfo = TZ) -> str:
    """The job's schedule as the cron line procrastinate reads, in UTC: daily at `at` local time, hourly on the hour.

    The offset is the zone's at this moment: Asia/Shanghai keeps no summer time, so it is always +08:00.
    """
    offset = datetime.now(tz).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    if job.every == "hourly":
        return f"{-minutes % 60} * * * *"
    if job.every != "daily":
        raise ValueError(f"job {job.name}: `every` is daily or hourly, not {job.every!r}")
    m = _AT.fullmatch(job.at)
    if m is None:
        raise ValueError(f"job {job.name}: `at` is a time HH:MM, not {job.at!r}")
    utc = (int(m[1]) * 60 + int(m[2]) - minutes) % (24 * 60)
    return f"{utc % 60} {utc // 60} * * *"


def job_lock(name: str) -> str:
    """The procrastinate lock of a job's runs: two runs of one job never overlap."""
    return f"{TASK}:{name}"


@functools.cache
def _deferrer() -> procrastinate.App:
    """The app that defers on the caller's SQLAlchemy connection (it opens no connection of its own)."""
    import procrastinate
    from procrastinate.contrib.sqlalchemy import SQLAlchemyPsycopg2Connector

    return procrastinate.App(connector=SQLAlchemyPsycopg2Connector())


def enqueue(conn: Connection, name: str, *, at: datetime | None = None, **args: Any) -> int:
    """Queue a run of the job `name` (now, or not before `at`) in the caller's transaction; returns its queue id.

    The arguments reach the job's function as keywords and must be JSON values; a rolled-back
    transaction queues nothing. A run queued for later takes no lock, so it may overlap another run
    of the job: procrastinate runs the jobs of one lock in the order queued, so a locked run waiting
    for its time would hold back every run of the job queued after it, scheduled ones included.
    """
    hooks.chosen(jobs(), [name], "job")  # an unknown name fails here, in the caller, not later in the worker
    if at is not None and at.tzinfo is None:
        raise ValueError("at must be timezone-aware")
    lock = job_lock(name) if at is None else None
    deferrer = _deferrer().configure_task(
        TASK, connection=conn, queue=QUEUE, lock=lock, schedule_at=at, task_kwargs={"name": name}
    )
    return deferrer.defer(**args)


def conninfo(url: URL) -> str:
    """The libpq URI of a SQLAlchemy URL, for procrastinate's psycopg 3 connections (unix sockets included)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class Runs:
    """What a worker did: job runs that succeeded and that failed."""

    done: int = 0
    failed: int = 0


def run(engine: Engine, *, once: bool = False, report: Callable[[str], None] = lambda line: None) -> Runs:
    """Run jobs until SIGTERM or SIGINT (then finish the running one), or with `once` until nothing is due.

    `report` gets one line per job run: its name, its summary or error, and the time it took.
    """
    import procrastinate
    from procrastinate import periodic

    known = jobs()
    runs = Runs()
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=conninfo(engine.url), min_size=POOL_MIN, max_size=POOL_MAX),
        periodic_defaults={"max_delay": MAX_DELAY_S},
    )

    @app.task(name=TASK, queue=QUEUE)
    def run_job(timestamp: int = 0, *, name: str, **args: Any) -> str:
        # timestamp: the due time procrastinate gives a scheduled run (none for a queued one); a job is
        # judged by the time it runs, which is later when it was missed
        start = time.perf_counter()
        try:
            if name not in known:  # queued by a process that has a plug-in this worker lacks
                raise LookupError(f"no job {name!r} in this worker (known: {', '.join(known)})")
            function = cast(Callable[..., str], known[name].run)  # queued runs may carry keyword arguments
            with engine.begin() as conn:
                summary = function(conn, datetime.now(TZ), **args)
        except Exception as exc:
            runs.failed += 1
            report(f"{name}: failed, {type(exc).__name__}: {exc} ({time.perf_counter() - start:.2f} s)")
            raise  # procrastinate records the job as failed, with the traceback in its log
        runs.done += 1
        report(f"{name}: {summary} ({time.perf_counter() - start:.2f} s)")
        return summary

    for job in known.values():
        app.periodic(
            cron=cron(job), periodic_id=job.name, queue=QUEUE, lock=job_lock(job.name), task_kwargs={"name": job.name}
        )(run_job)

    # a worker killed mid-job (SIGKILL, a crash) leaves its job "doing", holding its job's lock: every few
    # minutes one worker puts the jobs of workers whose heartbeat stopped back in the queue (procrastinate's
    # recipe, docs/howto/production/retry_stalled_jobs); queue plumbing, so not among `gridmgr jobs list`
    @app.periodic(cron=STALLED_CRON, periodic_id="stalled")
    @app.task(name=STALLED_TASK, queue=QUEUE, queueing_lock=STALLED_TASK)
    async def retry_stalled(timestamp: int) -> None:
        stalled = list(await app.job_manager.get_stalled_jobs(queue=QUEUE))
        for job in stalled:
            await app.job_manager.retry_job(job)
        if stalled:
            report(f"{len(stalled)} job{'s' if len(stalled) != 1 else ''} of a stopped worker queued again")

    async def work() -> None:
        async with app.open_async():
            if once:
                # defer what is due before looking for work: the worker's own deferrer runs beside the
                # fetching loop, which would otherwise stop at an empty queue before it has deferred
                deferrer = periodic.PeriodicDeferrer(registry=app.periodic_registry, max_delay=MAX_DELAY_S)
                await deferrer.defer_jobs(deferrer.get_previous_tasks(at=time.time()))
            working = asyncio.create_task(
                app.run_worker_async(
                    queues=[QUEUE],
                    name="gridmgr",
                    wait=not once,
                    listen_notify=not once,
                    delete_jobs="successful",  # the queue keeps what failed, for a look; defer keys stay either way
                    install_signal_handlers=False,  # ours below: procrastinate's let a second signal kill the job
                )
            )
            _stop_on_signals(working, report)
            try:
                await working
            except asyncio.CancelledError:  # how a signal stops it, once the running job is done
                pass

    _run_async(work)
    return runs


def _run_async(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """asyncio.run(work()), on a thread of its own when this one already runs an event loop (a browser driver's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(work())
        return
    failed: list[BaseException] = []

    def in_thread() -> None:
        try:
            asyncio.run(work())
        except BaseException as exc:  # handed to the caller's thread below
            failed.append(exc)

    thread = threading.Thread(target=in_thread, name="gridmgr-worker")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]


def _stop_on_signals(working: asyncio.Task[None], report: Callable[[str], None]) -> None:
    """SIGTERM or SIGINT: stop taking jobs and finish the running one; a repeated signal changes nothing.

    Cancelling procrastinate's worker task once is its graceful stop; cancelling it again would abort
    the job, so `make demo`'s Ctrl-C and the TERM that follows it cannot cut a job short (SIGKILL can).
    Signals reach the main thread only; a worker run in another thread (tests) stops when it is done.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    asked: list[str] = []

    def stop(name: str) -> None:
        if asked:
            report(f"{name}: stopping already, after the running job")
            return
        asked.append(name)
        report(f"{name}: stopping after the running job")
        working.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig.name)
