"""Who is asking: session login for pages (Flask-Login), bearer tokens for API clients; CSRF on writes."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from functools import wraps
from types import MappingProxyType
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect
from itsdangerous import BadSignature

from gridmgr.cases.queries import resolve_now
from gridmgr.cases.workflow import Actor
from gridmgr.errors import Forbidden, InputError
from gridmgr.people import accounts, audit, credentials, logins, sso
from gridmgr.web.database import engine

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
csrf = CSRFProtect()


class WebUser(UserMixin):
    """A logged-in account, with the person and unit it acts for, and the session it came by."""

    def __init__(self, row, session_secret: str | None = None):
        self.id = row.id
        self.username = row.username
        self.role = row.role
        self.name = row.name
        self.person_id = row.person_id
        self.unit_id = row.unit_id
        self.password_expired = bool(row.password_expired)
        self.session_secret = session_secret

    def get_id(self) -> str | None:
        """What the cookie keeps: the session's secret (its credential ends, the cookie is worth nothing)."""
        return self.session_secret

    @property
    def actor(self) -> Actor:
        return Actor(self.id, self.name, self.role, self.person_id, self.unit_id)

    @property
    def who(self) -> audit.Who:
        """This account, acting from the request's address, for the audit."""
        return audit.Who(self.id, self.username, self.role, request.remote_addr)


def _max_days() -> int:
    return accounts.PasswordPolicy.from_config(current_app.config["GRIDMGR"]).max_days


@login_manager.user_loader
def load_user(secret: str) -> WebUser | None:
    # a request with a bearer token is judged by its token alone, never by a session cookie beside it
    if request.headers.get("Authorization", "").startswith("Bearer "):
        return None
    with engine().begin() as conn:  # begin: a stale session's last use is written
        row = accounts.session_account(conn, str(secret), _max_days())
    return WebUser(row, str(secret)) if row else None


@login_manager.request_loader
def load_from_token(req) -> WebUser | None:
    """`Authorization: Bearer TOKEN` logs an API client in for this request only (no cookie)."""
    header = req.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return None
    with engine().begin() as conn:
        uid = accounts.user_for_token(conn, header[7:].strip())
        row = accounts.active_account(conn, uid) if uid is not None else None
    if row is None:
        return None
    g.token_auth = True
    return WebUser(row)


def login_claim(app: Flask, headers, session_data) -> tuple[str, dict] | None:
    """The SQL test (and its parameters) that holds while a request's claimed login is valid.

    For a view that reaches the database anyway (tiles): it runs the test inside its own statement,
    as exact as the user loader (a session ended, an account locked or a token replaced is refused at
    once) but without the loader's query, the largest part of a small tile's overhead. The claim is
    taken as the loaders would: a bearer token alone when there is one, else the session secret
    Flask-Login keeps in the cookie. None when there is no such claim, or when only Flask-Login can
    judge it (strong session protection).
    """
    header = headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return accounts.ACTIVE_TOKEN_SQL, {"secret_hash": accounts.token_digest(header[7:].strip())}
    secret = session_data.get("_user_id")  # Flask-Login's key, holding WebUser.get_id()
    strong = app.config.get("SESSION_PROTECTION", login_manager.session_protection) == "strong"
    if isinstance(secret, str) and secret and not strong:
        return accounts.ACTIVE_SESSION_SQL, {"secret_hash": accounts.token_digest(secret)}
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
    # the statement still checks the session Flask-Login found
    if current_user.is_authenticated and current_user.session_secret:
        return accounts.ACTIVE_SESSION_SQL, {"secret_hash": accounts.token_digest(current_user.session_secret)}
    return None


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its cookie marked Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        # behind nginx, ProxyFix (GRIDMGR_PROXY_HOPS) makes the client's https visible here
        return bool(super().get_cookie_secure(app) or (has_request_context() and request.is_secure))


# what a user whose password expired may still open: the change form, logging out, the page's assets
_EXPIRED_MAY = ("auth.password", "auth.logout", "auth.login", "static")


def init_app(app: Flask) -> None:
    """Login manager and CSRF; token and API-key requests carry no cookie and skip CSRF."""
    app.session_interface = SessionInterface()
    login_manager.init_app(app)
    # a cross-site request carries no session cookie (a link from another site still opens pages)
    app.config.update(SESSION_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_HTTPONLY=True)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "请先登录 Please log in."
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    csrf.init_app(app)

    @app.before_request
    def expired_password_first():
        # tiles and assets are left alone: asking for current_user there would cost each tile the loader's query
        if request.endpoint in _EXPIRED_MAY or request.blueprint in ("assets", "tiles"):
            return None
        if not current_user.is_authenticated:
            return None
        if getattr(current_user, "password_expired", False) and not g.get("token_auth"):
            if request.method == "GET" and request.blueprint != "api":
                return redirect(url_for("auth.password"))
            raise Forbidden("密码已过期，请先修改。Your password has expired: change it first.")
        return None

    @app.before_request
    def csrf_unless_token():
        if request.method in ("GET", "HEAD", "OPTIONS") or request.routing_exception is not None:
            return  # a request no view takes is refused by its 404 or 405, which writes nothing
        if request.headers.get("Authorization", "").startswith("Bearer "):
            # a bearer request is authenticated by its token or refused: never by a session cookie
            if not current_user.is_authenticated or not g.get("token_auth"):
                abort(401, description="无效的令牌 invalid or missing API token")
            return
        if request.blueprint == "open311" or request.path.startswith("/open311/"):
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


