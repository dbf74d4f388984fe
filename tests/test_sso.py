"""Single sign-on against real servers: Debian's slapd for LDAP, an Authlib OpenID provider for OIDC.

A directory or provider identity names a roster person (people.code); only a person with an active
account logs in, and as that account. No mocks: slapd runs from tests/ldap_directory.py, the provider
from tests/oidc_provider.py, each on a free port of 127.0.0.1, and both are stopped after the module.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from joserfc.jwk import RSAKey
from ldap3 import SUBTREE, Connection, Server
from ldap_directory import PEOPLE, READER, READER_PASSWORD, Directory, Person, free_port
from oidc_provider import KID, Provider, User
from sqlalchemy import text
from werkzeug.security import generate_password_hash

from gridmgr.config import Config
from gridmgr.errors import ConfigError
from gridmgr.people import sso
from gridmgr.web import create_app
from gridmgr.web.views import sso as sso_views

ZHANG = Person("zhang", "zhang-directory-pw", "P1", "张三")  # has an account
LI = Person("li", "li-directory-pw", "P2", "李四")  # in the roster, no account
LOCAL_PASSWORD = "zhang-local-pw"
CALLBACK = "http://localhost/login/oidc/callback"  # the Flask test client's host
CLIENT_ID, CLIENT_SECRET = "gridmgr-test", "client-secret-for-tests"


def add_roster(c) -> int:
    """People P1 (with account `zhangsan`, a local password too) and P2 (none); returns zhangsan's id."""
    for code, name in (("P1", "张三"), ("P2", "李四")):
        c.execute(text("INSERT INTO people (code, name, role) VALUES (:c, :n, 'staff')"), {"c": code, "n": name})
    return c.execute(
        text("""
        INSERT INTO users (username, person_id, role, password_hash)
        SELECT 'zhangsan', id, 'supervisor', :h FROM people WHERE code = 'P1' RETURNING id
    """),
        {"h": generate_password_hash(LOCAL_PASSWORD)},
    ).scalar_one()


# --- LDAP ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    """slapd with ZHANG and LI under ou=people, for the module."""
    server = Directory(tmp_path_factory.mktemp("slapd"), [ZHANG, LI])
    server.start()
    yield server
    server.stop()


def dn_config(directory, **more) -> Config:
    """Direct bind: the name fills a DN template."""
    return Config.from_env(GRIDMGR_LDAP_URL=directory.url, GRIDMGR_LDAP_USER_DN=f"uid={{username}},{PEOPLE}", **more)


def search_config(directory, **more) -> Config:
    """Search-then-bind: the service account finds the one entry with this uid."""
    return Config.from_env(
        GRIDMGR_LDAP_URL=directory.url,
        GRIDMGR_LDAP_BASE_DN=PEOPLE,
        GRIDMGR_LDAP_BIND_DN=READER,
        GRIDMGR_LDAP_BIND_PASSWORD=READER_PASSWORD,
        **more,
    )


@pytest.mark.parametrize("mode", [dn_config, search_config], ids=["dn-template", "search-then-bind"])
def test_ldap_right_password_maps_to_the_roster_persons_account(conn, directory, mode):
    uid = add_roster(conn)
    config = mode(directory)
    assert sso.ldap_login(conn, config, "zhang", ZHANG.password) == uid
    verdict = sso.ldap_check(conn, config, "zhang", ZHANG.password)
    assert (verdict.user_id, verdict.reason) == (uid, None)


@pytest.mark.parametrize("mode", [dn_config, search_config], ids=["dn-template", "search-then-bind"])
def test_ldap_wrong_or_empty_password_is_refused(conn, directory, mode):
    add_roster(conn)
    config = mode(directory)
    for password in ("wrong-password", "", LOCAL_PASSWORD, LI.password):
        verdict = sso.ldap_check(conn, config, "zhang", password)
        assert verdict.user_id is None and verdict.reason == sso.WRONG, password
    assert sso.ldap_login(conn, config, "nobody", "whatever-pw") is None


@pytest.mark.parametrize("mode", [dn_config, search_config], ids=["dn-template", "search-then-bind"])
def test_ldap_person_without_an_account_is_refused_and_told_why(conn, directory, mode):
    add_roster(conn)
    verdict = sso.ldap_check(conn, mode(directory), "li", LI.password)
    assert verdict.user_id is None
    zh, en = verdict.reason
    assert "P2" in zh and "没有账号" in zh and "no account" in en


def test_ldap_injection_shaped_names_are_refused(conn, directory):
    add_roster(conn)
    # the shape is dangerous: unescaped, `zh*` finds exactly zhang's entry, and his password binds it
    with Connection(Server(directory.url), READER, READER_PASSWORD, auto_bind=True) as raw:
        raw.search(PEOPLE, "(uid=zh*)", SUBTREE)
        assert [e.entry_dn for e in raw.entries] == [f"uid=zhang,{PEOPLE}"]
    names = ("zh*", "*", "z*g", "zhang)(uid=*", "*)(|(uid=*", "zhang\x00", f"zhang,{PEOPLE}", "uid=zhang", "zhang+cn=x")
    for config in (search_config(directory), dn_config(directory)):
        for name in names:
            assert sso.ldap_check(conn, config, name, ZHANG.password).user_id is None, name


