"""Scoring schemes: the Jinniu and Jinhua presets by hand, rankings within groups, change on the period before."""

from __future__ import annotations

from datetime import date

import pytest
from test_indicators import AFTER, october  # noqa: F401  (fixtures)

from gridmgr.analytics import scoring
from gridmgr.analytics.accountability import Period, compute
from gridmgr.analytics.scoring import SchemeError, Scored, compare, rank, score


def unit_report(conn, month: str):
    return compute(conn, period=Period.parse(month), level="unit", today=AFTER)


def by_code(rows):
    return {r.code: r for r in rows}


def test_presets_load():
    assert scoring.presets() == ["jinhua", "jinniu"]
    assert scoring.load("jinniu").maximum == 100 and scoring.load("jinhua").maximum == 80


@pytest.mark.usefixtures("october")
def test_jinniu_by_hand(conn):
    rows = by_code(score(unit_report(conn, "2026-10"), "jinniu"))
    # HW01: due A E H P; handled 4/4, on time 3/4 (H late), rework 1/4 (H), overdue 0, extended 1/4 (E)
    assert rows["HW01"].score == pytest.approx(30 * 1 + 20 * 0.75 + 20 * 0.75 + 20 * 1 + 10 * 0.75)  # 87.5
    assert rows["HW01"].parts == {
        "handle_rate": 30,
        "handled_on_time_rate": 15,
        "rework_rate": 15,
        "overdue_open_rate": 20,
        "extension_rate": 7.5,
    }
    # ZF01: due C G I K Q; handled 3/5, on time 1/5 (G), rework 0, overdue 1/5 (K), extended 0
    assert rows["ZF01"].score == pytest.approx(30 * 0.6 + 20 * 0.2 + 20 + 20 * 0.8 + 10)  # 68
    assert rows["ZF02"].score == 100  # L, handled and closed on time
    assert rows["ZF03"].score is None and rows["ZF03"].parts == {}  # nothing due: no score


@pytest.mark.usefixtures("october")
def test_jinhua_by_hand(conn):
    rows = by_code(score(unit_report(conn, "2026-10"), "jinhua"))
    # HW01: on time 3/(4 − 0) = 75 % ≥ 70 % → 50; closed 4/4 → 20; urgent P on time → 10;
    # H reworked three times: −0.2 (a rework) −0.5 (three or more)
    assert rows["HW01"].score == pytest.approx(79.3)
    assert rows["HW01"].penalties == {"rework": -0.2, "multi_rework": -0.5}
    # ZF01: on time 1/(5 − 1 deferred after due) = 25 % → 50 − 45 = 5; closed 2/5 = 40 % → 20 − 50 → 0;
    # urgent Q late → 0
    assert rows["ZF01"].rates["closed_on_time_rate"] == 0.25
    assert rows["ZF01"].parts == {"closed_on_time_rate": 5, "close_rate": 0, "urgent_on_time_rate": 0}
    assert rows["ZF01"].score == 5
    # ZF02: L on time; no urgent case due → the 10 points are full
    assert rows["ZF02"].score == 80 and rows["ZF02"].rates["urgent_on_time_rate"] is None


def test_threshold_rule_is_continuous_and_floored():
    item = scoring.load("jinhua").items[0]
    assert (item.points_for(0.70), item.points_for(0.9), item.points_for(0.675)) == (50, 50, pytest.approx(47.5))
    assert item.points_for(0.0) == 0


@pytest.mark.usefixtures("october")
def test_rank_within_groups_and_change(conn):
    octo = rank(score(unit_report(conn, "2026-10"), "jinniu"))
    # units compete within their kind (分赛区): squads and sanitation separately
    assert [(r.group, r.code, r.rank) for r in octo] == [
        (None, None, None),
        ("enforcement_squad", "ZF02", 1),
        ("enforcement_squad", "ZF01", 2),
        ("enforcement_squad", "ZF03", None),
        ("sanitation", "HW01", 1),
    ]
    octo = rank(score(unit_report(conn, "2026-10"), "jinniu"), lambda row: "all")
    assert [(r.code, r.rank) for r in octo if r.rank] == [("ZF02", 1), ("HW01", 2), ("ZF01", 3)]
    # November: HW01 closes B on time (100); ZF01's D, extended into November, was never handled (20)
    nov = rank(score(unit_report(conn, "2026-11"), "jinniu"), lambda row: "all")
    assert [(r.code, r.rank, r.score) for r in nov if r.rank] == [("HW01", 1, 100), ("ZF01", 2, 20)]
    changes = by_code(compare(nov, octo))
    assert (changes["HW01"].previous_rank, changes["HW01"].rank, changes["HW01"].rank_change) == (2, 1, 1)
    assert changes["ZF01"].rank_change == 1 and changes["ZF01"].score_change == -48
    assert changes["ZF02"].rank_change is None  # not ranked in November
    assert changes["HW01"].rates["handled_on_time_rate"] == (1.0, 0.75, 0.25)
    assert changes["ZF03"].rates["close_rate"] == (None, None, None)
    # groups may also come from a mapping (code → group) or an attribute
    mapped = rank(score(unit_report(conn, "2026-10"), "jinniu"), {"HW01": "东区", "ZF01": "东区", "ZF02": "西区"})
    assert [(r.group, r.code, r.rank) for r in mapped if r.rank] == [
        ("东区", "HW01", 1),
        ("东区", "ZF01", 2),
        ("西区", "ZF02", 1),
    ]


