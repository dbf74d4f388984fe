"""The case indicators (考核指标) of docs/domain.md §6, written once: key, labels, formula in words, counting rule.

`gridmgr.analytics.accountability` computes them; pages, exports and `gridmgr.analytics.scoring` read these definitions and
never restate a formula.

How a case counts in a period (the period is [start, end) in Asia/Shanghai local time):

* **Judged at the cutoff.** Everything is read from the audit trail (`case_events`) up to the
  *cutoff*: the end of the period, or the end of `today` for a period still running. A report on a
  finished period therefore never changes when it is computed again later; a case closed after the
  period ended does not count as closed in it (it shows as 超期待处置 or handled-but-not-closed).
* **Flows** (上报, 核实, 立案, 派遣, 回退, 核查, 挂账, 缓办, 自行处置, 本期结案): the action happened in
  the period. A step is *on time* (按时) when it happened at or before the deadline in force at that
  moment (the event's `deadline_before`); a step with no deadline (imported history) is on time.
* **The due cohort** (应处置 = 应结案): the cases whose *handling deadline* (处置时限) fell in the
  period. The handling deadline is set by a dispatch (the handle step), moved by an approved extension
  (延期), cleared by a suspension or deferral (挂账, 缓办) and set afresh when such a case resumes into
  handling. A rework (返工) does not move it: the unit's failed handling buys it no time. A case falls
  due when such a deadline is reached while still in force — so an extension approved before the
  deadline moves the case to the period of the new deadline; a deferral before the deadline takes the
  case out of the cohort (缓办 excluded from rate denominators), one after it does not (the case stays
  due and counts in 应结案中缓办数, which Jinhua subtracts). A case counts once per period, at its latest
  due moment in it. Reports and self-handled cases (自行处置) never dispatched have no handling deadline
  and are not in the cohort. Tianmen Dec 2016 reads this way: of 996 cases registered, the 972 whose
  handling fell due in December are 应结案; the rest fell due in January.
* **Outcomes of the cohort**, judged at the cutoff: 处置 = past the handle step (handled, checked or
  closed); 结案 = closed; *on time* (按期) = the last `handle` was at or before the due moment (as
  deployed systems judge 按期结案 on the handling; checking and closing are timed by 按时核查);
  超期待处置 = due and still not handled nor paused at the cutoff; 返工 / 多次返工 / 延期 = due cases with
  at least one failed check / three or more / an approved extension.
* **Stocks at the cutoff** (期末未结, 期末超期, 期末挂账): the state the trail gives at the cutoff.
* **Recurrence** (反复回潮): a case reported in the period, not rejected, with an earlier case of the
  same category in the same cell reported within the window before it (30 days by default).

A rate whose denominator is zero is None (shown "—"), never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gridmgr.errors import InputError


@dataclass(frozen=True)
class Indicator:
    """A figure computed in SQL over the per-case facts `k` of `gridmgr.analytics.accountability`.

    A count is `sum(weight) FILTER (WHERE where)`: each case adds `weight` (1, or a per-case number such
    as its checks) when `where` holds, so the cases behind a figure are known, not only its value.
    `parts` names counts that add up to this one, case by case (the property tests check it).
    An indicator with `where` None (hours) is an aggregate `sql` of its own and belongs to no rate.
    """

    key: str
    zh: str
    en: str
    formula: str  # the definition in words (中文)
    rule: str  # how a case counts in a period (English)
    where: str | None  # the per-case condition over `k`
    weight: str = "1"  # what each such case adds
    kind: str = "count"  # count (件 or 次) or hours
    aggregate: str | None = None  # the SQL of a figure that is not a filtered sum (hours)
    parts: tuple[str, ...] = ()

    @property
    def is_rate(self) -> bool:
        return False

    @property
    def sql(self) -> str:
        """The aggregate over the per-case rows `k`."""
        if self.aggregate is not None:
            return self.aggregate
        if self.weight == "1":
            return f"count(*) FILTER (WHERE {self.where})"
        return f"coalesce(sum({self.weight}) FILTER (WHERE {self.where}), 0)"

    @property
    def per_case(self) -> str | None:
        """What one case adds to the figure (0 when it does not count), or None for an aggregate."""
        if self.where is None:
            return None
        return f"CASE WHEN {self.where} THEN {self.weight} ELSE 0 END"


@dataclass(frozen=True)
class Rate:
    """A share of one population: `numerator` counts cases within the cases `denominator` counts.

    Both are counts of the same catalogue, and every case the numerator counts is counted by the
    denominator too (case by case, and never with more weight), so a rate lies in [0, 100 %] by
    construction; `cohort_zh` / `cohort_en` say in words which cases the rate is a share of.
    """

    key: str
    zh: str
    en: str
    formula: str  # numerator / denominator, by their Chinese names
    numerator: str
    denominator: str
    cohort_zh: str  # the population, in words
    cohort_en: str
    better: str = "higher"  # "lower" for rates whose rise is bad (返工率, 超期待处置率, 延期率)
    kind: str = field(default="rate", init=False)

    @property
    def is_rate(self) -> bool:
        return True

    def of(self, values: Mapping[str, Any], minus: tuple[str, ...] = ()) -> float | None:
        """The rate from a row's figures (None for a zero denominator), the denominator less `minus`.

        `minus` names counts of cases inside the denominator and outside the numerator (a scheme's
        应结案数 − 缓办数), so the result stays a share of one population.
        """
        den = values.get(self.denominator) or 0
        for term in minus:
            den -= values.get(term) or 0
        num = values.get(self.numerator) or 0
        return num / den if den > 0 else None


def _count(
    key: str, zh: str, en: str, formula: str, rule: str, where: str, kind: str = "count", parts: tuple[str, ...] = ()
) -> Indicator:
    return Indicator(key, zh, en, formula, rule, where, kind=kind, parts=parts)


def _sum(key: str, zh: str, en: str, formula: str, rule: str, column: str, where: str = "true") -> Indicator:
    return Indicator(key, zh, en, formula, rule, where, weight=column)


_COUNTS: tuple[Indicator, ...] = (
    _count(
        "reported",
        "上报数",
        "reported",
        "本期上报的案件数",
        "reported in the period",
        "k.rep",
        parts=("valid_reported", "reported_rejected"),
    ),
    _count(
        "valid_reported",
        "有效上报数",
        "valid reports",
        "本期上报且截至期末未被不予立案的案件数",
        "reported in the period and not rejected by the cutoff",
        "k.rep AND NOT k.rejected",
    ),
    _count(
        "reported_rejected",
        "不予立案数",
        "rejected reports",
        "本期上报且截至期末已不予立案的案件数",
        "reported in the period and rejected (不予立案) by the cutoff",
        "k.rep AND k.rejected",
    ),
    _count(
        "to_register",
        "应立案数",
        "reports to register",
        "本期上报且截至期末未由监督员自行处置的案件数（上报数 − 其中自行处置的）",
        "reported in the period and not self-handled (自行处置) by the cutoff: the reports a registration decides",
        "k.rep AND NOT k.self_handled",
        parts=("reports_registered", "reported_rejected", "reports_undecided"),
    ),
    _count(
        "reports_registered",
        "上报已立案数",
        "reports registered",
        "本期上报的案件中截至期末已立案的案件数（立案可在下期）",
        "reported in the period and registered by the cutoff, in the period or after it",
        "k.rep AND k.registered",
    ),
    _count(
        "reports_undecided",
        "待立案数",
        "reports undecided",
        "本期上报的案件中截至期末尚未立案、未不予立案、未自行处置的案件数",
        "reported in the period and at the cutoff neither registered, rejected nor self-handled",
        "k.rep AND NOT (k.registered OR k.rejected OR k.self_handled)",
    ),
    _count(
        "self_handled",
        "自行处置数",
        "self-handled",
        "本期由监督员现场自行处置的案件数",
        "self-handled (自行处置) in the period",
        "k.self_in_p",
    ),
    _count("verified", "核实数", "verified", "本期完成核实的案件数", "verified in the period", "k.ver_in_p"),
    _count(
        "verified_on_time",
        "按时核实数",
        "verified on time",
        "本期在核实时限内完成核实的案件数",
        "verified in the period, at or before the verify deadline",
        "k.ver_on_time",
    ),
    _count("registered", "立案数", "registered", "本期立案的案件数", "registered in the period", "k.reg_in_p"),
    _count(
        "registered_on_time",
        "按时立案数",
        "registered on time",
        "本期在立案时限内立案的案件数",
        "registered in the period, at or before the register deadline",
        "k.reg_on_time",
    ),
    _count(
        "dispatched", "派遣数", "dispatched", "本期首次派遣的案件数", "first dispatched in the period", "k.disp_in_p"
    ),
    _count(
        "dispatched_on_time",
        "按时派遣数",
        "dispatched on time",
        "本期首次派遣且在派遣时限内派遣的案件数",
        "first dispatched in the period, at or before the dispatch deadline",
        "k.disp_on_time",
    ),
    _count(
        "dispatched_correctly",
        "准确派遣数",
        "dispatched correctly",
        "本期首次派遣且截至期末未被回退的案件数",
        "first dispatched in the period and not returned (回退) by the cutoff",
        "k.disp_correct",
    ),
    _count(
        "returned", "回退数", "returned", "本期被责任单位回退的案件数", "returned by a unit in the period", "k.ret_in_p"
    ),
    _count(
        "due_handle",
        "应处置数",
        "due for handling",
        "处置时限在本期内到期的案件数（与应结案数同一批案件）",
        "handling deadline reached in the period (the due cohort)",
        "k.due",
        parts=("handled", "overdue_open", "due_paused"),
    ),
    _count(
        "handled",
        "处置数",
        "handled",
        "应处置案件中截至期末已处置完成（含已核查、已结案）的案件数",
        "due, and past the handle step at the cutoff",
        "k.due AND k.handled",
    ),
    _count(
        "handled_on_time",
        "按期处置数",
        "handled on time",
        "应处置案件中最后一次处置在处置时限内完成的案件数",
        "due, handled, last handling at or before the due moment",
        "k.due AND k.handled AND k.on_time",
    ),
    _count(
        "overdue_open",
        "超期待处置数",
        "overdue, not handled",
        "应处置案件中截至期末仍未处置（且未挂账、缓办）的案件数",
        "due, and at the cutoff neither handled nor paused",
        "k.due AND k.open_work",
    ),
    _count(
        "due_paused",
        "应处置中挂账缓办数",
        "due but paused",
        "应处置案件中截至期末处于挂账或缓办状态的案件数",
        "due, and suspended (挂账) or deferred (缓办) at the cutoff",
        "k.due AND k.state IN ('suspended', 'deferred')",
    ),
    _count(
        "due_close",
        "应结案数",
        "due for closing",
        "处置时限在本期内到期的案件数",
        "handling deadline reached in the period (the due cohort)",
        "k.due",
        parts=("due_handle",),
    ),
    _count(
        "closed",
        "结案数",
        "closed",
        "应结案案件中截至期末已结案的案件数",
        "due, and closed at the cutoff",
        "k.due AND k.closed",
    ),
    _count(
        "closed_on_time",
        "按期结案数",
        "closed on time",
        "应结案案件中已结案且在处置时限内处置完成的案件数",
        "due, closed, last handling at or before the due moment",
        "k.due AND k.closed AND k.on_time",
    ),
    _count(
        "rework",
        "返工数",
        "reworked",
        "应结案案件中核查不通过被返工过的案件数",
        "due, with at least one failed check by the cutoff",
        "k.due AND k.reworks > 0",
    ),
    _sum(
        "rework_times",
        "返工次数",
        "reworks",
        "应结案案件的返工总次数",
        "failed checks of the due cases, by the cutoff",
        "k.reworks",
        "k.due",
    ),
    _count(
        "multi_rework",
        "多次返工数",
        "reworked 3+ times",
        "应结案案件中返工三次及以上的案件数",
        "due, with three or more failed checks by the cutoff",
        "k.due AND k.reworks >= 3",
    ),
    _count(
        "extended",
        "延期数",
        "extended",
        "应处置案件中经批准延期的案件数",
        "due, with an approved extension (延期) by the cutoff",
        "k.due AND k.extended",
    ),
    _count("suspended", "挂账数", "suspended", "本期挂账的案件数", "suspended (挂账) in the period", "k.susp_in_p"),
    _count(
        "suspended_end",
        "期末挂账数",
        "suspended at the end",
        "期末处于挂账状态的案件数",
        "suspended at the cutoff",
        "k.state = 'suspended'",
    ),
    _count("deferred", "缓办数", "deferred", "本期缓办的案件数", "deferred (缓办) in the period", "k.defer_in_p"),
    _count(
        "deferred_due",
        "应结案中缓办数",
        "due but deferred",
        "应结案案件中期末处于缓办状态的案件数（到期后缓办）",
        "due, and deferred at the cutoff (deferred after the deadline)",
        "k.due AND k.state = 'deferred'",
    ),
    _count(
        "urgent_due",
        "紧急应处置数",
        "urgent due",
        "应处置案件中紧急案件数",
        "due, urgency urgent",
        "k.due AND k.urgent",
    ),
    _count(
        "urgent_on_time",
        "紧急按期处置数",
        "urgent handled on time",
        "紧急应处置案件中按期处置的案件数",
        "due, urgent, handled on time",
        "k.due AND k.urgent AND k.handled AND k.on_time",
    ),
    _sum(
        "checked",
        "核查数",
        "checks",
        "本期完成的核查次数（通过与不通过）",
        "checks (pass or fail) in the period",
        "k.checks",
    ),
    _sum(
        "checked_on_time",
        "按时核查数",
        "checks on time",
        "本期在核查时限内完成的核查次数",
        "checks in the period at or before the check deadline",
        "k.checks_on_time",
    ),
    _count(
        "closed_in_period",
        "本期结案件数",
        "closings in the period",
        "本期内结案的案件数（不含自行处置）",
        "closed by the shift leader in the period, whenever due",
        "k.closed_in_p IS NOT NULL",
    ),
    Indicator(
        "mean_close_hours",
        "平均结案用时",
        "mean hours to close",
        "本期结案案件从上报到结案的平均小时数",
        "closings in the period: hours from report to close (calendar hours)",
        None,
        kind="hours",
        aggregate="round(avg(k.close_hours)::numeric, 2)",
    ),
    Indicator(
        "median_close_hours",
        "结案用时中位数",
        "median hours to close",
        "本期结案案件从上报到结案小时数的中位数",
        "closings in the period: median hours from report to close",
        None,
        kind="hours",
        aggregate="round((percentile_cont(0.5) WITHIN GROUP (ORDER BY k.close_hours))::numeric, 2)",
    ),
    _count(
        "recurrent",
        "反复回潮数",
        "recurrences",
        "本期上报的有效案件中，同一网格同一类别在前30天内已有案件的数量",
        "reported in the period, not rejected, same category in the same cell reported within the window before",
        "k.recurrent",
    ),
    _count(
        "open_end",
        "期末未结案数",
        "open at the end",
        "期末未结案（含挂账、缓办）的案件数",
        "at the cutoff neither closed nor rejected",
        "k.state NOT IN ('closed', 'rejected')",
    ),
    _count(
        "overdue_end",
        "期末超期案件数",
        "overdue at the end",
        "期末未结案、未挂账缓办且当前环节已超时限的案件数",
        "at the cutoff open, not paused, and past the deadline of its current step",
        "k.overdue_now",
    ),
)

_RATES: tuple[Rate, ...] = (
    Rate(
        "valid_rate",
        "有效上报率",
        "valid report rate",
        "有效上报数 / 上报数",
        "valid_reported",
        "reported",
        "本期上报的案件中，截至期末未被不予立案的比例",
        "of the cases reported in the period, the share not rejected by the cutoff",
    ),
    Rate(
        "register_rate",
        "立案率",
        "registration rate",
        "上报已立案数 / 应立案数",
        "reports_registered",
        "to_register",
        "本期上报（不含自行处置）的案件中，截至期末已立案的比例；下期才立案的计入其上报之期",
        "of the cases reported in the period and not self-handled, the share registered by the cutoff"
        " (a case registered next period counts in the period it was reported)",
    ),
    Rate(
        "registered_on_time_rate",
        "按时立案率",
        "on-time registration rate",
        "按时立案数 / 立案数",
        "registered_on_time",
        "registered",
        "本期立案的案件中，在立案时限内立案的比例",
        "of the cases registered in the period, the share registered by the register deadline",
    ),
    Rate(
        "dispatched_on_time_rate",
        "派遣及时率",
        "on-time dispatch rate",
        "按时派遣数 / 派遣数",
        "dispatched_on_time",
        "dispatched",
        "本期首次派遣的案件中，在派遣时限内派遣的比例",
        "of the cases first dispatched in the period, the share dispatched by the dispatch deadline",
    ),
    Rate(
        "dispatched_correctly_rate",
        "准确派遣率",
        "correct dispatch rate",
        "准确派遣数 / 派遣数",
        "dispatched_correctly",
        "dispatched",
        "本期首次派遣的案件中，截至期末未被回退的比例",
        "of the cases first dispatched in the period, the share not returned by the cutoff",
    ),
    Rate(
        "handle_rate",
        "处置率",
        "handling rate",
        "处置数 / 应处置数",
        "handled",
        "due_handle",
        "处置时限在本期到期的案件中，截至期末已处置的比例",
        "of the cases whose handling deadline fell in the period, the share handled by the cutoff",
    ),
    Rate(
        "handled_on_time_rate",
        "按期处置率",
        "on-time handling rate",
        "按期处置数 / 应处置数",
        "handled_on_time",
        "due_handle",
        "处置时限在本期到期的案件中，在时限内处置的比例",
        "of the cases whose handling deadline fell in the period, the share handled by that deadline",
    ),
    Rate(
        "overdue_open_rate",
        "超期待处置率",
        "overdue rate",
        "超期待处置数 / 应处置数",
        "overdue_open",
        "due_handle",
        "处置时限在本期到期的案件中，截至期末仍未处置（且未挂账、缓办）的比例",
        "of the cases whose handling deadline fell in the period, the share neither handled nor paused at the cutoff",
        better="lower",
    ),
    Rate(
        "close_rate",
        "结案率",
        "closing rate",
        "结案数 / 应结案数",
        "closed",
        "due_close",
        "处置时限在本期到期的案件中，截至期末已结案的比例",
        "of the cases whose handling deadline fell in the period, the share closed by the cutoff",
    ),
    Rate(
        "closed_on_time_rate",
        "按期结案率",
        "on-time closing rate",
        "按期结案数 / 应结案数",
        "closed_on_time",
        "due_close",
        "处置时限在本期到期的案件中，已结案且在时限内处置的比例",
        "of the cases whose handling deadline fell in the period, the share closed and handled by that deadline",
    ),
    Rate(
        "rework_rate",
        "返工率",
        "rework rate",
        "返工数 / 应结案数",
        "rework",
        "due_close",
        "处置时限在本期到期的案件中，截至期末返工过的比例",
        "of the cases whose handling deadline fell in the period, the share with a failed check by the cutoff",
        better="lower",
    ),
    Rate(
        "extension_rate",
        "延期率",
        "extension rate",
        "延期数 / 应处置数",
        "extended",
        "due_handle",
        "处置时限在本期到期的案件中，经批准延期的比例",
        "of the cases whose handling deadline fell in the period, the share with an approved extension",
        better="lower",
    ),
    Rate(
        "verified_on_time_rate",
        "按时核实率",
        "on-time verification rate",
        "按时核实数 / 核实数",
        "verified_on_time",
        "verified",
        "本期核实的案件中，在核实时限内核实的比例",
        "of the cases verified in the period, the share verified by the verify deadline",
    ),
    Rate(
        "checked_on_time_rate",
        "按时核查率",
        "on-time check rate",
        "按时核查数 / 核查数",
        "checked_on_time",
        "checked",
        "本期完成的核查（通过与不通过）中，在核查时限内完成的比例",
        "of the checks (pass or fail) made in the period, the share made by the check deadline",
    ),
    Rate(
        "urgent_on_time_rate",
        "紧急案件按期处置率",
        "urgent on-time rate",
        "紧急按期处置数 / 紧急应处置数",
        "urgent_on_time",
        "urgent_due",
        "处置时限在本期到期的紧急案件中，在时限内处置的比例",
        "of the urgent cases whose handling deadline fell in the period, the share handled by that deadline",
    ),
    Rate(
        "recurrence_rate",
        "反复回潮率",
        "recurrence rate",
        "反复回潮数 / 有效上报数",
        "recurrent",
        "valid_reported",
        "本期有效上报的案件中，同一网格同一类别前30天内已有案件的比例",
        "of the valid reports of the period, the share with an earlier case of the same category in the same cell within 30 days",
        better="lower",
    ),
)

# The catalogue. Every figure, built in or added later (a layer, a new indicator), comes in through
# `register`, so reports, exports, scoring and the property tests of tests/test_report_properties.py
# see it without being edited.
COUNTS: list[Indicator] = []
RATES: list[Rate] = []
BY_KEY: dict[str, Indicator | Rate] = {}


def register(*definitions: Indicator | Rate) -> None:
    """Add figures to the catalogue, checking that each is well formed (ValueError otherwise)."""
    for d in definitions:
        if d.key in BY_KEY:
            raise ValueError(f"indicator {d.key!r} is defined twice")
        if isinstance(d, Rate):
            for role, key in (("numerator", d.numerator), ("denominator", d.denominator)):
                other = BY_KEY.get(key)
                if not isinstance(other, Indicator) or other.where is None:
                    raise ValueError(f"rate {d.key}: its {role} {key!r} is not a count of the catalogue")
            if d.numerator == d.denominator:
                raise ValueError(f"rate {d.key}: numerator and denominator are the same count")
            RATES.append(d)
        else:
            if (d.where is None) == (d.aggregate is None):
                raise ValueError(f"indicator {d.key}: give either a per-case condition or an aggregate")
            unknown = [p for p in d.parts if p not in BY_KEY and p not in {c.key for c in definitions}]
            if unknown:
                raise ValueError(f"indicator {d.key}: its parts {unknown} are not counts of the catalogue")
            COUNTS.append(d)
        BY_KEY[d.key] = d


register(*_COUNTS, *_RATES)


def get(key: str) -> Indicator | Rate:
    """One definition by key, or InputError listing the known keys."""
    try:
        return BY_KEY[key]
    except KeyError:
        raise InputError(f"unknown indicator {key!r}; known: {', '.join(BY_KEY)}") from None


def rates(values: dict) -> dict[str, float | None]:
    """Every rate of one row of figures."""
    return {r.key: r.of(values) for r in RATES}