def sign_in(user_id: int, *, via: str = "password") -> bool:
    """Open a session for an account that proved who it is; False if inactive.

    `via` (oidc, password …) goes into the audit's login entry; "form" is the login form's, whose try
    (password or ldap) the form recorded already.

    A new session credential each time (a cookie from before the login names nothing), lasting
    GRIDMGR_SESSION_HOURS at most and GRIDMGR_SESSION_IDLE_MINUTES without a request.
    """
    config = current_app.config["GRIDMGR"]
    with engine().begin() as conn:
        row = accounts.active_account(conn, user_id, _max_days())
        if row is None:
            return False
        secret, _ = credentials.issue(
            conn,
            "session",
            user_id=user_id,
            lifetime_minutes=60 * config.number("GRIDMGR_SESSION_HOURS", 1, 24 * 30),
            idle_minutes=config.number("GRIDMGR_SESSION_IDLE_MINUTES", 1, 24 * 60),
            address=request.remote_addr,
            user_agent=request.headers.get("User-Agent"),
        )
        if via != "form":  # the login form recorded its try (password or ldap) already
            logins.record(conn, row.username, request.remote_addr or "", True, _now(), user_id=user_id, via=via)
    login_user(WebUser(row, secret))
    return True


def _now():
    return resolve_now(current_app.config.get("GRIDMGR_NOW"))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form."""
    error, status, headers = None, 200, {}
    if request.method == "POST":
        name, address = request.form.get("username", ""), request.remote_addr or ""
        now = _now()
        with engine().begin() as conn:
            wait = logins.wait_seconds(conn, name, address, now)
            # the directory when GRIDMGR_LDAP_URL is set, else the account's own password
            config = current_app.config["GRIDMGR"]
            proved = None if wait else sso.password_login(conn, config, name, request.form.get("password", ""))
            found = proved.user_id if proved else None
            if wait:
                logins.refused(conn, name, address, wait, now)
            else:
                via = proved.via if proved else "password"
                logins.record(conn, name, address, found is not None, now, user_id=found, via=via)
        if found is not None and sign_in(found, via="form"):
            if current_user.password_expired:
                flash("密码已过期，请先修改。Your password has expired: choose a new one.")
                return redirect(url_for("auth.password"))
            return redirect(local_path(request.args.get("next", "")) or url_for("home.index"))
        if wait:
            error, status = f"尝试次数过多，请 {wait} 秒后再试。Too many attempts: try again in {wait} s.", 429
            headers["Retry-After"] = str(wait)
        else:
            error, status = "用户名或密码错误。Wrong username or password.", 401
    return render_template("login.html", error=error), status, headers


@bp.post("/logout")
def logout():
    """Log out: the session's credential ends, so a copy of the cookie ends with it (a POST with the CSRF token)."""
    if current_user.is_authenticated and current_user.session_secret:
        with engine().begin() as conn:
            credentials.revoke(conn, "logged out", secret=current_user.session_secret, kind="session")
            audit.write(conn, "logout", current_user.who, subject=current_user.username)
    logout_user()
    flash("已退出 Logged out.")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def password():
    """Change one's own password (by the policy); the other sessions of the account end, this one goes on anew."""
    if not current_user.is_authenticated or not current_user.session_secret:
        return login_manager.unauthorized()
    error, status = None, 200
    if request.method == "POST":
        new = request.form.get("new", "")
        with engine().begin() as conn:
            ok = accounts.check_login(conn, current_user.username, request.form.get("current", "")) is not None
            if not ok:
                error, status = "当前密码不正确。The current password is wrong.", 400
            elif new != request.form.get("repeat", ""):
                error, status = "两次输入的新密码不一致。The two new passwords differ.", 400
            else:
                try:
                    accounts.set_password(
                        conn,
                        current_user.username,
                        new,
                        rules=accounts.PasswordPolicy.from_config(current_app.config["GRIDMGR"]),
                        by=current_user.who,
                    )
                except InputError as exc:
                    error, status = exc.message, 400
        if error is None:
            sign_in(
                current_user.id, via="form"
            )  # the change ended every session, this one too: a new one for this browser
            flash("密码已修改。Password changed.")
            return redirect(url_for("home.index"))
    rules = accounts.PasswordPolicy.from_config(current_app.config["GRIDMGR"])
    return render_template("account_password.html", error=error, rules=rules), status
