"""The login throttle: every try is in the audit log (action "login"), and the failures there set the wait.

A name or an address that keeps failing waits before its next try, and the wait doubles with each
further failure (FIRST_WAIT_S up to MAX_WAIT_S). Failures count within WINDOW and since the last
success of that name or address (for a name, since its account was last unlocked too). The same
rule holds for names that do not exist, so the answer never tells whether an account does.
Everything is in PostgreSQL: every server worker sees it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.people import audit

WINDOW = timedelta(minutes=15)
ACCOUNT_FREE, ADDRESS_FREE = 5, 20  # failures before the wait begins (an office shares one address)
FIRST_WAIT_S, MAX_WAIT_S = 30, 900

# failures of one column's value in the window since its last success (or unlock): how many, and the latest
_FAILURES = """
    SELECT count(*) AS n, max(at) AS last FROM audit_log
    WHERE {col} = :{p} AND action = 'login' AND NOT ok AND at > CAST(:now AS timestamptz) - CAST(:window AS interval)
      AND at > coalesce((SELECT max(at) FROM audit_log
                         WHERE {col} = :{p} AND (action = 'login' AND ok OR action = {forgiven})), '-infinity')
"""


def _key(username: str, address: str) -> dict[str, str]:
    return {"u": username[:64], "a": address[:45]}


def wait_seconds(conn: Connection, username: str, address: str, now: datetime) -> int:
    """Seconds before this name and address may try again (0: now)."""
    params = {**_key(username, address), "now": now, "window": f"{int(WINDOW.total_seconds())} seconds"}
    wait = 0.0
    for col, p, free, forgiven in (
        ("subject", "u", ACCOUNT_FREE, "'account.unlock'"),
        ("address", "a", ADDRESS_FREE, "NULL"),
    ):
        n, last = conn.execute(text(_FAILURES.format(col=col, p=p, forgiven=forgiven)), params).one()
        if n >= free:
            backoff = min(FIRST_WAIT_S * 2 ** (n - free), MAX_WAIT_S)
            wait = max(wait, (last + timedelta(seconds=backoff) - now).total_seconds())
    return max(0, int(wait + 0.999))


def record(
    conn: Connection,
    username: str,
    address: str,
    ok: bool,
    now: datetime,
    *,
    user_id: int | None = None,
    via: str = "password",
) -> None:
    """Record one try in the audit log (a success as its account, in its role)."""
    key = _key(username, address)
    role = conn.execute(text("SELECT role FROM users WHERE id = :u"), {"u": user_id}).scalar() if ok else None
    who = audit.Who(user_id, key["u"] if ok else "anonymous", role, key["a"])
    audit.write(conn, "login", who, subject=key["u"], ok=ok, data={"via": via}, at=now)


def refused(conn: Connection, username: str, address: str, wait: int, now: datetime) -> None:
    """Record a try the throttle turned away (a lock, for the audit)."""
    key = _key(username, address)
    audit.write(
        conn,
        "login.locked",
        audit.Who(None, "anonymous", None, key["a"]),
        subject=key["u"],
        ok=False,
        data={"wait_s": wait},
        at=now,
    )
