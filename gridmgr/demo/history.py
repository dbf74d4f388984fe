"""A year of case histories for the demo: every imported case driven through the real workflow, in bulk.

The demo imports its cases as `reported`, each with one `report` event. This module gives them the lives
a district's cases have: verified, registered, dispatched, handled, checked and closed, with the side
roads (rejected, returned and re-dispatched, extended, reworked, suspended, deferred, self-handled).
Every action goes through `gridmgr.cases.workflow.transition()`, the pure heart of `apply()`, so the same
checks and deadlines hold; only the database work is done in bulk (one read of everything, one COPY of
the events, one UPDATE of the cases), because 50,000 cases at several round trips per action would take
far too long. Deterministic for a seed: each case draws from its own generator, seeded by the case number.
"""

from __future__ import annotations

import io
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from time import perf_counter
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.cases.dispatch import RESOLVE
from gridmgr.cases.workcalendar import WorkCalendar, parse_limit
from gridmgr.cases.workflow import (
    DEFAULT_LIMIT,
    NEEDS_VERIFY,
    STEP_LIMIT,
    TERMINAL,
    TRANSITIONS,
    Actor,
    first_step,
    transition,
)
from gridmgr.errors import InputError

DESK_ROLES = ("receiver", "dispatcher", "shift_leader")
# Shares (of the cases that reach the point where they apply), set so the year lands in docs/domain.md §6 and
# §9: closure 85–92 %, on time ~80 %, rework < 1 %, ~20 % of supervisor reports self-handled.
SELF_HANDLE = 0.24  # of supervisor reports of simple problems (Zhanjiang: up to half)
NOT_SIMPLE = ("0101", "0116")  # illegal construction and cooking fumes need enforcement, not a supervisor
REJECT = {
    "supervisor": 0.012,
    "video": 0.03,
    "leader": 0.0,
    "public": 0.12,
    "hotline_12319": 0.1,
    "hotline_12345": 0.1,
    "rule": 0.02,
}
PROPOSE = 0.6  # the receiver pre-registers (受理) before the shift leader decides
RETURN, EXTEND, REFUSE, REWORK = 0.035, 0.037, 0.15, 0.009
SUSPEND, DEFER, RESUME = 0.02, 0.006, 0.35
LATE = {"verify": 0.04, "register": 0.03, "dispatch": 0.03, "handle": 0.1, "check": 0.04, "close": 0.03}
# still open at the anchor: many of the last days' cases, a few older ones stuck with their unit (超期待处置)
OPEN_RECENT, OPEN_DAYS, OPEN_STUCK = 0.6, 5.0, 0.08
STUCK_STATES = ("dispatched", "returned", "rework")
RE_DISPATCH = ("territorial", "enforcement", "sanitation", "maintenance")
NOTES = {
    "reject": ("不属于城管受理范围", "重复上报，已并案", "现场未发现问题"),
    "return": ("非本单位职责，请改派", "问题位置不在本单位养护范围"),
    "suspend": ("需统筹解决，本季度无法处置（挂账）", "冬季无法施工，挂账待来年处置"),
    "defer": ("涉及规划调整，暂缓办理（缓办）", "待产权单位确认后办理（缓办）"),
    "request_extension": ("需协调设备与人员，申请延期", "工程量大，申请延期"),
    "refuse_extension": ("理由不充分，请按期处置",),
}
# the cases the demo imported and nothing has driven yet: a case the workflow has touched, or one
# reported through gridmgr.cases.intake, always has the step its deadline is for
PENDING = """
    f.status = 'reported' AND f.deadline_step IS NULL
    AND NOT EXISTS (SELECT 1 FROM case_events e WHERE e.case_id = f.id AND e.action <> 'report')
"""
CASE_COLUMNS = (
    "id",
    "case_no",
    "status",
    "source",
    "category_code",
    "urgency",
    "cell_id",
    "unit_id",
    "deadline",
    "deadline_step",
    "step_started_at",
    "reporter_user_id",
    "extension_request",
    "resume_state",
    "reported_at",
    "rework_count",
)
UPDATE_COLUMNS = {
    "status": "text",
    "deadline": "timestamptz",
    "deadline_step": "text",
    "step_started_at": "timestamptz",
    "unit_id": "bigint",
    "reporter_user_id": "bigint",
    "self_handled": "boolean",
    "rework_count": "integer",
    "extension_request": "jsonb",
    "resume_state": "text",
}
EVENT_COLUMNS = (
    "case_id",
    "at",
    "action",
    "from_state",
    "to_state",
    "user_id",
    "actor",
    "role",
    "note",
    "unit_id",
    "deadline_before",
    "deadline_after",
    "photos",
    "data",
)


