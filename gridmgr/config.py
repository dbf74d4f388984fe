"""Settings: one declarative table (name, default, help), read from the environment."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field

from gridmgr.paths import var_dir


@dataclass(frozen=True)
class Setting:
    """One setting: its environment name, default and help text."""

    name: str
    default: str | None
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "GRIDMGR_DATABASE_URL",
        None,
        "PostgreSQL+PostGIS URL of an existing server; unset: the embedded cluster under var/pg/.",
    ),
    Setting(
        "GRIDMGR_OWNER_URL",
        None,
        "URL of the schema's owner role, used only by `gridmgr db migrate` and `gridmgr db roles`; unset: "
        "GRIDMGR_DATABASE_URL (an external server) or the embedded cluster's owner.",
    ),
    Setting("GRIDMGR_VAR", None, "Working folder for the embedded cluster and demo files (default ./var)."),
    Setting(
        "GRIDMGR_SECRET_KEY",
        None,
        "Secret key that signs session cookies; unset: one made once and kept in var/secret_key (mode 600), "
        "so every worker and every restart agree.",
    ),
    Setting("GRIDMGR_WORKERS", "2", "Server worker processes of `gridmgr serve` (gunicorn)."),
    Setting("GRIDMGR_THREADS", "4", "Threads per server worker (each serves one request at a time)."),
    Setting(
        "GRIDMGR_PROXY_HOPS",
        "0",
        "Reverse proxies in front of the app (1 behind nginx): their X-Forwarded-For/-Proto give the client's "
        "address and scheme. Leave 0 when clients reach the app directly, or they could forge their address.",
    ),
    Setting("GRIDMGR_SESSION_IDLE_MINUTES", "30", "A login session ends after this many minutes without a request."),
    Setting("GRIDMGR_SESSION_HOURS", "12", "A login session ends this many hours after the login, however busy."),
    Setting("GRIDMGR_PASSWORD_MIN_LENGTH", "8", "Password policy: the fewest characters of a new password."),
    Setting(
        "GRIDMGR_PASSWORD_CLASSES",
        "2",
        "Password policy: how many of lower case, upper case, digits and symbols a new password mixes (等保: 3).",
    ),
    Setting("GRIDMGR_PASSWORD_HISTORY", "5", "Password policy: a new password may not be one of the last this many."),
    Setting(
        "GRIDMGR_PASSWORD_MAX_DAYS",
        "90",
        "Password policy: days before a password must be changed at the next login (0: never).",
    ),
    Setting(
        "GRIDMGR_AUDIT_DAYS",
        "365",
        "Days the security audit is kept before the worker's retention job removes it (at least 180, 等保 2.0).",
    ),
    Setting(
        "GRIDMGR_OIDC_ISSUER",
        None,
        "Issuer URL (https://) of the government's OpenID Connect provider (统一身份认证); discovery at "
        "ISSUER/.well-known/openid-configuration. Unset: no OIDC sign-in.",
    ),
    Setting("GRIDMGR_OIDC_CLIENT_ID", None, "This app's client id at the OpenID provider."),
    Setting("GRIDMGR_OIDC_CLIENT_SECRET", None, "This app's client secret at the OpenID provider."),
    Setting(
        "GRIDMGR_OIDC_PERSON_CLAIM",
        "employee_number",
        "The id_token (else userinfo) claim holding the roster person's code (people.code); preferred_username "
        "when login names are the roster codes.",
    ),
    Setting(
        "GRIDMGR_OIDC_SCOPE",
        "openid profile",
        "Scopes asked of the provider (must include openid; add the one that releases the person claim).",
    ),
    Setting(
        "GRIDMGR_LDAP_URL",
        None,
        "ldaps:// (or ldap:// on one host) URL of the directory; set: the login form checks names and passwords "
        "against it. Unset: local passwords.",
    ),
    Setting(
        "GRIDMGR_LDAP_USER_DN",
        None,
        "DN to bind as, with {username} (escaped), e.g. uid={username},ou=people,dc=example,dc=gov,dc=cn; unset: "
        "search GRIDMGR_LDAP_BASE_DN.",
    ),
    Setting(
        "GRIDMGR_LDAP_BASE_DN",
        None,
        "Where to search for the person (search-then-bind) when GRIDMGR_LDAP_USER_DN is unset.",
    ),
    Setting(
        "GRIDMGR_LDAP_USER_FILTER",
        "(uid={username})",
        "Search filter that names one person, with {username} (escaped); Active Directory: (sAMAccountName={username}).",
    ),
    Setting("GRIDMGR_LDAP_BIND_DN", None, "Service account that searches for the person; unset: an anonymous search."),
    Setting("GRIDMGR_LDAP_BIND_PASSWORD", None, "The service account's password."),
    Setting(
        "GRIDMGR_LDAP_PERSON_ATTR",
        "employeeNumber",
        "Directory attribute holding the roster person's code (people.code).",
    ),
    Setting(
        "GRIDMGR_LDAP_CA_FILE",
        None,
        "CA certificates (PEM) for the directory's ldaps:// certificate; unset: the system's.",
    ),
    Setting(
        "GRIDMGR_LDAP_LOCAL_USERS",
        None,
        "Comma-separated usernames that keep their local password when LDAP is set (a break-glass administrator); "
        "their passwords never go to the directory.",
    ),
    Setting(
        "GRIDMGR_PUBLIC_SOURCES",
        "public,hotline_12319,hotline_12345",
        "The case sources anonymous Open311 lists: by default what the public reported (the web, Open311, the "
        "hotlines), not what supervisors, leaders, video or rules raised.",
    ),
    Setting(
        "GRIDMGR_METRICS_FROM",
        "127.0.0.1,::1",
        "Addresses and CIDRs, comma-separated, that may read /metrics (Prometheus); others get a 404. Empty: nobody.",
    ),
    Setting(
        "GRIDMGR_WEBHOOK_URL", None, "Where the outbox's webhook channel POSTs a message whose payload names no url."
    ),
    Setting(
        "GRIDMGR_EXTENT",
        None,
        "City extent lon_min,lat_min,lon_max,lat_max for coordinate checks; default: the loaded "
        "districts' bounds plus 5 km, or mainland China before any district is loaded.",
    ),
    Setting("GRIDMGR_TILE_URL", None, "Basemap tile URL template for the maps; unset: no basemap."),
    Setting(
        "GRIDMGR_CLOSE_ON_CHECK",
        "off",
        "on: a passed check (核查通过) closes the case directly, with no separate closing (结案) step.",
    ),
)
TRUE = ("1", "on", "true", "yes")
FALSE = ("", "0", "off", "false", "no")


@dataclass
class Config:
    """The settings in force: the environment over the defaults, overridable per app or test."""

    values: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: str | None) -> Config:
        vals = {s.name: os.environ.get(s.name, s.default) for s in SETTINGS}
        vals.update(overrides)
        return cls(vals)

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def flag(self, name: str) -> bool:
        """An on/off setting (on, true, yes, 1 / off, false, no, 0); anything else is a ValueError naming it."""
        value = (self.get(name) or "").strip().lower()
        if value not in TRUE + FALSE:
            raise ValueError(f"{name} must be on or off, not {self.get(name)!r}")
        return value in TRUE

    @property
    def database_url(self) -> str | None:
        return self.get("GRIDMGR_DATABASE_URL") or None

    def number(self, name: str, low: int = 1, high: int = 256) -> int:
        """A whole-number setting within [low, high]; anything else is a ValueError naming it."""
        raw = (self.get(name) or "").strip()
        if not raw.isdigit() or not low <= int(raw) <= high:
            raise ValueError(f"{name} must be a whole number from {low} to {high}, not {self.get(name)!r}")
        return int(raw)

    def secret_key(self) -> str:
        """GRIDMGR_SECRET_KEY, else the key kept in var/secret_key (made on first use, readable by its owner only)."""
        given = self.get("GRIDMGR_SECRET_KEY")
        if given:
            return given
        path = var_dir() / "secret_key"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: of several workers starting at once, one writes the key and the others read it
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            for _ in range(50):  # the writer may not have written yet
                key = path.read_text(encoding="ascii").strip()
                if key:
                    return key
                time.sleep(0.02)
            raise RuntimeError(f"{path} is empty: remove it and start again") from None
        key = secrets.token_hex(32)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(key + "\n")
        return key
