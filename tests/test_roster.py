"""The roster (定人、定岗、定责): import from XLSX/CSV, export, round trips, every problem reported."""

from __future__ import annotations

import copy
import csv
from datetime import datetime, timezone

import openpyxl
import pytest
from sqlalchemy import text

from gridmgr.paths import ROOT
from gridmgr.people.roster import ENUMS, LABELS, RosterError, export_roster, import_roster
from gridmgr.people.roster_sheets import REQUIRED, SHEETS, as_text

# One district → street → community, four current cells in a 2×2 block, and a redrawn corner:
# cell 005 has an old version (closed 2020) and a new one; 009 exists only in the old grid.
GRID_SQL = """
INSERT INTO regions (level, code, name, parent_id, geom, area_m2) VALUES
  ('district', '110101', '东城区', NULL, ST_Multi(ST_MakeEnvelope(116.40, 39.90, 116.44, 39.94, 4326)), 1);
INSERT INTO regions (level, code, name, parent_id, geom, area_m2) SELECT
  'street', '110101001', '东华门街道', id, ST_Multi(ST_MakeEnvelope(116.40, 39.90, 116.44, 39.94, 4326)), 1
  FROM regions WHERE code = '110101';
INSERT INTO regions (level, code, name, parent_id, geom, area_m2) SELECT
  'community', '110101001001', '多福巷社区', id, ST_Multi(ST_MakeEnvelope(116.40, 39.90, 116.44, 39.94, 4326)), 1
  FROM regions WHERE code = '110101001';
INSERT INTO grid_cells (code, community_id, geom, area_m2, source, valid_from, valid_to)
SELECT c.code, r.id, ST_Multi(ST_MakeEnvelope(c.x, c.y, c.x + 0.01, c.y + 0.01, 4326)), 1000000, 'generated',
       c.vf::timestamptz, c.vt::timestamptz
FROM regions r, (VALUES
  ('110101001001001', 116.40, 39.93, '-infinity', NULL),
  ('110101001001002', 116.41, 39.93, '-infinity', NULL),
  ('110101001001003', 116.40, 39.92, '-infinity', NULL),
  ('110101001001004', 116.41, 39.92, '-infinity', NULL),
  ('110101001001005', 116.43, 39.93, '-infinity', '2020-01-01'),
  ('110101001001005', 116.43, 39.93, '2020-01-01', NULL),
  ('110101001001009', 116.43, 39.91, '-infinity', '2020-01-01')
) AS c(code, x, y, vf, vt)
WHERE r.code = '110101001001';
"""

C1, C2, C3, C4, C5 = (f"11010100100100{i}" for i in range(1, 6))
OLD = "110101001001009"


def roster_data() -> dict[str, list[list]]:
    """A small roster, header row first; some codes typed as numbers, enumerations partly in Chinese."""
    return {
        "units": [
            ["code", "name", "kind", "region_code", "phone"],
            ["JD01", "东华门街道办事处", "街道办事处", "110101001", "010-65120001"],
            ["SQ01", "东城执法一中队", "执法中队", "110101", None],
            ["HW01", "东华门环卫所", "sanitation", None, 13800000000],
        ],
        "people": [
            ["code", "name", "role", "unit_code", "phone"],
            ["0042", "张三", "网格长", "JD01", "13800000001"],
            ["P002", "李四", "grid_officer", "JD01", None],
            ["P003", "王五", "监督员", "SQ01", None],
            ["P004", "赵六", "工作人员", None, None],
        ],
        "cell_units": [
            ["cell_code", "duty", "unit_code"],
            [int(C1), "属地", "JD01"],
            [float(C1), "执法", "SQ01"],
            [C2, "territorial", "JD01"],
            [C2, "环卫", "HW01"],
            [C5, "territorial", "JD01"],
        ],
        "cell_people": [
            ["cell_code", "person_code", "post"],
            [C1, "0042", "网格长"],
            [C1, "P003", "supervisor"],
            [C2, "P002", "网格员"],
            [C5, "P003", "监督员"],
        ],
        "duty_grids": [
            ["code", "name", "unit_code", "supervisor_code"],
            ["DG01", "东华门一号责任网格", "JD01", "P003"],
            ["DG02", "东华门二号责任网格", None, None],
        ],
        "duty_grid_cells": [
            ["duty_grid_code", "cell_code"],
            ["DG01", C1],
            ["DG01", C2],
            ["DG02", C5],
        ],
    }


