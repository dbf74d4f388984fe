"""A private PostgreSQL + PostGIS cluster run from the system's binaries (initdb, pg_ctl)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from gridmgr.db.roles import APP_ROLE, grant, role_statements
from gridmgr.errors import ConfigError, DatabaseUnavailable

if TYPE_CHECKING:
    import psycopg2.extensions

SUPERUSER = "gridmgr"  # the owner: initdb's superuser, which runs the migrations
INSTALL_ROOT = Path("/usr/lib/postgresql")  # Debian's server packages: one folder per major version
NO_BINARIES = (
    "PostgreSQL server binaries (initdb, pg_ctl) were not found. Run `make setup` to install "
    "PostgreSQL and PostGIS, or set GRIDMGR_DATABASE_URL to an existing PostGIS server."
)


def find_bindir() -> Path:
    """The newest installed PostgreSQL server bin directory (initdb and pg_ctl live there)."""
    env = os.environ.get("GRIDMGR_PG_BINDIR")
    candidates = [Path(env)] if env else []
    base = INSTALL_ROOT
    if base.is_dir():
        versions = sorted((p for p in base.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        candidates += [v / "bin" for v in reversed(versions)]
    which = shutil.which("initdb")
    if which:
        candidates.append(Path(which).parent)
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    raise ConfigError(NO_BINARIES)


ROLES_SET = 1  # state.json's mark: passwords and the app role are in place (clusters from before have none)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One private cluster: data folder, log, unix socket; run as `postgres` when we are root."""

    def __init__(self, base: Path, *, ephemeral: bool = False):
        self.requested_base = Path(base).resolve()
        self.ephemeral = ephemeral  # test clusters trade durability for speed
        self.as_root = os.geteuid() == 0
        self.os_user = pwd.getpwnam("postgres") if self.as_root else None
        self.base = self._reachable_base(self.requested_base)
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.state_file = self.base / "state.json"
        self.password_file = self.base / "passwords.json"  # mode 600: the owner's and the app role's
        self.lock_file = self.base / ".lock"

    # -- locations -----------------------------------------------------------------------------
    def _reachable_base(self, base: Path) -> Path:
        """The base folder, or a fallback the server's OS user can enter (a mode-700 home is not)."""
        if not self.as_root:
            return base
        if self._postgres_can_enter(base):
            return base
        digest = hashlib.sha1(str(base).encode()).hexdigest()[:10]
        fallback = Path("/var/lib/gridmgr") / digest / base.name
        note = base / "MOVED.txt"
        base.mkdir(parents=True, exist_ok=True)
        note.write_text(f"The postgres OS user cannot enter {base}; the cluster lives in {fallback}.\n")
        return fallback

    def _postgres_can_enter(self, path: Path) -> bool:
        assert self.os_user is not None  # only called when as_root, which sets os_user
        probe = path
        while not probe.exists():
            probe = probe.parent
        # every existing ancestor must be searchable by others (the server runs as `postgres`)
        for p in [probe, *probe.parents]:
            mode = p.stat().st_mode
            if p.stat().st_uid != self.os_user.pw_uid and not mode & 0o001:
                return False
        return True

    def _state(self) -> dict:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        return {}

    @property
    def port(self) -> int:
        return int(self._state()["port"])

    @property
    def socket_dir(self) -> str:
        return self._state()["socket_dir"]

    def password(self, role: str) -> str:
        """A role's password, made on first use and kept in passwords.json (readable by its owner only)."""
        known = json.loads(self.password_file.read_text()) if self.password_file.exists() else {}
        if role not in known:
            known[role] = secrets.token_urlsafe(24)
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(known, fh)
        return str(known[role])

    def url(self, dbname: str = "gridmgr", *, role: str = APP_ROLE) -> str:
        """The SQLAlchemy URL of a database in this cluster as a role (over the unix socket, by password)."""
        return f"postgresql+psycopg2://{role}:{self.password(role)}@/{dbname}?host={self.socket_dir}&port={self.port}"

    def owner_url(self, dbname: str = "gridmgr") -> str:
        """The URL of a database as its owner (migrations, `gridmgr db roles`)."""
        return self.url(dbname, role=SUPERUSER)

    # -- process helpers ---------------------------------------------------------------------------
    def _run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        # never hand the server our stdout/stderr: a daemon holding the pipe keeps `make test` open
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if check and res.returncode != 0:
            raise DatabaseUnavailable(
                f"{' '.join(map(str, args[:2]))} failed ({res.returncode}): {res.stderr.strip() or res.stdout.strip()}"
                f" — see {self.log}"
            )
        return res

    def _chown(self, path: Path) -> None:
        if self.os_user is not None:  # set exactly when as_root
            os.chown(path, self.os_user.pw_uid, self.os_user.pw_gid)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the cluster's lock so two commands never init or start it at once."""
        self.base.mkdir(parents=True, exist_ok=True)
        with open(self.lock_file, "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- lifecycle ---------------------------------------------------------------------------------
    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists() and self.state_file.exists()

    def init(self) -> None:
        """Create the cluster: initdb, a short socket folder, a free port, settings."""
        bindir = find_bindir()
        self.base.mkdir(parents=True, exist_ok=True)
        self._chown(self.base)
        if self.data.exists():
            shutil.rmtree(self.data)
        # a unix-socket path is limited to 107 bytes: keep it short, under the system temp dir
        sock = Path(tempfile.mkdtemp(prefix="gm-", dir="/tmp"))
        os.chmod(sock, 0o700)
        self._chown(sock)
        port = _free_port()
        # the owner logs in by password, never by trust: initdb reads it from a file the server's user can read
        pwfile = sock / "pw"
        pwfile.write_text(self.password(SUPERUSER) + "\n")
        self._chown(pwfile)
        try:
            self._run(
                bindir / "initdb",
                "-D",
                self.data,
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            )
        finally:
            pwfile.unlink()
        conf = [
            "listen_addresses = ''",
            f"port = {port}",
            f"unix_socket_directories = '{sock}'",
            "max_connections = 50",
            "shared_buffers = 256MB",
            "work_mem = 32MB",
            "maintenance_work_mem = 256MB",
        ]
        if self.ephemeral:
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with open(self.data / "postgresql.conf", "a") as fh:
            fh.write("\n# gridmgr\n" + "\n".join(conf) + "\n")
        self.state_file.write_text(
            json.dumps({"port": port, "socket_dir": str(sock), "data": str(self.data), "bindir": str(bindir)})
        )
        self.log.touch()
        self._chown(self.log)

    def running(self) -> bool:
        if not self.initialised():
            return False
        res = self._run(Path(self._state()["bindir"]) / "pg_ctl", "-D", self.data, "status", check=False)
        return res.returncode == 0

    def start(self) -> None:
        """Initialise if needed and start the server, detached, waiting until it accepts connections."""
        with self.locked():
            if not self.initialised():
                self.init()
            st = self._state()
            if self.running() and st.get("roles") == ROLES_SET:
                return
            if not self.running():
                # the socket folder lives under /tmp, which a reboot empties
                sock = Path(st["socket_dir"])
                if not sock.exists():
                    sock.mkdir(mode=0o700)
                    self._chown(sock)
                self._run(Path(st["bindir"]) / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")
            self._no_trust()
            self._ensure_database("gridmgr")
            self.state_file.write_text(json.dumps({**st, "roles": ROLES_SET}))

    def stop(self) -> None:
        """Stop the server if it runs."""
        with self.locked():
            if self.running():
                self._run(Path(self._state()["bindir"]) / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        """Stop and delete the cluster and its socket folder (throwaway test clusters)."""
        self.stop()
        sock = self._state().get("socket_dir")
        shutil.rmtree(self.base, ignore_errors=True)
        if sock:
            shutil.rmtree(sock, ignore_errors=True)

    def _connect_owner(self, dbname: str = "postgres") -> psycopg2.extensions.connection:
        """An autocommit connection as the owner (by password; retried while the server starts)."""
        import psycopg2

        for _attempt in range(50):
            try:
                conn = psycopg2.connect(
                    dbname=dbname,
                    user=SUPERUSER,
                    password=self.password(SUPERUSER),
                    host=self.socket_dir,
                    port=self.port,
                )
                break
            except psycopg2.OperationalError:
                time.sleep(0.1)
        else:
            raise DatabaseUnavailable(f"the embedded server did not accept connections; see {self.log}")
        conn.autocommit = True
        return conn

    def _no_trust(self) -> None:
        """Move a cluster made before passwords (trust authentication) to password logins."""
        hba = self.data / "pg_hba.conf"
        if not any(line.split()[-1:] == ["trust"] for line in hba.read_text().splitlines() if line.strip()[:1] != "#"):
            return
        conn = self._connect_owner()  # still trusted: set the owner's password while we can
        with conn.cursor() as cur:
            cur.execute(f"ALTER ROLE {SUPERUSER} PASSWORD %s", (self.password(SUPERUSER),))
            cur.execute("SELECT pg_reload_conf()")
        conn.close()
        hba.write_text(
            "# gridmgr: every login by password (scram-sha-256), never trust\n"
            "local all all scram-sha-256\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n"
        )
        conn = self._connect_owner()
        with conn.cursor() as cur:
            cur.execute("SELECT pg_reload_conf()")
        conn.close()

    def _ensure_database(self, name: str) -> None:
        conn = self._connect_owner()
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
            for statement in role_statements(APP_ROLE, self.password(APP_ROLE), name):
                cur.execute(statement)
        conn.close()
        # a database migrated before the app role existed gets its grants now, not at its next migration
        engine = create_engine(self.owner_url(name), poolclass=NullPool)
        with engine.begin() as c:
            grant(c)
        engine.dispose()
