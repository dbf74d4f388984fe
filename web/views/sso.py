"""Sign-in through the government's OpenID Connect provider (统一身份认证), mapped to a roster person's account.

The exchange is the authorization code flow with PKCE; Authlib's Flask client keeps state, nonce and
code verifier in the session and checks the id_token's signature against the provider's JWKS, its
issuer, audience, expiry and nonce. The person claim then names a roster person (gridmgr.people.sso),
whose active account is signed in through `auth.sign_in`. The provider is asked for nothing until the
first sign-in, so the app starts while it is unreachable.
"""

from __future__ import annotations

import logging

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError
from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, abort, current_app, redirect, render_template, request, session, url_for
from joserfc.errors import JoseError

from gridmgr.people import sso
from gridmgr.web.auth import local_path, sign_in
from gridmgr.web.database import engine

bp = Blueprint("sso", __name__)
log = logging.getLogger(__name__)
EXTENSION = "gridmgr.oidc"
NEXT = "sso_next"  # where to go after the sign-in (a path of this app only)
HTTP_TIMEOUT = 10  # seconds for each request to the provider

UNAVAILABLE = (
    "统一身份认证服务暂不可用，请稍后再试。",
    "The government sign-in service is unavailable; please try again shortly.",
)
EXPIRED = (
    "登录请求已失效或与本浏览器不符，请重新登录。",
    "The sign-in request has expired or does not belong to this browser; please sign in again.",
)
UNVERIFIED = (
    "统一身份认证未通过验证，未能登录。",
    "The government sign-in could not be verified; you are not signed in.",
)
INACTIVE = ("此账号已停用。", "This account is disabled.")
CANCELLED = ("已取消统一身份认证登录。", "The government sign-in was cancelled.")


@bp.record_once
def _on_register(state) -> None:
    """Registering the blueprint is all it takes: the client is set up from the app's settings."""
    init_app(state.app)


def init_app(app: Flask) -> None:
    """Register the provider's client when GRIDMGR_OIDC_ISSUER is set; bad OIDC or LDAP settings stop the start."""
    sso.ldap_settings(app.config["GRIDMGR"])  # the login form reads them; a mistake shows now, not at a login
    settings = sso.oidc_settings(app.config["GRIDMGR"])
    app.extensions[EXTENSION] = None
    if settings is None:
        return
    oauth = OAuth(app)
    app.extensions[EXTENSION] = oauth.register(
        "gov",
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        server_metadata_url=settings.metadata_url,
        client_kwargs={"scope": settings.scope, "code_challenge_method": "S256", "default_timeout": HTTP_TIMEOUT},
    )


@bp.app_context_processor
def _template_flag() -> dict:
    # login.html shows the government sign-in button only when there is a provider
    return {"oidc_enabled": current_app.extensions.get(EXTENSION) is not None}


def _client():
    client = current_app.extensions.get(EXTENSION)
    if client is None:
        abort(404)
    return client


def _refused(status: int, reason: tuple[str, str]):
    """The refusal page: why, in Chinese and then in English (the visitor comes back from another site)."""
    return render_template("sso_refused.html", status=status, reason=reason), status


@bp.get("/login/oidc")
def login():
    """Send the browser to the provider's sign-in."""
    client = _client()
    settings = sso.oidc_settings(current_app.config["GRIDMGR"])
    assert settings is not None
    try:
        metadata = client.load_server_metadata()
    except (requests.RequestException, ValueError) as exc:
        log.warning("OIDC discovery at %s: %s", settings.metadata_url, exc)
        return _refused(503, UNAVAILABLE)
    # a discovery document speaking for another issuer would have us trust that issuer's tokens
    if str(metadata.get("issuer", "")).rstrip("/") != settings.issuer.rstrip("/"):
        log.error("OIDC discovery at %s names issuer %r", settings.metadata_url, metadata.get("issuer"))
        return _refused(503, UNAVAILABLE)
    session[NEXT] = local_path(request.args.get("next", "")) or ""
    return client.authorize_redirect(url_for("sso.callback", _external=True))


@bp.get("/login/oidc/callback")
def callback():
    """The provider's answer: a verified id_token naming a person with an account signs that account in."""
    client = _client()
    settings = sso.oidc_settings(current_app.config["GRIDMGR"])
    assert settings is not None
    if request.args.get("error") == "access_denied":  # the person said no at the provider
        return _refused(403, CANCELLED)
    try:
        token = client.authorize_access_token()
        claims = token.get("userinfo")
        # Authlib verifies an id_token only when one comes: without it nothing proves who this is
        if not claims:
            raise AuthlibBaseError(description="no id_token in the token response")
        person = claims.get(settings.person_claim)
        if person is None and client.load_server_metadata().get("userinfo_endpoint"):
            info = client.userinfo(token=token)
            if info.get("sub") == claims.get("sub"):  # OpenID Connect Core 5.3.2: else it is someone else's
                person = info.get(settings.person_claim)
    except MismatchingStateError:
        return _refused(400, EXPIRED)
    except requests.RequestException as exc:
        log.warning("OIDC token exchange: %s", exc)
        return _refused(503, UNAVAILABLE)
    except (AuthlibBaseError, JoseError) as exc:
        log.warning("OIDC sign-in refused: %s: %s", type(exc).__name__, exc)
        return _refused(401, UNVERIFIED)
    with engine().connect() as conn:
        verdict = sso.account_for_person(conn, person)
    if verdict.user_id is None:
        log.info("OIDC sign-in of %s refused: %s", claims.get("sub"), verdict.reason and verdict.reason[1])
        return _refused(403, verdict.reason or INACTIVE)
    target = session.pop(NEXT, "") or url_for("home.index")
    if not sign_in(verdict.user_id, via="oidc"):
        return _refused(403, INACTIVE)
    return redirect(target)