def write_xlsx(path, data):
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in data.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    cell.data_type = "s"  # text, as a spreadsheet stores it
    wb.save(path)
    return path


def write_csv(folder, data, bom=True):
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in data.items():
        with open(folder / f"{name}.csv", "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
            csv.writer(f).writerows([["" if v is None else as_text(v) for v in row] for row in rows])
    return folder


SNAPSHOT = {
    "units": "SELECT u.id, u.code, u.name, u.kind, r.code, u.phone FROM units u "
    "LEFT JOIN regions r ON r.id = u.region_id ORDER BY u.code",
    "people": "SELECT p.id, p.code, p.name, p.role, u.code, p.phone FROM people p "
    "LEFT JOIN units u ON u.id = p.unit_id ORDER BY p.code",
    "cell_units": "SELECT cu.cell_id, g.code, cu.duty, u.code FROM cell_units cu "
    "JOIN grid_cells g ON g.id = cu.cell_id JOIN units u ON u.id = cu.unit_id ORDER BY 1, 3",
    "cell_people": "SELECT cp.cell_id, g.code, p.code, cp.post FROM cell_people cp "
    "JOIN grid_cells g ON g.id = cp.cell_id JOIN people p ON p.id = cp.person_id ORDER BY 1, 3, 4",
    "duty_grids": "SELECT d.id, d.code, d.name, u.code, p.code FROM duty_grids d LEFT JOIN units u "
    "ON u.id = d.unit_id LEFT JOIN people p ON p.id = d.supervisor_id ORDER BY d.code",
    "duty_grid_cells": "SELECT d.code, dc.cell_id, g.code FROM duty_grid_cells dc "
    "JOIN duty_grids d ON d.id = dc.duty_grid_id JOIN grid_cells g ON g.id = dc.cell_id "
    "ORDER BY 1, 2",
}


def snapshot(conn, ids=True):
    """Every roster table, by codes (and ids, which must not change on a re-import)."""
    snap = {name: [tuple(r) for r in conn.execute(text(sql))] for name, sql in SNAPSHOT.items()}
    return snap if ids else without_ids(snap)


def without_ids(snap):
    return {name: [(r[0], r[2]) if name == "duty_grid_cells" else r[1:] for r in rows] for name, rows in snap.items()}


def wipe(conn):
    conn.execute(
        text(
            "DELETE FROM duty_grid_cells; DELETE FROM cell_people; DELETE FROM cell_units; "
            "DELETE FROM duty_grids; DELETE FROM people; DELETE FROM units"
        )
    )


def cell_id(conn, code, current=True):
    return conn.execute(
        text(f"SELECT id FROM grid_cells WHERE code = :c AND valid_to IS {'' if current else 'NOT'} NULL"), {"c": code}
    ).scalar_one()


@pytest.fixture
def grid(conn):
    conn.execute(text(GRID_SQL))
    return conn


@pytest.fixture
def xlsx(tmp_path):
    return write_xlsx(tmp_path / "roster.xlsx", roster_data())


# ---------------------------------------------------------------- loading


def test_import_xlsx_stores_the_roster(grid, xlsx):
    result = import_roster(grid, xlsx)
    assert {k: (c.rows, c.added) for k, c in result.sheets.items()} == {
        "units": (3, 3),
        "people": (4, 4),
        "cell_units": (5, 5),
        "cell_people": (4, 4),
        "duty_grids": (2, 2),
        "duty_grid_cells": (3, 3),
    }
    snap = snapshot(grid, ids=False)
    assert snap["units"] == [
        ("HW01", "东华门环卫所", "sanitation", None, "13800000000"),
        ("JD01", "东华门街道办事处", "street_office", "110101001", "010-65120001"),
        ("SQ01", "东城执法一中队", "enforcement_squad", "110101", None),
    ]
    assert snap["people"][0] == ("0042", "张三", "grid_leader", "JD01", "13800000001")
    assert ("P004", "赵六", "staff", None, None) in snap["people"]
    # codes typed as numbers (int and float) still name the 15-digit cell
    assert (C1, "enforcement", "SQ01") in snap["cell_units"]
    assert (C1, "territorial", "JD01") in snap["cell_units"]
    assert (C2, "sanitation", "HW01") in snap["cell_units"]
    assert snap["duty_grids"] == [
        ("DG01", "东华门一号责任网格", "JD01", "P003"),
        ("DG02", "东华门二号责任网格", None, None),
    ]
    # a redrawn cell resolves to its current version
    assert (
        grid.execute(
            text("SELECT cell_id FROM cell_units WHERE duty = 'territorial' AND cell_id = :i"), {"i": cell_id(grid, C5)}
        ).scalar()
        is not None
    )
    assert result.line().startswith("roster: units 3 (3 new), people 4 (4 new)")


def test_chinese_labels_and_keys_are_accepted(grid, tmp_path):
    data = roster_data()
    data["units"][1:] = [
        ["U1", "a", "执法中队", None, None],
        ["U2", "b", "环卫所", None, None],
        ["U3", "c", "街道办事处", None, None],
        ["U4", "d", "职能部门", None, None],
        ["U5", "e", "企业", None, None],
        ["U6", "f", "其他", None, None],
        ["JD01", "g", "Street_Office", None, None],
        ["SQ01", "h", " department ", None, None],
        ["HW01", "i", "company", None, None],
    ]
    data["people"][1:] = [
        ["0042", "a", "网格长", None, None],
        ["P002", "b", "网格员", None, None],
        ["P003", "c", "监督员", None, None],
        ["P004", "d", "工作人员", None, None],
    ]
    data["cell_units"][1:] = [
        [C1, "属地", "U1"],
        [C1, "执法", "U1"],
        [C1, "环卫", "U2"],
        [C1, "养护", "U4"],
        [C1, "其他", "U5"],
    ]
    data["cell_people"][1:] = [[C1, "0042", "网格长"], [C1, "P002", "网格员"], [C1, "P003", "监督员"]]
    import_roster(grid, write_xlsx(tmp_path / "zh.xlsx", data))
    snap = snapshot(grid, ids=False)
    assert {u[0]: u[2] for u in snap["units"]} == {
        "U1": "enforcement_squad",
        "U2": "sanitation",
        "U3": "street_office",
        "U4": "department",
        "U5": "company",
        "U6": "other",
        "JD01": "street_office",
        "SQ01": "department",
        "HW01": "company",
    }
    assert [p[2] for p in snap["people"]] == ["grid_leader", "grid_officer", "supervisor", "staff"]
    assert sorted(c[1] for c in snap["cell_units"]) == sorted(
        ["territorial", "enforcement", "sanitation", "maintenance", "other"]
    )
    assert sorted(c[2] for c in snap["cell_people"]) == ["grid_leader", "grid_officer", "supervisor"]


def test_glossary_labels_are_accepted_too(grid, tmp_path):
    data = roster_data()
    data["people"][1][2] = "grid leader"  # the glossary's English label
    data["cell_units"][4][1] = "环卫所"  # the glossary's label of the key sanitation
    import_roster(grid, write_xlsx(tmp_path / "glossary.xlsx", data))
    snap = snapshot(grid, ids=False)
    assert snap["people"][0][2] == "grid_leader"
    assert (C2, "sanitation", "HW01") in snap["cell_units"]


def test_every_key_has_its_label_and_the_docs_name_them():
    doc = (ROOT / "docs" / "roster.md").read_text()
    for name, enum in ENUMS.items():
        assert set(LABELS[name]) == set(enum), name
        for key, zh in LABELS[name].items():
            assert f"`{key}`" in doc and zh in doc, (name, key)
    for sheet, cols in SHEETS.items():
        assert f"`{sheet}`" in doc
        for col in cols:
            assert f"`{col}`" in doc
        assert set(REQUIRED[sheet]) <= set(cols)


def test_csv_folder_with_bom_loads_like_the_workbook(grid, tmp_path, xlsx):
    import_roster(grid, write_csv(tmp_path / "csv", roster_data(), bom=True))
    from_csv = snapshot(grid, ids=False)
    wipe(grid)
    import_roster(grid, xlsx)
    assert snapshot(grid, ids=False) == from_csv
    wipe(grid)
    import_roster(grid, write_csv(tmp_path / "plain", roster_data(), bom=False))
    assert snapshot(grid, ids=False) == from_csv


def test_reimport_is_idempotent(grid, xlsx):
    import_roster(grid, xlsx)
    before = snapshot(grid)
    result = import_roster(grid, xlsx)
    assert snapshot(grid) == before  # same rows, same ids
    assert all((c.added, c.changed, c.removed) == (0, 0, 0) for c in result.sheets.values())
    assert "units 3 (0 new)" in result.line()


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_export_then_import_is_a_no_op(grid, xlsx, tmp_path, kind):
    import_roster(grid, xlsx)
    before = snapshot(grid)
    out = tmp_path / ("out.xlsx" if kind == "xlsx" else "out")
    counts = export_roster(grid, out)
    assert counts == {"units": 3, "people": 4, "cell_units": 5, "cell_people": 4, "duty_grids": 2, "duty_grid_cells": 3}
    result = import_roster(grid, out)
    assert snapshot(grid) == before
    assert all((c.added, c.changed, c.removed) == (0, 0, 0) for c in result.sheets.values())
    # and the export alone rebuilds the whole roster
    wipe(grid)
    import_roster(grid, out)
    assert snapshot(grid, ids=False) == without_ids(before)


def test_xlsx_export_is_readable(grid, tmp_path):
    data = roster_data()
    data["units"][3][1] = '=HYPERLINK("x")环卫所'  # text that looks like a formula stays text
    import_roster(grid, write_xlsx(tmp_path / "in.xlsx", data))
    before = snapshot(grid)
    out = tmp_path / "sub" / "export.xlsx"
    export_roster(grid, out)
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames == list(SHEETS)
    for name, cols in SHEETS.items():
        ws = wb[name]
        assert [c.value for c in ws[1]] == list(cols)
        assert all(c.font.bold for c in ws[1])
        assert ws.freeze_panes == "A2"
        assert all(8 <= ws.column_dimensions[chr(65 + i)].width <= 50 for i in range(len(cols)))
    assert wb["units"].column_dimensions["B"].width >= 18  # 东华门街道办事处: 8 wide characters
    # codes are text, never numbers
    assert [r[0] for r in wb["cell_units"].iter_rows(min_row=2, values_only=True)][0] == C1
    assert wb["people"]["A2"].value == "0042"
    assert wb["units"]["B2"].value == '=HYPERLINK("x")环卫所'
    assert import_roster(grid, out).sheets["units"].changed == 0
    assert snapshot(grid) == before


def test_csv_export_has_bom_and_the_template_header(grid, xlsx, tmp_path):
    import_roster(grid, xlsx)
    export_roster(grid, tmp_path / "out")
    raw = (tmp_path / "out" / "units.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf" + b"code,name,kind,region_code,phone")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"{n}.csv" for n in SHEETS)


