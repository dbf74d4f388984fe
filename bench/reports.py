"""Benchmark: the monthly report over 10⁶ cases with their histories — gridmgr's SQL against pandas.

    .venv/bin/python bench/accountability.py [--cases 1000000 | --quick] [--rounds 3] [--month 2026-10]

Data, in a database of this benchmark's own (gridmgr_bench_reports; another --cases, e.g.
--quick's 200,000: gridmgr_bench_reports_200000), built once and reused: the demo district (4,896 cells of
100 m) and its year of cases
driven through the workflow (~50,000 cases, ~285,000 events), then copies of the demo's finished
cases (closed or rejected) with their whole audit trail, each copy moved back by a further 24 weeks
(weekdays kept) with fresh ids and case numbers, until `cases` holds --cases: ten years of cases at
about twice the demo's rate, ~5.8 events each. Copied set-based (one INSERT … SELECT per copy and
table, in time order), then ANALYZE. Only the demo's own year has cases still open at the anchor:
a copied case is as finished as its original.

Measured in the same process, --rounds times each (medians):
- gridmgr: `gridmgr.analytics.accountability.compute(conn, period=<month>, level=…)` for level cell, unit and street —
  every indicator, rate and inventory column, rows for every cell or object;
- pandas: what one would write without gridmgr — `pd.read_sql` of every row of `cases` and
  `case_events` (the columns the indicators need) and of `grid_cells` and `units` (codes), then the same
  per-case facts, counting rules and aggregates in pandas, for the three levels from the one read.
Every figure of every row (counts, hours, rates) must be identical between the two, or the benchmark
fails. Targets (issue 7), at cell and unit level: under 1 s; ≥ 5× faster than the pandas way.
The month: --month, by default the last whole month before the demo's anchor. The same month one and
five years earlier is timed and checked too (--older; with --quick one year only): the report reads the
cases closed after a period's end to find those open at it, so its cost grows with the period's age.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
from sqlalchemy import text

# importable: common put the checkout on sys.path
from gridmgr.analytics import accountability, indicators
from gridmgr.analytics.accountability import Period

import common
from common import load_note, machine

FULL, QUICK = 1_000_000, 200_000
SHIFT_DAYS = 168  # 24 weeks between copies: weekdays stay weekdays
LEVELS = ("cell", "unit", "street")


# ------------------------------------------------------------------------------------------------ data


def _columns(conn, table: str, skip: tuple[str, ...]) -> list[str]:
    """The table's stored columns (generated ones left out), in order."""
    return [
        r[0]
        for r in conn.execute(
            text(
                "SELECT column_name FROM information_schema.columns WHERE table_name = :t AND is_generated = 'NEVER' "
                "ORDER BY ordinal_position"
            ),
            {"t": table},
        )
        if r[0] not in skip
    ]


def _shifted(cols: list[str], types: dict[str, str], alias: str) -> str:
    """The select list copying `cols` of `alias`, every timestamp moved back by :shift."""
    return ", ".join(
        f"{alias}.{c} - :shift" if types[c] == "timestamp with time zone" else f"{alias}.{c}" for c in cols
    )


