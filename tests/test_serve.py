"""`gridmgr serve` runs gunicorn: workers that agree on sessions, no version banner, graceful reload and stop."""

from __future__ import annotations

import http.cookiejar
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from sqlalchemy import text

from gridmgr.people import accounts

from support import csrf

PASSWORD = "secret-pass"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, seconds: float = 60) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                if r.status == 200:
                    return
        except OSError:  # refused, reset or timed out while the workers start (URLError is one)
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer in {seconds} s")


@pytest.fixture
def server(fresh_db, tmp_path):
    """`gridmgr serve` with two workers on a fresh database holding one account: (base URL, process)."""
    url, eng = fresh_db
    with eng.begin() as c:
        c.execute(text("INSERT INTO people (code, name, role) VALUES ('P1', '张三', 'staff')"))
        accounts.add_user(c, "leader", "P1", "leader", PASSWORD)
    port = _free_port()
    env = {
        **os.environ,
        "GRIDMGR_DATABASE_URL": url,
        "GRIDMGR_VAR": str(tmp_path / "var"),
        "GRIDMGR_WORKERS": "2",
        "GRIDMGR_THREADS": "2",
    }
    env.pop("GRIDMGR_SECRET_KEY", None)  # the key the workers share comes from var/
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridmgr.cli", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/healthz")
        yield base, proc, tmp_path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        log.close()


def _client():
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def _login(opener, base: str) -> None:
    token = csrf(opener.open(f"{base}/login").read().decode())
    body = urllib.parse.urlencode({"username": "leader", "password": PASSWORD, "csrf_token": token}).encode()
    opener.open(f"{base}/login", data=body)


def _me(opener, base: str) -> int:
    try:
        return opener.open(f"{base}/api/v1/me").status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_gunicorn_workers_share_sessions_and_reload_gracefully(server):
    base, proc, tmp_path = server
    with urllib.request.urlopen(f"{base}/healthz") as r:
        banner = r.headers.get("Server", "")
    assert "Werkzeug" not in banner and not any(ch.isdigit() for ch in banner)  # no server version given away
    log = (tmp_path / "serve.log").read_text(encoding="utf-8", errors="replace")
    assert "gunicorn" in log.lower() and log.lower().count("booting worker") == 2
    opener = _client()
    _login(opener, base)
    assert [_me(opener, base) for _ in range(20)] == [200] * 20  # whichever worker answers
    key = (tmp_path / "var" / "secret_key").stat()
    assert key.st_mode & 0o077 == 0  # the signing key is readable by its owner only
    # HUP: new workers replace the old ones; the session signed by the old ones still holds
    proc.send_signal(signal.SIGHUP)
    end = time.monotonic() + 60
    while (tmp_path / "serve.log").read_text(encoding="utf-8", errors="replace").lower().count("booting worker") < 4:
        assert time.monotonic() < end, "no new workers after HUP"
        time.sleep(0.2)
    _wait(f"{base}/healthz")
    assert _me(opener, base) == 200
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0  # a graceful stop


def test_workers_must_fit_the_database_connections(cli, monkeypatch):
    monkeypatch.setenv("GRIDMGR_WORKERS", "40")
    out = cli("serve", ok=False)
    assert out.exit_code == 1 and "GRIDMGR_WORKERS=40" in out.output and "max_connections" in out.output
    monkeypatch.setenv("GRIDMGR_WORKERS", "two")
    out = cli("serve", ok=False)
    assert out.exit_code == 1 and "GRIDMGR_WORKERS must be a whole number" in out.output
