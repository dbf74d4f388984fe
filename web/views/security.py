"""The security administrator's sessions and accounts, and the audit administrator's log (三员分立).

The security administrator (secadmin) sees every live login session and ends them, changes roles and
locks or unlocks accounts; the audit administrator (auditor) reads the audit, changes nothing. Each
act is audited; neither role can do the other's work, nor the system administrator's.
"""

from __future__ import annotations

from datetime import datetime, time

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from gridmgr.errors import InputError
from gridmgr.people import accounts, audit, credentials
from gridmgr.web.auth import roles_required
from gridmgr.web.database import engine

bp = Blueprint("security", __name__)


@bp.get("/security/sessions")
@roles_required("secadmin")
def sessions():
    """Every live login session, newest first, with where it came from and when it was last used."""
    who = request.args.get("user", "").strip() or None
    with engine().connect() as conn:
        rows = credentials.live(conn, user_id=accounts.user_id(conn, who) if who else None, kind="session")
    return render_template("security/sessions.html", rows=rows, user=who or "")


@bp.post("/security/sessions/end")
@roles_required("secadmin")
def end_session():
    """End one session, or every session of an account."""
    username = request.form.get("username", "")
    raw = request.form.get("id", "")
    with engine().begin() as conn:
        n = accounts.end_sessions(
            conn, username, credential_id=int(raw) if raw.isdigit() else None, by=current_user.who
        )
    flash(f"已结束 {n} 个会话。{n} session(s) ended.")
    return redirect(url_for("security.sessions", user=request.form.get("back") or None))


@bp.get("/security/accounts")
@roles_required("secadmin")
def account_list():
    """Accounts with their role, lock, last login and live sessions."""
    with engine().connect() as conn:
        rows = accounts.security_view(conn)
    return render_template("security/accounts.html", rows=rows, roles=accounts.ROLES)


@bp.post("/security/accounts/<username>")
@roles_required("secadmin")
def account_change(username: str):
    """Change an account's role, or lock or unlock it."""
    what = request.form.get("do", "")
    with engine().begin() as conn:
        if what == "role":
            accounts.set_role(conn, username, request.form.get("role", ""), by=current_user.who)
        elif what in ("lock", "unlock"):
            if username == current_user.username:
                raise InputError("不能锁定自己的账号。You cannot lock your own account.", field="do")
            accounts.set_locked(conn, username, what == "lock", by=current_user.who)
        else:
            raise InputError(f"unknown change {what!r}: role, lock or unlock", field="do")
    flash(f"{username}: 已更新。Updated.")
    return redirect(url_for("security.account_list"))


def _day(name: str) -> datetime | None:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return datetime.combine(datetime.strptime(raw, "%Y-%m-%d").date(), time())
    except ValueError:
        raise InputError(f"is not a date (YYYY-MM-DD): {raw[:20]!r}", field=name) from None


@bp.get("/audit")
@roles_required("auditor")
def audit_log():
    """The security audit, newest first, filtered by area, account and days; keyset pages of 100."""
    action = request.args.get("action", "").strip() or None
    if action and action not in audit.ACTIONS and action not in {a.split(".")[0] for a in audit.ACTIONS}:
        raise InputError(f"unknown action {action[:40]!r}", field="action")
    before = request.args.get("before", "")
    since, until = _day("since"), _day("until")
    with engine().connect() as conn:
        rows = audit.entries(
            conn,
            action=action,
            who=request.args.get("who", "").strip() or None,
            since=since,
            until=until,
            before_id=int(before) if before.isdigit() else None,
        )
    areas = sorted({a.split(".")[0] for a in audit.ACTIONS})
    args = {k: v for k, v in request.args.items() if k != "before"}
    older = url_for("security.audit_log", before=rows[-1].id, **args) if len(rows) == audit.PAGE else None
    return render_template("security/audit.html", rows=rows, areas=areas, actions=audit.ACTIONS, older=older)
