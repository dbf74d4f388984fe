"""Layer import: cases from CSV/XLSX, every bad-input kind named by row and field, re-import, skip-invalid."""

import pandas as pd
import pytest
from sqlalchemy import text

from gridmgr.errors import InputError
from gridmgr.io.importer import import_file
from gridmgr.plugins import registry

from support import SMALL_ORIGIN, SMALL_STEP

X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP
HEADER = "case_no,category,source,urgency,reported_at,description,address,lon,lat\n"


def csv_file(tmp_path, rows, name="cases.csv"):
    p = tmp_path / name
    p.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return p


def good_rows():
    return [
        f"2026000001,0102,supervisor,normal,2026-10-01T08:30:00,垃圾,东直门内大街,{X0 + 0.5 * D},{Y0 + 0.5 * D}",
        f"2026000002,0505,public,urgent,2026-10-02T09:00:00+08:00,乱停车,,{X0 + 1.5 * D},{Y0 + 1.5 * D}",
        f"2026000003,C0102,hotline_12345,,2026-10-03 10:00,井盖,,{X0 + 1.5 * D},{Y0 + 0.5 * D}",
    ]


def test_cases_import_assigns_cells(conn, small_grid, tmp_path):
    work_mem = conn.execute(text("SHOW work_mem")).scalar()
    res = import_file(conn, registry.get("cases"), csv_file(tmp_path, good_rows()))
    assert conn.execute(text("SHOW work_mem")).scalar() == work_mem  # the import's own setting is gone
    assert (res.rows, res.imported, res.rejected, res.out_of_grid) == (3, 3, 0, 0)
    rows = conn.execute(
        text("""SELECT f.case_no, c.code, f.status, f.urgency, f.reported_at AT TIME ZONE 'Asia/Shanghai'
                                FROM cases f JOIN grid_cells c ON c.id = f.cell_id ORDER BY case_no""")
    ).all()
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("2026000001", "110101001001003", "reported", "normal"),
        ("2026000002", "110101001001002", "reported", "urgent"),
        ("2026000003", "110101001001004", "reported", "normal"),
    ]
    assert str(rows[0][4]) == "2026-10-01 08:30:00"  # no offset given: Asia/Shanghai local time
    assert str(rows[1][4]) == "2026-10-02 09:00:00"


def test_reimport_adds_nothing(conn, small_grid, tmp_path):
    layer = registry.get("cases")
    import_file(conn, layer, csv_file(tmp_path, good_rows()))
    again = import_file(conn, layer, csv_file(tmp_path, good_rows()))
    assert again.already_imported is not None and again.imported == 0
    # the same rows in another file: skipped by their case numbers
    other = import_file(conn, layer, csv_file(tmp_path, good_rows()[::-1], "other.csv"))
    assert (other.imported, other.existing) == (0, 3)
    assert conn.execute(text("SELECT count(*) FROM cases")).scalar() == 3


@pytest.mark.parametrize(
    "row, field, reason",
    [
        (
            f"2026000009,9999,public,,2026-10-01T08:00:00,x,,{X0 + 0.5 * D},{Y0 + 0.5 * D}",
            "category",
            "unknown category '9999'",
        ),
        (f"2026000009,0102,tv,,2026-10-01T08:00:00,x,,{X0 + 0.5 * D},{Y0 + 0.5 * D}", "source", "'tv' is not one of"),
        (f"2026000009,0102,public,,yesterday,x,,{X0 + 0.5 * D},{Y0 + 0.5 * D}", "reported_at", "not an ISO 8601"),
        (f"2026000009,0102,public,,,x,,{X0 + 0.5 * D},{Y0 + 0.5 * D}", "reported_at", "is missing"),
        (f"2026000009,,public,,2026-10-01T08:00:00,x,,{X0 + 0.5 * D},{Y0 + 0.5 * D}", "category", "is missing"),
        (f"2026000009,0102,public,,2026-10-01T08:00:00,x,,{Y0},{X0}", "lon/lat", "look swapped"),
        ("2026000009,0102,public,,2026-10-01T08:00:00,x,,121.47,31.23", "lon/lat", "outside the extent"),
        ("2026000009,0102,public,,2026-10-01T08:00:00,x,,,", "lon/lat", "is missing"),
        (f"2026000009,0102,public,,2026-10-01T08:00:00,x,,abc,{Y0}", "lon/lat", "is missing or not a number"),
    ],
)
def test_bad_row_is_named_and_nothing_stored(conn, small_grid, tmp_path, row, field, reason):
    path = csv_file(tmp_path, [*good_rows(), row])
    work_mem = conn.execute(text("SHOW work_mem")).scalar()
    with pytest.raises(InputError) as err:
        import_file(conn, registry.get("cases"), path)
    msg = str(err.value)
    assert f"row 5, field '{field}'" in msg and reason in msg and "nothing stored" in msg
    assert conn.execute(text("SHOW work_mem")).scalar() == work_mem
    assert conn.execute(text("SELECT count(*) FROM cases")).scalar() == 0


def test_skip_invalid_imports_exactly_the_valid_rows(conn, small_grid, tmp_path):
    bad = [f"2026000008,9999,public,,2026-10-01T08:00:00,x,,{X0},{Y0}", f"2026000009,0102,public,,nope,x,,{X0},{Y0}"]
    rejects = tmp_path / "rejects.csv"
    res = import_file(
        conn, registry.get("cases"), csv_file(tmp_path, [*good_rows(), *bad]), skip_invalid=True, rejects=rejects
    )
    assert (res.imported, res.rejected) == (3, 2)
    out = pd.read_csv(rejects, dtype=str)
    assert list(out["record"]) == ["row 5", "row 6"]
    assert "unknown category" in out["reasons"][0] and "not an ISO 8601" in out["reasons"][1]