# ---------------------------------------------------------------- the file is the whole roster


def test_links_are_replaced_wholesale_units_and_people_are_kept(grid, xlsx, tmp_path):
    import_roster(grid, xlsx)
    data = roster_data()
    data["units"] = data["units"][:3]  # HW01 no longer listed: kept (history may name it)
    data["cell_units"] = [data["cell_units"][0], [C1, "territorial", "SQ01"]]  # C1 changes owner
    data["cell_people"] = data["cell_people"][:3]
    data["duty_grids"] = data["duty_grids"][:2]  # DG02 gone, and its cells with it
    data["duty_grid_cells"] = data["duty_grid_cells"][:3]
    result = import_roster(grid, write_xlsx(tmp_path / "smaller.xlsx", data))
    snap = snapshot(grid, ids=False)
    assert [u[0] for u in snap["units"]] == ["HW01", "JD01", "SQ01"]
    assert snap["cell_units"] == [(C1, "territorial", "SQ01")]
    assert [(c[0], c[1]) for c in snap["cell_people"]] == [(C1, "0042"), (C1, "P003")]
    assert [d[0] for d in snap["duty_grids"]] == ["DG01"]
    assert snap["duty_grid_cells"] == [("DG01", C1), ("DG01", C2)]
    c = result.sheets
    assert (c["cell_units"].added, c["cell_units"].removed) == (1, 5)
    assert (c["cell_people"].added, c["cell_people"].removed) == (0, 2)
    assert c["duty_grids"].removed == 1