def test_ties_share_a_rank():
    rows = [Scored("cell", c, c, {}, {}, s) for c, s in (("a", 90), ("b", 80), ("c", 80.000000001), ("d", 70))]
    assert [(r.code, r.rank) for r in rank(rows)] == [("a", 1), ("b", 2), ("c", 2), ("d", 4)]


@pytest.mark.usefixtures("october")
def test_compare_plain_report_rows(conn):
    changes = by_code(
        compare(
            compute(conn, period=Period.parse("2026-10"), level="district", today=AFTER).rows,
            compute(conn, period=Period.parse("2026-09"), level="district", today=AFTER).rows,
        )
    )
    assert changes["110101"].rates["close_rate"] == (0.7, 1.0, -0.3)
    assert changes["110101"].rank_change is None


GOOD = """
scheme: test
title_zh: 测试
title_en: test
items:
  - rate: close_rate
    weight: 100
"""


@pytest.mark.parametrize(
    "body, key, problem",
    [
        (GOOD.replace("weight: 100", "wieght: 100"), "items[0].wieght", "unknown key"),
        (GOOD.replace("weight: 100", "weight: lots"), "items[0].weight", "must be a number"),
        (GOOD.replace("weight: 100", "weight: -5"), "items[0].weight", "must be at least 0"),
        (GOOD.replace("close_rate", "closing_rate"), "items[0].rate", "'closing_rate' is not a known rate"),
        (
            GOOD.replace("weight: 100", "threshold: 90\n    points: 20\n    per_point: 1"),
            "items[0].threshold",
            "must be between 0 and 1",
        ),
        (GOOD.replace("weight: 100", "threshold: 0.9\n    points: 20"), "items[0].per_point", "is required"),
        (GOOD.replace("weight: 100", "weight: 100\n    threshold: 0.9"), "items[0]", "either `weight` or `threshold`"),
        (
            GOOD.replace("weight: 100", "weight: 100\n    denominator_minus: [deffered]"),
            "items[0].denominator_minus[0]",
            "not a known count",
        ),
        (GOOD + "penalties:\n  - count: rework_rate\n    points: 1\n", "penalties[0].count", "not a known count"),
        (GOOD.replace("title_en: test\n", ""), "title_en", "is required"),
        (GOOD.replace("items:", "items: []\nold_items:"), "old_items", "unknown key"),
        ("scheme: [unclosed", "", "not valid YAML"),
        ("- just\n- a list\n", "top level", "must be a mapping"),
    ],
)
def test_malformed_scheme_is_refused_with_a_named_error(tmp_path, body, key, problem):
    path = tmp_path / "broken.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(SchemeError) as err:
        scoring.load(path)
    message = str(err.value)
    assert message.startswith(str(path)) and key in message and problem in message, message


def test_unknown_preset_lists_the_presets():
    with pytest.raises(SchemeError, match="presets: jinhua, jinniu"):
        scoring.load("shanghai")


def test_preset_is_data_not_code(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text(GOOD.replace("weight: 100", "weight: !!python/object/apply:os.system ['true']"), encoding="utf-8")
    with pytest.raises(SchemeError, match="not valid YAML"):
        scoring.load(path)


@pytest.mark.usefixtures("october")
def test_score_uses_the_period_given(conn):
    # the same scheme over the whole district: October's figures
    [row] = score(compute(conn, period=Period.parse("2026-10"), level="district", today=date(2026, 11, 30)), "jinniu")
    assert row.score == pytest.approx(30 * 0.8 + 20 * 0.5 + 20 * 0.9 + 20 * 0.9 + 10 * 0.9)
