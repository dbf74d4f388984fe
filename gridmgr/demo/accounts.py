"""The demo's logins: one account per role, for people of the demo roster, with published passwords."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.people.accounts import add_user

# the point of the README's `gridmgr locate` example (王府井): its supervisor is the demo supervisor
SUPERVISOR_POINT = (116.4108, 39.9140)

# role → (how to pick the person, the nth such person); the command centre is ZX01
PICKS = {
    "supervisor": None,  # the supervisor answerable for SUPERVISOR_POINT
    "receiver": ("ZX01", 0),
    "dispatcher": ("ZX01", 1),
    "shift_leader": ("ZX01", 2),
    # 三员分立: the three administrators are three people of the command centre
    "sysadmin": ("ZX01", 3),
    "secadmin": ("ZX01", 4),
    "auditor": ("ZX01", 5),
    "unit_handler": ("HW01", 0),  # the sanitation office handles most cases
    "planner": ("BM04", 0),  # the transport commission plans parking
    "leader": ("BM01", 0),
}


def password_for(role: str) -> str:
    """The demo password of a role's account (published in the README: demo data only)."""
    return f"demo-{role.replace('_', '-')}"


def create(conn: Connection) -> list[tuple[str, str, str, str]]:
    """Create the demo accounts if missing; returns (username, role, person name, password) for each."""
    out = []
    for role, pick in PICKS.items():
        if pick is None:
            person = conn.execute(
                text("""
                SELECT p.code, p.name FROM cell_for(ST_SetSRID(ST_MakePoint(:x, :y), 4326)) c
                JOIN cell_people cp ON cp.cell_id = c.cell_id AND cp.post = 'supervisor'
                JOIN people p ON p.id = cp.person_id LIMIT 1
            """),
                {"x": SUPERVISOR_POINT[0], "y": SUPERVISOR_POINT[1]},
            ).first()
        else:
            person = conn.execute(
                text("""
                SELECT p.code, p.name FROM people p JOIN units u ON u.id = p.unit_id
                WHERE u.code = :u AND p.role = 'staff' ORDER BY p.code OFFSET :n LIMIT 1
            """),
                {"u": pick[0], "n": pick[1]},
            ).first()
        username = role.replace("_", "-")
        exists = conn.execute(text("SELECT 1 FROM users WHERE username = :u"), {"u": username}).scalar()
        if not exists:
            add_user(conn, username, cast(Any, person).code, role, password_for(role))
        out.append((username, role, cast(Any, person).name, password_for(role)))
    return out