def build_decade(eng, n: int) -> tuple[int, int]:
    """Copy the demo's finished cases and their events back in time until `cases` holds n rows; (cases, events)."""
    with eng.connect() as conn:
        have = conn.execute(text("SELECT count(*) FROM cases")).scalar()
        src_max = conn.execute(text("SELECT max(id) FROM cases WHERE case_no NOT LIKE 'R%'")).scalar()
    offset = 10 ** len(str(src_max))  # copy k's ids: the original's + k × offset
    k = 0
    while have < n:
        k += 1
        with eng.begin() as conn:
            if conn.execute(
                text("SELECT EXISTS (SELECT 1 FROM cases WHERE case_no LIKE :p)"), {"p": f"R{k:02d}%"}
            ).scalar():
                continue  # copied by an earlier run (each copy is one transaction)
            types = dict(
                conn.execute(
                    text(
                        "SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_name IN ('cases', 'case_events')"
                    )
                ).all()
            )
            shift = timedelta(days=k * SHIFT_DAYS)
            # the newest finished cases of the demo, as many as still wanted (the oldest copy is cut short)
            conn.execute(
                text(
                    "CREATE TEMP TABLE pick ON COMMIT DROP AS SELECT id FROM cases "
                    "WHERE id < :offset AND case_no NOT LIKE 'R%' AND status IN ('closed', 'rejected') "
                    "ORDER BY reported_at DESC, id LIMIT :m"
                ),
                {"offset": offset, "m": n - have},
            )
            ccols = _columns(conn, "cases", ("id", "case_no"))
            conn.execute(
                text(f"""
                INSERT INTO cases (id, case_no, {", ".join(ccols)})
                SELECT c.id + :k * :offset, 'R' || lpad(CAST(:k AS text), 2, '0') || c.case_no,
                       {_shifted(ccols, types, "c")}
                FROM cases c JOIN pick USING (id) ORDER BY c.reported_at, c.id"""),
                {"k": k, "offset": offset, "shift": shift},
            )
            ecols = _columns(conn, "case_events", ("id", "case_id"))
            conn.execute(
                text(f"""
                INSERT INTO case_events (case_id, {", ".join(ecols)})
                SELECT e.case_id + :k * :offset, {_shifted(ecols, types, "e")}
                FROM case_events e JOIN pick ON pick.id = e.case_id ORDER BY e.at, e.id"""),
                {"k": k, "offset": offset, "shift": shift},
            )
            have = conn.execute(text("SELECT count(*) FROM cases")).scalar()
        print(f"  · copy {k}: {SHIFT_DAYS * k} days back, {have:,} cases in all", flush=True)
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if k:
            conn.execute(text("SELECT setval('cases_id_seq', (SELECT max(id) FROM cases))"))
            print("  · VACUUM ANALYZE cases, case_events", flush=True)
            conn.execute(text("VACUUM ANALYZE cases"))
            conn.execute(text("VACUUM ANALYZE case_events"))
        events = conn.execute(text("SELECT count(*) FROM case_events")).scalar()
        return have, events


# ---------------------------------------------------------------------------------------------- pandas


def read_tables(eng) -> dict[str, pd.DataFrame]:
    """Every row of cases and case_events (the columns the indicators use), the cell and unit codes."""
    stamps = lambda *cols: {c: {"utc": True} for c in cols}
    with eng.connect() as conn:
        return {
            "cases": pd.read_sql(
                text("SELECT id, cell_id, category_code, urgency, reported_at FROM cases"),
                conn,
                parse_dates=stamps("reported_at"),
            ),
            "events": pd.read_sql(
                text(
                    "SELECT id, case_id, at, action, to_state, unit_id, deadline_before, "
                    "deadline_after FROM case_events"
                ),
                conn,
                parse_dates=stamps("at", "deadline_before", "deadline_after"),
            ),
            "cells": pd.read_sql(
                text("SELECT id, code, valid_from, valid_to FROM grid_cells"),
                conn,
                parse_dates=stamps("valid_from", "valid_to"),
            ),
            "units": pd.read_sql(text("SELECT id, code FROM units"), conn),
        }


