"""The embedded cluster: `gridmgr db up/status/url/down` on a private folder, never the user's var/pg."""

import os
import subprocess
import sys

from click.testing import CliRunner

from gridmgr.cli import main
from gridmgr.db.cluster import Cluster


def test_embedded_lifecycle(tmp_path, monkeypatch):
    var = tmp_path / "var"
    monkeypatch.delenv("GRIDMGR_DATABASE_URL", raising=False)
    monkeypatch.setenv("GRIDMGR_VAR", str(var))
    runner = CliRunner()
    try:
        r = runner.invoke(main, ["db", "up"])
        assert r.exit_code == 0, r.output
        assert "embedded PostGIS running" in r.output
        from gridmgr.db import migrate

        # up migrates a fresh cluster at once: PostGIS is there before any other command runs
        assert f"schema at revision {migrate.head()}" in r.output
        r = runner.invoke(main, ["db", "status"])
        assert "embedded, running" in r.output
        assert f"revision: {migrate.head()}" in r.output
        url = runner.invoke(main, ["db", "url"]).output.strip()
        # the app's URL is its login role's, with a password: the owner is never the app
        assert url.startswith("postgresql+psycopg2://gridmgr_app:") and "@/gridmgr?host=/tmp/" in url
        # the socket path stays far below the 107-byte limit
        assert len(url.split("host=")[1].split("&")[0]) < 40
        # any other command starts and migrates it by itself
        r = runner.invoke(main, ["db", "down"])
        assert "stopped" in r.output
        r = runner.invoke(main, ["locate", "116.4", "39.9"])
        assert "in no cell" in r.output
        r = runner.invoke(main, ["db", "status"])
        assert f"revision: {migrate.head()}" in r.output
    finally:
        Cluster(var / "pg").destroy()


def test_server_does_not_hold_the_callers_output(tmp_path):
    """A detached server: a command that started it returns, with its pipes closed (CI would hang)."""
    env = {**os.environ, "GRIDMGR_VAR": str(tmp_path / "var")}
    env.pop("GRIDMGR_DATABASE_URL", None)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "gridmgr.cli", "db", "up"], env=env, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
    finally:
        Cluster(tmp_path / "var" / "pg").destroy()


def test_missing_binaries_say_what_to_do(tmp_path, monkeypatch):
    import pytest

    from gridmgr.errors import ConfigError

    monkeypatch.setenv("GRIDMGR_PG_BINDIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    # patched narrowly: a patched Path.is_dir also broke mkdir(exist_ok=True) once the folder existed
    monkeypatch.setattr("gridmgr.db.cluster.INSTALL_ROOT", tmp_path / "no-postgresql")
    with pytest.raises(ConfigError, match="make setup.*GRIDMGR_DATABASE_URL"):
        Cluster(tmp_path / "pg").start()


def _login(cluster: Cluster, user: str, password: str | None):
    import psycopg2

    return psycopg2.connect(dbname="gridmgr", user=user, password=password, host=cluster.socket_dir, port=cluster.port)


def test_every_login_needs_a_password_and_an_old_trust_cluster_moves_to_passwords(tmp_path):
    import json

    import psycopg2
    import pytest

    cluster = Cluster(tmp_path / "pg", ephemeral=True)
    try:
        cluster.start()
        for user in ("gridmgr", "gridmgr_app"):
            with pytest.raises(psycopg2.OperationalError, match="password"):
                _login(cluster, user, None)
            with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
                _login(cluster, user, "not-it")
        conn = _login(cluster, "gridmgr_app", cluster.password("gridmgr_app"))
        with conn.cursor() as cur:
            cur.execute("SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (False, False, False)
        conn.close()

        # a cluster made before passwords: initdb's trust, no mark in its state
        hba = cluster.data / "pg_hba.conf"
        hba.write_text("local all all trust\n")
        state = json.loads(cluster.state_file.read_text())
        state.pop("roles")
        cluster.state_file.write_text(json.dumps(state))
        cluster.stop()
        cluster.start()
        assert "trust" not in [line.split()[-1] for line in hba.read_text().splitlines() if line[:1] not in "#"]
        with pytest.raises(psycopg2.OperationalError, match="password"):
            _login(cluster, "gridmgr", None)
        _login(cluster, "gridmgr", cluster.password("gridmgr")).close()
    finally:
        cluster.destroy()
