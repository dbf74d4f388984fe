"""Backups that restore: one tar bundle of a pg_dump custom-format file, the uploaded photos and a manifest.

Why a bundle and not the photos inside the dump: photos live as files under var/uploads/ (the rows
hold their names), and moving them into the database only for the backup would double its size and
need a second restore path. A plain tar (not gzip: the dump is already compressed, photos are JPEG,
PNG or WebP) keeps each part as it is, and its manifest — row counts per table taken in the dump's
own snapshot, a SHA-256 of the dump and of every photo — lets a restore prove it got everything back.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from gridmgr.db.cluster import INSTALL_ROOT, find_bindir
from gridmgr.errors import ConfigError, DatabaseUnavailable, GridmgrError

FORMAT = "gridmgr-backup"
FORMAT_VERSION = 1
MANIFEST, DUMP, UPLOADS = "manifest.json", "db.dump", "uploads"
# what web/uploads.py stores: <2-hex shard>/<32 hex>.<type>; anything else in a bundle is refused
PHOTO = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{32}\.(jpg|png|webp)$")
CHUNK = 1 << 20
Echo = Callable[[str], None]

# the user's tables: extension members (PostGIS's spatial_ref_sys) are the extension's, not ours
TABLES = """
    SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY 1, 2
"""
PHOTO_COLUMNS = """
    SELECT table_schema, table_name FROM information_schema.columns
    WHERE column_name = 'photos' AND data_type = 'ARRAY' AND table_schema NOT LIKE 'pg\\_%'
    ORDER BY 1, 2
"""
# the roles the dump grants something to: they are the server's, not the database's, so must exist first
GRANTEES = """
    SELECT DISTINCT grantee FROM information_schema.role_table_grants
    WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND grantee NOT IN ('PUBLIC', current_user)
    ORDER BY 1
"""


class BackupError(GridmgrError):
    """A backup cannot be made or restored; the message says why and what to do."""

    status = 500


@dataclass
class Summary:
    """What a backup or restore did: counts for the one-line summary."""

    tables: int = 0
    rows: int = 0
    photos: int = 0
    photo_bytes: int = 0
    bytes: int = 0
    seconds: float = 0.0
    missing: list[str] = field(default_factory=list)

    def line(self, verb: str, path: Path) -> str:
        """The one-line summary a command ends with."""
        mb = self.photo_bytes / 1e6
        tail = f", {len(self.missing)} referenced photos missing" if self.missing else ""
        return (
            f"{verb} {path}: {self.tables} tables, {self.rows:,} rows, {self.photos} photos ({mb:.1f} MB), "
            f"{self.bytes / 1e6:.1f} MB file, {self.seconds:.1f} s{tail}"
        )


# -- libpq: the URL as environment, never as arguments ---------------------------------------------
_QUERY_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
}


def libpq_env(url: str) -> dict[str, str]:
    """The environment for pg_dump/pg_restore from a SQLAlchemy URL: the password in PGPASSWORD, not in argv."""
    u = make_url(url)
    # inherited PG* variables (PGSERVICE, PGOPTIONS …) could point the tools at another database
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    query = {k: (v[0] if isinstance(v, tuple) else v) for k, v in u.query.items()}
    values = {
        "PGHOST": u.host or query.get("host"),
        "PGPORT": str(u.port) if u.port else query.get("port"),
        "PGUSER": u.username,
        "PGPASSWORD": u.password if isinstance(u.password, str) else None,
        "PGDATABASE": u.database,
        **{env_name: query.get(key) for key, env_name in _QUERY_ENV.items()},
    }
    env.update({k: str(v) for k, v in values.items() if v})
    return env


def _major(tool: Path) -> int:
    out = subprocess.run([str(tool), "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(found.group(1)) if found else 0


def tools_for(server_major: int) -> Path:
    """The bin folder whose pg_dump and pg_restore match the server: its own major version, else a newer one."""
    candidates = [INSTALL_ROOT / str(server_major) / "bin"]
    try:
        candidates.append(find_bindir())
    except ConfigError:
        pass
    which = shutil.which("pg_dump")
    if which:
        candidates.append(Path(which).parent)
    for c in candidates:
        if (c / "pg_dump").exists() and (c / "pg_restore").exists() and _major(c / "pg_dump") >= server_major:
            return c
    raise BackupError(
        f"no pg_dump/pg_restore of PostgreSQL {server_major} or newer found (the server is {server_major}): "
        f"install postgresql-client-{server_major} or set GRIDMGR_PG_BINDIR"
    )


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        detail = "; ".join(line for line in done.stderr.strip().splitlines()[-5:])
        raise BackupError(f"{what} failed: {detail or f'exit status {done.returncode}'}")


# -- the database side -------------------------------------------------------------------------------
def _engine(url: str, **kw: Any) -> Engine:
    return create_engine(url, poolclass=NullPool, **kw)


def tables(conn: Connection) -> list[str]:
    """The database's own tables, as schema.name."""
    return [f"{r.schema}.{r.name}" for r in conn.execute(text(TABLES))]


