"""Figures a leader can trust: random case histories through the real workflow, the real report SQL, invariants.

Hypothesis writes histories of a few cases each: every action the workflow allows from a case's
state (returns, extensions asked before and after the deadline, suspensions and deferrals with their
resumes, reworks, self-handling, rejections), imported cases with no deadlines, and moments on the
deadlines themselves, on period boundaries and in the National Day holiday. Each example runs in a
savepoint of the test's transaction, rolled back after it. It then checks, for periods that cut
through the histories and every level of the report:

* the rules of `gridmgr.analytics.consistency`: every rate of the catalogue (`indicators.RATES`,
  whatever registered it) a share of one population case by case, every count with `parts` their
  sum, the report's figures the sums of the cases', a splitting level adding up to the total, every
  rate in [0, 1], and the cases the report reads giving the figures of reading every case;
* a finished period's figures do not change when the histories go on and the report is made later.

`make test` runs a fixed seed and a bounded number of examples; `pytest -m slow` runs many more.
Tianmen's published figures are checked in tests/test_indicators.py (test_tianmen_december_2016_exactly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import event as _event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from sqlalchemy import text

from gridmgr.analytics import consistency, indicators
from gridmgr.analytics.accountability import LEVELS, Period, case_figures, compute
from gridmgr.cases import workflow
from gridmgr.cases.intake import NewCase, report
from gridmgr.cases.workcalendar import WorkCalendar

TZ = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkCalendar.load()
START = datetime(2026, 9, 20, 0, 0, tzinfo=TZ)  # histories begin in late September …
SPLIT = datetime(2026, 11, 1, 0, 0, tzinfo=TZ)  # … the first report is made on 1 November …
LATER = date(2027, 1, 15)  # … and again when every history has gone on
# periods that cut through the histories: months, a week over the month's end and the holiday, a
# quarter, a range; those ending by SPLIT are finished when the first report is made
PERIODS = [Period.parse(p) for p in ("2026-09", "2026-10", "2026-W40", "2026-10-05..2026-10-20", "2026-11", "2026Q4")]
BOUNDARIES = sorted({p.start for p in PERIODS} | {p.end for p in PERIODS} | {datetime(2026, 10, 3, 10, tzinfo=TZ)})
# the actions a history may take (the proposals change nothing the figures read), each as many times
# as it weighs: steps forward come up more often than the detours that end or pause a history early
_DETOURS = {"reject", "self_handle", "suspend", "defer", "return", "refuse_extension"}
ACTIONS = [a for a in workflow.TRANSITIONS if not a.startswith("propose_") for _ in range(1 if a in _DETOURS else 3)]
NOTED = {a for a, t in workflow.TRANSITIONS.items() if t.note_required}


def event(what: str) -> None:
    """Count a kind of step in hypothesis' statistics (`pytest --hypothesis-show-statistics`)."""
    if currently_in_test_context():
        _event(what)


# ------------------------------------------------------------------------------------------ the histories

# how long until the next step: minutes, hours, days, exactly the deadline in force, a minute after
# it, or the next period boundary (a step at 00:00 of the 1st belongs to the new period)
gaps = st.one_of(
    st.tuples(st.just("minutes"), st.integers(1, 240)),
    st.tuples(st.just("days"), st.integers(1, 20)),
    st.tuples(st.sampled_from(["deadline", "after_deadline", "boundary"]), st.just(0)),
)


@dataclass
class Script:
    """One case's history: where and what, when it is reported, and its steps (choice, gap)."""

    cell: int
    category: str
    source: str
    urgency: str
    imported: bool
    reported: datetime
    steps: list[tuple[int, tuple[str, int]]]
    unit_choices: list[int] = field(default_factory=list)


scripts = st.builds(
    Script,
    cell=st.integers(0, 3),
    category=st.sampled_from(["0101", "0102", "0201", "0504"]),
    source=st.sampled_from(["supervisor", "supervisor", "public", "hotline_12345", "video"]),
    urgency=st.sampled_from(["normal", "normal", "urgent"]),
    imported=st.booleans(),
    reported=st.one_of(
        st.integers(0, 70 * 24 * 60).map(lambda m: START + timedelta(minutes=m)),
        st.sampled_from(BOUNDARIES).flatmap(lambda b: st.integers(-90, 90).map(lambda m: b + timedelta(minutes=m))),
    ),
    steps=st.lists(st.tuples(st.integers(0, 1000), gaps), min_size=2, max_size=16),
    unit_choices=st.lists(st.integers(0, 3), min_size=1, max_size=3),
)


