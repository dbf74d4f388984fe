"""Report files: the XLSX matches the CSV cell for cell, None shows "—", HTML escapes names, the CLI end to end."""

from __future__ import annotations

import csv

import openpyxl
import pytest
from sqlalchemy import text
from test_indicators import AFTER, add_case, october, std, t  # noqa: F401  (fixtures)

from gridmgr.analytics import indicators, report_files
from gridmgr.analytics.accountability import Period, compute
from gridmgr.analytics.report_files import display, figure

from support import insert_small_grid

SCRIPT = '<script>alert("x")</script>'


def reports(conn, level: str, month: str = "2026-10"):
    period = Period.parse(month)
    return (
        compute(conn, period=period, level=level, today=AFTER),
        compute(conn, period=period.previous(), level=level, today=AFTER),
    )


def add_unit(conn, code: str, name: str, kind: str = "department") -> int:
    return conn.execute(
        text("INSERT INTO units (code, name, kind) VALUES (:c, :n, :k) RETURNING id"), {"c": code, "n": name, "k": kind}
    ).scalar()


def read_csv(path) -> list[list[str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM, so that Excel reads UTF-8
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def shown(cell) -> str:
    """What Excel shows for a cell, from its value and number format (independent of report_output)."""
    v, fmt = cell.value, cell.number_format
    if isinstance(v, str) or v is None:
        return v or ""
    if fmt == "0.00%":
        return f"{v * 100:.2f}%"
    if fmt == "+0.00;-0.00;0.00":
        return f"{v:+.2f}" if v else "0.00"
    if fmt == "+0;-0;0":
        return f"{v:+d}" if v else "0"
    if fmt == "0.00":
        return f"{v:.2f}"
    if fmt == "0":
        return str(v)
    raise AssertionError(f"unexpected number format {fmt!r} for {v!r}")


# ------------------------------------------------------------------------------------------- figures


def test_rounding_once_half_up_and_none_as_dash():
    assert figure(1 / 32, "rate") == 0.0313 and display(figure(1 / 32, "rate"), "rate") == "3.13%"
    assert display(figure(2 / 3, "rate"), "rate") == "66.67%" and display(figure(1.0, "rate"), "rate") == "100.00%"
    assert figure(0.00125, "pp") == 0.13 and display(0.13, "pp") == "+0.13" and display(-25.0, "pp") == "-25.00"
    assert display(figure(-0.0, "pp"), "pp") == "0.00" and display(0, "signed_int") == "0"
    assert display(2, "signed_int") == "+2" and display(-1, "signed_int") == "-1"
    assert figure(87.5, "score") == 87.5 and display(87.5, "score") == "87.50"
    assert all(display(figure(None, k), k) == "—" for k in ("rate", "pp", "score", "count", "text", "hours"))
    assert display(3, "number") == "3" and display(figure(2.345, "number"), "number") == "2.35"


@pytest.mark.usefixtures("october")
def test_unit_table_scores_ranks_and_changes(conn):
    tbl = report_files.table(*reports(conn, "unit")[:1], scheme="jinniu", previous=reports(conn, "unit")[1])
    rows = {r["code"]: r for r in tbl.records()}
    keys = [c.key for c in tbl.columns]
    assert keys[:6] == ["group", "rank", "previous_rank", "rank_change", "code", "name"]
    assert "kind" not in keys  # units are grouped by kind: one column says it
    assert keys.index("close_rate_change") == keys.index("close_rate") + 1
    hw = rows["HW01"]
    assert (hw["score"], hw["rank"], hw["group"]) == (87.5, 1, "环卫所 sanitation office")
    # September: R (HW01) due and handled on time → 100 points and 100 %; October 75 %
    assert (hw["previous_score"], hw["score_change"], hw["previous_rank"], hw["rank_change"]) == (100, -12.5, 1, 0)
    assert (hw["handled_on_time_rate"], hw["handled_on_time_rate_change"]) == (0.75, -25.0)
    zf3 = rows["ZF03"]
    assert zf3["close_rate"] is None and zf3["score"] is None and zf3["rank"] is None
    assert [r["code"] for r in tbl.records()][-2:] == [None, None]  # not dispatched, then the total
    total = tbl.records()[-1]
    assert total["name"] == "合计 total" and total["due_close"] == 10 and total["close_rate"] == 0.7


# ---------------------------------------------------------------------------------------------- files


@pytest.mark.usefixtures("october")
def test_xlsx_matches_csv_cell_for_cell(conn, tmp_path):
    add_unit(conn, "ZZ01", "=1+2")  # would be a formula in Excel if written carelessly
    add_unit(conn, "ZZ02", SCRIPT)
    current, previous = zip(reports(conn, "unit"), reports(conn, "cell"))
    bk = report_files.book(list(current), scheme="jinhua", previous=list(previous))
    report_files.write(bk, "xlsx", tmp_path / "r.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "r.xlsx")
    assert wb.sheetnames == ["责任单位 responsible unit", "单元网格 cell", "定义 Definitions"]
    for tbl, sheet in zip(bk.tables, wb.worksheets):
        report_files.write(
            report_files.Book(bk.period, bk.previous, bk.scheme, bk.cutoff, bk.area, [tbl], bk.definitions),
            "csv",
            tmp_path / f"{tbl.level}.csv",
        )
        rows = read_csv(tmp_path / f"{tbl.level}.csv")
        cells = list(sheet.iter_rows())
        assert len(cells) == len(rows) == len(tbl.rows) + 1
        for csv_row, xlsx_row in zip(rows, cells):
            assert len(xlsx_row) == len(csv_row)
            # the workbook's text is never a formula without the CSV's apostrophe; a missing figure is empty
            expected = [
                v[1:] if v.startswith("'=") else "" if v == "—" and c.kind != "text" else v
                for v, c in zip(csv_row, tbl.columns)
            ]
            assert [shown(c) for c in xlsx_row] == expected
        assert sheet.freeze_panes == "A2" and all(c.font.b for c in cells[0])
        rate = [c.key for c in tbl.columns].index("close_rate")
        numbers = [r[rate] for r in cells[1:] if isinstance(r[rate].value, (int, float))]
        assert numbers and {c.number_format for c in numbers} == {"0.00%"}
        assert sheet.column_dimensions["A"].width >= 6
    units = read_csv(tmp_path / "unit.csv")
    by_code = {r[4]: dict(zip(units[0], r)) for r in units[1:]}
    assert by_code["ZF03"]["结案率 closing rate"] == "—" and by_code["ZF03"]["得分 score (jinhua)"] == "—"
    assert (
        by_code["HW01"]["得分 score (jinhua)"] == "79.30"
        and by_code["HW01"]["按期处置率 on-time handling rate"] == "75.00%"
    )
    assert by_code["ZZ01"]["名称 name"] == "'=1+2"
    formula_cell = next(c for c in wb.worksheets[0]["F"] if c.value == "=1+2")
    assert formula_cell.data_type == "s"
    assert next(c for c in wb.worksheets[0]["F"] if c.value == SCRIPT)

    defs = list(wb["定义 Definitions"].iter_rows(values_only=True))
    assert defs[0] == ("键 key", "中文", "English", "公式 formula", "统计口径 counting rule")
    listed = {r[0]: r for r in defs[1:] if r[0]}
    for d in (*indicators.COUNTS, *indicators.RATES):
        assert listed[d.key][3].startswith(d.formula) and listed[d.key][4], d.key
    for r in indicators.RATES:  # each rate names its population, in each language's column
        assert r.cohort_zh in listed[r.key][3] and r.cohort_en in listed[r.key][4], r.key
    assert {"score", "rank", "expired_billboards"} <= set(listed)
    assert "50" in listed["score"][3] and "0.2 × 返工数" in listed["score"][3]
    assert listed["期间 period"][1].startswith("2026-10")


@pytest.mark.usefixtures("october")
def test_html_escapes_names_and_is_standalone(conn):
    add_unit(conn, "ZZ02", SCRIPT)
    current, previous = reports(conn, "unit")
    html = report_files.render_html(report_files.book([current], scheme="jinniu", previous=[previous]))
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<script" not in html.lower()
    assert "http://" not in html and "https://" not in html and "<link" not in html and " src=" not in html
    assert html.count("<table") == 2 and "定义 Definitions" in html and '<td class="none">—</td>' in html
    assert "75.00%" in html and "合计 total" in html


@pytest.mark.usefixtures("october")
def test_group_by_an_attribute(conn):
    current, previous = reports(conn, "cell")
    tbl = report_files.table(current, previous=previous, group_by="parent")
    rows = tbl.records()
    assert {r["group"] for r in rows[:-1]} == {"110101001001"} and "parent" not in [c.key for c in tbl.columns]
    assert sorted(r["rank"] for r in rows if r["rank"]) == [1, 2, 3, 4]


# ------------------------------------------------------------------------------------------------ CLI


@pytest.fixture
def report_cli(cli):
    """The `cli` fixture (gridmgr report is a registered command)."""
    return cli


def build_month(conn) -> None:
    """Two units and three cases: HW01 on time in October, ZF01 overdue in October, on time in September."""
    cells = list(insert_small_grid(conn).values())
    hw, zf = add_unit(conn, "HW01", "环卫所", "sanitation"), add_unit(conn, "ZF01", "执法一中队", "enforcement_squad")
    add_unit(conn, "ZZ02", SCRIPT)
    add_case(
        conn,
        cells[0],
        "0102",
        std(t(10, 1), t(10, 3, 10), hw)
        + [("handle", t(10, 2, 9), t(10, 2, 13)), ("check_pass", t(10, 2, 10), t(10, 2, 11)), ("close", t(10, 2, 12))],
    )
    add_case(conn, cells[1], "0103", std(t(10, 5), t(10, 8, 10), zf))
    add_case(
        conn,
        cells[2],
        "0104",
        std(t(9, 5), t(9, 8, 10), zf)
        + [("handle", t(9, 7, 9), t(9, 7, 13)), ("check_pass", t(9, 7, 10), t(9, 7, 11)), ("close", t(9, 7, 12))],
    )


def test_cli_report(report_cli, fresh_db, tmp_path):
    _, eng = fresh_db
    with eng.begin() as c:
        build_month(c)
    base = ("report", "--period", "2026-10", "--today", "2026-11-30")

    out = report_cli(*base, "--level", "unit", "-o", tmp_path / "u.csv")
    assert "report 2026-10 (unit; 3 rows; scheme jinniu; compared with 2026-09) written to" in out.output
    rows = read_csv(tmp_path / "u.csv")
    by_code = {r[4]: dict(zip(rows[0], r)) for r in rows[1:]}
    assert by_code["HW01"]["得分 score (jinniu)"] == "100.00"
    zf = by_code["ZF01"]  # due 1, not handled: 0 × 30 + 0 × 20 + 20 + 0 × 20 + 10
    assert (zf["得分 score (jinniu)"], zf["上期得分 previous score"], zf["得分变化 score change"]) == (
        "30.00",
        "100.00",
        "-70.00",
    )
    assert zf["处置率较上期 handling rate change (pp)"] == "-100.00" and zf["延期率 extension rate"] == "0.00%"
    assert by_code["ZZ02"]["名称 name"] == SCRIPT and by_code["ZZ02"]["结案率 closing rate"] == "—"

    report_cli(
        *base,
        "--level",
        "unit",
        "--level",
        "street",
        "--level",
        "duty-grid",
        "--scheme",
        "jinhua",
        "-f",
        "xlsx",
        "-o",
        tmp_path / "r.xlsx",
    )
    wb = openpyxl.load_workbook(tmp_path / "r.xlsx")
    assert wb.sheetnames == ["责任单位 responsible unit", "街道、乡镇 street", "责任网格 duty grid", "定义 Definitions"]

    scheme = tmp_path / "closing.yaml"
    scheme.write_text(
        "scheme: closing\ntitle_zh: 结案\ntitle_en: closing\nitems:\n  - rate: close_rate\n    weight: 100\n",
        encoding="utf-8",
    )
    report_cli(*base, "--level", "street", "--scheme", scheme, "-o", tmp_path / "s.html")
    html = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert "得分 score (closing)" in html and "<script" not in html

    bad = report_cli(*base, "--level", "unit", "--level", "cell", "-o", tmp_path / "x.csv", ok=False)
    assert bad.exit_code == 2 and "a CSV file holds one level" in bad.output
    bad = report_cli(*base, "--level", "cell", "--group-by", "kind", "-o", tmp_path / "x.csv", ok=False)
    assert bad.exit_code == 1 and "no attribute 'kind'" in bad.output and "parent" in bad.output
    bad = report_cli("report", "--period", "2026-13", "--level", "unit", "-o", tmp_path / "x.csv", ok=False)
    assert bad.exit_code == 1 and "bad period" in bad.output
    bad = report_cli(*base, "--level", "province", "-o", tmp_path / "x.csv", ok=False)
    assert bad.exit_code == 1 and "unknown level" in bad.output
    bad = report_cli(*base, "--level", "unit", "-o", tmp_path / "x.txt", ok=False)
    assert bad.exit_code == 2 and "-f csv, xlsx or html" in bad.output
    assert not (tmp_path / "x.csv").exists()


def test_cli_report_running_period(report_cli, fresh_db, tmp_path):
    """A period still running is read up to the end of --today (and the summary says what was written)."""
    _, eng = fresh_db
    with eng.begin() as c:
        build_month(c)
    report_cli(
        "report",
        "--period",
        "2026-10-01..2026-10-04",
        "--today",
        "2026-10-02",
        "--level",
        "district",
        "-o",
        tmp_path / "d.csv",
    )
    rows = read_csv(tmp_path / "d.csv")
    total = dict(zip(rows[0], rows[-1]))
    assert (
        total["名称 name"] == "合计 total"
        and total["上报数 reported"] == "1"
        and total["应结案数 due for closing"] == "0"
    )