@dataclass
class HistorySummary:
    """What drive_histories did: cases driven, their final states, events written, time taken."""

    cases: int
    events: int
    states: dict[str, int]
    self_handled: int
    overdue: int  # open cases whose deadline has passed at the anchor
    seconds: float

    def line(self) -> str:
        """One line for the demo loader's progress."""
        states = ", ".join(f"{n:,} {s}" for s, n in sorted(self.states.items(), key=lambda kv: -kv[1]))
        return (
            f"case histories: {self.cases:,} cases, {self.events:,} events ({states}; "
            f"{self.self_handled:,} self-handled, {self.overdue:,} open overdue) in {self.seconds:.1f} s"
        )


@dataclass
class _Cast:
    """Who acts: the desk (receiver, dispatcher, shift leader), each cell's supervisor, each unit's staff."""

    desk: dict[str, Actor]
    supervisor: dict[int, Actor]
    scope: set[tuple[int, int]]  # (person, cell) pairs of SUPERVISOR_CELLS
    handlers: dict[int, list[Actor]]
    duties: dict[int, dict[str, int]]  # cell → duty → unit, for re-dispatch after a return


class _Stop(Exception):
    """The next action would happen after the anchor: the case stays where it is."""


def drive_histories(
    conn: Connection,
    *,
    anchor: date,
    seed: int,
    calendar: WorkCalendar,
    progress: Callable[[str], None] = lambda msg: None,
) -> HistorySummary:
    """Drive every pending demo case through the workflow up to the anchor's 18:00, in the caller's transaction."""
    started = perf_counter()
    cases = [
        dict(r)
        for r in conn.execute(
            text(
                f"SELECT {', '.join('f.' + c for c in CASE_COLUMNS)} FROM cases f WHERE {PENDING} ORDER BY f.id FOR UPDATE OF f"
            )
        ).mappings()
    ]
    if not cases:
        return HistorySummary(0, 0, {}, 0, 0, perf_counter() - started)
    horizon = datetime.combine(anchor, time(18, 0), ZoneInfo(calendar.hours.zone))
    # "recent" counts back from the last report, not from the anchor: the demo's year of reports ends
    # with the month before the anchor's, and its last days are the ones a desk still has open
    last = min(horizon, max(c["reported_at"] for c in cases))
    world = _World(conn, calendar, horizon, last, seed)
    progress(
        f"案件流转 case histories: {len(cases):,} imported cases through the workflow, up to {horizon:%Y-%m-%d %H:%M}"
    )
    updates: list[dict] = []
    events: list[tuple[int, dict, Actor]] = []
    for i, case in enumerate(cases, 1):
        final, story = world.drive(case)
        updates.append(final)
        events += ((case["id"], e, a) for e, a in story)
        if i % 10_000 == 0 or i == len(cases):
            progress(f"  {i:,}/{len(cases):,} cases simulated, {len(events):,} events")
    progress(f"  writing {len(events):,} events and {len(updates):,} cases")
    _write(conn, updates, events)
    open_ = [u for u in updates if u["status"] not in TERMINAL]
    return HistorySummary(
        len(cases),
        len(events),
        dict(Counter(u["status"] for u in updates)),
        sum(u["self_handled"] for u in updates),
        sum(1 for u in open_ if u["deadline"] is not None and u["deadline"] < horizon),
        perf_counter() - started,
    )


