"""Single sign-on: an LDAP bind or an OpenID Connect claim names a roster person, whose account logs in.

Both ways end in `account_for_person`: the directory or the identity provider says who someone is (a
roster code, `people.code`), the roster's account for that person says what they may do. Someone the
directory knows but the roster gives no account cannot log in. The OpenID Connect exchange itself needs
Flask (Authlib's client keeps its state in the session), so it lives in gridmgr.web.views.sso; this
module holds its settings and the mapping.
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import urlsplit

from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn
from sqlalchemy import text
from sqlalchemy.engine import Connection as DbConnection

from gridmgr.config import Config
from gridmgr.errors import ConfigError
from gridmgr.people import accounts

log = logging.getLogger(__name__)

PERSON_ATTR = "employeeNumber"  # inetOrgPerson's attribute for a staff number
PERSON_CLAIM = "employee_number"  # the same attribute as an OpenID provider backed by that directory names it
USER_FILTER = "(uid={username})"
OIDC_SCOPE = "openid profile"
TIMEOUT = 5  # seconds for an LDAP connect or answer: a login form should not hang on a dead directory
MAX_NAME = 256

WRONG = ("用户名或密码错误。", "Wrong username or password.")
DIRECTORY_DOWN = ("目录服务暂不可用，请稍后再试。", "The directory service is unavailable; please try again shortly.")


@dataclass(frozen=True)
class Verdict:
    """What a sign-on proved: the account it opens (None: refused) and, when refused, why (中文, English)."""

    user_id: int | None
    reason: tuple[str, str] | None = None


class Login(NamedTuple):
    """A login by the form: the account and how it was proved (`via` for `sign_in`: password or ldap)."""

    user_id: int
    via: str


def account_for_person(conn: DbConnection, code: object) -> Verdict:
    """The active account of the roster person with this code; refused, with the reason, otherwise."""
    if not isinstance(code, str | int) or isinstance(code, bool) or not str(code).strip():
        return Verdict(None, reason=("身份信息中没有人员编号。", "The identity carries no person code."))
    code = str(code).strip()
    row = conn.execute(
        text("""
        SELECT u.id, u.active FROM people p LEFT JOIN users u ON u.person_id = p.id
        WHERE p.code = :c
    """),
        {"c": code},
    ).first()
    if row is None:
        return Verdict(None, reason=(f"人员名册中没有编号 {code}。", f"No person with code {code} in the roster."))
    if row.id is None:
        return Verdict(
            None,
            reason=(
                f"人员 {code} 在本系统没有账号，请联系管理员开通。",
                f"Person {code} has no account here; ask an administrator to open one.",
            ),
        )
    if not row.active:
        return Verdict(None, reason=(f"人员 {code} 的账号已停用。", f"The account of person {code} is disabled."))
    return Verdict(row.id)


# --- LDAP ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LdapSettings:
    """How to reach the directory and find a person in it (the GRIDMGR_LDAP_* settings)."""

    url: str
    user_dn: str | None  # a DN template with {username}: bind directly
    base_dn: str | None  # else search here with user_filter, as bind_dn or anonymously, then bind
    user_filter: str
    bind_dn: str | None
    bind_password: str | None
    person_attr: str
    ca_file: str | None
    local_users: frozenset[str]


def ldap_settings(config: Config) -> LdapSettings | None:
    """The directory's settings; None when GRIDMGR_LDAP_URL is unset (no LDAP), ConfigError when incomplete."""
    url = (config.get("GRIDMGR_LDAP_URL") or "").strip()
    if not url:
        return None
    if urlsplit(url).scheme not in ("ldap", "ldaps"):
        raise ConfigError(f"GRIDMGR_LDAP_URL must be ldap:// or ldaps://, not {url!r}")
    user_dn = config.get("GRIDMGR_LDAP_USER_DN") or None
    base_dn = config.get("GRIDMGR_LDAP_BASE_DN") or None
    user_filter = config.get("GRIDMGR_LDAP_USER_FILTER") or USER_FILTER
    if user_dn is None and base_dn is None:
        raise ConfigError("GRIDMGR_LDAP_URL needs GRIDMGR_LDAP_USER_DN (a DN with {username}) or GRIDMGR_LDAP_BASE_DN")
    if "{username}" not in (user_dn or user_filter):
        raise ConfigError("GRIDMGR_LDAP_USER_DN or GRIDMGR_LDAP_USER_FILTER must contain {username}")
    local = config.get("GRIDMGR_LDAP_LOCAL_USERS") or ""
    return LdapSettings(
        url=url,
        user_dn=user_dn,
        base_dn=base_dn,
        user_filter=user_filter,
        bind_dn=config.get("GRIDMGR_LDAP_BIND_DN") or None,
        bind_password=config.get("GRIDMGR_LDAP_BIND_PASSWORD") or None,
        person_attr=config.get("GRIDMGR_LDAP_PERSON_ATTR") or PERSON_ATTR,
        ca_file=config.get("GRIDMGR_LDAP_CA_FILE") or None,
        local_users=frozenset(n.strip() for n in local.split(",") if n.strip()),
    )


def _server(settings: LdapSettings) -> Server:
    # ldaps:// checks the directory's certificate, against the bureau's CA when one is given
    tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ca_file)
    return Server(settings.url, get_info=NONE, connect_timeout=TIMEOUT, tls=tls)


