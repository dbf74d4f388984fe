"""Browser tests: Debian's headless Chromium driven by Playwright against the app on a local port.

Playwright's Python package drives /usr/bin/chromium (`make setup` installs it with fonts-noto-cjk); it
never downloads a browser of its own (no `playwright install`). Every page may talk to 127.0.0.1 only:
requests elsewhere are blocked, recorded and fail the test, as uncaught page errors do.

    from browser import add_account, login, screenshot, watch
    from browser import browser_fixture, live_app_fixture, live_server_fixture, page_fixture  # noqa: F401

    def test_form(page, fresh_db, tmp_path):
        add_account(fresh_db[1], "sup", "secret-pw", role="supervisor")
        login(page, "sup", "secret-pw")
        page.goto("/cases/new")             # relative to the live server
        shot = screenshot(page, tmp_path / "form.png")
        assert not shot.blank
        watch(page).assert_clean()         # no external request, console error or page error

The fixtures are named `browser`, `live_app`, `live_server` and `page`; a test module imports their
definitions (`*_fixture`, so that the test's parameters do not shadow an import) with those they depend
on: `page` needs all four; `live_app` needs conftest's `fresh_db`.

A test module that needs routes of its own (Flask takes none once serving) defines a hook, called on
the app before the server starts:

    def setup_live_app(app):
        app.add_url_rule("/t/map", "t_map", lambda: "...")
"""

from __future__ import annotations

import os
import shutil
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

CHROMIUM = os.environ.get("GRIDMGR_CHROMIUM", "/usr/bin/chromium")
# PITFALLS.md "Running PostgreSQL and Chromium here": root needs --no-sandbox; no network, no updates,
# no sync, no first-run dialogs. Playwright gives every launch a fresh temporary --user-data-dir.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--mute-audio",
)
SETUP_HINT = (
    "run `make setup` (it installs Debian's chromium and fonts-noto-cjk, and the playwright "
    "Python package into .venv; never `playwright install`)"
)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# URLs that are not network requests
INLINE_SCHEMES = frozenset({"data", "blob", "about"})
VIEWPORT = {"width": 1280, "height": 800}


# --- the app on a local port --------------------------------------------------------------------


class LiveServer:
    """A Flask app served by werkzeug on a free 127.0.0.1 port, in a background thread."""

    def __init__(self, app, host: str = "127.0.0.1"):
        self.app = app
        self.host = host
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The server's base URL, e.g. http://127.0.0.1:41234 (no trailing slash)."""
        return f"http://{self.host}:{self._server.server_port}"

    def start(self) -> LiveServer:
        from werkzeug.serving import make_server

        self._server = make_server(self.host, 0, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="live-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None
        engine = self.app.extensions.get("gridmgr.engine")
        if engine is not None:
            engine.dispose()  # before the test's database is dropped

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextmanager
def serve(app) -> Iterator[LiveServer]:
    """Serve `app` on a free local port for the duration of the block."""
    with LiveServer(app) as server:
        yield server


def make_app(database_url: str, **settings):
    """The real app (gridmgr.web.create_app) on a test database; no basemap unless a setting gives one."""
    from gridmgr.web import create_app

    config = {"GRIDMGR_DATABASE_URL": database_url, "GRIDMGR_SECRET_KEY": "browser-tests", "GRIDMGR_TILE_URL": None}
    config.update(settings)
    app = create_app(config)
    app.config["TESTING"] = True
    return app


@pytest.fixture(name="live_app")
def live_app_fixture(fresh_db, request):
    """The app on this test's fresh database, passed to the module's `setup_live_app(app)` if it has one."""
    url, _ = fresh_db
    app = make_app(url)
    if "app_now" in request.fixturenames:  # the module's fixed "now": pages and tiles never read the wall clock
        app.config["GRIDMGR_NOW"] = request.getfixturevalue("app_now")
    hook = getattr(request.module, "setup_live_app", None)
    if hook is not None:
        hook(app)
    return app


@pytest.fixture(name="live_server")
def live_server_fixture(live_app):
    """`live_app` served on http://127.0.0.1:<free port> while the test runs."""
    with serve(live_app) as server:
        yield server


def add_account(engine, username: str, password: str, role: str = "supervisor", name: str = "浏览器测试员") -> int:
    """A person of the roster with an account (committed, so the live server sees it); the user id."""
    from gridmgr.people import accounts

    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO people (code, name, role) VALUES (:c, :n, 'staff')"), {"c": f"BT-{username}", "n": name}
        )
        return accounts.add_user(conn, username, f"BT-{username}", role, password)


# --- the browser ----------------------------------------------------------------------------------


class _Chromium:
    """The one Playwright and Chromium of the process.

    Each test module that imports `browser_fixture` gets a session fixture of its own (pytest keys
    fixtures by the module that holds them), and Playwright's sync API cannot start twice in one
    thread: so the fixtures share this one, counted, and the last one out closes it.
    """

    playwright = None
    browser = None
    users = 0

    @classmethod
    def acquire(cls):
        if cls.browser is None:
            cls.playwright, cls.browser = _launch()
        cls.users += 1
        return cls.browser

    @classmethod
    def release(cls) -> None:
        cls.users -= 1
        if cls.users == 0 and cls.browser is not None:
            try:
                cls.browser.close()
            finally:
                cls.playwright.stop()
                cls.playwright = cls.browser = None