def test_a_sheet_left_out_leaves_its_table_alone(grid, xlsx, tmp_path):
    import_roster(grid, xlsx)
    before = snapshot(grid)
    data = roster_data()
    del data["cell_people"], data["duty_grid_cells"]
    data["cell_units"] = data["cell_units"][:1]
    data["extra notes"] = [["anything"]]
    result = import_roster(grid, write_xlsx(tmp_path / "part.xlsx", data))
    after = snapshot(grid)
    assert after["cell_people"] == before["cell_people"]
    assert after["duty_grid_cells"] == before["duty_grid_cells"]
    assert len(after["cell_units"]) == 0
    assert "cell_people" not in result.sheets and result.ignored == ["extra notes"]


def test_an_optional_column_left_out_keeps_its_values(grid, xlsx, tmp_path):
    import_roster(grid, xlsx)
    data = roster_data()
    data["units"] = [row[:3] for row in data["units"]]  # no region_code, no phone
    data["units"][1][1] = "东华门街道"  # a renamed unit
    result = import_roster(grid, write_xlsx(tmp_path / "nophone.xlsx", data))
    units = {u[0]: u for u in snapshot(grid, ids=False)["units"]}
    assert units["JD01"] == ("JD01", "东华门街道", "street_office", "110101001", "010-65120001")
    assert units["HW01"][4] == "13800000000"
    assert (result.sheets["units"].added, result.sheets["units"].changed) == (0, 1)