def pandas_facts(t: dict[str, pd.DataFrame], period: Period, cutoff, days: int) -> pd.DataFrame:
    """One row per case reported before the cutoff with the facts of gridmgr.analytics.indicators' counting rules."""
    start, end, cutoff = (pd.Timestamp(x).tz_convert("UTC") for x in (period.start, period.end, cutoff))
    ev = t["events"][t["events"]["at"] < cutoff].sort_values(["case_id", "at", "id"])
    act, at = ev["action"], ev["at"]
    in_p = (at >= start) & (at < end)
    in_time = ev["deadline_before"].isna() | (at <= ev["deadline_before"])
    cases = t["cases"][t["cases"]["reported_at"] < cutoff].set_index("id")
    ids = cases.index

    def anyof(mask) -> np.ndarray:
        return ids.isin(ev.loc[mask, "case_id"].unique())

    def countof(mask) -> np.ndarray:
        return ev.loc[mask].groupby("case_id").size().reindex(ids, fill_value=0).to_numpy()

    last = ev.drop_duplicates("case_id", keep="last").set_index("case_id").reindex(ids)
    disp = act == "dispatch"
    last_disp = ev[disp].drop_duplicates("case_id", keep="last").set_index("case_id").reindex(ids)
    first_disp = (
        pd.DataFrame({"case_id": ev.loc[disp, "case_id"], "in_p": in_p[disp], "ok": (in_p & in_time)[disp]})
        .drop_duplicates("case_id", keep="first")
        .set_index("case_id")
        .reindex(ids)
    )

    # the handling clock: set by dispatch, extension or a resume into handling, cleared by a pause
    clk = ev[act.isin(["dispatch", "approve_extension", "suspend", "defer", "resume"])]
    cleared = clk["action"].isin(["suspend", "defer"]) | (
        (clk["action"] == "resume") & ~clk["to_state"].isin(["dispatched", "rework"])
    )
    due = clk["deadline_after"].mask(cleared)
    replaced = clk.groupby("case_id")["at"].shift(-1)
    falls = (due >= start) & (due < end) & (due < cutoff) & (replaced.isna() | (replaced > due))
    due_at = due[falls].groupby(clk.loc[falls, "case_id"]).max().reindex(ids)

    state_p = last["to_state"]  # NaN: no event before the cutoff
    handle_at = ev.loc[act == "handle"].groupby("case_id")["at"].max().reindex(ids)
    closed_in_p = ev.loc[(act == "close") & in_p].groupby("case_id")["at"].max().reindex(ids)
    rejected = anyof(act == "reject")
    rep = ((cases["reported_at"] >= start) & (cases["reported_at"] < end)).to_numpy()
    k = pd.DataFrame(index=ids)
    k["cell_id"] = cases["cell_id"]
    k["unit_id"] = last_disp["unit_id"]
    k["state"] = state_p.fillna("reported")
    k["rep"] = rep
    k["rejected"] = rejected
    k["self_handled"] = anyof(act == "self_handle")
    k["self_in_p"] = anyof((act == "self_handle") & in_p)
    k["registered"] = anyof(act == "register")
    k["ver_in_p"] = anyof((act == "verify") & in_p)
    k["ver_on_time"] = anyof((act == "verify") & in_p & in_time)
    k["reg_in_p"] = anyof((act == "register") & in_p)
    k["reg_on_time"] = anyof((act == "register") & in_p & in_time)
    k["disp_in_p"] = first_disp["in_p"].eq(True).to_numpy()
    k["disp_on_time"] = first_disp["ok"].eq(True).to_numpy()
    k["disp_correct"] = k["disp_in_p"] & ~anyof(act == "return")
    k["ret_in_p"] = anyof((act == "return") & in_p)
    k["due"] = due_at.notna().to_numpy()
    k["handled"] = state_p.isin(["handled", "checked", "closed"]).to_numpy()
    k["closed"] = (state_p == "closed").to_numpy()
    k["on_time"] = (handle_at <= due_at).fillna(False).astype(bool).to_numpy()
    k["open_work"] = state_p.isin(["registered", "dispatched", "returned", "rework"]).to_numpy()
    k["reworks"] = countof(act == "check_fail")
    k["extended"] = anyof(act == "approve_extension")
    k["susp_in_p"] = anyof((act == "suspend") & in_p)
    k["defer_in_p"] = anyof((act == "defer") & in_p)
    k["urgent"] = (cases["urgency"] == "urgent").to_numpy()
    checks = act.isin(["check_pass", "check_fail"]) & in_p
    k["checks"] = countof(checks)
    k["checks_on_time"] = countof(checks & in_time)
    k["close_us"] = (closed_in_p - cases["reported_at"]) // pd.Timedelta(microseconds=1)  # NaN: not closed
    k["overdue_now"] = (
        state_p.notna()
        & ~state_p.isin(["closed", "rejected", "suspended", "deferred"])
        & (last["deadline_after"] < cutoff)
    ).to_numpy()

    # recurrence: the case just before in the same cell and category (by time, then id), not rejected
    valid = cases.loc[~rejected & cases["cell_id"].notna(), ["cell_id", "category_code", "reported_at"]]
    valid = valid.reset_index().sort_values(["cell_id", "category_code", "reported_at", "id"])
    same = valid["cell_id"].eq(valid["cell_id"].shift()) & valid["category_code"].eq(valid["category_code"].shift())
    near = valid["reported_at"] - valid["reported_at"].shift() <= pd.Timedelta(days=days)
    again = valid.loc[same & near, "id"]
    k["recurrent"] = k["rep"] & ids.isin(again)
    return k