def _quoted(qualified: str) -> str:
    schema, name = qualified.split(".", 1)
    return '"{}"."{}"'.format(schema.replace('"', '""'), name.replace('"', '""'))


def row_counts(conn: Connection) -> dict[str, int]:
    """Every table's row count (in the connection's snapshot)."""
    return {t: int(conn.execute(text(f"SELECT count(*) FROM {_quoted(t)}")).scalar_one()) for t in tables(conn)}


def referenced_photos(conn: Connection) -> set[str]:
    """The photo names the rows refer to (every text[] column named photos)."""
    names: set[str] = set()
    for schema, table in conn.execute(text(PHOTO_COLUMNS)):
        q = _quoted(f"{schema}.{table}")
        names.update(conn.execute(text(f"SELECT DISTINCT unnest(photos) FROM {q}")).scalars())
    return names


# -- files -------------------------------------------------------------------------------------------
def photo_files(uploads: Path) -> list[str]:
    """The stored photos under the uploads folder, as shard/name (half-written .part files left out)."""
    if not uploads.is_dir():
        return []
    return sorted(
        p.relative_to(uploads).as_posix()
        for p in uploads.glob("*/*")
        if p.is_file() and PHOTO.match(p.relative_to(uploads).as_posix())
    )


class _Hashing(io.RawIOBase):
    """A file read through SHA-256, so a photo is hashed while tar copies it (one read, not two)."""

    def __init__(self, fh: IO[bytes]):
        self.fh, self.sha = fh, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self.sha.update(data)
        return data


def _add(tar: tarfile.TarFile, path: Path, arcname: str) -> dict[str, Any]:
    info = tar.gettarinfo(str(path), arcname)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o600  # photos of cases and a whole database: readable by the backup's owner only
    with path.open("rb") as fh:
        hashing = _Hashing(fh)
        tar.addfile(info, hashing)
    return {"sha256": hashing.sha.hexdigest(), "bytes": info.size}


def _sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            sha.update(chunk)
    return sha.hexdigest()


def _gridmgr_version() -> str:
    try:
        return version("gridmgr")
    except PackageNotFoundError:
        return "unknown"


def _server_major(conn: Connection) -> int:
    return int(conn.execute(text("SHOW server_version_num")).scalar_one()) // 10000


def _connect(engine: Engine) -> Connection:
    try:
        return engine.connect()
    except OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach the database as its owner: {exc.orig}".strip()) from exc


def backup(owner_url: str, uploads: Path, dest: Path, echo: Echo) -> Summary:
    """Write one bundle: the database as pg_dump's custom format, every photo, and a manifest of both."""
    started = time.monotonic()
    dest = dest.resolve()
    if not dest.parent.is_dir():
        raise BackupError(f"no folder {dest.parent} to write the backup into")
    summary = Summary()
    # REPEATABLE READ + pg_export_snapshot: the counts below and pg_dump see one and the same moment
    engine = _engine(owner_url, isolation_level="REPEATABLE READ")
    conn = _connect(engine)
    part = dest.with_name(dest.name + ".part")
    try:
        with conn.begin():
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            major = _server_major(conn)
            database = conn.execute(text("SELECT current_database()")).scalar_one()
            counts = row_counts(conn)
            referenced = referenced_photos(conn)
            grantees = list(conn.execute(text(GRANTEES)).scalars())
            bindir = tools_for(major)
            echo(f"database {database} (PostgreSQL {major}): {len(counts)} tables, {sum(counts.values()):,} rows")
            with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".gridmgr-backup-") as tmp:
                dump = Path(tmp) / DUMP
                echo(f"pg_dump → custom format ({bindir / 'pg_dump'})")
                cmd = [str(bindir / "pg_dump"), "--format=custom", f"--snapshot={snapshot}", f"--file={dump}"]
                _run([*cmd, "--no-password"], libpq_env(owner_url), "pg_dump")
                # the photos are copied after the dump: a photo is written before the row naming it
                # commits and never changed, so every photo the dump refers to is on disk by now
                names = photo_files(uploads)
                echo(f"photos: {len(names)} under {uploads}")
                manifest: dict[str, Any] = {
                    "format": FORMAT,
                    "version": FORMAT_VERSION,
                    "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "gridmgr": _gridmgr_version(),
                    "server_major": major,
                    "database": database,
                    "tables": counts,
                    "roles": grantees,
                    "photos": {},
                }
                with tarfile.open(part, "w", format=tarfile.PAX_FORMAT) as tar:
                    manifest["dump"] = _add(tar, dump, DUMP)
                    for i, name in enumerate(names, start=1):
                        manifest["photos"][name] = entry = _add(tar, uploads / name, f"{UPLOADS}/{name}")
                        summary.photo_bytes += entry["bytes"]
                        if i % 500 == 0 or i == len(names):
                            echo(f"  photos {i}/{len(names)}")
                    stored = {n.rsplit("/", 1)[-1] for n in names}
                    summary.missing = sorted(referenced - stored)
                    manifest["missing_photos"] = summary.missing
                    blob = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
                    info = tarfile.TarInfo(MANIFEST)
                    info.size, info.mode, info.mtime = len(blob), 0o600, int(time.time())
                    tar.addfile(info, io.BytesIO(blob))
            os.chmod(part, 0o600)
            part.replace(dest)  # a backup file is either whole or absent
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        conn.close()
        engine.dispose()
    summary.tables, summary.rows, summary.photos = len(counts), sum(counts.values()), len(names)
    summary.bytes, summary.seconds = dest.stat().st_size, time.monotonic() - started
    return summary