def test_links_of_closed_cells_are_history_and_kept(grid, xlsx, tmp_path):
    old5 = cell_id(grid, C5, current=False)
    data = roster_data()
    data["cell_units"] = [data["cell_units"][0], [C5, "territorial", "SQ01"], [OLD, "territorial", "SQ01"]]
    data["cell_people"] = data["cell_people"][:1]
    data["duty_grid_cells"] = data["duty_grid_cells"][:1]
    # as of 2019 the old grid is in force: 005 is its old version, 009 exists
    import_roster(grid, write_xlsx(tmp_path / "2019.xlsx", data), at=datetime(2019, 6, 1, tzinfo=timezone.utc))
    ids = {r[0] for r in grid.execute(text("SELECT cell_id FROM cell_units"))}
    assert old5 in ids and cell_id(grid, OLD, current=False) in ids
    import_roster(grid, xlsx)  # today's roster replaces today's links only
    rows = set(grid.execute(text("SELECT cell_id, duty FROM cell_units")).all())
    assert (old5, "territorial") in rows and (cell_id(grid, OLD, current=False), "territorial") in rows
    assert (cell_id(grid, C5), "territorial") in rows
    # and the export shows the current roster only
    export_roster(grid, tmp_path / "now")
    assert OLD not in (tmp_path / "now" / "cell_units.csv").read_text(encoding="utf-8-sig")


# ---------------------------------------------------------------- problems


def _set(sheet, row, col, value):
    def change(data):
        data[sheet][row - 1][SHEETS[sheet].index(col)] = value

    return change


def _drop_column(sheet, col):
    def change(data):
        i = SHEETS[sheet].index(col)
        data[sheet] = [r[:i] + r[i + 1 :] for r in data[sheet]]

    return change


def _add_row(sheet, row):
    def change(data):
        data[sheet].append(row)

    return change