class Run:
    """A case taking its steps through `gridmgr.cases.workflow.apply`, up to a moment and on from it."""

    def __init__(self, conn, script: Script, org: dict):
        self.conn, self.script, self.org = conn, script, org
        self.steps = list(script.steps)
        self.now = script.reported
        self.case_id: int | None = None
        self.pending: tuple[str, datetime] | None = None
        self.dispatches = 0

    def start(self) -> None:
        s = self.script
        cell = self.org["cells"][s.cell]
        if s.imported:
            # as `gridmgr layer import cases` writes a case: no deadline, its trail begins with the report
            self.case_id = self.conn.execute(
                text("""
                WITH ins AS (
                    INSERT INTO cases (geom, cell_id, case_no, category_code, source, urgency, reported_at)
                    SELECT ST_PointOnSurface(g.geom), g.id, 'P' || nextval('case_no_seq'), :cat, :src, :urg, :at
                    FROM grid_cells g WHERE g.id = :cell RETURNING id, reported_at)
                INSERT INTO case_events (case_id, at, action, from_state, to_state, actor, role, note)
                SELECT ins.id, ins.reported_at, 'report', NULL, 'reported', 'import', 'system', 'imported'
                FROM ins RETURNING case_id
            """),
                {"cat": s.category, "src": s.source, "urg": s.urgency, "at": s.reported, "cell": cell},
            ).scalar_one()
            event("imported case")
            return
        x, y = self.conn.execute(
            text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM grid_cells WHERE id = :c) q"),
            {"c": cell},
        ).one()
        place = NewCase(s.category, x, y, s.source, urgency=s.urgency)
        self.case_id = report(self.conn, workflow.SYSTEM, place, now=s.reported, calendar=CALENDAR)

    def _case(self) -> dict:
        return dict(
            self.conn.execute(
                text("SELECT status, source, deadline, extension_request FROM cases WHERE id = :i"), {"i": self.case_id}
            )
            .mappings()
            .one()
        )

    def _next(self) -> tuple[str, datetime] | None:
        """The next step this history takes from the case's state, and when; None at its end."""
        if self.pending is not None:
            return self.pending
        case = self._case()
        allowed = [a for a in ACTIONS if case["status"] in workflow.TRANSITIONS[a].sources]
        allowed = [a for a in allowed if _possible(a, case)]
        if not self.steps or not allowed:
            return None
        choice, (kind, n) = self.steps.pop(0)
        action = allowed[choice % len(allowed)]
        deadline = case["deadline"]
        if kind == "minutes":
            at = self.now + timedelta(minutes=n)
        elif kind == "days":
            at = self.now + timedelta(days=n)
        elif kind in ("deadline", "after_deadline") and deadline is not None and deadline > self.now:
            at = deadline + timedelta(minutes=1 if kind == "after_deadline" else 0)
            event(f"step {'just after' if kind == 'after_deadline' else 'on'} the deadline")
        else:
            later = [b for b in BOUNDARIES if b > self.now]
            at = later[0] if later else self.now + timedelta(hours=1)
            event("step on a period boundary")
        return action, at

    def advance(self, until: datetime | None) -> None:
        """Take the steps before `until` (all of them for None); the first one after waits."""
        while (step := self._next()) is not None:
            action, at = step
            if until is not None and at >= until:
                self.pending = (action, at)
                return
            self.pending = None
            self._apply(action, at)

    def _apply(self, action: str, at: datetime) -> None:
        data: dict = {}
        if action == "dispatch":
            units = list(self.org["units"].values())
            data["unit_id"] = units[self.script.unit_choices[self.dispatches % len(self.script.unit_choices)]]
            self.dispatches += 1
        if action == "request_extension":
            data["limit"] = "1d"
        if action == "self_handle":
            data["photos"] = ["before.jpg", "after.jpg"]
        workflow.apply(
            self.conn,
            workflow.SYSTEM,
            self.case_id,
            action,
            now=at,
            calendar=CALENDAR,
            note="理由 reason" if action in NOTED else None,
            data=data,
        )
        self.now = at
        event(f"action {action}")
        if not CALENDAR.is_working_day(at.date()):
            event("step on a holiday or weekend")


