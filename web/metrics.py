"""`/metrics` in Prometheus's text format: requests by endpoint, database pools, the job queue, overdue cases.

Requests are counted by a WSGI middleware in front of everything else, so the tiles that
`tiles.TileFastPath` serves without Flask are counted too; their `endpoint` label is the URL rule
they would have matched (never the raw path, whose values are unbounded). Under `gridmgr serve` the
workers share the counts through prometheus_client's multiprocess mode: `prepare_workers()` in the
master, before the fork, names a clean folder under var/ in `PROMETHEUS_MULTIPROC_DIR`, and gunicorn's
`child_exit` hook (`child_exit` here) drops a stopped worker's live gauges. prometheus_client chooses
its storage when it is first imported, so this module imports it only inside functions: the master
may import this module before it sets the folder.

The database's figures are read when Prometheus scrapes, not kept: the pools of the worker that
answers (labelled with its pid), the app role's connections in pg_stat_activity (all workers, the CLI
and the job worker), procrastinate's jobs waiting, running or failed, and the overdue cases.
Only the addresses in `GRIDMGR_METRICS_FROM` get an answer; the others get a 404, as if there were
no such page.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
import shutil
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, abort, current_app, request, request_started
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect
from werkzeug.wsgi import ClosingIterator

from gridmgr.paths import var_dir

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import CollectorRegistry

log = logging.getLogger(__name__)

SETTING = "GRIDMGR_METRICS_FROM"
DEFAULT_FROM = "127.0.0.1,::1"  # the setting's default, for a Config made without the settings table
DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
EXTENSION = "gridmgr.metrics"
RULE_KEY = "gridmgr.metrics.rule"  # environ key: the URL rule Flask matched for this request
UNMATCHED = "(unmatched)"  # the endpoint label of a request no rule matches (a 404): one value for all of them
# seconds; tiles and pages sit in the low buckets, report exports in the high ones
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def init_app(app: Flask) -> None:
    """Serve /metrics to the allowed addresses and count every request; call it after `tiles.serve_beside`."""
    if EXTENSION in app.extensions:
        return
    app.extensions[EXTENSION] = allowed_networks(app.config["GRIDMGR"].get(SETTING))
    app.add_url_rule("/metrics", "metrics", _metrics_view)
    request_started.connect(_remember_rule, app)
    # outermost, so the tiles' fast path in front of Flask is measured as well
    app.wsgi_app = RequestMetrics(app, app.wsgi_app)  # type: ignore[method-assign]


def allowed_networks(value: str | None) -> tuple[Network, ...]:
    """The addresses and CIDRs of GRIDMGR_METRICS_FROM (unset: the loopback); a bad one is a ValueError naming it."""
    networks = []
    for part in (DEFAULT_FROM if value is None else value).split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{SETTING}: {part.strip()!r} is not an address or CIDR") from None
    return tuple(networks)


def is_allowed(address: str | None, networks: Iterable[Network]) -> bool:
    """Whether a client address lies in one of the networks (an IPv4-mapped IPv6 address counts as IPv4)."""
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in net for net in networks)


def prepare_workers(folder: Path | None = None) -> Path:
    """In gunicorn's master before the fork: a clean folder for the workers' metric files, named in their environment."""
    folder = folder or var_dir() / "metrics"
    shutil.rmtree(folder, ignore_errors=True)  # the counts of a previous run's workers are not this run's
    folder.mkdir(parents=True)
    os.environ[DIR_ENV] = str(folder)
    return folder


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn's `child_exit` hook: a stopped worker's live gauges (requests in progress) stop counting."""
    if os.environ.get(DIR_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


class _RequestMetrics:
    """The request metrics of this process (one set per process, however many apps)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        # a registry of our own: several apps in one process (the tests) share these, never prometheus's default
        self.registry: CollectorRegistry = CollectorRegistry()
        labels = ("method", "endpoint")
        self.requests: Counter = Counter(
            "gridmgr_http_requests", "HTTP requests answered.", (*labels, "status"), registry=self.registry
        )
        self.latency: Histogram = Histogram(
            "gridmgr_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer.",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.in_progress: Gauge = Gauge(
            "gridmgr_http_requests_in_progress",
            "Requests being answered now.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )


@functools.cache
def request_metrics() -> _RequestMetrics:
    """This process's request metrics, made on first use (after the fork, with the environment set)."""
    return _RequestMetrics()


class RequestMetrics:
    """WSGI middleware: counts each request and times it until its answer is closed, by method, rule and status."""

    def __init__(self, app: Flask, downstream: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.downstream = downstream
        self.metrics = request_metrics()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        status = ["500"]  # what an exception before start_response answers

        def record_status(code: str, headers: list, exc_info: Any = None) -> Any:
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, exc_info)

        def done() -> None:
            method = environ.get("REQUEST_METHOD", "")
            endpoint = environ.get(RULE_KEY) or self._rule(environ)
            self.metrics.requests.labels(method, endpoint, status[0]).inc()
            self.metrics.latency.labels(method, endpoint).observe(time.perf_counter() - started)
            self.metrics.in_progress.dec()

        self.metrics.in_progress.inc()
        try:
            body = self.downstream(environ, record_status)
        except BaseException:
            done()
            raise
        wrapper = environ.get("wsgi.file_wrapper")
        if isinstance(wrapper, type) and isinstance(body, wrapper):
            done()  # a file the server sends itself (sendfile): wrapping it would turn that off
            return body
        # measured to the close, so a streamed export counts its whole answer
        return ClosingIterator(body, done)

    def _rule(self, environ: dict[str, Any]) -> str:
        """The rule a request Flask never dispatched (the tiles' fast path, a 404) matches, or UNMATCHED."""
        try:
            rule, _ = self.app.url_map.bind_to_environ(environ).match(return_rule=True)
            return rule.rule
        except RequestRedirect:
            return UNMATCHED  # a missing slash: the redirect's target is counted when it comes
        except HTTPException:
            return UNMATCHED


def _remember_rule(app: Flask, **extra: Any) -> None:
    """Flask's `request_started` signal: the rule this request matched, for the middleware's labels."""
    if request.url_rule is not None:
        request.environ[RULE_KEY] = request.url_rule.rule


def _metrics_view() -> Response:
    """The metrics, for the allowed addresses only (404 for the others: the page does not exist for them)."""
    if not is_allowed(request.remote_addr, current_app.extensions[EXTENSION]):
        abort(404)
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(_Listed(request_families()))
    registry.register(DatabaseCollector(current_app._get_current_object()))  # type: ignore[attr-defined]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def request_families(tries: int = 5) -> list[Metric]:
    """The request metrics: every worker's (their files, the stopped ones' counts included), else this process's."""
    if not os.environ.get(DIR_ENV):
        return list(request_metrics().registry.collect())
    from prometheus_client.multiprocess import MultiProcessCollector

    for attempt in range(tries):
        try:
            return list(MultiProcessCollector(None).collect())
        except struct.error:
            # a worker's first request of a kind creates its file empty and sizes it a moment later
            if attempt == tries - 1:
                raise
            time.sleep(0.01)
    raise AssertionError("unreachable")


class _Listed:
    """A collector yielding metrics already read."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


class DatabaseCollector:
    """The database's figures, read at scrape time: this process's pools, the role's connections, jobs, overdue cases."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        yield from self._pools()
        up = GaugeMetricFamily("gridmgr_database_up", "1 when the scrape could read the database's figures.")
        try:
            figures = list(self._database())
        except Exception:  # noqa: BLE001 - the request metrics still go out; the error goes to the log
            log.exception("metrics: reading the database's figures failed")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from figures

    def _pools(self) -> Iterator[Metric]:
        """The SQLAlchemy pools this process has opened (none before its first request that needs one)."""
        from prometheus_client.core import GaugeMetricFamily

        labels = ("pool", "pid")
        out = GaugeMetricFamily(
            "gridmgr_db_pool_checked_out", "Connections lent out by this process's pool.", labels=labels
        )
        idle = GaugeMetricFamily("gridmgr_db_pool_idle", "Connections idle in this process's pool.", labels=labels)
        size = GaugeMetricFamily("gridmgr_db_pool_size", "Connections this process's pool keeps.", labels=labels)
        pid = str(os.getpid())
        for name, key in (("app", "gridmgr.engine"), ("read", "gridmgr.read_engine")):
            engine = self.app.extensions.get(key)
            pool = getattr(engine, "pool", None)
            if pool is None or not hasattr(pool, "checkedout"):
                continue
            out.add_metric([name, pid], pool.checkedout())
            idle.add_metric([name, pid], pool.checkedin())
            size.add_metric([name, pid], pool.size())
        yield from (out, idle, size)

    def _database(self) -> Iterator[Metric]:
        """The role's server connections, the job queue and the overdue cases, as gauges."""
        from prometheus_client.core import GaugeMetricFamily

        from gridmgr.cases.queries import resolve_now
        from gridmgr.db.gauges import read_gauges
        from gridmgr.web import database

        now = resolve_now(self.app.config.get("GRIDMGR_NOW"))  # the pages' "now", so tests agree with them
        with database.engine(self.app).connect() as conn:
            figures = read_gauges(conn, now)
        conns = GaugeMetricFamily(
            "gridmgr_db_connections",
            "The app role's connections to this database (every process), by state.",
            labels=("state",),
        )
        for state, n in figures.connections.items():
            conns.add_metric([state], n)
        queue = GaugeMetricFamily(
            "gridmgr_jobs", "Jobs in procrastinate's queue, by queue and status.", labels=("queue", "status")
        )
        for (queue_name, status), n in figures.jobs.items():
            queue.add_metric([queue_name, status], n)
        cases = GaugeMetricFamily("gridmgr_cases_overdue", "Cases waiting for a step past their deadline (超期).")
        cases.add_metric([], figures.overdue_cases)
        yield from (conns, queue, cases)