def test_out_of_grid_points_are_kept_and_flagged(conn, small_grid, tmp_path):
    row = f"2026000010,0102,public,,2026-10-01T08:00:00,x,,{X0 + 0.01},{Y0 + 0.01}"
    res = import_file(conn, registry.get("cases"), csv_file(tmp_path, [row]))
    assert (res.imported, res.out_of_grid) == (1, 1)
    assert conn.execute(text("SELECT out_of_grid, cell_id FROM cases")).first() == (True, None)


def test_generated_case_numbers_and_chinese_headers(conn, small_grid, tmp_path):
    p = tmp_path / "zh.csv"
    p.write_text(
        "案件编号,类别,来源,上报时间,问题描述,经度,纬度\n"
        f",0102,公众举报,2026-10-01T08:00:00,垃圾,{X0 + 0.5 * D},{Y0 + 0.5 * D}\n",
        encoding="utf-8",
    )
    res = import_file(conn, registry.get("cases"), p)
    assert res.imported == 1
    no, source = conn.execute(text("SELECT case_no, source FROM cases")).first()
    assert no.startswith("2026") and len(no) == 11 and source == "public"


def test_map_option_and_xlsx(conn, small_grid, tmp_path):
    df = pd.DataFrame(
        [
            {
                "编号X": "2026000020",
                "类别": "0102",
                "src": "video",
                "reported_at": "2026-10-01T08:00:00",
                "x": str(X0 + 0.5 * D),
                "y": str(Y0 + 0.5 * D),
            }
        ]
    )
    p = tmp_path / "c.xlsx"
    df.to_excel(p, index=False)
    res = import_file(conn, registry.get("cases"), p, mapping={"编号X": "case_no", "src": "source"})
    assert res.imported == 1
    assert conn.execute(text("SELECT case_no, source FROM cases")).first() == ("2026000020", "video")


def test_gcj02_input_lands_in_same_cell(conn, small_grid, tmp_path):
    from gridmgr.geo import crs

    lon, lat = X0 + 1.5 * D, Y0 + 0.5 * D
    gx, gy = crs.from_wgs84([lon], [lat], "gcj02")
    row = f"2026000030,0102,public,,2026-10-01T08:00:00,x,,{gx[0]:.9f},{gy[0]:.9f}"
    import_file(conn, registry.get("cases"), csv_file(tmp_path, [row]), crs="gcj02")
    code = conn.execute(text("SELECT c.code FROM cases f JOIN grid_cells c ON c.id = f.cell_id")).scalar()
    assert code == "110101001001004"


def index_defs(c, table="cases"):
    return set(c.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"), {"t": table}).scalars())


def test_large_load_rebuilds_the_secondary_indexes(owner_conn, tmp_path, monkeypatch):
    """As the tables' owner (dropping and building indexes is DDL, which the app's role may not run)."""
    from gridmgr.io import importer

    from support import insert_small_grid

    conn = owner_conn
    insert_small_grid(conn)
    before = index_defs(conn)
    monkeypatch.setattr(importer, "DEFER_MIN_ROWS", 2)  # 3 rows into an empty table: a "large" load
    steps = []
    res = import_file(conn, registry.get("cases"), csv_file(tmp_path, good_rows()), progress=steps.append)
    secondary = [d for d in before if not d.startswith("CREATE UNIQUE") and " WHERE " not in d]
    assert res.imported == 3 and f"building {len(secondary)} indexes" in steps and len(secondary) >= 6
    assert index_defs(conn) == before
    # the rebuilt indexes are used and hold every row
    conn.execute(text("SET LOCAL enable_seqscan = off"))
    assert conn.execute(text("SELECT count(*) FROM cases WHERE cell_id IS NOT NULL")).scalar() == 3
    # a load smaller than twice the table keeps the indexes in place
    more = [r.replace("202600000", "202600010") for r in good_rows()]
    steps.clear()
    import_file(conn, registry.get("cases"), csv_file(tmp_path, more, "more.csv"), progress=steps.append)
    assert not any(s.startswith("building") for s in steps) and index_defs(conn) == before


def test_the_app_role_loads_with_the_indexes_in_place(conn, small_grid, tmp_path, monkeypatch):
    from gridmgr.io import importer

    before = index_defs(conn)
    monkeypatch.setattr(importer, "DEFER_MIN_ROWS", 2)
    steps = []
    res = import_file(conn, registry.get("cases"), csv_file(tmp_path, good_rows()), progress=steps.append)
    assert res.imported == 3 and not any(s.startswith("building") for s in steps) and index_defs(conn) == before


def test_large_load_into_a_table_in_use_keeps_its_indexes(owner_db, tmp_path, monkeypatch):
    from gridmgr.io import importer

    from support import insert_small_grid

    _, eng = owner_db
    with eng.begin() as c:
        insert_small_grid(c)
    monkeypatch.setattr(importer, "DEFER_MIN_ROWS", 2)
    monkeypatch.setattr(importer, "LOCK_WAIT", "200ms")
    with eng.connect() as reader, reader.begin():
        reader.execute(text("SELECT count(*) FROM cases")).scalar()  # a reader's lock, held to its commit
        steps = []
        with eng.begin() as c:
            before = index_defs(c)
            res = import_file(c, registry.get("cases"), csv_file(tmp_path, good_rows()), progress=steps.append)
            assert res.imported == 3 and not any(s.startswith("building") for s in steps)
            assert c.execute(text("SHOW lock_timeout")).scalar() == "0"  # the caller's setting is back
    with eng.connect() as c:
        assert index_defs(c) == before and c.execute(text("SELECT count(*) FROM cases")).scalar() == 3