# -- restore -----------------------------------------------------------------------------------------
def _damaged(path: Path, why: str) -> BackupError:
    return BackupError(f"{path} is not a usable gridmgr backup: {why}; nothing was restored")


def read_manifest(path: Path) -> dict[str, Any]:
    """A bundle's manifest (BackupError when the file is not a gridmgr backup or its manifest is unreadable)."""
    try:
        with tarfile.open(path, "r:") as tar:
            fh = tar.extractfile(MANIFEST)
            manifest = json.loads(fh.read()) if fh else None
    except FileNotFoundError:
        raise BackupError(f"no file {path}") from None
    except (tarfile.TarError, KeyError, EOFError, ValueError, OSError) as exc:
        raise _damaged(path, f"no readable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _damaged(path, "its manifest is not a gridmgr backup's")
    if manifest.get("version", 0) > FORMAT_VERSION:
        raise BackupError(f"{path} was written by a newer gridmgr (format {manifest['version']}): upgrade first")
    return manifest


def _members(tar: tarfile.TarFile, manifest: dict[str, Any], path: Path) -> Iterator[tuple[tarfile.TarInfo, str]]:
    """Each member with where it goes (dump or photo); anything the manifest does not list is refused."""
    for member in tar:
        if member.name == MANIFEST:
            continue
        if not member.isfile():
            raise _damaged(path, f"unexpected entry {member.name!r}")
        if member.name == DUMP:
            yield member, DUMP
            continue
        photo = member.name.removeprefix(f"{UPLOADS}/")
        # the pattern admits no '..' or absolute path, so a bundle cannot write outside its folders
        if not PHOTO.match(photo) or photo not in manifest["photos"]:
            raise _damaged(path, f"entry {member.name!r} is not in its manifest")
        yield member, photo


def _extract(path: Path, manifest: dict[str, Any], into: Path, echo: Echo) -> None:
    """Unpack the dump and photos into a folder, checking each one's SHA-256 against the manifest."""
    seen: set[str] = set()
    try:
        with tarfile.open(path, "r:") as tar:
            for member, what in _members(tar, manifest, path):
                expected = manifest["dump"] if what == DUMP else manifest["photos"][what]
                target = into / (DUMP if what == DUMP else f"{UPLOADS}/{what}")
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                assert src is not None  # a regular file, checked in _members
                sha = hashlib.sha256()
                with target.open("wb") as out:
                    while chunk := src.read(CHUNK):
                        sha.update(chunk)
                        out.write(chunk)
                if sha.hexdigest() != expected["sha256"]:
                    raise _damaged(path, f"{member.name} does not match its checksum")
                seen.add(what)
                if what != DUMP and len(seen) % 500 == 0:
                    echo(f"  photos {len(seen) - (DUMP in seen)}/{len(manifest['photos'])} checked")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise _damaged(path, f"the file is cut short or damaged ({exc})") from None
    lost = ({DUMP} | set(manifest["photos"])) - seen
    if lost:
        raise _damaged(path, f"{len(lost)} entries of its manifest are missing (e.g. {sorted(lost)[0]})")


def _drop_everything(engine: Engine, database: str) -> int:
    """Empty the database for --replace: drop every schema of its own (with its tables and extensions), at once."""
    try:
        with engine.execution_options(isolation_level="READ COMMITTED").begin() as conn:
            # a running app or worker holds locks: say so after a while rather than wait for ever
            conn.execute(text("SET LOCAL lock_timeout = '15s'"))
            schemas = list(
                conn.execute(
                    text("""SELECT nspname FROM pg_namespace
                            WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%' ORDER BY 1""")
                ).scalars()
            )
            for s in schemas:
                conn.execute(text('DROP SCHEMA "{}" CASCADE'.format(s.replace('"', '""'))))
            # public as a new database has it: owned by the database's owner (the dump's ACLs go on top)
            conn.execute(text("CREATE SCHEMA public"))
            conn.execute(text("ALTER SCHEMA public OWNER TO pg_database_owner"))
    except OperationalError as exc:
        raise BackupError(
            f"could not empty {database} ({str(exc.orig).strip().splitlines()[0]}): stop the app and the worker, "
            "then try again; nothing was changed"
        ) from None
    return len(schemas)


def _place_photos(staged: Path, uploads: Path, echo: Echo) -> None:
    """Move the checked photos into the uploads folder (each appears whole: a rename, else copy-then-rename)."""
    names = photo_files(staged)
    for i, name in enumerate(names, start=1):
        target = uploads / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        shutil.move(str(staged / name), partial)
        partial.replace(target)
        if i % 500 == 0 or i == len(names):
            echo(f"  photos {i}/{len(names)} in place")


def restore(owner_url: str, uploads: Path, src: Path, echo: Echo, *, replace: bool = False) -> Summary:
    """Restore a bundle into an empty database (or, with replace, one emptied first) and its photos; verify both."""
    started = time.monotonic()
    src = src.resolve()
    manifest = read_manifest(src)
    echo(
        f"backup of {manifest.get('database')} from {manifest.get('created_at')}: "
        f"{len(manifest['tables'])} tables, {len(manifest['photos'])} photos"
    )
    engine = _engine(owner_url, isolation_level="AUTOCOMMIT")
    conn = _connect(engine)
    try:
        major = _server_major(conn)
        database = conn.execute(text("SELECT current_database()")).scalar_one()
        present = tables(conn)
        if present and not replace:
            raise BackupError(
                f"database {database} is not empty ({len(present)} tables, e.g. {present[0]}): restore into a new "
                "empty database, or give --replace to drop everything in it first"
            )
        missing_roles = [
            r
            for r in manifest.get("roles", [])
            if not conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": r}).scalar()
        ]
        if missing_roles:
            raise BackupError(
                f"the backup grants rights to role(s) {', '.join(missing_roles)}, which this server lacks: "
                "create them first (`gridmgr db roles --apply`)"
            )
        if major < int(manifest.get("server_major", 0)):
            raise BackupError(f"the backup is of PostgreSQL {manifest['server_major']}, this server is {major}")
        bindir = tools_for(max(major, int(manifest.get("server_major", 0))))
        uploads.mkdir(parents=True, exist_ok=True)
        # staged beside the uploads folder, so placing a photo is a rename on the same file system
        with tempfile.TemporaryDirectory(dir=uploads.parent, prefix=".gridmgr-restore-") as tmp:
            staged = Path(tmp)
            echo("checking the dump and every photo against the manifest")
            _extract(src, manifest, staged, echo)
            if present:
                echo(f"--replace: dropped {_drop_everything(engine, database)} schemas of {database}")
            echo(f"pg_restore into {database} ({bindir / 'pg_restore'})")
            # one transaction: a failed restore leaves the database as empty as it was
            cmd = [str(bindir / "pg_restore"), "--single-transaction", "--exit-on-error", "--no-owner"]
            _run(
                [*cmd, f"--dbname={database}", "--no-password", str(staged / DUMP)], libpq_env(owner_url), "pg_restore"
            )
            for role in manifest.get("roles", []):
                # database-level rights are not in a one-database dump: what `gridmgr db roles` gives the app
                grant = conn.execute(
                    text("SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), :r)"),
                    {"r": role},
                ).scalar_one()
                conn.execute(text(grant))
            counts = row_counts(conn)
            wrong = {t: (n, counts.get(t)) for t, n in manifest["tables"].items() if counts.get(t) != n}
            if wrong:
                t, (want, got) = next(iter(wrong.items()))
                raise BackupError(
                    f"restored rows differ from the manifest in {len(wrong)} tables (e.g. {t}: {got} ≠ {want}); "
                    "the restore is committed: inspect it, or restore again with --replace"
                )
            echo(f"rows verified: {len(counts)} tables, {sum(counts.values()):,} rows")
            _place_photos(staged / UPLOADS, uploads, echo)
    finally:
        conn.close()
        engine.dispose()
    photos = manifest["photos"]
    return Summary(
        tables=len(counts),
        rows=sum(counts.values()),
        photos=len(photos),
        photo_bytes=sum(p["bytes"] for p in photos.values()),
        bytes=src.stat().st_size,
        seconds=time.monotonic() - started,
        missing=list(manifest.get("missing_photos", [])),
    )