def pandas_counts(k: pd.DataFrame) -> pd.DataFrame:
    """Every count of gridmgr.analytics.indicators per case row (0/1, or a number of events): summed by any key."""
    due, handled, on_time = k["due"], k["handled"], k["on_time"]
    cols = {
        "reported": k["rep"],
        "valid_reported": k["rep"] & ~k["rejected"],
        "reported_rejected": k["rep"] & k["rejected"],
        "to_register": k["rep"] & ~k["self_handled"],
        "reports_registered": k["rep"] & k["registered"],
        "reports_undecided": k["rep"] & ~(k["registered"] | k["rejected"] | k["self_handled"]),
        "self_handled": k["self_in_p"],
        "verified": k["ver_in_p"],
        "verified_on_time": k["ver_on_time"],
        "registered": k["reg_in_p"],
        "registered_on_time": k["reg_on_time"],
        "dispatched": k["disp_in_p"],
        "dispatched_on_time": k["disp_on_time"],
        "dispatched_correctly": k["disp_correct"],
        "returned": k["ret_in_p"],
        "due_handle": due,
        "handled": due & handled,
        "handled_on_time": due & handled & on_time,
        "overdue_open": due & k["open_work"],
        "due_paused": due & k["state"].isin(["suspended", "deferred"]),
        "due_close": due,
        "closed": due & k["closed"],
        "closed_on_time": due & k["closed"] & on_time,
        "rework": due & (k["reworks"] > 0),
        "rework_times": k["reworks"].where(due, 0),
        "multi_rework": due & (k["reworks"] >= 3),
        "extended": due & k["extended"],
        "suspended": k["susp_in_p"],
        "suspended_end": k["state"] == "suspended",
        "deferred": k["defer_in_p"],
        "deferred_due": due & (k["state"] == "deferred"),
        "urgent_due": due & k["urgent"],
        "urgent_on_time": due & k["urgent"] & handled & on_time,
        "checked": k["checks"],
        "checked_on_time": k["checks_on_time"],
        "closed_in_period": k["close_us"].notna(),
        "recurrent": k["recurrent"],
        "open_end": ~k["state"].isin(["closed", "rejected"]),
        "overdue_end": k["overdue_now"],
    }
    return pd.DataFrame({key: col.astype("int64") for key, col in cols.items()}, index=k.index)


def _hours(value) -> float | None:
    """As PostgreSQL's round(x::numeric, 2) of a double: 15 significant digits, then half away from zero."""
    return float(Decimal(f"{value:.15g}").quantize(Decimal("0.01"), ROUND_HALF_UP))


