"""Benchmark: serving — gunicorn beside Flask's development server, for tiles, the case list and the map page.

    .venv/bin/python bench/serve.py [--users 50] [--duration 30] [--clients 1 4 16 64] [--closed 10] [--quick]
    .venv/bin/python bench/serve.py --cost-only     # part 1 alone; --no-record leaves BENCHMARKS.md alone

Data, in a database of this benchmark's own (gridmgr_bench_serve, built once by bench/common.py's
`bench_engine`): the full demo, the size `gridmgr demo` loads (4,896 cells, 50,000 cases driven through
the workflow), and the demo logins.

1. What one case-list request costs, in this process, with no HTTP: GET /api/v1/cases (its default
   page, the demo dispatcher's bearer token) handed to the app's WSGI callable as a server hands it
   over, answered by the view as it is now and by the view as it was before issue 15 (every field of
   every case, dicts made in Python, the count over every join; rebuilt here from the query module's
   parts and swapped in for the same route), taking turns. Then where each one's time goes: its
   statements alone, the Python that turns rows into JSON, and the rest (Flask, the token login, the
   pool); and for the new statement, PostgreSQL's own split (EXPLAIN ANALYZE: planning, count, page).
2. Both servers, started here on free ports on that database in the same run: `gridmgr serve`
   (gunicorn: GRIDMGR_WORKERS × GRIDMGR_THREADS as set, default 2 × 4) and `gridmgr serve --dev` (Flask's
   development server with its reloader, as the command runs it). Each is asked, in turn, for:
   - tiles: /tiles/cells/… and /tiles/cases/… (default window) at z12–17, drawn at random from the
     tiles under a seeded sample of the demo's cases (dense areas weigh as on a map); session cookie;
   - the case list: GET /api/v1/cases, default page, the dispatcher's bearer token;
   - the map page: GET /map as the demo supervisor (session cookie from the login form).
   a. Open loop: --users simulated users, each making one request a second for --duration seconds
      (each user's phase seeded and uniform in the second). Send times are fixed in advance, and a
      request's latency counts from its scheduled time, not from when it was sent: a user still
      waiting for its previous answer sends late, and the wait counts. So queueing in the server
      shows in the figures instead of slowing the clients down (coordinated omission).
   b. Closed loop: N clients for each N of --clients, each sending its next request as soon as its
      answer is in, for --closed seconds: completed requests a second, and their latency from send.
   During every phase the CPU time of the server's processes, of PostgreSQL's, of this client and of
   the whole machine (and the time the hypervisor stole) is read from /proc, so each row says which of
   them was busy. A phase in which the development server's reloader restarted it (another engineer's
   edit of the shared checkout) is run again, and said so.

Load: plain threads, one per user or client, each with its own keep-alive connection (http.client,
so a request costs the client little CPU on a machine it shares with the servers and PostgreSQL).
Not locust: its users wait for an answer before the next request and time from the send, so a slow
server slows the load down and its queueing is hidden (coordinated omission). Its event loop and
statistics also cost CPU on the same cores. An error is any answer but 200, a refused or broken
connection, or a 30 s timeout. Every request of a phase is kept, not sampled.

The results are printed and written to var/bench/serve/SERVING.md, and, unless --quick or --no-record,
replace the "Serving" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from sqlalchemy import text

from gridmgr.cases import filters, queries
from gridmgr.codes import TZ
from gridmgr.demo import accounts as demo_accounts
from gridmgr.paths import var_dir
from gridmgr.people import accounts

import common
from common import load_note, machine

common.BENCH_DB = "gridmgr_bench_serve"
ROOT = Path(__file__).resolve().parent.parent
GRIDMGR = Path(sys.executable).with_name("gridmgr")
TIMEOUT_S = 30
TARGET_P95_MS = 100
ZOOMS = range(12, 18)
API_USER, MAP_USER = "dispatcher", "supervisor"
SECTION = "## Serving"


# ------------------------------------------------------------------------------------------ data


def tile_paths(eng, per_zoom: int, seed: int = 15) -> list[str]:
    """Cells and cases tiles (default window) at z12–17, up to per_zoom distinct tiles a zoom under seeded cases."""
    with eng.connect() as conn:
        # ordered, so the seeded sample is the same on every run on the same database
        xy = np.array(
            conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM cases WHERE id % 13 = 5 ORDER BY id")).all(),
            dtype=float,
        )
    rng = np.random.default_rng(seed)
    out = []
    for z in ZOOMS:
        n = 2**z
        tx = np.floor((xy[:, 0] + 180) / 360 * n).astype(int)
        lat = np.radians(xy[:, 1])
        ty = np.floor((1 - np.log(np.tan(lat) + 1 / np.cos(lat)) / math.pi) / 2 * n).astype(int)
        seen: list[tuple[int, int]] = []
        for i in rng.permutation(len(xy)):
            if (tx[i], ty[i]) not in seen:
                seen.append((int(tx[i]), int(ty[i])))
            if len(seen) == per_zoom:
                break
        out += [f"/tiles/{layer}/{z}/{x}/{y}.pbf" for x, y in seen for layer in ("cells", "cases")]
    return out


def prepare(eng) -> str:
    """The demo logins in the bench database, and a fresh API token of the API user."""
    with eng.begin() as conn:
        demo_accounts.create(conn)
        return accounts.new_token(conn, API_USER)


# ---------------------------------------------------------------- 1. the case list in this process


def before_view():
    """GET /api/v1/cases as it was before issue 15: every field, dicts made in Python, the count over every join."""
    from flask import request

    from gridmgr.web.auth import current_actor
    from gridmgr.web.database import engine
    from gridmgr.web.views import api

    actor = current_actor()
    flt = filters.parse_filter(request.args)
    page, size = filters.parse_page(request.args)
    sort = request.args.get("sort") or filters.DEFAULT_SORT
    now = api.request_now()
    with engine().connect() as conn:
        total, rows = before_statements(conn, actor, flt, now, page, size, sort)
        items = [queries.case_dict(r, now=now, calendar=api.calendar()) for r in rows]
    return api.json_response(filters.Page(items, total, page, size).as_dict(), headers={"X-Total-Count": str(total)})


def before_statements(conn, actor, flt, now, page=1, size=filters.DEFAULT_PAGE_SIZE, sort=filters.DEFAULT_SORT):
    """The two statements of the list before issue 15: (total, rows)."""
    where, params = queries._where(actor, flt, now)
    total = conn.execute(text(f"SELECT count(*) {queries._FROM} WHERE {where}"), params).scalar_one()
    rows = (
        conn.execute(
            text(
                f"{queries._SELECT} {queries._FROM} WHERE {where} ORDER BY {filters.SORTS[sort]} "
                "LIMIT :limit OFFSET :offset"
            ),
            {**params, "limit": size, "offset": (page - 1) * size},
        )
        .mappings()
        .all()
    )
    return total, rows


def wsgi_get(app, path: str, headers: dict) -> tuple[int, bytes]:
    """GET path handed to the app's WSGI callable as a server hands it over: (status, body)."""
    status, _, body = common.wsgi_get(app, path, {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    return status, body


def case_list_cost(url: str, token: str, rounds: int) -> dict:
    """The per-request cost of GET /api/v1/cases now and before issue 15, and where each one's time goes."""
    from gridmgr.cases.workflow import actor_for
    from gridmgr.db.engine import dispose_all, engine_for
    from gridmgr.web import create_app

    app = create_app({"GRIDMGR_DATABASE_URL": url})
    views = {"before": before_view, "after": app.view_functions["api.cases"]}
    headers = {"Authorization": f"Bearer {token}"}

    def endpoint(name: str):
        def call() -> bytes:
            app.view_functions["api.cases"] = views[name]
            status, body = wsgi_get(app, "/api/v1/cases", headers)
            assert status == 200, (name, status, body[:300])
            return body

        return call

    now = queries.resolve_now(None)
    cal = queries.default_calendar()
    flt = filters.CaseFilter()
    with engine_for(url).connect() as conn:  # a pooled connection, as the view has it
        uid = conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": API_USER}).scalar_one()
        actor = actor_for(conn, uid)
        where, params = queries._where(actor, flt, now)
        count_sql = text(f"SELECT count(*) {queries._FROM} WHERE {where}")
        total, rows = before_statements(conn, actor, flt, now)
        page = filters.Page([queries.case_dict(r, now=now, calendar=cal) for r in rows], total, 1, 50).as_dict()
        sql, sql_params = queries.list_cases_json_sql(
            actor, flt, now=now, page=1, page_size=filters.DEFAULT_PAGE_SIZE, sort=filters.DEFAULT_SORT
        )
        statement = text(f"SET LOCAL TimeZone = '{TZ.key}'; {sql}")
        items_text = conn.execute(statement, sql_params).one().items

        def assemble() -> str:  # what list_cases_json does with the statement's text
            body = items_text
            for ch, esc in queries._HTML_ESCAPES:
                body = body.replace(ch, esc)
            return f'{{"items": {body}, "total": {total}, "page": 1, "page_size": 50, "pages": 1}}'

        parts = {
            "before": endpoint("before"),
            "after": endpoint("after"),
            "before_count": lambda: conn.execute(count_sql, params).scalar_one(),
            "before_statements": lambda: before_statements(conn, actor, flt, now),
            "before_dicts": lambda: [queries.case_dict(r, now=now, calendar=cal) for r in rows],
            "before_json": lambda: queries.to_json(page),
            "after_list": lambda: queries.list_cases_json(conn, actor, flt, now=now),
            "after_statement": lambda: conn.execute(statement, sql_params).one(),
            "after_assembly": assemble,
            "trivial": lambda: conn.execute(text("SELECT 1")).scalar_one(),
        }
        bodies = {name: parts[name]() for name in views}  # warm-up, and the bodies
        for fn in parts.values():
            fn()
        times: dict[str, list[float]] = {name: [] for name in parts}
        names = list(parts)
        for i in range(rounds):  # every part once a round, the first one turning: the same load for all
            for name in names[i % len(names) :] + names[: i % len(names)]:
                t = time.perf_counter()
                parts[name]()
                times[name].append(time.perf_counter() - t)
        out = {name: statistics.median(v) * 1000 for name, v in times.items()}
        out["endpoint"] = {name: out.pop(name) for name in views}
        out["rounds"] = rounds
        out["bytes"] = {k: len(v) for k, v in bodies.items()}
        ids = {k: [i["id"] for i in json.loads(v)["items"]] for k, v in bodies.items()}
        assert ids["before"] == ids["after"], "the two views list different cases"
        out["items"] = len(ids["after"])
        out["fields"] = {k: len(json.loads(v)["items"][0]) for k, v in bodies.items()}
        plans = [
            conn.execute(text(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}"), sql_params).scalar_one()[0]
            for _ in range(max(rounds // 3, 10))
        ]
        out["after_planning"] = statistics.median(p["Planning Time"] for p in plans)
        out["after_execution"] = statistics.median(p["Execution Time"] for p in plans)
        out["after_count"] = statistics.median(
            next(
                s["Actual Total Time"] for s in p["Plan"]["Plans"] if s.get("Subplan Name", "").startswith("InitPlan 1")
            )
            for p in plans
        )
    app.view_functions["api.cases"] = views["after"]
    dispose_all()  # this process's pools, before the servers open theirs
    return out


# ----------------------------------------------------------------------------------- 2. the servers


def free_port() -> int:
    """A TCP port free on 127.0.0.1 just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """One server started by this benchmark (`gridmgr serve`, or with --dev), in a process group of its own."""

    def __init__(self, name: str, dev: bool, url: str, log: Path):
        self.name, self.port, self.log = name, free_port(), log
        env = {**os.environ, "GRIDMGR_DATABASE_URL": url}
        cmd = [str(GRIDMGR), "serve", "--port", str(self.port), *(["--dev"] if dev else [])]
        self.out = log.open("w")
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, limit_s: float = 120) -> None:
        """Until the login page answers; the log's tail when the server stops or never answers."""
        end = time.monotonic() + limit_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/login")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"{self.name} did not start; {self.log}:\n" + self.log.read_text()[-3000:])

    def log_size(self) -> int:
        """Where its log ends now."""
        self.out.flush()
        return self.log.stat().st_size

    def reloaded_since(self, offset: int) -> bool:
        """Whether the development server's reloader restarted it since that point of its log (a file changed)."""
        with self.log.open("rb") as fh:
            fh.seek(offset)
            return b"Detected change in" in fh.read()

    def stop(self) -> None:
        """TERM to its process group (gunicorn lets requests finish), KILL if it lingers."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.close()


def login_cookie(port: int, username: str, password: str) -> str:
    """A Cookie header of a session logged in through the login form."""
    jar: dict[str, str] = {}

    def keep(resp) -> None:
        for header in resp.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                jar[name] = morsel.value

    def cookie() -> str:
        return "; ".join(f"{k}={v}" for k, v in jar.items() if v)

    c = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    c.request("GET", "/login")
    r = c.getresponse()
    page = r.read().decode()
    keep(r)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf, "no CSRF token on the login page"
    form = urlencode({"username": username, "password": password, "csrf_token": csrf[1]})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie()}
    c.request("POST", "/login", form, headers)
    r = c.getresponse()
    r.read()
    keep(r)
    assert r.status in (302, 303), f"login as {username}: {r.status}"
    return cookie()


@dataclass
class Target:
    """What the users ask for: paths (drawn at random) and the headers that log them in."""

    name: str
    paths: list[str]
    headers: dict[str, str]


class Connection:
    """One user's or client's keep-alive connection; `get` gives (status or error name, bytes)."""

    def __init__(self, port: int, headers: dict[str, str]):
        self.http = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
        self.headers = headers

    def get(self, path: str) -> tuple[int | str, int]:
        """GET path: (status, body bytes), or (the error's name, 0) for a broken, refused or timed-out request."""
        try:
            self.http.request("GET", path, headers=self.headers)
            resp = self.http.getresponse()
            body = resp.read()
            if resp.will_close:
                self.http.close()  # http.client opens a new one for the next request
            return resp.status, len(body)
        except (OSError, http.client.HTTPException) as exc:
            self.http.close()
            return type(exc).__name__, 0

    def close(self) -> None:
        """Close the connection."""
        self.http.close()


# ------------------------------------------------------------------------------------- CPU from /proc

CLK = os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, tuple[int, float]]:
    """Every process: pid → (parent pid, CPU seconds of it and its reaped children)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = raw[raw.rindex(")") + 2 :].split()  # the name may hold spaces and brackets
        # fields[1] ppid; [11] utime [12] stime [13] cutime [14] cstime (proc(5), counted from field 3)
        out[int(d)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / CLK)
    return out


def tree_cpu(table: dict[int, tuple[int, float]], root: int | None) -> float:
    """CPU seconds of a process and its live descendants (each with its reaped children: none counted twice)."""
    if root is None or root not in table:
        return 0.0
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += table[pid][1]
        todo += children.get(pid, [])
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the machine so far, from /proc/stat.

    Stolen time (a virtual machine's CPU given to another guest by the hypervisor) is neither work done
    here nor capacity left: it is reported apart.
    """
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is inside user already)
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK, v[7] / CLK


class CpuMeter:
    """CPU cores used over a phase by the server measured, the other server, PostgreSQL, this client, the machine."""

    def __init__(self, postmaster: int | None):
        self.postmaster = postmaster

    def read(self, server: Served, other: Served) -> dict[str, float]:
        """CPU seconds so far of each, and the wall clock."""
        table = processes()
        busy, stolen = machine_busy()
        return {
            "server": tree_cpu(table, server.proc.pid),
            "idle_server": tree_cpu(table, other.proc.pid),
            "postgres": tree_cpu(table, self.postmaster),
            "client": sum(os.times()[:2]),
            "machine": busy,
            "steal": stolen,
            "wall": time.perf_counter(),
        }

    @staticmethod
    def cores(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
        """Cores used between two readings by each, "other" for the rest of the machine, and the seconds."""
        wall = end["wall"] - start["wall"]
        out = {k: (end[k] - start[k]) / wall for k in start if k != "wall"}
        out["other"] = out["machine"] - out["server"] - out["idle_server"] - out["postgres"] - out["client"]
        out["seconds"] = wall
        return out


# ------------------------------------------------------------------------------------------- phases


@dataclass
class Phase:
    """What one phase measured."""

    target: str
    server: str
    kind: str  # "open" or "closed"
    clients: int
    latencies: list[float] = field(default_factory=list)  # seconds, of the answered requests
    errors: Counter = field(default_factory=Counter)
    late: list[float] = field(default_factory=list)  # open loop: seconds a send came after its schedule
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    first_share: float | None = None  # tiles: the share of requests that were the first for their tile

    @property
    def requests(self) -> int:
        """Requests made: answered and failed."""
        return len(self.latencies) + sum(self.errors.values())

    def pct(self, q: float) -> float:
        """The q-th percentile of the latencies in ms (errors excluded; they are counted apart)."""
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


def open_loop(port, target: Target, users: int, duration: float, seed: int, seen: set[str] | None = None) -> Phase:
    """users × one request a second for duration s; latency from each request's scheduled time.

    With `seen` (the paths this server was asked for before), also the share of requests that were
    the first for their path, in the order they were sent.
    """
    phase = Phase(target.name, "", "open", users)
    rng = np.random.default_rng(seed)
    offsets = rng.uniform(0, 1, users)
    per_user = int(duration)
    picks = rng.integers(0, len(target.paths), (users, per_user))
    results: list[list] = [[] for _ in range(users)]
    conns = [Connection(port, target.headers) for _ in range(users)]
    start = time.perf_counter() + 0.5  # every thread is waiting before the first send

    def user(u: int) -> None:
        for k in range(per_user):
            due = start + offsets[u] + k
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            sent = time.perf_counter()
            status, _ = conns[u].get(target.paths[picks[u, k]])
            results[u].append((due, sent, time.perf_counter(), status, picks[u, k]))

    threads = [threading.Thread(target=user, args=(u,), daemon=True) for u in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in conns:
        c.close()
    for row in results:
        for due, sent, done, status, _ in row:
            phase.late.append(max(sent - due, 0.0))
            if status == 200:
                phase.latencies.append(done - due)
            else:
                phase.errors[status] += 1
    if seen is not None:
        firsts = 0
        for *_, pick in sorted((r[1], r[4]) for row in results for r in row):
            path = target.paths[pick]
            firsts += path not in seen
            seen.add(path)
        phase.first_share = firsts / max(phase.requests, 1)
    return phase


def closed_loop(port, target: Target, clients: int, duration: float, seed: int) -> Phase:
    """clients sending back to back for duration s: the requests completed in it, their latency from send."""
    phase = Phase(target.name, "", "closed", clients)
    conns = [Connection(port, target.headers) for _ in range(clients)]
    results: list[list] = [[] for _ in range(clients)]
    ready = threading.Barrier(clients + 1)
    times = {}

    def client(i: int) -> None:
        rng = np.random.default_rng(seed + i)
        ready.wait()
        while (now := time.perf_counter()) < times["end"]:
            status, _ = conns[i].get(target.paths[int(rng.integers(len(target.paths)))])
            results[i].append((now, time.perf_counter(), status))

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    times["start"] = time.perf_counter()
    times["end"] = times["start"] + duration
    ready.wait()
    for t in threads:
        t.join()
    for c in conns:
        c.close()
    for row in results:
        for sent, done, status in row:
            if done > times["end"]:
                continue  # finished after the phase: not in its throughput
            if status == 200:
                phase.latencies.append(done - sent)
            else:
                phase.errors[status] += 1
    return phase


def measured(meter: CpuMeter, server: Served, other: Served, run, *args) -> Phase:
    """Run a phase, run(server's port, *args), with the CPU meter around it."""
    before = meter.read(server, other)
    phase = run(server.port, *args)
    phase.cpu = CpuMeter.cores(before, meter.read(server, other))
    phase.seconds = phase.cpu["seconds"]
    phase.server = server.name
    return phase


RELOADS: list[str] = []  # phases run again because the development server reloaded in them


def warm_up(server: Served, target: Target, paths: list[str]) -> None:
    """Ask for each path once (pools, templates, first-request set-up), waiting out a reload of the dev server."""
    for _ in range(3):
        conn = Connection(server.port, target.headers)
        answers = [conn.get(path)[0] for path in paths]
        conn.close()
        if all(a == 200 for a in answers):
            return
        time.sleep(2)
        server.wait_ready()
    raise SystemExit(f"{server.name}: {target.name} answers {Counter(answers).most_common()}")


def phase_run(meter, server: Served, other: Served, target: Target, warm_paths, run, *args) -> Phase:
    """`measured`, run again (up to twice) when the development server's reloader restarted it meanwhile.

    The checkout is shared with other engineers: an edit of theirs makes `gridmgr serve --dev` restart, and
    requests in flight then fail for reasons that have nothing to do with serving.
    """
    for attempt in range(3):
        offset = server.log_size()
        fresh = [set(a) if isinstance(a, set) else a for a in args]  # a rerun starts from the same `seen`
        phase = measured(meter, server, other, run, target, *fresh)
        if not server.reloaded_since(offset):
            return phase
        kept = " (kept: it reloaded in all three)" if attempt == 2 else ""
        RELOADS.append(f"{target.name} · {server.name} · {phase.kind} {phase.clients}{kept}")
        print(f"    ({server.name} reloaded during the phase: again)", flush=True)
        time.sleep(2)
        server.wait_ready()
        warm_up(server, target, warm_paths)
    return phase


# ------------------------------------------------------------------------------------------ report


def ms(x: float) -> str:
    """Milliseconds as the tables write them."""
    return f"{x:,.1f}" if x < 100 else f"{x:,.0f}"


def errors_text(p: Phase) -> str:
    """The error count, with its kinds."""
    return f"{sum(p.errors.values()):,}" + (
        " (" + ", ".join(f"{k}: {v}" for k, v in p.errors.most_common()) + ")" if p.errors else ""
    )


def cost_table(c: dict) -> list[str]:
    """The case list's per-request cost, before and after, and where the time goes."""
    b, a = c["endpoint"]["before"], c["endpoint"]["after"]
    before_rest = b - c["before_statements"] - c["before_dicts"] - c["before_json"]
    after_rest = a - c["after_list"]
    assembly = c["after_assembly"]
    return [
        "| GET /api/v1/cases, default page (dispatcher: all cases) | before | after |",
        "|---|---:|---:|",
        f"| body | {c['bytes']['before']:,} B | {c['bytes']['after']:,} B |",
        f"| **whole request, in process (median of {c['rounds']})** | **{ms(b)} ms** | **{ms(a)} ms** |",
        f"| statements (as the view runs them, on a pooled connection) | {ms(c['before_statements'])} ms "
        f"(count {ms(c['before_count'])}) | {ms(c['after_statement'])} ms (one: count and page) |",
        f"| … of which PostgreSQL (EXPLAIN ANALYZE, after) | | planning {ms(c['after_planning'])}, count "
        f"{ms(c['after_count'])}, in all {ms(c['after_execution'])} ms |",
        f"| rows → dicts (`case_dict`, 超时倍数 from the calendar) | {ms(c['before_dicts'])} ms | — |",
        f"| dicts → JSON text (`to_json`) / escaping and the envelope | {ms(c['before_json'])} ms | {ms(assembly)} ms |",
        f"| the rest: Flask, the token login, pool checkouts with their pings | {ms(before_rest)} ms | {ms(after_rest)} ms |",
    ]


def open_table(phases: list[Phase]) -> list[str]:
    """The open-loop rows: latency percentiles, errors, the target, CPU a request."""
    rows = [
        "| target | server | requests | p50 ms | p95 ms | p99 ms | max ms | errors | p95 < 100 ms | "
        "CPU ms a request: server / PostgreSQL | others' CPU · stolen (cores) |",
        "|---|---|---:|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for p in phases:
        per = {k: p.cpu[k] * p.seconds * 1000 / max(p.requests, 1) for k in ("server", "postgres")}
        ok = "**met**" if p.pct(95) < TARGET_P95_MS and not p.errors else "missed"
        rows.append(
            f"| {p.target} | {p.server} | {p.requests:,} | {ms(p.pct(50))} | {ms(p.pct(95))} | {ms(p.pct(99))} | "
            f"{ms(p.pct(100))} | {errors_text(p)} | {ok} | {per['server']:.1f} / {per['postgres']:.1f} | "
            f"{p.cpu['other'] + p.cpu['idle_server']:.2f} · {p.cpu['steal']:.2f} |"
        )
    return rows


def closed_table(phases: list[Phase], cores: int) -> list[str]:
    """The closed-loop rows: throughput, latency, errors, who used the CPU."""
    rows = [
        f"| target | server | clients | req/s | p50 ms | p95 ms | errors | CPU cores (of {cores}): server · "
        "PostgreSQL · client · other · machine busy · stolen |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for p in phases:
        c = p.cpu
        rows.append(
            f"| {p.target} | {p.server} | {p.clients} | {len(p.latencies) / p.seconds:,.0f} | {ms(p.pct(50))} | "
            f"{ms(p.pct(95))} | {errors_text(p)} | {c['server']:.2f} · {c['postgres']:.2f} · {c['client']:.2f} · "
            f"{c['other'] + c['idle_server']:.2f} · {c['machine']:.2f} · {c['steal']:.2f} |"
        )
    return rows


def limit_notes(closed: list[Phase], cores: int) -> list[str]:
    """For each target and server: the best throughput, who was busy then, and so where the limit is."""
    notes = []
    for target in dict.fromkeys(p.target for p in closed):
        for server in dict.fromkeys(p.server for p in closed):
            runs = [p for p in closed if p.target == target and p.server == server]
            if not runs:
                continue
            best = max(runs, key=lambda p: len(p.latencies) / p.seconds)
            c = best.cpu
            rate = len(best.latencies) / best.seconds
            per_req = {k: c[k] / rate * 1000 for k in ("server", "postgres", "client")}
            top = max(p.cpu["server"] for p in runs)
            others = c["other"] + c["idle_server"]
            if c["machine"] + c["steal"] >= 0.9 * cores:
                shares = {"PostgreSQL": c["postgres"], "the server's processes": c["server"], "other work": others}
                bigger = max(shares, key=lambda k: shares[k])
                why = f"the machine's {cores} cores were full, {bigger} the largest share" + (
                    " (this row says little about the server)" if bigger == "other work" else ""
                )
            else:
                why = (
                    f"not the machine's CPU: the server's processes never used more than {top:.2f} cores in any "
                    "row" + (", one process in which Python runs one thread at a time" if top < 1.1 else "")
                )
            clients = f"{best.clients} client" + ("s" if best.clients != 1 else "")
            notes.append(
                f"- {target}, {server}: at most **{rate:,.0f} requests/s** ({clients}). Limit: {why}. The machine "
                f"was {c['machine'] / cores:.0%} busy: the server's processes {c['server']:.2f} cores, PostgreSQL "
                f"{c['postgres']:.2f}, this client {c['client']:.2f}, others {others:.2f}, "
                f"stolen by the hypervisor {c['steal']:.2f}. A request cost {per_req['server']:.1f} ms of the "
                f"server's CPU, {per_req['postgres']:.1f} ms of PostgreSQL's and {per_req['client']:.1f} ms of the "
                "client's."
            )
    return notes


def record(section: str, path: Path) -> None:
    """Replace the Serving section of BENCHMARKS.md (or add it at the end), leaving every other section as it is."""
    old = path.read_text(encoding="utf-8")
    start = old.find("\n" + SECTION)
    if start < 0:
        new = old.rstrip("\n") + "\n\n" + section
    else:
        end = old.find("\n## ", start + 1)
        new = old[: start + 1] + section + (old[end:] if end >= 0 else "")
    path.write_text(new, encoding="utf-8")


# ------------------------------------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=50, help="open loop: simulated users, one request a second each")
    ap.add_argument("--duration", type=float, default=30, help="open loop: seconds")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16, 64], help="closed loop: concurrent clients")
    ap.add_argument("--closed", type=float, default=10, help="closed loop: seconds for each number of clients")
    ap.add_argument("--rounds", type=int, default=100, help="in-process case-list requests, each way")
    ap.add_argument("--per-zoom", type=int, default=40, help="distinct tiles a zoom level (z12–17), each layer")
    ap.add_argument("--only", nargs="+", choices=["tiles", "cases", "map"], help="these targets only")
    ap.add_argument("--quick", action="store_true", help="10 s open, 4 s closed (1, 16 clients), 30 rounds")
    ap.add_argument("--no-record", action="store_true", help="leave BENCHMARKS.md alone")
    ap.add_argument("--cost-only", action="store_true", help="only part 1, the case list in this process")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.closed, args.clients, args.rounds = 10, 4, [1, 16], 30
    out_dir = var_dir() / "bench" / "serve"
    out_dir.mkdir(parents=True, exist_ok=True)
    eng = common.bench_engine("demo")
    url = eng.url.render_as_string(hide_password=False)
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # as after autovacuum has come by: a count over cases then reads the index alone
        conn.execute(text("VACUUM ANALYZE"))
    with eng.connect() as conn:
        where = machine(conn)
        n_cases = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
        backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    postmaster = processes().get(backend, (None, 0))[0]  # None: PostgreSQL runs elsewhere, its CPU unseen
    token = prepare(eng)
    load_start = load_note()
    started = time.strftime("%Y-%m-%d %H:%M")
    print(f"{where}; {n_cases:,} cases; {load_start}", flush=True)

    print("1. the case list in this process (before / after issue 15)", flush=True)
    cost = case_list_cost(url, token, args.rounds)
    for line in cost_table(cost):
        print("  " + line)
    if args.cost_only:
        return

    print("2. the servers", flush=True)
    eng.dispose()
    servers = {
        "gunicorn": Served("gunicorn", False, url, out_dir / "gunicorn.log"),
        "dev server": Served("dev server", True, url, out_dir / "dev.log"),
    }
    workers = os.environ.get("GRIDMGR_WORKERS", "2"), os.environ.get("GRIDMGR_THREADS", "4")
    meter = CpuMeter(postmaster)
    open_phases: list[Phase] = []
    closed_phases: list[Phase] = []
    first_shares: dict[str, float] = {}
    try:
        for s in servers.values():
            s.wait_ready()
        tiles = tile_paths(eng, args.per_zoom)
        cookies = {
            name: login_cookie(s.port, MAP_USER, demo_accounts.password_for(MAP_USER)) for name, s in servers.items()
        }
        names = [n for n in ("tiles", "cases", "map") if not args.only or n in args.only]
        for ti, tname in enumerate(names):
            order = list(servers) if ti % 2 == 0 else list(servers)[::-1]  # who goes first takes turns
            for sname in order:
                server, other = servers[sname], next(v for k, v in servers.items() if k != sname)
                target = {
                    "tiles": Target("tiles", tiles, {"Cookie": cookies[sname]}),
                    "cases": Target("case list", ["/api/v1/cases"], {"Authorization": f"Bearer {token}"}),
                    "map": Target("map page", ["/map"], {"Cookie": cookies[sname]}),
                }[tname]
                # warm-up: pools, templates, the first request's set-up; a twentieth of the tiles
                warm_paths = target.paths[:: max(len(target.paths) // 20, 1)] if tname == "tiles" else target.paths * 20
                warm_up(server, target, warm_paths)
                seen = set(warm_paths) if tname == "tiles" else None
                print(
                    f"  {target.name} · {sname}: open loop, {args.users} users × 1/s, {args.duration:.0f} s", flush=True
                )
                p = phase_run(meter, server, other, target, warm_paths, open_loop, args.users, args.duration, 7, seen)
                if p.first_share is not None:
                    first_shares[sname] = p.first_share
                open_phases.append(p)
                print("    " + open_table([p])[-1], flush=True)
                for n in args.clients:
                    p = phase_run(meter, server, other, target, warm_paths, closed_loop, n, args.closed, 11)
                    closed_phases.append(p)
                    print("    " + closed_table([p], os.cpu_count() or 1)[-1], flush=True)
    finally:
        for s in servers.values():
            s.stop()
    load_end = load_note()
    cores = os.cpu_count() or 1

    lines = [
        f"{SECTION} (`bench/serve.py`, issue 15)",
        "",
        "    .venv/bin/python bench/serve.py            # --users 50 --duration 30 --clients 1 4 16 64 --closed 10",
        "    .venv/bin/python bench/serve.py --quick    # 10 s open loop, 4 s closed (1 and 16 clients)",
        "",
        f"Run {started}, {where}. Database `{common.BENCH_DB}` (the full demo: {n_cases:,} cases, built by "
        f"`bench_engine`). gunicorn with {workers[0]} workers × {workers[1]} threads (GRIDMGR_WORKERS, "
        f"GRIDMGR_THREADS) and `gridmgr serve --dev` both running on it, started by the benchmark; the clients "
        f"(plain threads, one keep-alive connection each, `http.client`) on the same machine. At the start "
        f"{load_start}; at the end {load_end}.",
        "",
        "### What one case-list request costs (in process, no HTTP)",
        "",
        "The request handed to the app's WSGI callable, the view as it is now and as it was before (every field, "
        "dicts in Python, the count over every join; rebuilt in the benchmark and swapped in for the same route), "
        "taking turns; then each part alone.",
        "",
        *cost_table(cost),
        "",
        f"Both answer the same {cost['items']} cases, before with {cost['fields']['before']} fields each, now "
        f"with the list's {cost['fields']['after']}. A trivial statement (`SELECT 1`) on the same connection takes "
        f"{ms(cost['trivial'])} ms. So 50 requests a second would take "
        f"{cost['endpoint']['before'] * 50 / 1000:.2f} cores before and {cost['endpoint']['after'] * 50 / 1000:.2f} "
        "now (the in-process time, one core busy throughout; the servers' figures below are what they used).",
        "",
        f"### (a) {args.users} users, one request a second each, {args.duration:.0f} s (open loop)",
        "",
        "Latency from each request's scheduled send time (see the docstring: queueing is not hidden)."
        + (
            f" Tiles: {len(tiles)} URLs (cells and cases at z12–17); "
            + ", ".join(f"{share:.0%} of the requests to {name}" for name, share in first_shares.items())
            + " were the first for their tile on that server (a miss in the tile cache of whichever worker got "
            "it); the others may have come from a worker's cache, as on a map many users look at."
            if first_shares
            else ""
        ),
        "",
        *open_table(open_phases),
        "",
        "Target (p95 under 100 ms, no error): met by "
        + (
            ", ".join(f"{p.target} · {p.server}" for p in open_phases if p.pct(95) < TARGET_P95_MS and not p.errors)
            or "none"
        )
        + "; missed by "
        + (
            ", ".join(
                f"{p.target} · {p.server}" for p in open_phases if not (p.pct(95) < TARGET_P95_MS and not p.errors)
            )
            or "none"
        )
        + ". The load itself took, in CPU of the server and of PostgreSQL: "
        + ", ".join(
            f"{p.target} · {p.server} {(p.cpu['server'] + p.cpu['postgres']) * p.seconds / p.requests * p.clients:.2f} cores"
            for p in open_phases
        )
        + ".",
        "",
        "Late sends (the client's own lag, counted in the latencies above): p95 "
        + ", ".join(f"{p.target} · {p.server} {ms(float(np.percentile(p.late, 95)) * 1000)} ms" for p in open_phases)
        + ".",
        "",
        f"### (b) Closed loop: the most a server answers ({args.closed:.0f} s for each number of clients)",
        "",
        *closed_table(closed_phases, cores),
        "",
        *(
            [
                "Phases run again because the development server reloaded in them (a file of the shared "
                f"checkout changed): {', '.join(RELOADS)}.",
                "",
            ]
            if RELOADS
            else []
        ),
        "Where the limit is (the best row of each):",
        "",
        *limit_notes(closed_phases, cores),
        "",
        "Not measured here, profiled while writing this benchmark (cProfile, 30 requests of `/map` through the "
        "test client): about 40 % of the map page's time is folium and branca compiling their elements' Jinja "
        "templates from strings (`Environment.from_string`, 22 a page) on every request.",
        "",
    ]
    section = "\n".join(lines)
    print("\n" + section)
    (out_dir / "SERVING.md").write_text(section, encoding="utf-8")
    if not (args.quick or args.no_record):
        record(section, ROOT / "BENCHMARKS.md")
        print("BENCHMARKS.md: the Serving section written")
    summary = ", ".join(f"{p.target} · {p.server} p95 {ms(p.pct(95))} ms" for p in open_phases)
    print(f"serve: {args.users} users/s: {summary}")


if __name__ == "__main__":
    main()