BAD = {
    "unknown cell": (
        _set("cell_units", 4, "cell_code", "110101001001099"),
        "cell_units",
        4,
        "cell_code",
        "unknown cell code 110101001001099",
    ),
    "cell code not 15 digits": (
        _set("cell_people", 3, "cell_code", 1101010010010),
        "cell_people",
        3,
        "cell_code",
        "not a 15-digit cell code",
    ),
    "closed cell": (_set("duty_grid_cells", 3, "cell_code", OLD), "duty_grid_cells", 3, "cell_code", "is not current"),
    "unknown unit": (_set("people", 3, "unit_code", "NOPE"), "people", 3, "unit_code", "unknown unit code NOPE"),
    "unknown unit in cell_units": (
        _set("cell_units", 2, "unit_code", "NOPE"),
        "cell_units",
        2,
        "unit_code",
        "unknown unit code NOPE",
    ),
    "unknown person": (
        _set("cell_people", 5, "person_code", "P999"),
        "cell_people",
        5,
        "person_code",
        "unknown person code P999",
    ),
    "unknown supervisor": (
        _set("duty_grids", 2, "supervisor_code", "P999"),
        "duty_grids",
        2,
        "supervisor_code",
        "unknown person code P999",
    ),
    "unknown duty grid": (
        _set("duty_grid_cells", 2, "duty_grid_code", "DG09"),
        "duty_grid_cells",
        2,
        "duty_grid_code",
        "unknown duty grid code DG09",
    ),
    "unknown region": (
        _set("units", 2, "region_code", "110101999"),
        "units",
        2,
        "region_code",
        "unknown region code 110101999",
    ),
    "bad region code": (_set("units", 2, "region_code", "1101"), "units", 2, "region_code", "not a 6-, 9- or 12"),
    "bad kind": (_set("units", 3, "kind", "police"), "units", 3, "kind", "'police' is not a unit kind"),
    "bad role": (_set("people", 2, "role", "boss"), "people", 2, "role", "'boss' is not a person role"),
    "bad duty": (_set("cell_units", 3, "duty", "执法局"), "cell_units", 3, "duty", "'执法局' is not a duty"),
    "bad post": (_set("cell_people", 2, "post", "工作人员"), "cell_people", 2, "post", "'工作人员' is not a post"),
    "duplicate unit": (
        _add_row("units", ["SQ01", "again", "other", None, None]),
        "units",
        5,
        "code",
        "duplicate: code SQ01 is already on row 3",
    ),
    "duplicate person": (
        _add_row("people", ["P002", "again", "staff", None, None]),
        "people",
        6,
        "code",
        "duplicate: code P002 is already on row 3",
    ),
    "two units for one duty": (
        _add_row("cell_units", [C1, "属地", "SQ01"]),
        "cell_units",
        7,
        "duty",
        "is already on row 2",
    ),
    "duplicate duty grid cell": (
        _add_row("duty_grid_cells", ["DG01", C1]),
        "duty_grid_cells",
        5,
        "cell_code",
        "already on row 2",
    ),
    "missing name": (_set("people", 4, "name", "  "), "people", 4, "name", "is missing"),
    "missing unit of a cell": (_set("cell_units", 6, "unit_code", None), "cell_units", 6, "unit_code", "is missing"),
    "missing column": (_drop_column("cell_people", "post"), "cell_people", 1, None, "missing required column(s) post"),
    "unknown column": (lambda d: d["units"][0].__setitem__(4, "telephone"), "units", 1, "telephone", "unknown column"),
    "too long code": (_set("units", 2, "phone", "1" * 40), "units", 2, "phone", "longer than 32"),
}


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_row_names_sheet_row_and_field_and_stores_nothing(grid, tmp_path, case, fmt):
    change, sheet, row, field, message = BAD[case]
    data = roster_data()
    change(data)
    path = write_xlsx(tmp_path / "bad.xlsx", data) if fmt == "xlsx" else write_csv(tmp_path / "bad", data)
    with pytest.raises(RosterError) as err:
        import_roster(grid, path)
    assert len(err.value.problems) == 1, str(err.value)
    p = err.value.problems[0]
    assert (p.sheet, p.row, p.field) == (sheet, row, field)
    assert message in p.message
    where = f"{sheet} row {row}" + (f", field '{field}'" if field else "")
    assert where in str(err.value) and "nothing stored" in str(err.value)
    assert all(rows == [] for rows in snapshot(grid).values())