def _launch():
    """Start Playwright and Chromium, or fail the test saying how to install them (never skip)."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"the playwright Python package is missing ({exc}): {SETUP_HINT}", pytrace=False)
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        pytest.fail(f"no Chromium at {CHROMIUM}: {SETUP_HINT}", pytrace=False)
    pw = sync_playwright().start()
    try:
        return pw, pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS))
    except PlaywrightError as exc:
        pw.stop()
        pytest.fail(f"Chromium ({CHROMIUM}) did not start: {exc}\n{SETUP_HINT}", pytrace=False)


@pytest.fixture(scope="session", name="browser")
def browser_fixture():
    """Debian's Chromium, headless, launched once per test run through Playwright."""
    instance = _Chromium.acquire()
    try:
        yield instance
    finally:
        _Chromium.release()


@dataclass
class Watch:
    """What a page did: every request, the ones that left 127.0.0.1, errors in its console and scripts."""

    requests: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # local subresources that failed or answered >= 400
    allowed: list[str] = field(default_factory=list)

    def allow(self, text: str) -> None:
        """Expect errors containing `text` (a test that provokes one); external requests are never allowed."""
        self.allowed.append(text)

    def problems(self, console: bool = True) -> list[str]:
        """Every finding, one line each ([] when the page was clean)."""
        lines = [f"external request (blocked): {u}" for u in self.external]
        lines += [f"page error: {e}" for e in self.page_errors]
        if console:
            lines += [f"console error: {e}" for e in self.console_errors]
            lines += [f"failed request: {e}" for e in self.failed]
        return [line for line in lines if line.startswith("external") or not any(a in line for a in self.allowed)]

    def assert_clean(self, console: bool = True) -> None:
        """Fail unless the page made no external request and had no page (and console) errors."""
        found = self.problems(console)
        assert not found, "the page was not clean:\n  " + "\n  ".join(found)


_watches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # page -> Watch
_context_watches: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # context -> its pages' Watches


def is_local(url: str) -> bool:
    """True for a URL on this machine (127.0.0.1, localhost, ::1) or one that is no request (data:, blob:)."""
    parts = urlsplit(url)
    if parts.scheme in INLINE_SCHEMES:
        return True
    return parts.scheme in ("http", "https", "ws", "wss") and (parts.hostname or "") in LOCAL_HOSTS


def watch(page) -> Watch:
    """The Watch of a page (attached on first call; the `page` fixture attaches it before any request)."""
    found = _watches.get(page)
    if found is not None:
        return found
    w = _watches[page] = Watch()
    context = page.context
    if context not in _context_watches:
        _context_watches[context] = []

        def route(r):
            # the context's every request passes here (workers' too): external ones never reach the network
            if is_local(r.request.url):
                r.continue_()
            else:
                for each in _context_watches.get(context, ()):
                    each.external.append(r.request.url)
                r.abort("blockedbyclient")

        context.route("**/*", route)
    _context_watches[context].append(w)
    page.on("request", lambda req: w.requests.append(req.url))
    page.on("console", lambda msg: w.console_errors.append(_console_line(msg)) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: w.page_errors.append(str(exc)))
    page.on("requestfailed", lambda req: w.failed.append(f"{req.url} ({req.failure})") if is_local(req.url) else None)
    page.on(
        "response",
        lambda resp: (
            w.failed.append(f"{resp.url} (HTTP {resp.status})")
            if resp.status >= 400 and resp.request.resource_type != "document"
            else None
        ),
    )
    return w


def _console_line(msg) -> str:
    loc = msg.location or {}
    where = f" ({loc.get('url')}:{loc.get('lineNumber')})" if loc.get("url") else ""
    return msg.text + where


@pytest.fixture(name="page")
def page_fixture(browser, live_server):
    """A fresh browser context (no cookies) with one page on the live server; relative URLs go there.

    Fails the test at teardown when the page requested anything beyond 127.0.0.1 or threw an error.
    """
    context = browser.new_context(
        base_url=live_server.url,
        viewport=VIEWPORT,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        service_workers="block",
    )
    context.set_default_timeout(15_000)
    p = context.new_page()
    w = watch(p)
    try:
        yield p
    finally:
        context.close()
    found = w.problems(console=False)
    if found:
        pytest.fail("the page was not offline-clean:\n  " + "\n  ".join(found), pytrace=False)


# --- helpers ----------------------------------------------------------------------------------------


def login(page, username: str, password: str) -> None:
    """Log in through the real login form (CSRF token and all); fails with the page's message if refused."""
    page.goto("/login")
    form = page.locator("form:has(input[name=password])")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=password]").fill(password)
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    if urlsplit(page.url).path == "/login":
        error = page.locator(".flash.error")
        message = error.inner_text() if error.count() else page.title()
        raise AssertionError(f"login as {username!r} failed: {message}")
    # the login lands on the map: its tile requests finish before the test goes elsewhere (a request
    # cut short by leaving the page would count as a failed one)
    page.wait_for_load_state("networkidle")


@dataclass(frozen=True)
class Shot:
    """A screenshot on disk: its size, how many colours it has, and whether it is blank (one colour)."""

    path: Path
    width: int
    height: int
    colours: int  # distinct colours, capped at MAX_COLOURS

    @property
    def blank(self) -> bool:
        return self.colours <= 1


MAX_COLOURS = 1 << 16


def screenshot(page, path: str | Path, full_page: bool = False) -> Shot:
    """Save a PNG of the page at `path` and measure it."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=full_page)
    with Image.open(path) as img:
        rgb = img.convert("RGB")
        counted = rgb.getcolors(maxcolors=MAX_COLOURS)
        return Shot(path, rgb.width, rgb.height, len(counted) if counted is not None else MAX_COLOURS)
