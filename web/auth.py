"""Who is asking: session login for pages (Flask-Login), bearer tokens for API clients; CSRF on writes."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from functools import wraps
from types import MappingProxyType
from urllib.parse import urlsplit

from flask import Blueprint, Flask, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect
from itsdangerous import BadSignature

from gridmgr.cases.queries import resolve_now
from gridmgr.cases.workflow import Actor
from gridmgr.errors import Forbidden
from gridmgr.people import accounts, logins
from gridmgr.web.database import engine

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()


class WebUser(UserMixin):
    """A logged-in account, with the person and unit it acts for."""

    def __init__(self, row):
        self.id = row.id
        self.username = row.username
        self.role = row.role
        self.name = row.name
        self.person_id = row.person_id
        self.unit_id = row.unit_id
        self.epoch = row.session_epoch

    def get_id(self) -> str:
        """What the session keeps: the account and its session epoch (a password change ends the session)."""
        return accounts.session_id(self.id, self.epoch)

    @property
    def actor(self) -> Actor:
        return Actor(self.id, self.name, self.role, self.person_id, self.unit_id)


def _load(user_id: int, epoch: int | None = None) -> WebUser | None:
    """The active account by id; with an epoch, only while its session epoch is still that one."""
    with engine().connect() as conn:
        row = accounts.active_account(conn, user_id, epoch)
    return WebUser(row) if row else None


@login_manager.user_loader
def load_user(user_id: str) -> WebUser | None:
    # a request with a bearer token is judged by its token alone, never by a session cookie beside it
    if request.headers.get("Authorization", "").startswith("Bearer "):
        return None
    claim = accounts.parse_session_id(user_id)  # a session from before epochs: logged out
    return _load(*claim) if claim else None


@login_manager.request_loader
def load_from_token(req) -> WebUser | None:
    """`Authorization: Bearer TOKEN` logs an API client in for this request only (no cookie)."""
    header = req.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    with engine().connect() as conn:
        uid = accounts.user_for_token(conn, header[7:].strip())
    if uid is None:
        return None
    g.token_auth = True
    return _load(uid)


def login_claim(app: Flask, headers, session_data) -> tuple[str, dict] | None:
    """The SQL test (and its parameters) that holds while a request's claimed login is valid.

    For a view that reaches the database anyway (tiles): it runs the test inside its own statement,
    as exact as the user loader (an account deactivated or a token replaced is refused at once) but
    without the loader's query, the largest part of a small tile's overhead. The claim is taken as the
    loaders would: a bearer token alone when there is one, else the id Flask-Login keeps in the session.
    None when there is no such claim, or when only Flask-Login can judge it (strong session protection).
    """
    header = headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return accounts.ACTIVE_TOKEN_SQL, {"token_hash": accounts.token_digest(header[7:].strip())}
    # Flask-Login's key, holding WebUser.get_id(); anything else is left to Flask-Login to refuse
    claim = accounts.parse_session_id(session_data.get("_user_id"))
    strong = app.config.get("SESSION_PROTECTION", login_manager.session_protection) == "strong"
    if claim is not None and not strong:
        return accounts.ACTIVE_ID_SQL, {"account_id": claim[0], "epoch": claim[1]}
    return None


class SessionCookies:
    """Session cookies' data, each cookie verified once: a map sends the same cookie with dozens of tiles.

    A cookie is verified as Flask's session interface verifies it (its serializer, the permanent
    session lifetime as the oldest signature taken) and its data kept, read-only, while that signature
    would still be taken; so the answer is always the interface's own, without its HMAC and JSON each time.
    """

    SIZE = 4096  # cookies kept (logged-in browsers at once), least recently used out first

    def __init__(self, app: Flask):
        self.app = app
        self._seen: OrderedDict[str, tuple[Mapping, float]] = OrderedDict()
        self._lock = threading.Lock()

    def data(self, cookies: Mapping[str, str]) -> Mapping | None:
        """The session in these cookies ({} for none or a bad one); None when the app keeps sessions otherwise."""
        iface = self.app.session_interface
        if not hasattr(iface, "get_signing_serializer"):
            return None
        value = cookies.get(iface.get_cookie_name(self.app))
        if not value:
            return {}
        max_age = self.app.permanent_session_lifetime.total_seconds()
        with self._lock:
            hit = self._seen.get(value)
            if hit is not None:
                self._seen.move_to_end(value)
        if hit is not None and time.time() - hit[1] <= max_age:
            return hit[0]
        try:
            data, signed = iface.get_signing_serializer(self.app).loads(
                value, max_age=int(max_age), return_timestamp=True
            )
        except BadSignature:
            return {}
        data = MappingProxyType(dict(data))
        with self._lock:
            self._seen[value] = (data, signed.timestamp())
            while len(self._seen) > self.SIZE:
                self._seen.popitem(last=False)
        return data


def login_check() -> tuple[str, dict] | None:
    """`login_claim` for this request, else the account Flask-Login finds (a remember cookie, say); None for nobody."""
    claim = login_claim(current_app, request.headers, session)
    if claim is not None:
        return claim
    # the statement still checks the account Flask-Login found
    if current_user.is_authenticated:
        return accounts.ACTIVE_ID_SQL, {"account_id": current_user.id, "epoch": current_user.epoch}
    return None


def init_app(app: Flask) -> None:
    """Login manager and CSRF; token and API-key requests carry no cookie and skip CSRF."""
    login_manager.init_app(app)
    # a cross-site request carries no session cookie (a link from another site still opens pages)
    app.config.update(SESSION_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_HTTPONLY=True)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "请先登录 Please log in."
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)

    @app.before_request
    def csrf_unless_token():
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return
        if request.headers.get("Authorization", "").startswith("Bearer "):
            # a bearer request is authenticated by its token or refused: never by a session cookie
            if not current_user.is_authenticated or not g.get("token_auth"):
                abort(401, description="无效的令牌 invalid or missing API token")
            return
        if request.blueprint == "open311":
            return  # Open311 posts authenticate with an api_key parameter and carry no cookie
        csrf.protect()


def current_actor() -> Actor:
    """The actor behind this request (401 when nobody is logged in)."""
    if not current_user.is_authenticated:
        abort(401)
    return current_user.actor


def roles_required(*roles: str):
    """A view only these roles may use (403 for the others, the login page for nobody)."""

    def wrap(view):
        @wraps(view)
        def inner(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                raise Forbidden(f"此页面仅限 {', '.join(roles)}。This page is for {', '.join(roles)}.")
            return view(*args, **kwargs)

        return inner

    return wrap


def login_required(view):
    """A view for any logged-in user."""

    @wraps(view)
    def inner(*args, **kwargs):
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return view(*args, **kwargs)

    return inner


def local_path(target: str) -> str | None:
    """`target` if it is a path of this app, else None: `next` is never an open redirect.

    Browsers drop tabs and line breaks inside a URL and read a backslash as a slash, so "/", a tab and
    "/evil.example" mean "//evil.example": any control character, space or backslash refuses the target.
    """
    if not target.startswith("/") or any(ch <= " " or ch in "\\\x7f" for ch in target):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and not target.startswith("//") else None


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form."""
    error, status, headers = None, 200, {}
    if request.method == "POST":
        name, address = request.form.get("username", ""), request.remote_addr or ""
        now = resolve_now(current_app.config.get("GRIDMGR_NOW"))
        with engine().begin() as conn:
            wait = logins.wait_seconds(conn, name, address, now)
            found = None if wait else accounts.check_login(conn, name, request.form.get("password", ""))
            if not wait:
                logins.record(conn, name, address, found is not None, now)
        user = _load(*found) if found else None  # None too when the password changed in between
        if user is not None:
            login_user(user)
            return redirect(local_path(request.args.get("next", "")) or url_for("home.index"))
        if wait:
            error, status = f"尝试次数过多，请 {wait} 秒后再试。Too many attempts: try again in {wait} s.", 429
            headers["Retry-After"] = str(wait)
        else:
            error, status = "用户名或密码错误。Wrong username or password.", 401
    return render_template("login.html", error=error), status, headers


@bp.post("/logout")
def logout():
    """Log out (a POST with the CSRF token, so no page can log a user out by a link)."""
    logout_user()
    flash("已退出 Logged out.")
    return redirect(url_for("auth.login"))