def test_every_problem_is_reported_at_once_and_the_old_roster_stays(grid, xlsx, tmp_path):
    import_roster(grid, xlsx)
    before = snapshot(grid)
    data = roster_data()
    data["units"][1][0] = "JD02"  # JD01 renamed, yet still referenced: fine (in the db)
    data["units"][2][2] = "警察"
    data["people"][3][2] = None
    data["cell_units"][3][0] = OLD
    data["duty_grid_cells"][1][0] = "DG03"
    with pytest.raises(RosterError) as err:
        import_roster(grid, write_xlsx(tmp_path / "bad.xlsx", data))
    found = [(p.sheet, p.row, p.field) for p in err.value.problems]
    assert found == [
        ("units", 3, "kind"),
        ("people", 4, "role"),
        ("cell_units", 4, "cell_code"),
        ("duty_grid_cells", 2, "duty_grid_code"),
    ]
    assert snapshot(grid) == before


def test_a_closed_cell_is_refused_as_not_current(grid, tmp_path):
    data = roster_data()
    data["cell_people"].append([OLD, "P002", "grid_officer"])
    with pytest.raises(RosterError) as err:
        import_roster(grid, write_xlsx(tmp_path / "old.xlsx", data))
    (p,) = err.value.problems
    assert (p.sheet, p.row, p.field) == ("cell_people", 6, "cell_code")
    assert p.message == f"cell {OLD} is not current: its last version closed on 2020-01-01 00:00"
    # the same file as of 2019 is right
    import_roster(grid, write_xlsx(tmp_path / "old.xlsx", data), at=datetime(2019, 1, 1, tzinfo=timezone.utc))


def test_blank_rows_are_skipped_and_row_numbers_stay_true(grid, tmp_path):
    data = roster_data()
    data["units"].insert(2, [None] * 5)
    data["units"][3][2] = "bogus"  # now on spreadsheet row 4
    with pytest.raises(RosterError) as err:
        import_roster(grid, write_xlsx(tmp_path / "gap.xlsx", data))
    assert [(p.sheet, p.row, p.field) for p in err.value.problems] == [("units", 4, "kind")]


def test_files_that_are_not_a_roster(grid, tmp_path):
    from gridmgr.errors import InputError

    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no units.csv"):
        import_roster(grid, tmp_path / "empty")
    (tmp_path / "r.xls").write_bytes(b"old excel")
    with pytest.raises(InputError, match="save .xls as .xlsx"):
        import_roster(grid, tmp_path / "r.xls")
    (tmp_path / "broken.xlsx").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="not a readable .xlsx"):
        import_roster(grid, tmp_path / "broken.xlsx")
    (tmp_path / "gbk").mkdir()
    (tmp_path / "gbk" / "units.csv").write_bytes("code,name,kind\nU1,东城,其他\n".encode("gbk"))
    with pytest.raises(RosterError, match="not UTF-8"):
        import_roster(grid, tmp_path / "gbk")


def test_as_text_keeps_codes_whole():
    assert as_text(110101001001001) == "110101001001001"
    assert as_text(110101001001001.0) == "110101001001001"
    assert as_text("0042 ") == "0042"
    assert as_text("\u3000") is None and as_text(None) is None


# ---------------------------------------------------------------- CLI


def test_cli_import_and_export(cli, fresh_db, tmp_path):
    _, eng = fresh_db
    with eng.begin() as c:
        c.execute(text(GRID_SQL))
    src = write_xlsx(tmp_path / "roster.xlsx", roster_data())
    out = cli("roster", "import", src).output
    assert "roster: units 3 (3 new), people 4 (4 new), cell_units 5 (5 new)" in out and " s" in out
    cli("roster", "export", tmp_path / "exported.xlsx")
    cli("roster", "export", tmp_path / "exported")
    again = cli("roster", "import", tmp_path / "exported").output
    assert "units 3 (0 new)" in again and "duty_grid_cells 3 (0 new)" in again
    with eng.connect() as c:
        before = snapshot(c)

    bad = copy.deepcopy(roster_data())
    bad["units"][2][2] = "police"
    bad["cell_people"][2][0] = OLD
    result = cli("roster", "import", write_xlsx(tmp_path / "bad.xlsx", bad), ok=False)
    assert result.exit_code == 1
    assert "2 problems, nothing stored" in result.output
    assert "units row 3, field 'kind'" in result.output and "cell_people row 3, field 'cell_code'" in result.output
    with eng.connect() as c:
        assert snapshot(c) == before
