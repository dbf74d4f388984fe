"""The case lifecycle: the seven-step workflow as a transition table, checked against role and scope.

Every transition runs in the caller's transaction: it locks the case, checks the state, the actor's
role and scope (a supervisor acts only in the cells of their duty grid, a unit handler only on cases
dispatched to their unit), moves the state and the deadline, and writes one `case_events` row.
Anything not allowed raises WorkflowError naming the case, its state and the action. "Now" is
always an argument, so tests and the demo never depend on the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.errors import Forbidden, GridmgrError, InputError, NotFound
from gridmgr.glossary import zh

# reports from the public and the hotlines are verified on site before registration (核实)
NEEDS_VERIFY = ("public", "hotline_12319", "hotline_12345")
TERMINAL = ("closed", "rejected")
PAUSED = ("suspended", "deferred")
# the time-limit column of each step; closing is the shift leader's decision, timed like registering
STEP_LIMIT = {
    "verify": "verify_limit",
    "register": "register_limit",
    "dispatch": "dispatch_limit",
    "handle": "handle_limit",
    "check": "check_limit",
    "close": "register_limit",
}
DEFAULT_LIMIT = {"verify": "2h", "register": "1h", "dispatch": "1h", "handle": "3d", "check": "4h", "close": "1h"}
# the step a state waits for (its deadline), used when a paused case resumes
STATE_STEP = {
    "reported": "register",
    "verified": "register",
    "registered": "dispatch",
    "returned": "dispatch",
    "dispatched": "handle",
    "rework": "handle",
    "handled": "check",
    "checked": "close",
}


class WorkflowError(GridmgrError):
    """An action not allowed for this case, state or actor."""

    status = 409


@dataclass(frozen=True)
class Actor:
    """Who acts: a user with a role (or the system), their person and unit."""

    user_id: int | None
    name: str
    role: str
    person_id: int | None = None
    unit_id: int | None = None
    sources: tuple[str, ...] = ()  # the public reader only: the case sources the public may see


SYSTEM = Actor(None, "系统 system", "system")
# the public sees the requests the public made (the web, Open311, the hotlines), not those the bureau raised
PUBLIC_SOURCES = ("public", "hotline_12319", "hotline_12345")


def public_reader(sources: tuple[str, ...] = PUBLIC_SOURCES) -> Actor:
    """The reader behind anonymous output: no role that acts, and only the cases of these sources."""
    return Actor(None, "公众 public", "public", sources=sources)


@dataclass(frozen=True)
class Transition:
    """One action: the states it starts from, the state it leads to, who may do it and its deadline."""

    action: str
    sources: tuple[str, ...]
    target: str | None  # None: the state stays (a recorded action such as an extension request)
    roles: tuple[str, ...]
    scope: str = "all"  # "cell": the actor's cells; "unit": cases dispatched to the actor's unit
    step: str | None = None  # the step whose limit sets the new deadline; "" clears it; None keeps it
    note_required: bool = False


_WORKING = ("dispatched", "rework")
_OPEN_WORK = ("registered", "dispatched", "rework", "returned")
TRANSITIONS: dict[str, Transition] = {
    t.action: t
    for t in (
        Transition("verify", ("reported",), "verified", ("supervisor",), "cell", "register"),
        Transition("propose_register", ("reported", "verified"), None, ("receiver",)),
        Transition("propose_reject", ("reported", "verified"), None, ("receiver",), note_required=True),
        Transition("register", ("reported", "verified"), "registered", ("shift_leader",), step="dispatch"),
        Transition("reject", ("reported", "verified"), "rejected", ("shift_leader",), step="", note_required=True),
        Transition("dispatch", ("registered", "returned"), "dispatched", ("dispatcher",), step="handle"),
        Transition("return", ("dispatched",), "returned", ("unit_handler",), "unit", "dispatch", True),
        Transition("handle", _WORKING, "handled", ("unit_handler",), "unit", "check", True),
        Transition("check_pass", ("handled",), "checked", ("supervisor",), "cell", "close"),
        Transition("check_fail", ("handled",), "rework", ("supervisor",), "cell", "handle", True),
        Transition("close", ("checked",), "closed", ("shift_leader",), step=""),
        Transition("request_extension", _WORKING, None, ("unit_handler",), "unit", note_required=True),
        Transition("approve_extension", _WORKING, None, ("shift_leader",)),
        Transition("refuse_extension", _WORKING, None, ("shift_leader",), note_required=True),
        Transition("suspend", _OPEN_WORK, "suspended", ("shift_leader",), step="", note_required=True),
        Transition("defer", _OPEN_WORK, "deferred", ("shift_leader",), step="", note_required=True),
        Transition("resume", PAUSED, None, ("shift_leader",)),
        Transition("self_handle", ("reported",), "closed", ("supervisor",), "cell", "", True),
    )
}


@dataclass
class Settings:
    """Workflow settings a bureau may change."""

    close_on_check: bool = False  # a passed check closes the case directly (no separate 结案 step)


@dataclass
class Outcome:
    """What a transition did."""

    case_id: int
    action: str
    from_state: str
    to_state: str
    deadline: datetime | None
    event_id: int
    data: dict = field(default_factory=dict)


def actor_for(conn: Connection, user_id: int) -> Actor:
    """The actor behind a user account."""
    row = conn.execute(
        text("""
        SELECT u.id, p.name, u.role, p.id AS person_id, p.unit_id FROM users u JOIN people p ON p.id = u.person_id
        WHERE u.id = :u AND u.active
    """),
        {"u": user_id},
    ).first()
    if row is None:
        raise NotFound(f"no active user {user_id}")
    return Actor(row.id, row.name, row.role, row.person_id, row.unit_id)


# the cells a supervisor answers for: their duty grids, and cells naming them as supervisor
SUPERVISOR_CELLS = """
    SELECT dc.cell_id FROM duty_grid_cells dc JOIN duty_grids g ON g.id = dc.duty_grid_id
    WHERE g.supervisor_id = :scope_person
    UNION SELECT cp.cell_id FROM cell_people cp WHERE cp.person_id = :scope_person AND cp.post = 'supervisor'