def test_ldap_directory_down_is_a_refusal_not_an_error(conn):
    add_roster(conn)
    config = Config.from_env(GRIDMGR_LDAP_URL=f"ldap://127.0.0.1:{free_port()}", GRIDMGR_LDAP_USER_DN="uid={username}")
    verdict = sso.ldap_check(conn, config, "zhang", ZHANG.password)
    assert verdict.user_id is None and verdict.reason == sso.DIRECTORY_DOWN


def test_password_login_is_ldap_first_and_local_only_for_listed_accounts(conn, directory):
    uid = add_roster(conn)
    no_ldap = Config.from_env()
    assert sso.password_login(conn, no_ldap, "zhangsan", LOCAL_PASSWORD) == (uid, "password")
    with_ldap = dn_config(directory)
    assert sso.password_login(conn, with_ldap, "zhang", ZHANG.password) == (uid, "ldap")
    assert sso.password_login(conn, with_ldap, "zhangsan", LOCAL_PASSWORD) is None  # local passwords are off
    assert sso.password_login(conn, with_ldap, "li", LI.password) is None
    # a break-glass account keeps its local password, and it is never tried against the directory
    break_glass = dn_config(directory, GRIDMGR_LDAP_LOCAL_USERS="admin, zhangsan")
    assert sso.password_login(conn, break_glass, "zhangsan", LOCAL_PASSWORD) == (uid, "password")
    assert sso.password_login(conn, break_glass, "zhangsan", ZHANG.password) is None


def test_ldap_account_disabled_is_refused(conn, directory):
    add_roster(conn)
    conn.execute(text("UPDATE users SET active = false WHERE username = 'zhangsan'"))
    verdict = sso.ldap_check(conn, dn_config(directory), "zhang", ZHANG.password)
    assert verdict.user_id is None and "停用" in verdict.reason[0]


def test_ldap_settings_are_checked():
    assert sso.ldap_settings(Config.from_env()) is None
    for bad in (
        {"GRIDMGR_LDAP_URL": "http://dir.example"},
        {"GRIDMGR_LDAP_URL": "ldaps://dir.example"},  # neither a DN template nor a search base
        {"GRIDMGR_LDAP_URL": "ldaps://dir.example", "GRIDMGR_LDAP_USER_DN": "uid=x,dc=example"},
    ):
        with pytest.raises(ConfigError):
            sso.ldap_settings(Config.from_env(**bad))


# --- OpenID Connect ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider_server():
    server = Provider(CLIENT_ID, CLIENT_SECRET, CALLBACK)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def provider(provider_server):
    """The module's provider, reset: signs with its published key, claims in the id_token, no user yet."""
    provider_server.signing_key = provider_server.key
    provider_server.person_in_id_token = True
    provider_server.user = User("nobody")
    provider_server.authorize_requests.clear()
    return provider_server


def oidc_app(url: str, issuer: str, **more):
    app = create_app(
        {
            "GRIDMGR_DATABASE_URL": url,
            "GRIDMGR_SECRET_KEY": "test-secret",
            "GRIDMGR_OIDC_ISSUER": issuer,
            "GRIDMGR_OIDC_CLIENT_ID": CLIENT_ID,
            "GRIDMGR_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            **more,
        }
    )
    if "sso" not in app.blueprints:  # until create_app registers it
        app.register_blueprint(sso_views.bp)
    return app


@pytest.fixture
def site(fresh_db, provider):
    """The app signing in through the provider, on a database with the roster's P1 (account) and P2 (none)."""
    url, eng = fresh_db
    with eng.begin() as c:
        uid = add_roster(c)
    return {"app": oidc_app(url, provider.issuer), "url": url, "uid": uid, "engine": eng}


def start_sign_in(client, provider, next_path: str = "/overview") -> str:
    """gridmgr → the provider's authorize endpoint (it approves at once) → the callback URL it sends back."""
    r = client.get(f"/login/oidc?next={next_path}")
    assert r.status_code == 302, r.get_data(as_text=True)
    assert r.location.startswith(f"{provider.issuer}/authorize?")
    answer = requests.get(r.location, allow_redirects=False, timeout=5)
    assert answer.status_code == 302, answer.text
    assert answer.headers["Location"].startswith(CALLBACK + "?")
    return answer.headers["Location"]


def follow(client, url: str):
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def me(client):
    return client.get("/api/v1/me")


def test_oidc_code_flow_logs_the_roster_persons_account_in(site, provider):
    provider.user = User("sub-zhang", {"employee_number": "P1", "name": "张三"})
    client = site["app"].test_client()
    assert me(client).status_code == 401
    r = follow(client, start_sign_in(client, provider))
    assert r.status_code == 302 and r.location == "/overview"  # `next`, a path of this app
    answer = me(client)
    assert answer.status_code == 200
    assert answer.json["username"] == "zhangsan" and answer.json["user_id"] == site["uid"]
    sent = provider.authorize_requests[-1]  # PKCE with S256, a state and a nonce, as the provider asked
    assert sent["code_challenge_method"] == "S256" and sent["state"] and sent["nonce"]
    assert sent["scope"].split() == ["openid", "profile"]


