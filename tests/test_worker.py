"""The job worker on procrastinate's queue, and the outbox: real PostgreSQL, a real HTTP endpoint, a real process."""

from __future__ import annotations

import importlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from importlib.resources import files

import pytest
from sqlalchemy import text

from gridmgr.codes import TZ
from gridmgr.db import migrate
from gridmgr.errors import InputError
from gridmgr.plugins import hooks, outbox, worker
from gridmgr.plugins.hooks import Job, hookimpl


class Probe:
    """A plug-in with one daily job that keeps the arguments of each of its runs (or fails, when asked)."""

    def __init__(self, due: datetime, fail: bool = False):
        self.due, self.at, self.fail = due, f"{due:%H:%M}", fail
        self.runs: list[dict] = []

    @hookimpl
    def gridmgr_jobs(self):
        return [Job("probe", "探针", "probe", "daily", self._run, at=self.at)]

    def _run(self, conn, now, **args):
        conn.execute(text("SELECT 1"))
        if self.fail:
            raise RuntimeError("the probe fails")
        self.runs.append(args)
        return f"run {len(self.runs)}"


@pytest.fixture
def probe(request):
    """The probe plug-in, registered as an entry point would be, its daily job due three hours ago."""
    due = (datetime.now(TZ) - timedelta(hours=3)).replace(second=0, microsecond=0)
    plugin = Probe(due, **getattr(request, "param", {}))
    hooks.manager().register(plugin, "zz_probe")
    try:
        yield plugin
    finally:
        hooks.manager().unregister(plugin)


def _count(eng, sql: str, **params) -> int:
    with eng.connect() as c:
        return int(c.execute(text(sql), params).scalar_one())


def test_cron_lines_are_utc_for_the_local_times():
    daily = Job("d", "", "", "daily", lambda c, n: "", at="02:00")
    assert worker.cron(daily) == "0 18 * * *"  # 02:00 in Shanghai is 18:00 UTC the day before
    assert worker.cron(Job("d", "", "", "daily", lambda c, n: "", at="08:30")) == "30 0 * * *"
    assert worker.cron(Job("h", "", "", "hourly", lambda c, n: "")) == "0 * * * *"
    with pytest.raises(ValueError, match="daily or hourly"):
        worker.cron(Job("w", "", "", "weekly", lambda c, n: ""))
    with pytest.raises(ValueError, match="HH:MM"):
        worker.cron(Job("d", "", "", "daily", lambda c, n: "", at="2:00"))


