"""The figures' own rules, checked on the data: every rate a share of one population, every count its parts.

`check(conn, periods, today=…)` computes, for each period, what each case adds to every count
(`accountability.case_figures`) and the report at every level, and lists each breach of:

* a rate's numerator counts only cases its denominator counts, with no more weight, case by case
  (so no rate can exceed 100 %), and a scoring scheme's `denominator_minus` counts cases inside the
  denominator and outside the numerator;
* a count with `parts` is their sum, case by case;
* a report's counts are the sums of the per-case figures, a level that splits the cases (cell,
  community, street, district, unit) adds up to the total, and every rate lies in [0, 1];
* the cases a report reads give the figures of reading every case.

The rules hold for every indicator in the catalogue, so one added later (by a layer or an issue) is
checked without this module changing. `gridmgr check-figures` runs it; the property tests
(tests/test_report_properties.py) run it over random histories.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy.engine import Connection

from gridmgr.analytics import indicators, scoring
from gridmgr.analytics.accountability import LEVELS, Period, Report, case_figures, compute

SPLITTING = ("cell", "community", "street", "district", "unit")  # each case in exactly one row


@dataclass
class Result:
    """What a check read and what it found."""

    periods: int = 0
    reports: int = 0
    cases: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def scheme_minus() -> list[tuple[indicators.Rate, str, str]]:
    """(rate, count taken from its denominator, scheme name) for every shipped scoring scheme."""
    out = []
    for name in scoring.presets():
        for item in scoring.load(name).items:
            rate = indicators.BY_KEY[item.rate]
            assert isinstance(rate, indicators.Rate)  # scoring.parse checks an item names a rate
            out += [(rate, m, name) for m in item.minus]
    return out


def population_problems(facts: dict[int, dict[str, int]], where: str) -> list[str]:
    """Breaches of the one-population rule and of the parts rule, case by case."""
    out = []
    minus = scheme_minus()
    for case_id, f in facts.items():
        for r in indicators.RATES:
            if f[r.numerator] > f[r.denominator]:
                out.append(
                    f"{where}: case {case_id} adds {f[r.numerator]} to {r.numerator} but {f[r.denominator]} to "
                    f"{r.denominator}: {r.key} is not a share of one population"
                )
        for r, m, scheme in minus:
            if f[m] + f[r.numerator] > f[r.denominator]:
                out.append(f"{where}: case {case_id}: scheme {scheme} takes {m} from {r.key}'s denominator {f}")
        for d in indicators.COUNTS:
            if d.parts and f[d.key] != sum(f[p] for p in d.parts):
                out.append(f"{where}: case {case_id}: {d.key} = {f[d.key]} is not the sum of {', '.join(d.parts)}")
    return out


def report_problems(rep: Report, facts: dict[int, dict[str, int]]) -> list[str]:
    """Breaches in one report: totals against the cases, rows against the total, rates outside [0, 1]."""
    out = []
    where = f"{rep.period} {rep.level}"
    keys = [d.key for d in indicators.COUNTS if d.per_case is not None]
    for k in keys:
        expected = sum(f[k] for f in facts.values())
        if rep.total[k] != expected:
            out.append(f"{where}: total {k} = {rep.total[k]}, its cases add up to {expected}")
        if rep.level in SPLITTING and sum(row[k] for row in rep.rows) != rep.total[k]:
            out.append(f"{where}: the rows' {k} do not add up to the total {rep.total[k]}")
    for row in (*rep.rows, rep.total):
        for r in indicators.RATES:
            value = row[r.key]
            if value is not None and not 0 <= value <= 1:
                out.append(f"{where} {row.code or row.name}: {r.key} = {value:.2%}, outside [0, 100 %]")
    return out


def check(
    conn: Connection,
    periods: Iterable[Period],
    *,
    today: date | None = None,
    levels: Iterable[str] = LEVELS,
    area: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Result:
    """Check the rules above on each period at each level (see the module docstring)."""
    result = Result()
    levels = tuple(levels)
    for period in periods:
        facts = case_figures(conn, period=period, today=today, area=area)
        where = f"{period}"
        result.problems += population_problems(facts, where)
        if facts != case_figures(conn, period=period, today=today, area=area, every_case=True):
            result.problems.append(f"{where}: the cases a report reads give other figures than every case")
        for level in levels:
            rep = compute(conn, period=period, level=level, today=today, area=area)
            result.problems += report_problems(rep, facts)
            result.reports += 1
        result.periods += 1
        result.cases += len(facts)
        if progress:
            progress(f"{period}: {len(facts):,} cases, {len(levels)} levels, {len(result.problems)} problems so far")
    return result


def months_of(period: Period) -> list[Period]:
    """The period itself and, for a quarter, a year or a range, each month it touches."""
    out = [period]
    if period.kind in ("quarter", "year", "range"):
        year, month = period.first.year, period.first.month
        while date(year, month, 1) <= period.last:
            out.append(Period.month(year, month))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out