def _mean_hours(microseconds: int, n: int) -> float:
    """An exact mean of durations in hours, rounded as PostgreSQL rounds its numeric avg: half away from zero."""
    x = Fraction(microseconds, n * 3_600_000_000)
    return float((Decimal(x.numerator) / Decimal(x.denominator)).quantize(Decimal("0.01"), ROUND_HALF_UP))


NONE = "\0none"  # the group of cases of no object (pandas leaves None out of groups)
HOURS = ("mean_close_hours", "median_close_hours")


def pandas_keys(t: dict[str, pd.DataFrame], k: pd.DataFrame, level: str, period: Period) -> tuple[pd.Series, list]:
    """Each case's object at a level (NONE for none) and the level's objects (the report's rows)."""
    cells = t["cells"]
    if level == "unit":
        return k["unit_id"].map(t["units"].set_index("id")["code"]).fillna(NONE), sorted(t["units"]["code"])
    n = {"cell": 15, "street": 9}[level]
    start, end = (pd.Timestamp(x).tz_convert("UTC") for x in (period.start, period.end))
    valid = cells[(cells["valid_from"] < end) & (cells["valid_to"].isna() | (cells["valid_to"] > start))]
    key = k["cell_id"].map(cells.set_index("id")["code"].str[:n]).fillna(NONE)
    return key, sorted(set(valid["code"].str[:n]))


def pandas_level(k: pd.DataFrame, per_case: pd.DataFrame, key: pd.Series, universe: list) -> dict:
    """Figures and rates per object, {code or None: {indicator: value}}, and the total under "total"."""
    counts = [d.key for d in indicators.COUNTS if d.key not in HOURS]
    assert set(counts) == set(per_case.columns), "the pandas baseline must compute every indicator"
    sums = per_case.groupby(key).sum()
    closed = k["close_us"].notna()
    us = k.loc[closed, "close_us"].astype("int64")
    durations = us.groupby(key[closed]).agg(["sum", "count"])
    medians = (us / 3.6e9).groupby(key[closed]).median()

    def figures(c, total_us: int, n: int, median) -> dict:
        values = {name: int(c[name]) for name in counts}
        values["mean_close_hours"] = _mean_hours(total_us, n) if n else None
        values["median_close_hours"] = _hours(median) if n else None
        for r in indicators.RATES:
            den = values[r.denominator]
            values[r.key] = values[r.numerator] / den if den > 0 else None
        return values

    zero = pd.Series(0, index=counts)
    out = {}
    for g in dict.fromkeys([*universe, *sums.index]):
        n = int(durations.at[g, "count"]) if g in durations.index else 0
        values = figures(
            sums.loc[g] if g in sums.index else zero, int(durations.at[g, "sum"]) if n else 0, n, medians.get(g)
        )
        # as the report: an object of the level always, no object only with a figure to show
        if g in universe or any(values[c] not in (0, None) for c in (*counts, *HOURS)):
            out[None if g == NONE else g] = values
    out["total"] = figures(per_case.sum(), int(us.sum()), len(us), us.div(3.6e9).median() if len(us) else None)
    return out


def differences(report: accountability.Report, figures: dict) -> list[str]:
    """Where gridmgr's report and the pandas figures differ: rows, then every indicator of every row."""
    keys = [d.key for d in (*indicators.COUNTS, *indicators.RATES)]
    mine = {r.code: r.values for r in report.rows}
    out = (
        [f"rows only in gridmgr: {sorted(map(str, set(mine) - set(figures) - {'total'}))[:5]}"]
        if set(mine) - set(figures)
        else []
    )
    out += (
        [f"rows only in pandas: {sorted(map(str, set(figures) - set(mine) - {'total'}))[:5]}"]
        if set(figures) - set(mine) - {"total"}
        else []
    )
    for code, values in [*mine.items(), ("total", report.total.values)]:
        if code in figures:
            out += [
                f"{code} {k}: gridmgr {values[k]!r}, pandas {figures[code][k]!r}"
                for k in keys
                if values[k] != figures[code][k]
            ]
    return out