def _possible(action: str, case: dict) -> bool:
    """What `workflow.check` would refuse for reasons of the case's details, not its state."""
    if action == "register" and case["status"] == "reported" and case["source"] in workflow.NEEDS_VERIFY:
        return False
    if action == "self_handle" and case["source"] != "supervisor":
        return False
    if action == "request_extension" and case["extension_request"]:
        return False
    if action in ("approve_extension", "refuse_extension") and not case["extension_request"]:
        return False
    return True


# ------------------------------------------------------------------------------------------ the invariants


def check_populations(facts: dict[int, dict[str, int]], where: str) -> None:
    problems = consistency.population_problems(facts, where)
    assert not problems, "\n".join(problems[:10])


def check_report(conn, period: Period, today: date, facts: dict[int, dict[str, int]]) -> dict:
    """Every level's figures checked against the cases; returns them (with the hours) for comparing later."""
    every = [d.key for d in indicators.COUNTS]
    seen = {}
    for level in LEVELS:
        rep = compute(conn, period=period, level=level, today=today)
        problems = consistency.report_problems(rep, facts)
        assert not problems, "\n".join(problems[:10])
        seen[level] = [(row.code, {k: row[k] for k in every}) for row in (*rep.rows, rep.total)]
    return seen


def check_histories(conn, org, histories: list[Script]) -> None:
    runs = [Run(conn, s, org) for s in sorted(histories, key=lambda s: s.reported)]
    for r in runs:
        if r.script.reported < SPLIT:
            r.start()
            r.advance(SPLIT)
    first = {}
    for period in PERIODS:
        if period.end <= SPLIT:
            facts = case_figures(conn, period=period, today=SPLIT.date())
            check_populations(facts, f"{period} on {SPLIT.date()}")
            first[period] = check_report(conn, period, SPLIT.date(), facts)
    for r in runs:
        if r.case_id is None:
            r.start()
        r.advance(None)
    for period in PERIODS:
        facts = case_figures(conn, period=period, today=LATER)
        check_populations(facts, f"{period} on {LATER}")
        assert facts == case_figures(conn, period=period, today=LATER, every_case=True), (
            f"{period}: the cases read give other figures than every case"
        )
        figures = check_report(conn, period, LATER, facts)
        if period in first:
            assert figures == first[period], f"{period}: a finished period's figures changed when made later"


def _property(conn, org, histories) -> None:
    savepoint = conn.begin_nested()
    try:
        check_histories(conn, org, histories)
    finally:
        savepoint.rollback()


_SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@seed(20261207)
@settings(max_examples=25, derandomize=False, database=None, **_SETTINGS)
@given(histories=st.lists(scripts, min_size=1, max_size=8))
def test_figures_hold_over_random_histories(conn, org, histories):
    _property(conn, org, histories)


@pytest.mark.slow
@settings(max_examples=600, database=None, **_SETTINGS)
@given(histories=st.lists(scripts, min_size=1, max_size=16))
def test_figures_hold_over_many_random_histories(conn, org, histories):
    _property(conn, org, histories)


# ------------------------------------------------------------------------------ the check can fail


def test_a_rate_added_later_is_checked_too(conn, org):
    """A rate registered after the catalogue is held to the same rule: one across two periods fails it."""
    broken = indicators.Rate(
        "registered_per_report",
        "立案上报比",
        "registrations per report",
        "立案数 / 上报数",
        "registered",  # registered in the period: a flow over another flow, not a share of one population
        "reported",
        "本期立案数与本期上报数之比",
        "registrations in the period over reports in the period",
    )
    indicators.register(broken)
    try:
        late = Script(0, "0101", "supervisor", "normal", False, datetime(2026, 9, 30, 23, tzinfo=TZ), [], [0])
        run = Run(conn, late, org)
        run.start()
        run._apply("register", datetime(2026, 10, 8, 9, tzinfo=TZ))
        facts = case_figures(conn, period=Period.parse("2026-10"), today=LATER)
        with pytest.raises(AssertionError, match="registered_per_report is not a share of one population"):
            check_populations(facts, "2026-10")
        assert compute(conn, period=Period.parse("2026-10"), level="district", today=LATER).total[broken.key] is None
    finally:
        indicators.RATES.remove(broken)
        del indicators.BY_KEY[broken.key]


def test_registering_a_rate_on_unknown_counts_is_refused():
    with pytest.raises(ValueError, match="not a count of the catalogue"):
        indicators.register(
            indicators.Rate("x_rate", "x", "x", "x", "no_such_count", "reported", "x", "x"),
        )
    with pytest.raises(ValueError, match="defined twice"):
        indicators.register(indicators.BY_KEY["close_rate"])
