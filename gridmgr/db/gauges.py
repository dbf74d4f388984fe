"""The gauges `/metrics` reads from the database at scrape time: the app role's connections, the job queue, overdue cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

JOB_STATES = ("todo", "doing", "aborting", "failed")  # the queue's depth, and what needs an operator
SCRAPE_TIMEOUT_MS = 5000  # a scrape must not hold a connection for long when the database is slow


@dataclass(frozen=True)
class Gauges:
    """The database's figures at one moment: connections by state, jobs by (queue, status), overdue cases."""

    connections: dict[str, int]
    jobs: dict[tuple[str, str], int]
    overdue_cases: int


def read_gauges(conn: Connection, now: datetime) -> Gauges:
    """The app role's connections, procrastinate's live and failed jobs and the overdue cases, in one short transaction."""
    from gridmgr.cases.queries import OVERDUE_SQL

    with conn.begin():
        conn.execute(text(f"SET LOCAL statement_timeout = {SCRAPE_TIMEOUT_MS}"))
        # a role sees its own sessions in pg_stat_activity: every worker's, the CLI's and the job worker's
        sessions = conn.execute(
            text("""SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
                    WHERE usename = current_user AND datname = current_database() GROUP BY 1""")
        ).all()
        jobs = conn.execute(
            text("""SELECT queue_name, status::text, count(*) FROM procrastinate_jobs
                    WHERE status::text = ANY(:states) GROUP BY 1, 2"""),
            {"states": list(JOB_STATES)},
        ).all()
        overdue = conn.execute(text(f"SELECT count(*) FROM cases f WHERE {OVERDUE_SQL}"), {"now": now}).scalar_one()
    return Gauges(
        connections={state: n for state, n in sessions},
        jobs={(queue, status): n for queue, status, n in jobs},
        overdue_cases=overdue,
    )