# -------------------------------------------------------------------------------------------- measuring


def anchor_of(eng) -> date:
    """The demo's anchor date: the benchmark's "today"."""
    with eng.connect() as conn:
        return date.fromisoformat(conn.execute(text("SELECT value ->> 'anchor' FROM meta WHERE key = 'demo'")).scalar())


def run_gridmgr(eng, period: Period, level: str, today: date) -> tuple[float, accountability.Report]:
    """One report as the app makes it (a fresh connection from the pool, its own transaction); (seconds, report)."""
    t = time.perf_counter()
    with eng.connect() as conn:
        rep = accountability.compute(conn, period=period, level=level, today=today)
    return time.perf_counter() - t, rep


def run_pandas(eng, period: Period, today: date) -> tuple[dict[str, float], dict[str, dict]]:
    """Read everything, then every level's figures; (seconds per phase, figures per level)."""
    secs, figures = {}, {}
    t = time.perf_counter()
    tables = read_tables(eng)
    secs["read"] = time.perf_counter() - t
    t = time.perf_counter()
    k = pandas_facts(tables, period, accountability.cutoff_for(period, today), accountability.RECURRENCE_DAYS)
    per_case = pandas_counts(k)
    secs["facts"] = time.perf_counter() - t
    for level in LEVELS:
        t = time.perf_counter()
        key, universe = pandas_keys(tables, k, level, period)
        figures[level] = pandas_level(k, per_case, key, universe)
        secs[level] = time.perf_counter() - t
    return secs, figures