class _World:
    """Everything a case's story needs, read once: limits, dispatch targets, people, the clock's bounds."""

    def __init__(self, conn: Connection, calendar: WorkCalendar, horizon: datetime, last: datetime, seed: int):
        self.calendar, self.horizon, self.last, self.seed = calendar, horizon, last, seed
        self.categories = {r.code: r for r in conn.execute(text("SELECT * FROM categories"))}
        self.targets = _dispatch_targets(conn)
        self.cast = _cast(conn)
        self._limits: dict[tuple[str, str], dict[str, str]] = {}

    def limits(self, category: str, urgency: str) -> dict[str, str]:
        """Every step's time limit for a category and urgency, as `workflow.step_limit` gives them."""
        key = (category, urgency)
        if key not in self._limits:
            row = self.categories[category]
            out = {}
            for step, column in STEP_LIMIT.items():
                value = getattr(row, column)
                if step == "handle" and urgency == "urgent":
                    value = row.handle_limit_urgent or value
                out[step] = value or DEFAULT_LIMIT[step]
            self._limits[key] = out
        return self._limits[key]

    def in_scope(self, actor: Actor, case: dict, scope: str) -> bool:
        """`workflow._in_scope` against the preloaded duty grids."""
        if scope == "cell":
            return (actor.person_id, case["cell_id"]) in self.cast.scope
        if scope == "unit":
            return case["unit_id"] is not None and case["unit_id"] == actor.unit_id
        return True

    def drive(self, case: dict) -> tuple[dict, list[tuple[dict, Actor]]]:
        """One case's story: its final row and its events (with who acted)."""
        rng = random.Random(f"{self.seed}:{case['case_no']}")
        sup = self.cast.supervisor.get(case["cell_id"])
        if case["source"] == "supervisor" and case["reporter_user_id"] is None and sup is not None:
            case["reporter_user_id"] = sup.user_id  # the cell's supervisor reported it
        step = first_step(case["source"])
        limits = self.limits(case["category_code"], case["urgency"])
        case.update(
            deadline=self.calendar.add_working_time(case["reported_at"], limits[step]),
            deadline_step=step,
            step_started_at=case["reported_at"],
            self_handled=False,
        )
        age = (self.last - case["reported_at"]).total_seconds() / 86400
        p_open = OPEN_RECENT * math.exp(-max(age, 0) / OPEN_DAYS)
        stays_open = rng.random() < p_open + (1 - p_open) * OPEN_STUCK
        story = _Story(self, case, rng, limits, sup, keep=stays_open)
        try:
            story.run()
        except _Stop:
            pass
        if stays_open and not case["self_handled"]:
            states = STUCK_STATES if age > 14 else None
            cuts = [
                k
                for k, s in enumerate(story.snapshots)
                if s["status"] not in TERMINAL and (states is None or s["status"] in states)
            ]
            if cuts:
                k = cuts[rng.randrange(len(cuts))]
                return story.snapshots[k], story.events[:k]
        return story.case, story.events