"""


def scope_filter(actor: Actor, alias: str = "f") -> tuple[str, dict]:
    """SQL condition (and its parameters) limiting cases to those the actor may see."""
    if actor.role == "supervisor":
        return f"{alias}.cell_id IN ({SUPERVISOR_CELLS})", {"scope_person": actor.person_id}
    if actor.role == "unit_handler":
        return f"{alias}.unit_id = :scope_unit", {"scope_unit": actor.unit_id}
    if actor.role == "public":
        return f"{alias}.source = ANY(CAST(:scope_sources AS text[]))", {"scope_sources": list(actor.sources)}
    return "true", {}


def visible(conn: Connection, actor: Actor, case_id: int) -> bool:
    """Whether the actor may see this case (pages and the API answer 404 otherwise)."""
    cond, params = scope_filter(actor)
    return bool(
        conn.execute(text(f"SELECT 1 FROM cases f WHERE f.id = :id AND {cond}"), {"id": case_id, **params}).scalar()
    )


def allowed_actions(conn: Connection, actor: Actor, case: dict) -> list[str]:
    """The actions this actor may take on this case now (for buttons and the API)."""
    out = []
    # a stand-in for what a form would supply: any unit (a registered case has none yet), a limit, photos
    probe = {"limit": "1d", "unit_id": case.get("unit_id") or -1, "photos": ["x", "y"]}
    for t in TRANSITIONS.values():
        try:
            check(actor, case, t, _in_scope(conn, actor, case, t.scope), note="x", data=probe)
        except GridmgrError:
            continue
        out.append(t.action)
    return out


def _load(conn: Connection, case_id: int) -> dict:
    row = (
        conn.execute(
            text("""
        SELECT f.id, f.case_no, f.status, f.source, f.category_code, f.urgency, f.cell_id, f.unit_id,
               f.deadline, f.deadline_step, f.step_started_at, f.reporter_user_id, f.extension_request,
               f.resume_state, f.reported_at, f.rework_count
        FROM cases f WHERE f.id = :id FOR UPDATE
    """),
            {"id": case_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no case {case_id}")
    return dict(row)


def _in_scope(conn: Connection, actor: Actor, case: dict, scope: str) -> bool:
    if scope == "cell":
        return bool(
            conn.execute(
                text(f"SELECT 1 WHERE :cell IN ({SUPERVISOR_CELLS})"),
                {"cell": case["cell_id"], "scope_person": actor.person_id},
            ).scalar()
        )
    if scope == "unit":
        return case["unit_id"] is not None and case["unit_id"] == actor.unit_id
    return True


def check(actor: Actor, case: dict, t: Transition, in_scope: bool, note: str | None, data: dict) -> None:
    """Raise WorkflowError (or Forbidden) unless this actor may take this action on this case now."""
    name = f"case {case['case_no']}"
    if case["status"] not in t.sources:
        raise WorkflowError(
            f"{name} is {case['status']} ({zh(case['status'])}): "
            f"'{t.action}' is allowed only from {', '.join(t.sources)}"
        )
    if actor.role != "system" and actor.role not in t.roles:
        raise Forbidden(f"{name}: '{t.action}' is for {', '.join(t.roles)}, not {actor.role}")
    if actor.role != "system" and not in_scope:
        where = "cells of your duty grid" if t.scope == "cell" else "cases dispatched to your unit"
        raise Forbidden(f"{name}: '{t.action}' only on {where}")
    if t.note_required and not (note or "").strip():
        raise InputError(f"{name}: '{t.action}' needs a note (reason or result)", field="note")
    if t.action == "register" and case["status"] == "reported" and case["source"] in NEEDS_VERIFY:
        raise WorkflowError(f"{name} came from {case['source']}: a supervisor verifies it on site (核实) first")
    if t.action == "self_handle":
        if case["source"] != "supervisor" or (actor.user_id and case["reporter_user_id"] != actor.user_id):
            raise WorkflowError(f"{name}: only the supervisor who reported it may handle it on the spot (自行处置)")
        if len(data.get("photos") or []) < 2:
            raise InputError(f"{name}: self-handling needs a before and an after photo", field="photos")
    if t.action == "request_extension":
        if case["extension_request"]:
            raise WorkflowError(f"{name} already has an extension request waiting")
        _limit_text(data.get("limit"), name)
    if t.action in ("approve_extension", "refuse_extension") and not case["extension_request"]:
        raise WorkflowError(f"{name} has no extension request to decide")
    if t.action == "dispatch" and not data.get("unit_id"):
        raise InputError(f"{name}: no unit to dispatch to (no rule matched and the cell has no owner)", field="unit_id")


def _limit_text(value: Any, name: str) -> str:
    from gridmgr.cases.workcalendar import parse_limit

    try:
        parse_limit(str(value))
    except ValueError:
        raise InputError(f"{name}: {value!r} is not a time limit such as 4h or 2d", field="limit") from None
    return str(value)


def step_limit(conn: Connection, category: str, step: str, urgency: str = "normal") -> str:
    """The time limit of a step for a category (the urgent handling limit for urgent cases)."""
    column = STEP_LIMIT[step]
    if step == "handle" and urgency == "urgent":
        column = "COALESCE(handle_limit_urgent, handle_limit)"
    limit = conn.execute(text(f"SELECT {column} FROM categories WHERE code = :c"), {"c": category}).scalar()
    return limit or DEFAULT_LIMIT[step]


def transition(
    case: dict,
    t: Transition,
    actor: Actor,
    *,
    now: datetime,
    calendar: WorkCalendar,
    limit: Callable[[str], str],
    in_scope: bool,
    note: str | None = None,
    data: dict | None = None,
    settings: Settings | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pure heart of a transition: check it, then return (updates to the case, the audit event).

    `limit(step)` gives the time limit of a step for this case (category and urgency); `in_scope`
    says whether the case lies in the actor's cells or unit. No database: `apply` and the demo's
    bulk history both go through here, so they cannot disagree.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    settings = settings or Settings()
    data = dict(data or {})
    check(actor, case, t, in_scope, note, data)
    target, step = t.target or case["status"], t.step
    updates: dict[str, Any] = {}
    if t.action == "check_pass" and settings.close_on_check:
        target, step = "closed", ""
    if t.action == "resume":
        target = case["resume_state"] or "registered"
        step = STATE_STEP.get(target)
        updates["resume_state"] = None
    if target in PAUSED:
        updates["resume_state"] = case["status"]
    if t.action == "dispatch":
        updates["unit_id"] = data["unit_id"]
    if t.action == "check_fail":
        updates["rework_count"] = (case.get("rework_count") or 0) + 1
    if t.action == "self_handle":
        updates["self_handled"] = True
    if t.action == "request_extension":
        updates["extension_request"] = {"limit": data["limit"], "note": note, "at": now.isoformat()}
    if t.action in ("approve_extension", "refuse_extension"):
        updates["extension_request"] = None
    deadline = case["deadline"]
    if step == "":
        deadline = None
        updates.update(deadline=None, deadline_step=None, step_started_at=None)
    elif step is not None:
        deadline = calendar.add_working_time(now, limit(step))
        updates.update(deadline=deadline, deadline_step=step, step_started_at=now)
    if t.action == "approve_extension":
        # approval moves the deadline on by the requested working time (延期)
        deadline = calendar.add_working_time(case["deadline"] or now, case["extension_request"]["limit"])
        updates["deadline"] = deadline
        data["limit"] = case["extension_request"]["limit"]
    updates["status"] = target
    event = {
        "action": t.action,
        "from_state": case["status"],
        "to_state": target,
        "at": now,
        "note": note,
        "unit_id": data.get("unit_id") if t.action == "dispatch" else None,
        "deadline_before": case["deadline"],
        "deadline_after": deadline,
        "photos": data.get("photos") or [],
        "data": {k: v for k, v in data.items() if k != "photos"},
    }
    return updates, event


def apply(
    conn: Connection,
    actor: Actor,
    case_id: int,
    action: str,
    *,
    now: datetime,
    calendar: WorkCalendar,
    note: str | None = None,
    data: dict | None = None,
    settings: Settings | None = None,
) -> Outcome:
    """Take one action on a case in the caller's transaction (see the module docstring)."""
    t = TRANSITIONS.get(action)
    if t is None:
        raise InputError(f"unknown action {action!r}; known: {', '.join(TRANSITIONS)}", field="action")
    data = dict(data or {})
    case = _load(conn, case_id)
    if action == "dispatch" and not data.get("unit_id"):
        from gridmgr.cases.dispatch import resolve

        data["unit_id"], data["dispatch_rule"] = resolve(conn, case["category_code"], case["cell_id"])
    updates, event = transition(
        case,
        t,
        actor,
        now=now,
        calendar=calendar,
        in_scope=_in_scope(conn, actor, case, t.scope),
        limit=lambda step: step_limit(conn, case["category_code"], step, case["urgency"]),
        note=note,
        data=data,
        settings=settings,
    )
    # the event first: a case's status changes only with its event (migration 0013's trigger)
    event_id = record(
        conn,
        case_id,
        actor,
        action,
        event["from_state"],
        event["to_state"],
        now,
        note=note,
        unit_id=event["unit_id"],
        deadline_before=event["deadline_before"],
        deadline_after=event["deadline_after"],
        photos=event["photos"],
        data=event["data"],
    )
    _update_case(conn, case_id, updates)
    return Outcome(
        case_id, action, event["from_state"], event["to_state"], event["deadline_after"], event_id, event["data"]
    )