def test_a_missed_run_runs_once_though_two_workers_start_together(fresh_db, probe):
    """Due three hours ago with no worker up: both workers defer it, the database keeps one, one runs it."""
    _, eng = fresh_db
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def one_worker():
        try:
            start.wait()
            worker.run(eng, once=True)
        except BaseException as exc:  # a failure in a thread would go unseen
            errors.append(exc)

    threads = [threading.Thread(target=one_worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(probe.runs) == 1
    # deferred for its due time (the latest `at`, local), once: the key a second deferral runs into
    with eng.connect() as c:
        keys = c.execute(
            text("SELECT defer_timestamp FROM procrastinate_periodic_defers WHERE periodic_id = 'probe'")
        ).scalars()
        assert list(keys) == [int(probe.due.timestamp())]
    # a worker started again before the next due time finds that run done
    worker.run(eng, once=True)
    assert len(probe.runs) == 1


def test_enqueue_commits_or_rolls_back_with_the_caller(fresh_db, probe):
    _, eng = fresh_db
    queued = "SELECT count(*) FROM procrastinate_jobs WHERE args->>'name' = 'probe'"
    with eng.connect() as c:
        tx = c.begin()
        worker.enqueue(c, "probe", n=1)
        assert int(c.execute(text(queued)).scalar_one()) == 1  # there, inside the transaction
        tx.rollback()
    assert _count(eng, queued) == 0
    with eng.begin() as c:
        worker.enqueue(c, "probe", n=2)
        with pytest.raises(InputError, match="unknown job nope; known: .*probe"):
            worker.enqueue(c, "nope")
    assert _count(eng, queued) == 1
    worker.run(eng, once=True)
    assert sorted(probe.runs, key=len) == [{}, {"n": 2}]  # the due run, and the queued one with its argument
    assert _count(eng, queued) == 0  # done jobs leave the queue


def test_a_job_left_by_a_killed_worker_runs_again(fresh_db, probe):
    """A worker that died mid-job left it "doing", its lock held: the next worker queues it again and runs it."""
    _, eng = fresh_db
    with eng.begin() as c:
        job_id = worker.enqueue(c, "probe", n=7)
        dead = c.execute(
            text("INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') RETURNING id")
        ).scalar_one()
        c.execute(
            text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w WHERE id = :j"),
            {"w": dead, "j": job_id},
        )
    lines: list[str] = []
    worker.run(eng, once=True, report=lines.append)
    assert "1 job of a stopped worker queued again" in lines
    assert {"n": 7} in probe.runs
    assert _count(eng, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'") == 0


class Endpoint(BaseHTTPRequestHandler):
    """Records each POST; answers with the next status queued for its path, else 200."""

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((self.path, self.headers["Content-Type"], json.loads(body)))
        answers = self.server.answers.get(self.path)
        self.send_response(answers.pop(0) if answers else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def endpoint():
    """A local HTTP server in a thread of the test: .url(path), .seen, .answers[path] = [status, …]."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    server.seen, server.answers = [], {}
    server.url = lambda path: f"http://127.0.0.1:{server.server_port}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _message(conn, message_id: int):
    return conn.execute(text("SELECT * FROM outbox WHERE id = :id"), {"id": message_id}).one()


def test_outbox_retries_with_backoff_then_sends(conn, endpoint):
    endpoint.answers["/flaky"] = [500, 503]
    payload = {"url": endpoint.url("/flaky"), "case_no": "2026000001", "text": "案件已派遣"}
    mid = outbox.put(conn, "webhook", payload)
    t0 = datetime.now(TZ)
    assert outbox.deliver(conn, t0, mid) == "0 sent, 1 to retry, 0 given up"
    row = _message(conn, mid)
    assert (row.attempts, row.next_attempt_at, row.sent_at) == (1, t0 + timedelta(seconds=30), None)
    assert row.last_error.startswith("HTTPError: HTTP Error 500")
    # its next attempt is queued for that time, in the same transaction
    queued = conn.execute(
        text("SELECT scheduled_at FROM procrastinate_jobs WHERE (args->>'message_id')::bigint = :id"), {"id": mid}
    ).scalars()
    assert t0 + timedelta(seconds=30) in list(queued)
    assert outbox.deliver(conn, t0 + timedelta(seconds=10), mid).endswith(
        "is due at " + f"{row.next_attempt_at.astimezone(TZ):%Y-%m-%d %H:%M:%S}"
    )
    assert len(endpoint.seen) == 1  # nothing sent before its time
    assert outbox.deliver(conn, t0 + timedelta(seconds=30), mid) == "0 sent, 1 to retry, 0 given up"
    assert _message(conn, mid).next_attempt_at == t0 + timedelta(seconds=30 + 60)  # the wait doubled
    assert outbox.deliver(conn, t0 + timedelta(seconds=90), mid) == "1 sent, 0 to retry, 0 given up"
    row = _message(conn, mid)
    assert (row.attempts, row.sent_at, row.given_up_at) == (3, t0 + timedelta(seconds=90), None)
    body = {"case_no": "2026000001", "text": "案件已派遣"}  # the payload less its url
    assert endpoint.seen == [("/flaky", "application/json; charset=utf-8", body)] * 3
    assert outbox.deliver(conn, t0 + timedelta(days=1), mid) == f"message {mid} was sent or given up already"


def test_outbox_gives_up_after_its_attempts(conn, endpoint):
    endpoint.answers["/down"] = [503] * outbox.ATTEMPTS
    mid = outbox.put(conn, "webhook", {"url": endpoint.url("/down"), "n": 1})
    now, waits = datetime.now(TZ), []
    for _ in range(outbox.ATTEMPTS):
        summary = outbox.deliver(conn, now, mid)
        row = _message(conn, mid)
        waits.append((row.next_attempt_at - now).total_seconds())
        now = row.next_attempt_at
    assert summary == "0 sent, 0 to retry, 1 given up"
    assert waits[:-1] == [30 * 2**i for i in range(outbox.ATTEMPTS - 1)]
    assert (row.attempts, row.sent_at) == (outbox.ATTEMPTS, None)
    assert row.given_up_at is not None and "HTTP Error 503" in row.last_error
    assert outbox.deliver(conn, now + timedelta(days=1)) == "0 sent, 0 to retry, 0 given up"  # a sweep leaves it
    assert len(endpoint.seen) == outbox.ATTEMPTS


def test_outbox_refuses_what_it_cannot_send(conn):
    with pytest.raises(InputError, match="unknown outbox channel sms; known: .*webhook"):
        outbox.put(conn, "sms", {})
    with pytest.raises(ValueError, match="http or https"):
        outbox.webhook({"url": "file:///etc/passwd"})
    with pytest.raises(ValueError, match="names no url"):
        outbox.webhook({"n": 1})


def test_the_worker_delivers_the_outbox_and_retries(fresh_db, endpoint, monkeypatch):
    _, eng = fresh_db
    monkeypatch.setattr(outbox, "FIRST_WAIT_S", 0)  # the retry is due at once: one pass shows the whole chain
    endpoint.answers["/flaky"] = [500]
    with eng.connect() as c:
        tx = c.begin()
        outbox.put(c, "webhook", {"url": endpoint.url("/flaky"), "n": 0})
        tx.rollback()
    assert _count(eng, "SELECT count(*) FROM outbox") == 0
    assert _count(eng, "SELECT count(*) FROM procrastinate_jobs") == 0  # its delivery went with it
    with eng.begin() as c:
        mid = outbox.put(c, "webhook", {"url": endpoint.url("/flaky"), "n": 1})
    lines: list[str] = []
    worker.run(eng, once=True, report=lines.append)
    assert [body for _, _, body in endpoint.seen] == [{"n": 1}, {"n": 1}]
    with eng.connect() as c:
        row = _message(c, mid)
    assert row.attempts == 2 and row.sent_at is not None and row.last_error.startswith("HTTPError")
    outbox_lines = [re.sub(r" \(\d+\.\d\d s\)$", "", line) for line in lines if line.startswith("outbox:")]
    assert "outbox: 0 sent, 1 to retry, 0 given up" in outbox_lines
    assert "outbox: 1 sent, 0 to retry, 0 given up" in outbox_lines


def test_a_retry_waiting_for_its_time_holds_back_no_other_message(fresh_db, endpoint):
    _, eng = fresh_db
    endpoint.answers["/down"] = [503]
    with eng.begin() as c:
        down = outbox.put(c, "webhook", {"url": endpoint.url("/down")})
    worker.run(eng, once=True)  # it fails: its next attempt is queued for 30 s later
    with eng.begin() as c:
        up = outbox.put(c, "webhook", {"url": endpoint.url("/up")})
    lines: list[str] = []
    worker.run(eng, once=True, report=lines.append)
    assert [re.sub(r" \(.*", "", line) for line in lines] == ["outbox: 1 sent, 0 to retry, 0 given up"]
    with eng.connect() as c:
        assert _message(c, up).sent_at is not None
        assert _message(c, down).sent_at is None and _message(c, down).attempts == 1


@pytest.mark.parametrize("probe", [{"fail": True}], indirect=True)
def test_worker_once_runs_what_is_due_and_says_so(cli, probe):
    listed = cli("jobs", "list").output
    assert re.search(r"^outbox +hourly +发件箱投递 outbox delivery$", listed, re.M)
    first = cli("worker", "--once", ok=False)
    assert first.exit_code == 1  # a job failed
    stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d "
    assert re.search(stamp + r"rules: .* \(\d+\.\d\d s\)$", first.output, re.M)
    assert re.search(stamp + r"outbox: 0 sent, 0 to retry, 0 given up \(\d+\.\d\d s\)$", first.output, re.M)
    assert re.search(stamp + r"probe: failed, RuntimeError: the probe fails \(\d+\.\d\d s\)$", first.output, re.M)
    assert re.search(r"worker stopped: \d+ jobs? run, 1 failed in \d+\.\d s", first.output)
    again = cli("worker", "--once")  # every due run was done: nothing is left to do, nothing failed
    assert "worker stopped: 0 jobs run in" in again.output


SLOW_PLUGIN = """
import time
from pathlib import Path

from gridmgr.plugins.hooks import Job, hookimpl

STARTED = Path(__file__).with_name("started")


def _slow(conn, now):
    STARTED.write_text("started")
    time.sleep(1.2)
    return "slept 1.2 s"


@hookimpl
def gridmgr_jobs():
    return [Job("slow", "慢", "slow", "daily", _slow, at="00:00")]
"""


def test_sigterm_stops_the_worker_after_its_running_job(fresh_db, tmp_path):
    """A real `gridmgr worker` with an installed plug-in whose job takes 1.2 s: TERM, then INT, mid-job; it finishes."""
    url, _ = fresh_db
    site = tmp_path / "site"
    dist = site / "gm_slow_job-0.dist-info"
    dist.mkdir(parents=True)
    (site / "gm_slow_job.py").write_text(SLOW_PLUGIN, encoding="utf-8")
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gm-slow-job\nVersion: 0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text("[gridmgr]\nzz_slow = gm_slow_job\n", encoding="utf-8")
    env = {
        **os.environ,
        "GRIDMGR_DATABASE_URL": url,
        "GRIDMGR_VAR": str(tmp_path / "var"),
        "PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridmgr.cli", "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while not (site / "started").exists():
            assert proc.poll() is None and time.monotonic() < deadline, (
                proc.stdout.read().decode() if proc.stdout else ""
            )
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)  # as `make demo` may, after a Ctrl-C: the job still finishes
        out = proc.communicate(timeout=30)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert re.search(r"SIGTERM: stopping after the running job\n.*SIGINT: stopping already", out), out
    assert re.search(r"slow: slept 1\.2 s \(1\.\d\d s\)$", out, re.M), out
    assert re.search(r"worker stopped: \d+ jobs run in", out), out


def test_the_migration_holds_the_installed_procrastinate_schema():
    """Migration 0012 vendors procrastinate's schema: a newer procrastinate needs a revision with its SQL migrations."""
    revision = importlib.import_module("gridmgr.migrations.versions.0012_job_queue")
    assert version("procrastinate") == revision.PROCRASTINATE_VERSION
    shipped = (files("procrastinate.sql") / "schema.sql").read_text(encoding="utf-8")
    assert revision.PROCRASTINATE_SCHEMA == shipped


def test_the_queue_migration_goes_down_without_a_trace_and_up_again(owner_db):
    _, eng = owner_db
    leftovers = """
        SELECT relname FROM pg_class WHERE relname LIKE 'procrastinate%' OR relname LIKE 'outbox%'
        UNION ALL SELECT proname FROM pg_proc WHERE proname LIKE 'procrastinate%'
        UNION ALL SELECT typname FROM pg_type WHERE typname LIKE '%procrastinate%'
    """
    migrate.downgrade(eng, "0011")
    with eng.connect() as c:
        assert c.execute(text(leftovers)).scalars().all() == []
    migrate.upgrade(eng)
    with eng.connect() as c:
        assert c.execute(text("SELECT to_regclass('procrastinate_jobs')::text")).scalar() == "procrastinate_jobs"
