"""A real OpenID provider for the tests: Authlib's authorization server on a free port, in a thread.

One confidential client, the authorization code flow with PKCE required (S256) and a nonce required,
id_tokens signed RS256 with a key published at /jwks. The authorize endpoint approves at once for
`provider.user` (no login form: the tests choose who signs in). For the refusal tests a provider can
sign with another key (`provider.signing_key`) or keep the person claim out of the id_token, to be
asked for at /userinfo.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Error
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from authlib.oidc.core.models import AuthorizationCodeMixin
from flask import Flask, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

KID = "test-key-1"


@dataclass
class User:
    """Who signs in at the provider: a subject and the claims it asserts about them."""

    sub: str
    claims: dict = field(default_factory=dict)


@dataclass
class Client(ClientMixin):
    """The relying party (gridmgr) as registered at the provider."""

    client_id: str
    client_secret: str
    redirect_uri: str

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uri

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or "").split() if s in ("openid", "profile"))

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri == self.redirect_uri

    def check_client_secret(self, client_secret):
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        return endpoint != "token" or method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    """An issued authorization code and what it was issued for."""

    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return self.auth_time


class Provider:
    """The provider's Flask app, its server thread and the state the tests steer."""

    def __init__(self, client_id: str, client_secret: str, redirect_uri: str):
        self.client = Client(client_id, client_secret, redirect_uri)
        self.key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
        self.signing_key = self.key  # a test puts another key here: tokens the published JWKS does not verify
        self.user = User("nobody")
        self.person_in_id_token = True  # False: the claims are only at /userinfo
        self.authorize_requests: list[dict] = []  # what the relying party sent, for the tests to inspect
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, User] = {}
        self.issuer = ""
        self.app = self._build()
        self._server = None
        self._thread: threading.Thread | None = None

    def _build(self) -> Flask:
        provider = self
        app = Flask("oidc_provider")

        class Grant(AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, req):
                data = req.payload.data
                provider.codes[code] = Code(
                    code,
                    req.client.get_client_id(),
                    req.payload.redirect_uri,
                    req.scope,
                    req.user,
                    data.get("nonce"),
                    data.get("code_challenge"),
                    data.get("code_challenge_method"),
                    int(time.time()),
                )

            def query_authorization_code(self, code, client):
                item = provider.codes.get(code)
                return item if item and item.client_id == client.get_client_id() else None

            def delete_authorization_code(self, authorization_code):
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class IdToken(OpenIDCode):
            def resolve_client_private_key(self, client):
                return provider.signing_key

            def get_client_claims(self, client):
                return {"iss": provider.issuer, "aud": [client.get_client_id()]}

            def get_encode_header(self, client):
                return {"alg": "RS256", "kid": KID}

            def exists_nonce(self, nonce, req):
                return any(c.nonce == nonce for c in provider.codes.values())

            def generate_user_info(self, user, scope):
                return UserInfo(sub=user.sub, **(user.claims if provider.person_in_id_token else {}))

        def save_token(token, req):
            provider.tokens[token["access_token"]] = req.user

        server = AuthorizationServer(app, query_client=self._query_client, save_token=save_token)
        server.register_grant(Grant, [CodeChallenge(required=True), IdToken(require_nonce=True)])

        @app.get("/.well-known/openid-configuration")
        def discovery():
            return jsonify(
                issuer=self.issuer,
                authorization_endpoint=f"{self.issuer}/authorize",
                token_endpoint=f"{self.issuer}/token",
                userinfo_endpoint=f"{self.issuer}/userinfo",
                jwks_uri=f"{self.issuer}/jwks",
                response_types_supported=["code"],
                subject_types_supported=["public"],
                id_token_signing_alg_values_supported=["RS256"],
                code_challenge_methods_supported=["S256"],
                token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
            )

        @app.get("/jwks")
        def jwks():
            return jsonify(keys=[self.key.as_dict(private=False)])

        @app.get("/authorize")
        def authorize():
            self.authorize_requests.append(request.args.to_dict())
            # PKCE for a confidential client too (RFC 9700 asks it of every client)
            if request.args.get("code_challenge_method") != "S256" or not request.args.get("code_challenge"):
                return jsonify(error="invalid_request", error_description="PKCE S256 required"), 400
            try:  # the consent step, approved at once for the chosen user
                grant = server.get_consent_grant(end_user=self.user)
            except OAuth2Error as error:
                return jsonify(error=error.error, error_description=error.description), 400
            return server.create_authorization_response(grant_user=self.user, grant=grant)

        @app.post("/token")
        def token():
            return server.create_token_response()

        @app.get("/userinfo")
        def userinfo():
            auth = request.headers.get("Authorization", "")
            user = self.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
            if user is None:
                return jsonify(error="invalid_token"), 401
            return jsonify(sub=user.sub, **user.claims)

        return app

    def _query_client(self, client_id):
        return self.client if client_id == self.client.client_id else None

    def start(self) -> str:
        """Serve on a free port of 127.0.0.1; returns the issuer URL."""
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="oidc-provider", daemon=True)
        self._thread.start()
        return self.issuer

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