def _update_case(conn: Connection, case_id: int, updates: dict[str, Any]) -> None:
    import json

    sets: list[str] = []
    params: dict[str, Any] = {"id": case_id}
    for k, v in updates.items():
        if k == "extension_request":
            sets.append(f"{k} = CAST(:{k} AS jsonb)")
            params[k] = None if v is None else json.dumps(v, ensure_ascii=False)
        else:
            sets.append(f"{k} = :{k}")
            params[k] = v
    conn.execute(text(f"UPDATE cases SET {', '.join(sets)} WHERE id = :id"), params)


def record(
    conn: Connection,
    case_id: int,
    actor: Actor,
    action: str,
    from_state: str | None,
    to_state: str,
    at: datetime,
    *,
    note: str | None = None,
    unit_id: int | None = None,
    deadline_before: datetime | None = None,
    deadline_after: datetime | None = None,
    photos: list[str] | None = None,
    data: dict | None = None,
) -> int:
    """Append one audit row (the only way `case_events` is written)."""
    import json

    return conn.execute(
        text("""
        INSERT INTO case_events (case_id, at, action, from_state, to_state, user_id, actor, role, note, unit_id,
                                 deadline_before, deadline_after, photos, data)
        VALUES (:c, :at, :a, :f, :t, :u, :actor, :role, :note, :unit, :db, :da, :photos, CAST(:data AS jsonb))
        RETURNING id
    """),
        {
            "c": case_id,
            "at": at,
            "a": action,
            "f": from_state,
            "t": to_state,
            "u": actor.user_id,
            "actor": actor.name,
            "role": actor.role,
            "note": note,
            "unit": unit_id,
            "db": deadline_before,
            "da": deadline_after,
            "photos": photos or [],
            "data": json.dumps(data or {}, ensure_ascii=False, default=str),
        },
    ).scalar_one()  # INSERT ... VALUES ... RETURNING: one row


def first_step(source: str) -> str:
    """The step a new case waits for: verification for public and hotline reports, else registration."""
    return "verify" if source in NEEDS_VERIFY else "register"


def replay(conn: Connection, case_id: int) -> str | None:
    """The state a case's events lead to (must equal the stored state)."""
    return conn.execute(
        text("SELECT to_state FROM case_events WHERE case_id = :c ORDER BY at DESC, id DESC LIMIT 1"), {"c": case_id}
    ).scalar()