class _Story:
    """One case's history as it is written: each action through transition(), the clock always forward."""

    def __init__(
        self, world: _World, case: dict, rng: random.Random, limits: dict[str, str], sup: Actor | None, keep: bool
    ):
        self.world, self.case, self.rng, self.limits, self.sup = world, case, rng, limits, sup
        self.desk, self.cal = world.cast.desk, world.calendar
        self.now: datetime = case["reported_at"]
        self.events: list[tuple[dict, Actor]] = []
        self.snapshots: list[dict] = [dict(case)] if keep else []
        self.keep = keep

    # ---------------------------------------------------------------------------------- the clock
    def _hours(self, step: str) -> float:
        amount, unit = parse_limit(self.limits[step])
        return amount * (self.cal.hours.per_day.total_seconds() / 3600 if unit == "d" else 1)

    def _after(self, start: datetime, hours: float) -> datetime:
        """`hours` of working time after `start` (at least about a minute), to the next whole second."""
        at = self.cal.add_working_time(start, f"{max(hours, 0.02):.4f}h")
        return at.replace(microsecond=0) + timedelta(seconds=1) if at.microsecond else at

    def soon(self, step: str, low: float = 0.03, high: float = 0.3) -> datetime:
        """A quick desk action: a small share of a step's limit after the last action."""
        return self._after(self.now, self._hours(step) * self.rng.uniform(low, high))

    def pace(self) -> datetime:
        """When the step the case waits for is done: mostly before its deadline, sometimes late."""
        step, deadline = self.case["deadline_step"], self.case["deadline"]
        if self.rng.random() < LATE[step]:
            return self._after(max(deadline, self.now), self._hours(step) * (0.05 + self.rng.expovariate(2.0)))
        left = self.cal.working_seconds_between(self.now, deadline) / 3600
        if left <= 0.05:
            return self._after(self.now, 0.05)
        return self._after(self.now, left * (0.03 + 0.92 * self.rng.betavariate(1.1, 4.5)))

    # ---------------------------------------------------------------------------------- acting
    def act(self, action: str, actor: Actor, at: datetime, note: str | None = None, data: dict | None = None) -> None:
        if at > self.world.horizon:
            raise _Stop
        t = TRANSITIONS[action]
        updates, event = transition(
            self.case,
            t,
            actor,
            now=at,
            calendar=self.cal,
            limit=self.limits.__getitem__,
            in_scope=self.world.in_scope(actor, self.case, t.scope),
            note=note,
            data=data,
        )
        self.case.update(updates)
        self.events.append((event, actor))
        if self.keep:
            self.snapshots.append(dict(self.case))
        self.now = at

    def note(self, action: str) -> str:
        return self.rng.choice(NOTES[action])

    def run(self) -> None:
        """The whole story; an action past the anchor raises _Stop and the case stays where it got to."""
        case, rng = self.case, self.rng
        category = self.world.categories[case["category_code"]]
        done = category.close_condition or "处置完毕"
        if (
            case["source"] == "supervisor"
            and self.sup is not None
            and category.kind == "event"
            and case["category_code"] not in NOT_SIMPLE
            and case["urgency"] == "normal"
            and rng.random() < SELF_HANDLE
        ):
            at = case["reported_at"] + timedelta(minutes=rng.uniform(5, 40))
            photos = [f"demo/{when}-{case['case_no']}.jpg" for when in ("before", "after")]
            self.act(
                "self_handle",
                self.sup,
                at.replace(microsecond=0),
                note=f"监督员现场自行处置：{done}",
                data={"photos": photos},
            )
        elif self.registered(category.register_condition):
            self.dispatched()
            self.extension()
            self.act("handle", self.handler(), self.pace(), note=f"已处置：{done}")
            while rng.random() < REWORK and case["rework_count"] < 2:
                self.act("check_fail", cast(Actor, self.sup), self.pace(), note=f"现场核查未达结案条件：{done}")
                self.act("handle", self.handler(), self.pace(), note=f"返工完成：{done}")
            self.act("check_pass", cast(Actor, self.sup), self.pace())
            self.act("close", self.desk["shift_leader"], self.pace())

    def registered(self, condition: str | None) -> bool:
        """Verified when it must be, then registered (True) or rejected (False)."""
        desk, source = self.desk, self.case["source"]
        if source in NEEDS_VERIFY:
            if self.sup is None:  # nobody can verify it on site: the shift leader turns it down
                self.act("reject", desk["shift_leader"], self.soon("register"), note="所在位置无责任监督员，无法核实")
                return False
            self.act("verify", self.sup, self.pace())
        if self.rng.random() < REJECT.get(source, 0.02):
            note = self.note("reject")
            if self.rng.random() < 0.7:
                self.act("propose_reject", desk["receiver"], self.soon("register"), note=note)
            self.act("reject", desk["shift_leader"], self.pace(), note=note)
            return False
        if self.rng.random() < PROPOSE:
            self.act(
                "propose_register",
                desk["receiver"],
                self.soon("register"),
                note=f"符合立案条件：{condition}" if condition else None,
            )
        self.act("register", desk["shift_leader"], self.pace())
        return True

    def dispatched(self) -> None:
        """Dispatched by rule, perhaps returned and re-dispatched (改派), perhaps suspended or deferred."""
        case, rng, dispatcher = self.case, self.rng, self.desk["dispatcher"]
        unit, why = self.world.targets.get((case["category_code"], case["cell_id"]), (None, ""))
        if unit is None:
            raise _Stop  # no unit to send it to: it waits, registered
        self.act("dispatch", dispatcher, self.pace(), data={"unit_id": unit, "dispatch_rule": why})
        if rng.random() < RETURN:
            self.act("return", self.handler(), self.soon("handle", 0.02, 0.15), note=self.note("return"))
            duties = self.world.cast.duties.get(case["cell_id"], {})
            other = next((duties[d] for d in RE_DISPATCH if duties.get(d) not in (None, unit)), None)
            if other is None:
                raise _Stop
            self.act("dispatch", dispatcher, self.pace(), data={"unit_id": other, "dispatch_rule": "改派 re-dispatch"})
        pause = rng.random()
        if pause < SUSPEND + DEFER:
            action = "suspend" if pause < SUSPEND else "defer"
            self.act(action, self.desk["shift_leader"], self.soon("handle", 0.05, 0.4), note=self.note(action))
            if rng.random() >= RESUME:
                raise _Stop  # 挂账 or 缓办 for good
            back = self.now + timedelta(days=rng.uniform(20, 120))
            self.act("resume", self.desk["shift_leader"], back.replace(microsecond=0))

    def handler(self) -> Actor:
        staff = self.world.cast.handlers.get(self.case["unit_id"])
        if not staff or self.sup is None:  # nobody to handle it, or nobody to check it afterwards
            raise _Stop
        return staff[self.rng.randrange(len(staff))]

    def extension(self) -> None:
        """Sometimes the unit asks for more time (延期) before handling; the shift leader decides."""
        if self.rng.random() >= EXTEND:
            return
        left = self.cal.working_seconds_between(self.now, self.case["deadline"]) / 3600
        at = self._after(self.now, max(left, 0.1) * self.rng.uniform(0.4, 0.9))
        self.act(
            "request_extension",
            self.handler(),
            at,
            note=self.note("request_extension"),
            data={"limit": self.rng.choice(("1d", "2d", "3d", "5d"))},
        )
        if self.rng.random() < REFUSE:
            self.act(
                "refuse_extension",
                self.desk["shift_leader"],
                self.soon("close", 0.1, 0.8),
                note=self.note("refuse_extension"),
            )
        else:
            self.act("approve_extension", self.desk["shift_leader"], self.soon("close", 0.1, 0.8))