def check(reps: dict[str, accountability.Report], figures: dict[str, dict], label: str) -> int:
    """Assert every figure of every row is identical; the number of figures compared."""
    n = 0
    for level, rep in reps.items():
        diff = differences(rep, figures[level])
        if diff:
            print(f"{label} {level}: {len(diff)} differences, e.g.\n  " + "\n  ".join(diff[:10]), flush=True)
            raise SystemExit(f"{label}: gridmgr and pandas differ at level {level}")
        n += (len(rep.rows) + 1) * (len(indicators.COUNTS) + len(indicators.RATES))
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=None, help=f"cases in all (default {FULL:,}; --quick {QUICK:,})")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK:,} cases in a database of their own, one round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--month", help="the month reported (default: the last whole month before the demo's anchor)")
    ap.add_argument("--older", type=int, nargs="*", help="years back of the older months timed (default: 1 5)")
    args = ap.parse_args()
    n = args.cases or (QUICK if args.quick else FULL)
    if args.quick:
        args.rounds = 1
    common.BENCH_DB = "gridmgr_bench_reports" + ("" if n == FULL else f"_{n}")
    eng = common.bench_engine()
    n_cases, n_events = build_decade(eng, n)
    today = anchor_of(eng)
    before = today.replace(day=1) - timedelta(days=1)
    month = Period.parse(args.month) if args.month else Period.month(before.year, before.month)
    years_back = args.older if args.older is not None else ((1, 5) if n >= FULL else (1,))
    olds = [Period.month(month.first.year - y, month.first.month) for y in years_back]
    with eng.connect() as conn:
        first, last = conn.execute(text("SELECT min(reported_at), max(reported_at) FROM cases")).one()
        where = machine(conn)
    print(
        f"{n_cases:,} cases and {n_events:,} events reported {first:%Y-%m-%d} .. {last:%Y-%m-%d}; "
        f"today = {today} (the demo's anchor); month {month}, older {', '.join(map(str, olds))}",
        flush=True,
    )
    print(f"load before: {load_note()}", flush=True)

    # warm-up and the figures compared (each level once, both ways)
    warm = {level: run_gridmgr(eng, month, level, today) for level in LEVELS}
    for level, (secs, rep) in warm.items():
        print(f"  first run, {level}: {secs:.2f} s, {len(rep.rows):,} rows", flush=True)
    times: dict[str, list[float]] = {}
    for rnd in range(args.rounds):
        for level in LEVELS:
            secs, rep = run_gridmgr(eng, month, level, today)
            times.setdefault(level, []).append(secs)
        phases, figures = run_pandas(eng, month, today)
        for name, secs in phases.items():
            times.setdefault(f"pandas {name}", []).append(secs)
        compared = check({lv: rep for lv, (_, rep) in warm.items()}, figures, f"{month} round {rnd + 1}")
        del figures
        print(
            f"  round {rnd + 1}/{args.rounds}: gridmgr "
            + ", ".join(f"{lv} {times[lv][-1]:.2f} s" for lv in LEVELS)
            + f"; pandas read {phases['read']:.1f} s, facts {phases['facts']:.1f} s, "
            + ", ".join(f"{lv} {phases[lv]:.2f} s" for lv in LEVELS)
            + f"; {compared:,} figures identical",
            flush=True,
        )
    # the older months: gridmgr timed as above, the figures checked once against pandas
    for old in olds:
        old_reps = {}
        for level in LEVELS:
            for _ in range(args.rounds):
                secs, old_reps[level] = run_gridmgr(eng, old, level, today)
                times.setdefault(f"{old} {level}", []).append(secs)
        _, old_figures = run_pandas(eng, old, today)
        old_compared = check(old_reps, old_figures, str(old))
        del old_figures
        print(
            f"  {old}: gridmgr "
            + ", ".join(f"{lv} {statistics.median(times[f'{old} {lv}']):.2f} s" for lv in LEVELS)
            + f"; {old_compared:,} figures identical to pandas",
            flush=True,
        )

    med = {name: statistics.median(ts) for name, ts in times.items()}
    pandas_total = {lv: med["pandas read"] + med["pandas facts"] + med[f"pandas {lv}"] for lv in LEVELS}
    print()
    print(f"machine: {where}")
    print(f"load after: {load_note()}")
    print(f"{'run':34} {'seconds (' + str(args.rounds) + ' rounds)':>26} {'median':>8} {'vs pandas':>10}")
    for lv in LEVELS:
        print(
            f"{'gridmgr ' + lv + ' ' + str(month):34} {' · '.join(f'{x:.2f}' for x in times[lv]):>26} "
            f"{med[lv]:8.2f} {pandas_total[lv] / med[lv]:9.1f}×"
        )
    for old in olds:
        for lv in LEVELS:
            print(
                f"{'gridmgr ' + lv + ' ' + str(old):34} {' · '.join(f'{x:.2f}' for x in times[f'{old} {lv}']):>26} "
                f"{med[f'{old} {lv}']:8.2f}"
            )
    for name in ("read", "facts", *LEVELS):
        print(
            f"{'pandas ' + name:34} {' · '.join(f'{x:.2f}' for x in times['pandas ' + name]):>26} "
            f"{med['pandas ' + name]:8.2f}"
        )
    for lv in LEVELS:
        print(f"{'pandas in all, ' + lv:34} {'':>26} {pandas_total[lv]:8.2f}")
    ok = all(med[lv] < 1 and pandas_total[lv] >= 5 * med[lv] for lv in ("cell", "unit"))
    print(
        f"reports: month {month} over {n_cases:,} cases: cell {med['cell']:.2f} s, unit {med['unit']:.2f} s, "
        f"street {med['street']:.2f} s (target < 1 s); pandas {pandas_total['cell']:.1f} s = "
        f"{pandas_total['cell'] / med['cell']:.0f}× cell, {pandas_total['unit'] / med['unit']:.0f}× unit "
        f"(target ≥ 5×); figures identical; "
        + "".join(f"{old}: cell {med[f'{old} cell']:.2f} s; " for old in olds)
        + ("targets met" if ok else "TARGET MISSED")
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
