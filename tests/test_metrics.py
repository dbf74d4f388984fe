"""/metrics: requests (the tiles' fast path too) by URL rule with their latency, the database's figures read at
scrape time, refused to other addresses, in Prometheus's text format; under gunicorn the workers' counts add up."""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from gridmgr.db.engine import POOL_SIZE
from gridmgr.people import accounts
from gridmgr.web import create_app, metrics

from support import insert_small_grid, login_client, tile_path

NOW = datetime(2026, 10, 13, 11, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PASSWORD = "secret-pass"
TILE_RULE = "/tiles/<layer>/<z>/<x>/<y>.pbf"


def build(url: str, **settings: str):
    """The app as `create_app` makes it, with the metrics whether or not create_app registers them yet."""
    app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_SECRET_KEY": "test-secret", **settings})
    metrics.init_app(app)  # a no-op once create_app calls it
    app.config["GRIDMGR_NOW"] = NOW
    return app


@pytest.fixture
def site(fresh_db):
    """A grid, one account and an overdue case, on a database of this test's own: (app, engine)."""
    url, eng = fresh_db
    with eng.begin() as c:
        insert_small_grid(c)
        c.execute(text("INSERT INTO people (code, name, role) VALUES ('P1', '张三', 'staff')"))
        accounts.add_user(c, "viewer", "P1", "leader", PASSWORD)
    return build(url), eng


POINT = "ST_SetSRID(ST_Point(116.4005, 39.9005), 4326)"  # inside the small grid


def add_case(c, deadline: datetime, status: str = "dispatched") -> None:
    c.execute(
        text(f"""INSERT INTO cases (case_no, category_code, source, reported_at, status, deadline, geom, cell_id)
                 VALUES (left(md5(random()::text), 16), '0102', 'supervisor', :at, :st, :dl, {POINT},
                         (SELECT cell_id FROM cell_for({POINT})))"""),
        {"at": deadline - timedelta(days=1), "st": status, "dl": deadline},
    )


def scrape(client, **kw) -> dict[str, dict]:
    """The samples of /metrics by metric family name, parsed by prometheus_client's own parser."""
    r = client.get("/metrics", **kw)
    assert r.status_code == 200 and r.mimetype == "text/plain", r.status
    return {f.name: f for f in text_string_to_metric_families(r.get_data(as_text=True))}


def value(families: dict, name: str, sample: str | None = None, **labels: str) -> float:
    """One sample's value (0 when absent: a counter not yet counted)."""
    for s in families[name].samples:
        if s.name == (sample or name) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return 0.0


def test_pages_and_fast_path_tiles_are_counted_by_rule_with_their_latency(site):
    app, _ = site
    client = login_client(app, "viewer", PASSWORD)
    before = scrape(client)
    # buffered: the test client then closes each answer, as a WSGI server does, which ends its timing
    assert client.get("/overview", buffered=True).status_code == 200
    for _ in range(2):  # the fast path: Flask never dispatches these
        assert client.get(tile_path(17), buffered=True).status_code == 200
    assert client.get("/no/such/page/123", buffered=True).status_code == 404
    after = scrape(client)
    total = "gridmgr_http_requests"

    def delta(**labels: str) -> float:
        return value(after, total, total + "_total", **labels) - value(before, total, total + "_total", **labels)

    assert delta(endpoint="/overview", method="GET", status="200") == 1
    assert delta(endpoint=TILE_RULE, method="GET", status="200") == 2
    assert delta(endpoint=metrics.UNMATCHED, status="404") == 1
    assert not any("123" in s.labels.get("endpoint", "") for s in after[total].samples)  # never the raw path
    hist = "gridmgr_http_request_duration_seconds"
    count = value(after, hist, hist + "_count", endpoint=TILE_RULE) - value(
        before, hist, hist + "_count", endpoint=TILE_RULE
    )
    assert count == 2 and value(after, hist, hist + "_sum", endpoint=TILE_RULE) > 0
    assert value(after, hist, hist + "_bucket", endpoint=TILE_RULE, le="+Inf") >= 2


def test_the_database_figures_are_read_at_scrape_time(site):
    app, eng = site
    client = app.test_client()
    first = scrape(client)
    assert value(first, "gridmgr_database_up") == 1 and value(first, "gridmgr_cases_overdue") == 0
    with eng.begin() as c:
        add_case(c, NOW - timedelta(hours=2))  # overdue
        add_case(c, NOW + timedelta(hours=2))  # not yet
        add_case(c, NOW - timedelta(hours=2), status="suspended")  # its clock stops: never overdue
        c.execute(text("INSERT INTO procrastinate_jobs (queue_name, task_name, status) VALUES ('outbox', 't', 'todo')"))
    families = scrape(client)
    assert value(families, "gridmgr_cases_overdue") == 1
    assert value(families, "gridmgr_jobs", queue="outbox", status="todo") == 1
    assert sum(s.value for s in families["gridmgr_db_connections"].samples) >= 1  # at least the scrape's own
    pool = {"pool": "app", "pid": str(os.getpid())}  # read before the scrape takes its own connection
    assert value(families, "gridmgr_db_pool_size", **pool) == POOL_SIZE
    assert value(families, "gridmgr_db_pool_checked_out", **pool) == 0


def test_other_addresses_get_no_metrics(site, fresh_db):
    app, _ = site
    other = {"environ_base": {"REMOTE_ADDR": "10.1.2.3"}}
    assert app.test_client().get("/metrics", **other).status_code == 404
    assert app.test_client().get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    allowed = build(fresh_db[0], GRIDMGR_METRICS_FROM="10.1.0.0/16, 192.0.2.7")
    assert allowed.test_client().get("/metrics", **other).status_code == 200
    assert allowed.test_client().get("/metrics").status_code == 404  # the loopback is no longer in the list
    with pytest.raises(ValueError, match="GRIDMGR_METRICS_FROM"):
        build(fresh_db[0], GRIDMGR_METRICS_FROM="10.1.0.0/33")


# `gridmgr serve` with the metrics: the lines README's Deployment asks for in create_app and server.py, applied
# here only while they are not there yet (each step checks first), so this runs the real command either way
SERVE = """
import os, sys
import gridmgr.web as web
from gridmgr.web import metrics, server

build, run, options = web.create_app, server.run, server.options

def create_app(config=None):
    app = build(config)
    metrics.init_app(app)
    return app

def with_hook(*args):
    opts = options(*args)
    opts.setdefault("child_exit", metrics.child_exit)
    return opts

def run_prepared(*args):
    if not os.environ.get(metrics.DIR_ENV):
        metrics.prepare_workers()
    run(*args)

web.create_app, server.options, server.run = create_app, with_hook, run_prepared
from gridmgr.cli import main
sys.argv = ["gridmgr", *sys.argv[1:]]
main()
"""


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_gunicorn_workers_add_up_their_counts(fresh_db, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "GRIDMGR_DATABASE_URL": fresh_db[0], "GRIDMGR_VAR": str(tmp_path / "var")}
    env.update(GRIDMGR_WORKERS="2", GRIDMGR_THREADS="2")
    env.pop(metrics.DIR_ENV, None)
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 60
        while True:
            try:
                if _get(f"{base}/healthz")[0] == 200:
                    break
            except OSError:  # refused while the workers start
                pass
            assert time.monotonic() < end and proc.poll() is None, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        files = tmp_path / "var" / "metrics"
        n = 1  # the /healthz that answered above
        # a fresh connection each time: gunicorn hands them to either worker, until both have counted some
        while len(list(files.glob("counter_*.db"))) < 2 or n < 20:
            assert _get(f"{base}/healthz")[0] == 200 and time.monotonic() < end + 30
            n += 1
        families: dict = {}
        pids: set[str] = set()  # the workers that answered the scrapes (each reports its own pools)
        # whichever worker answers a scrape, it counts every worker's requests (each answer's count is
        # written just after the answer is sent, so the last one may show a scrape later)
        while len(pids) < 2:
            status, body = _get(f"{base}/metrics")
            assert status == 200, (tmp_path / "serve.log").read_text()
            families = {f.name: f for f in text_string_to_metric_families(body)}
            healthz = value(
                families, "gridmgr_http_requests", "gridmgr_http_requests_total", endpoint="/healthz", status="200"
            )
            assert healthz <= n
            if healthz == n:
                pids |= {s.labels["pid"] for s in families["gridmgr_db_pool_size"].samples}
            assert time.monotonic() < end + 60, f"the scrapes went to one worker or missed requests: {healthz} of {n}"
        assert value(families, "gridmgr_database_up") == 1
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