def test_oidc_person_claim_only_at_userinfo_is_fetched(site, provider):
    provider.user = User("sub-zhang", {"employee_number": "P1"})
    provider.person_in_id_token = False
    client = site["app"].test_client()
    assert follow(client, start_sign_in(client, provider)).status_code == 302
    assert me(client).json["username"] == "zhangsan"


def test_oidc_tampered_or_foreign_state_is_refused(site, provider):
    provider.user = User("sub-zhang", {"employee_number": "P1"})
    client = site["app"].test_client()
    callback = start_sign_in(client, provider)
    query = dict(parse_qsl(urlsplit(callback).query))
    tampered = {**query, "state": query["state"][:-1] + ("A" if query["state"][-1] != "A" else "B")}
    r = client.get("/login/oidc/callback?" + urlencode(tampered))
    assert r.status_code == 400 and "重新登录" in r.get_data(as_text=True)
    assert me(client).status_code == 401
    # the right answer in another browser (no such state in its session) is refused too
    stranger = site["app"].test_client()
    assert follow(stranger, callback).status_code == 400
    assert me(stranger).status_code == 401


def test_oidc_token_signed_by_another_key_is_refused(site, provider):
    provider.user = User("sub-zhang", {"employee_number": "P1"})
    provider.signing_key = RSAKey.generate_key(2048, parameters={"kid": KID})  # same kid, not the published key
    client = site["app"].test_client()
    r = follow(client, start_sign_in(client, provider))
    body = r.get_data(as_text=True)
    assert r.status_code == 401 and "未通过验证" in body and "could not be verified" in body
    assert me(client).status_code == 401


def test_oidc_person_without_an_account_gets_the_403_page(site, provider):
    for code, words in (("P2", ("没有账号", "has no account")), ("P404", ("名册中没有", "No person with code"))):
        provider.user = User(f"sub-{code}", {"employee_number": code})
        client = site["app"].test_client()
        r = follow(client, start_sign_in(client, provider))
        body = r.get_data(as_text=True)
        assert r.status_code == 403, body
        assert code in body and body.index(words[0]) < body.index(words[1])  # Chinese, then English
        assert "Traceback" not in body and me(client).status_code == 401
    provider.user = User("sub-none", {})  # no claim at all: refused the same way
    client = site["app"].test_client()
    assert follow(client, start_sign_in(client, provider)).status_code == 403


def test_oidc_unreachable_provider_and_unconfigured_app(fresh_db):
    url, _ = fresh_db
    client = oidc_app(url, f"http://127.0.0.1:{free_port()}").test_client()
    r = client.get("/login/oidc")
    assert r.status_code == 503 and "暂不可用" in r.get_data(as_text=True)
    plain = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_SECRET_KEY": "test-secret"})
    if "sso" not in plain.blueprints:
        plain.register_blueprint(sso_views.bp)
    assert plain.test_client().get("/login/oidc").status_code == 404
    with plain.test_request_context("/login"):
        context: dict = {}
        plain.update_template_context(context)
        assert context["oidc_enabled"] is False


def test_oidc_settings_are_checked():
    assert sso.oidc_settings(Config.from_env()) is None
    base = {"GRIDMGR_OIDC_CLIENT_ID": "a", "GRIDMGR_OIDC_CLIENT_SECRET": "b"}
    for bad in (
        {**base, "GRIDMGR_OIDC_ISSUER": "http://id.example.gov.cn"},  # secrets in clear over the network
        {"GRIDMGR_OIDC_ISSUER": "https://id.example.gov.cn"},
        {**base, "GRIDMGR_OIDC_ISSUER": "https://id.example.gov.cn", "GRIDMGR_OIDC_SCOPE": "profile"},
    ):
        with pytest.raises(ConfigError):
            sso.oidc_settings(Config.from_env(**bad))
    good = sso.oidc_settings(Config.from_env(**base, GRIDMGR_OIDC_ISSUER="https://id.example.gov.cn/realms/gov/"))
    assert good.metadata_url == "https://id.example.gov.cn/realms/gov/.well-known/openid-configuration"
    assert good.person_claim == "employee_number"


def test_bad_sso_settings_stop_the_start():
    for bad in ({"GRIDMGR_LDAP_URL": "http://dir.example"}, {"GRIDMGR_OIDC_ISSUER": "https://id.example.gov.cn"}):
        with pytest.raises(ConfigError):
            app = create_app(
                {"GRIDMGR_DATABASE_URL": "postgresql+psycopg2://nobody@/none", "GRIDMGR_SECRET_KEY": "x", **bad}
            )
            if "sso" not in app.blueprints:  # until create_app registers it
                app.register_blueprint(sso_views.bp)