def _user_dn(server: Server, settings: LdapSettings, username: str) -> str | None:
    """The DN a name signs in as: the template filled in, or the one entry the search finds."""
    if settings.user_dn:
        return settings.user_dn.replace("{username}", escape_rdn(username))
    assert settings.base_dn is not None
    query = settings.user_filter.replace("{username}", escape_filter_chars(username))
    # a service account that cannot bind raises LDAPBindError (auto_bind): the directory is unusable
    with Connection(
        server,
        user=settings.bind_dn,
        password=settings.bind_password,
        auto_bind=True,
        read_only=True,
        receive_timeout=TIMEOUT,
    ) as search:
        search.search(settings.base_dn, query, SUBTREE, attributes=[], size_limit=2)
        found = [e["dn"] for e in search.response or () if e.get("type") == "searchResEntry"]
    # never the first of several: a name must name one person
    return found[0] if len(found) == 1 else None


def _one_value(attributes: dict, name: str) -> str | None:
    """The single value of an attribute, by its name in any case; None when absent, empty or several."""
    for key, value in attributes.items():
        if key.lower() == name.lower():
            values = value if isinstance(value, list) else [value]
            values = [str(v).strip() for v in values if str(v).strip()]
            return values[0] if len(values) == 1 else None
    return None


def directory_person(settings: LdapSettings, username: str, password: str) -> str | None:
    """The roster code the directory gives this name once its password binds; None when it does not."""
    # an empty password is an unauthenticated bind, which many directories accept as anonymous
    if not username or not password or len(username) > MAX_NAME or any(ch < " " for ch in username):
        return None
    server = _server(settings)
    dn = _user_dn(server, settings, username)
    if dn is None:
        return None
    user = Connection(server, user=dn, password=password, read_only=True, receive_timeout=TIMEOUT)
    try:
        if not user.bind():
            return None
        # read as the person just bound: the entry is theirs, whatever a search account may see
        user.search(dn, "(objectClass=*)", BASE, attributes=[settings.person_attr])
        entries = [e for e in user.response or () if e.get("type") == "searchResEntry"]
        return _one_value(dict(entries[0]["attributes"]), settings.person_attr) if len(entries) == 1 else None
    finally:
        user.unbind()


def ldap_check(conn: DbConnection, config: Config, username: str, password: str) -> Verdict:
    """Bind to the directory as this name and password, then map the person it names to their account."""
    settings = ldap_settings(config)
    if settings is None:
        raise ConfigError("GRIDMGR_LDAP_URL is not set")
    try:
        code = directory_person(settings, username, password)
    except LDAPException as exc:
        log.warning("LDAP %s: %s: %s", settings.url, type(exc).__name__, exc)
        return Verdict(None, reason=DIRECTORY_DOWN)
    if code is None:
        return Verdict(None, reason=WRONG)
    return account_for_person(conn, code)


def ldap_login(conn: DbConnection, config: Config, username: str, password: str) -> int | None:
    """The account id this directory name and password open; None when refused (`ldap_check` says why)."""
    return ldap_check(conn, config, username, password).user_id


def password_login(conn: DbConnection, config: Config, username: str, password: str) -> Login | None:
    """A login form's name and password: the directory when LDAP is set, else the account's own password.

    With LDAP set, only the accounts named in GRIDMGR_LDAP_LOCAL_USERS (a break-glass administrator)
    keep their local password, and theirs is never sent to the directory.
    """
    settings = ldap_settings(config)
    if settings is None or username in settings.local_users:
        found = accounts.check_login(conn, username, password)
        return Login(found, "password") if found is not None else None
    verdict = ldap_check(conn, config, username, password)
    if verdict.user_id is None:
        if verdict.reason != WRONG:  # a bound directory person with no account is worth an administrator's look
            log.info("LDAP login of %r refused: %s", username, verdict.reason and verdict.reason[1])
        return None
    return Login(verdict.user_id, "ldap")


# --- OpenID Connect --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OidcSettings:
    """The government's OpenID provider and this app's client there (the GRIDMGR_OIDC_* settings)."""

    issuer: str
    client_id: str
    client_secret: str
    person_claim: str
    scope: str

    @property
    def metadata_url(self) -> str:
        """The provider's discovery document."""
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def oidc_settings(config: Config) -> OidcSettings | None:
    """The provider's settings; None when GRIDMGR_OIDC_ISSUER is unset (no OIDC), ConfigError when incomplete."""
    issuer = (config.get("GRIDMGR_OIDC_ISSUER") or "").strip()
    if not issuer:
        return None
    parts = urlsplit(issuer)
    # tokens and the client secret travel to the issuer: plain http only to this machine (a test provider)
    if parts.scheme != "https" and not (parts.scheme == "http" and _loopback(parts.hostname)):
        raise ConfigError(f"GRIDMGR_OIDC_ISSUER must be an https:// URL, not {issuer!r}")
    client_id, secret = config.get("GRIDMGR_OIDC_CLIENT_ID"), config.get("GRIDMGR_OIDC_CLIENT_SECRET")
    if not client_id or not secret:
        raise ConfigError("GRIDMGR_OIDC_ISSUER needs GRIDMGR_OIDC_CLIENT_ID and GRIDMGR_OIDC_CLIENT_SECRET")
    scope = config.get("GRIDMGR_OIDC_SCOPE") or OIDC_SCOPE
    if "openid" not in scope.split():
        raise ConfigError(f"GRIDMGR_OIDC_SCOPE must include openid, not {scope!r}")
    return OidcSettings(issuer, client_id, secret, config.get("GRIDMGR_OIDC_PERSON_CLAIM") or PERSON_CLAIM, scope)