# ---------------------------------------------------------------------------------------------- reading


def _dispatch_targets(conn: Connection) -> dict[tuple[str, int | None], tuple[int | None, str]]:
    """`dispatch.resolve` for every (category, cell) of the pending cases, in one statement."""
    # the very query resolve() runs, with its parameters bound to each pair instead
    lateral = re.sub(
        r":(category|cell_id|cell_code)\b",
        lambda m: {"category": "p.category", "cell_id": "p.cell_id", "cell_code": "COALESCE(p.cell_code, '')"}[
            m.group(1)
        ],
        RESOLVE,
    )
    rows = conn.execute(
        text(f"""
        WITH p AS (SELECT DISTINCT f.category_code AS category, f.cell_id, g.code AS cell_code
                   FROM cases f LEFT JOIN grid_cells g ON g.id = f.cell_id WHERE {PENDING})
        SELECT p.category, p.cell_id, r.unit_id, r.rule_id, o.unit_id AS owner
        FROM p LEFT JOIN LATERAL ({lateral}) r ON true
        LEFT JOIN cell_units o ON o.cell_id = p.cell_id AND o.duty = 'territorial'
    """)
    )
    return {
        (r.category, r.cell_id): (r.unit_id, f"rule {r.rule_id}")
        if r.rule_id is not None
        else (r.owner, "territorial owner (属地兜底)")
        for r in rows
    }


def _cast(conn: Connection) -> _Cast:
    """The people who act, from the roster; those with an account act as their account."""
    accounts = {
        (r.person_id, r.role): r.id
        for r in conn.execute(text("SELECT id, person_id, role FROM users WHERE active ORDER BY id"))
    }
    people = {r.id: r for r in conn.execute(text("SELECT id, code, name, role, unit_id FROM people ORDER BY code"))}

    def actor(person_id: int, role: str) -> Actor:
        p = people[person_id]
        return Actor(accounts.get((person_id, role)), p.name, role, p.id, p.unit_id)

    desk = {}
    for role in DESK_ROLES:
        holder = next((pid for (pid, r) in accounts if r == role), None)
        if holder is not None:
            desk[role] = actor(holder, role)
    if len(desk) < len(DESK_ROLES):
        # the command centre: the unit with the most staff among those no cell or rule sends work to
        staff = [
            r.id
            for r in conn.execute(
                text("""
            SELECT p.id FROM people p JOIN units u ON u.id = p.unit_id,
                 LATERAL (SELECT count(*) AS n FROM people q WHERE q.unit_id = u.id AND q.role = 'staff') k
            WHERE p.role = 'staff'
            ORDER BY (EXISTS (SELECT 1 FROM cell_units c WHERE c.unit_id = u.id)
                      OR EXISTS (SELECT 1 FROM dispatch_rules d WHERE d.unit_id = u.id)), k.n DESC, u.code, p.code
        """)
            )
        ]
        if not staff:
            raise InputError("the roster has no staff to act as receiver, dispatcher and shift leader")
        centre = [pid for pid in staff if people[pid].unit_id == people[staff[0]].unit_id]
        for i, role in enumerate(DESK_ROLES):
            desk.setdefault(role, actor(centre[i % len(centre)], role))
    # workflow.SUPERVISOR_CELLS for every person at once; the cell's own supervisor is its duty grid's
    pairs = conn.execute(
        text("""
        SELECT s.person_id, s.cell_id FROM (
            SELECT g.supervisor_id AS person_id, dc.cell_id, 0 AS pref, g.id AS grid
            FROM duty_grid_cells dc JOIN duty_grids g ON g.id = dc.duty_grid_id WHERE g.supervisor_id IS NOT NULL
            UNION ALL SELECT cp.person_id, cp.cell_id, 1, 0 FROM cell_people cp WHERE cp.post = 'supervisor') s
        ORDER BY s.cell_id, s.pref, s.grid, s.person_id
    """)
    ).all()
    supervisor: dict[int, Actor] = {}
    for person_id, cell_id in pairs:
        if cell_id not in supervisor:
            supervisor[cell_id] = actor(person_id, "supervisor")
    handlers: dict[int, list[Actor]] = {}
    for p in people.values():
        if p.role == "staff" and p.unit_id is not None:
            handlers.setdefault(p.unit_id, []).append(actor(p.id, "unit_handler"))
    duties: dict[int, dict[str, int]] = {}
    for cell_id, duty, unit_id in conn.execute(text("SELECT cell_id, duty, unit_id FROM cell_units")):
        duties.setdefault(cell_id, {})[duty] = unit_id
    return _Cast(desk, supervisor, {(p, c) for p, c in pairs}, handlers, duties)


# ---------------------------------------------------------------------------------------------- writing

_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def _copy_value(v: Any) -> str:
    """One field in COPY's text format (most are plain words, numbers and times: those go as they are)."""
    kind = type(v)
    if kind is str:
        return _COPY_SPECIAL.sub(lambda m: _COPY_ESCAPES[m.group()], v) if _COPY_SPECIAL.search(v) else v
    if v is None:
        return r"\N"
    if kind is int:
        return str(v)
    if kind is bool:
        return "t" if v else "f"
    if isinstance(v, datetime):
        return v.isoformat()
    if kind is dict:
        return _copy_value(json.dumps(v, ensure_ascii=False, default=str)) if v else "{}"
    if kind is list:  # a text[] of photo references
        return _copy_value("{" + ",".join('"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"' for p in v) + "}")
    return _copy_value(str(v))


_COPY_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _copy(conn: Connection, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    cursor = cast(Any, conn.connection.dbapi_connection).cursor()
    for start in range(0, len(rows), 50_000):
        buffer = io.StringIO()
        for row in rows[start : start + 50_000]:
            buffer.write("\t".join(map(_copy_value, row)) + "\n")
        buffer.seek(0)
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
    cursor.close()


def _write(conn: Connection, updates: list[dict], events: list[tuple[int, dict, Actor]]) -> None:
    """Append the events (COPY) and set every driven case's row (one UPDATE from a staged table)."""
    _copy(
        conn,
        "case_events",
        EVENT_COLUMNS,
        [
            (
                case_id,
                e["at"],
                e["action"],
                e["from_state"],
                e["to_state"],
                a.user_id,
                a.name,
                a.role,
                e["note"],
                e["unit_id"],
                e["deadline_before"],
                e["deadline_after"],
                e["photos"],
                e["data"],
            )
            for case_id, e, a in events
        ],
    )
    conn.execute(
        text(
            "CREATE TEMP TABLE demo_history (id bigint PRIMARY KEY, "
            + ", ".join(f"{c} {t}" for c, t in UPDATE_COLUMNS.items())
            + ") ON COMMIT DROP"
        )
    )
    _copy(conn, "demo_history", ("id", *UPDATE_COLUMNS), [(u["id"], *(u[c] for c in UPDATE_COLUMNS)) for u in updates])
    conn.execute(
        text(
            "UPDATE cases f SET "
            + ", ".join(f"{c} = h.{c}" for c in UPDATE_COLUMNS)
            + " FROM demo_history h WHERE f.id = h.id"
        )
    )
    conn.execute(text("DROP TABLE demo_history"))
