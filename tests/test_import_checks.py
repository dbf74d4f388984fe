"""The import's checks run in SQL over the staged text: what they accept, what they refuse and how they say it.

Every file is given twice: as a plain CSV (the server COPYs it as it is) and as XLSX (read by pandas,
then staged): both must accept and refuse the same values with the same messages.
"""

from datetime import UTC, date, datetime

import pandas as pd
import pytest
from sqlalchemy import text

from gridmgr.errors import InputError
from gridmgr.io.importer import import_file
from gridmgr.io.validate import WHITESPACE
from gridmgr.plugins import registry

from support import SMALL_ORIGIN, SMALL_STEP

X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP
IN_CELL = {"lon": f"{X0 + 0.5 * D}", "lat": f"{Y0 + 0.5 * D}"}


def write(tmp_path, fmt, rows, name="in"):
    path = tmp_path / f"{name}.{fmt}"
    df = pd.DataFrame(rows, dtype=str)
    if fmt == "csv":
        df.to_csv(path, index=False, encoding="utf-8")
    else:
        df.to_excel(path, index=False)
    return path


def case(no, **kw):
    return {
        "case_no": f"2026{no:07d}",
        "category": "0102",
        "source": "public",
        "reported_at": "2026-10-01T08:00:00",
        **IN_CELL,
        **kw,
    }


def refused(conn, layer, path) -> str:
    with pytest.raises(InputError) as err:
        import_file(conn, registry.get(layer), path)
    assert conn.execute(text(f"SELECT count(*) FROM {registry.get(layer).table.name}")).scalar() == 0
    return str(err.value)


def test_whitespace_is_what_python_strips():
    assert set(WHITESPACE) == {c for c in map(chr, range(0x110000)) if c.isspace()}


ACCEPTED = [
    ("2026-10-01T08:30:00", datetime(2026, 10, 1, 0, 30, tzinfo=UTC)),  # local time (Asia/Shanghai)
    ("2026-10-01 08:30", datetime(2026, 10, 1, 0, 30, tzinfo=UTC)),
    ("2026-10-01T08", datetime(2026, 10, 1, 0, 0, tzinfo=UTC)),
    ("2026-10-01", datetime(2026, 9, 30, 16, 0, tzinfo=UTC)),
    ("2026-10-01T08:30:00Z", datetime(2026, 10, 1, 8, 30, tzinfo=UTC)),
    ("2026-10-01T08:30:00+0800", datetime(2026, 10, 1, 0, 30, tzinfo=UTC)),
    ("2026-10-01T08:30:00-05:00", datetime(2026, 10, 1, 13, 30, tzinfo=UTC)),
    ("2026-10-01T08:30:15.25+08:00", datetime(2026, 10, 1, 0, 30, 15, 250000, tzinfo=UTC)),
    ("2024-02-29T23:59:59", datetime(2024, 2, 29, 15, 59, 59, tzinfo=UTC)),
    ("\u30002026-10-01T08:30:00\xa0", datetime(2026, 10, 1, 0, 30, tzinfo=UTC)),  # trimmed as str.strip() does
]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_datetimes_accepted(conn, small_grid, tmp_path, fmt):
    rows = [case(i, reported_at=v) for i, (v, _) in enumerate(ACCEPTED, start=1)]
    assert import_file(conn, registry.get("cases"), write(tmp_path, fmt, rows)).imported == len(rows)
    got = dict(conn.execute(text("SELECT case_no, reported_at FROM cases")).all())
    assert [got[r["case_no"]] for r in rows] == [want for _, want in ACCEPTED]
    # the same instants pandas gives (the readers before the checks moved to SQL)
    for v, want in ACCEPTED:
        ts = pd.to_datetime(v.strip(), format="ISO8601")
        ts = ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("Asia/Shanghai").tz_convert("UTC")
        assert ts.to_pydatetime() == want, v


REFUSED_TIMES = [
    "2026-02-30",
    "2026-13-01",
    "2026-10-01T24:00",
    "2026-10-01T08:60",
    "2026-10-01T08:30:61",
    "yesterday",
    "2026-10-01T08:30:00+16:00",
    "0000-01-01",
    "2026-1-1",
    "2026-10-01T08:30:00 Z",
    "2026-10-01T8:30",
    "2025-02-29",
    "01/10/2026",
]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_bad_datetimes_are_named_by_row_and_field(conn, small_grid, tmp_path, fmt):
    rows = [case(i, reported_at=v) for i, v in enumerate(REFUSED_TIMES, start=1)]
    msg = refused(conn, "cases", write(tmp_path, fmt, rows))
    for row, v in enumerate(REFUSED_TIMES, start=2):
        assert f"row {row}, field 'reported_at': {v!r} is not an ISO 8601 date-time" in msg


BILLBOARD = {"ad_no": "AD-1", "type": "wall", "status": "permitted", **IN_CELL}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_numbers_yes_no_and_dates_named_by_row_and_field(conn, small_grid, tmp_path, fmt):
    bad = [
        ({"width_m": "abc"}, "width_m", "'abc' is not a number"),
        ({"width_m": "1e999"}, "width_m", "'1e999' is out of range"),
        ({"width_m": "1.2.3"}, "width_m", "'1.2.3' is not a number"),
        ({"width_m": "."}, "width_m", "'.' is not a number"),
        ({"width_m": "e5"}, "width_m", "'e5' is not a number"),
        ({"height_m": "-0.5"}, "height_m", "-0.5 is below 0"),
        ({"illuminated": "maybe"}, "illuminated", "'maybe' is not yes/no"),
        ({"valid_to": "2026-02-29"}, "valid_to", "'2026-02-29' is not a date (YYYY-MM-DD)"),
        ({"valid_to": "2026/03/01"}, "valid_to", "'2026/03/01' is not a date"),
        ({"type": "blimp"}, "type", "'blimp' is not one of"),
        ({"lon": "116.40x"}, "lon/lat", "is missing or not a number"),
        ({"ad_no": "AD-1"}, "ad_no", "'AD-1' appears twice in the file"),
    ]
    if fmt == "csv":  # a worksheet cannot hold a control character at all
        bad.append(({"owner": "a\x07b"}, "owner", "contains a control character"))
    rows = [{**BILLBOARD, "ad_no": f"AD-{i}", **change} for i, (change, _, _) in enumerate(bad, start=2)]
    rows.insert(0, dict(BILLBOARD))
    msg = refused(conn, "billboards", write(tmp_path, fmt, rows))
    for row, (_, field, reason) in enumerate(bad, start=3):
        assert f"row {row}, field '{field}': {reason}" in msg, (row, field, msg)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_typed_values_stored(conn, small_grid, tmp_path, fmt):
    rows = [
        {
            **BILLBOARD,
            "width_m": "+1.5e1",
            "height_m": ".5",
            "illuminated": "是",
            "valid_to": "2026-12-31",
            "type": "墙面广告",
            "owner": " 某公司 ",
        },
        {
            **BILLBOARD,
            "ad_no": "AD-2",
            "width_m": "3.",
            "illuminated": "FALSE",
            "valid_to": "2027-01-01T10:00",
            "type": "LED screen",
        },
    ]
    assert import_file(conn, registry.get("billboards"), write(tmp_path, fmt, rows)).imported == 2
    got = conn.execute(
        text("SELECT ad_no, width_m, height_m, illuminated, valid_to, type, owner FROM billboards ORDER BY ad_no")
    ).all()
    assert [tuple(r) for r in got] == [
        ("AD-1", 15.0, 0.5, True, date(2026, 12, 31), "wall", "某公司"),
        ("AD-2", 3.0, None, False, date(2027, 1, 1), "led_screen", None),
    ]


def test_whole_numbers_and_their_range(conn, small_grid, tmp_path):
    base = {
        "zone_no": "Z-1",
        "name": "z",
        "parking_angle": "parallel",
        "wkt": f"LINESTRING({X0 + 0.1 * D} {Y0 + 0.5 * D}, {X0 + 0.9 * D} {Y0 + 0.5 * D})",
    }
    rows = [
        {**base, "capacity": "12.0"},
        {**base, "zone_no": "Z-2", "capacity": "1.5"},
        {**base, "zone_no": "Z-3", "capacity": "3000000000"},
    ]
    msg = refused(conn, "parking_zones", write(tmp_path, "csv", rows))
    assert "row 3, field 'capacity': '1.5' is not a whole number" in msg
    assert "row 4, field 'capacity': '3000000000' is out of range" in msg and "row 2" not in msg


def test_skip_invalid_rejects_keep_the_input_columns(conn, small_grid, tmp_path):
    rows = [case(1), case(2, reported_at="soon"), case(3, category="9999")]
    path = write(tmp_path, "csv", rows)
    res = import_file(conn, registry.get("cases"), path, skip_invalid=True, rejects=tmp_path / "r.csv")
    assert (res.imported, res.rejected) == (1, 2)
    out = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    assert list(out["record"]) == ["row 3", "row 4"] and list(out["case_no"]) == [
        rows[1]["case_no"],
        rows[2]["case_no"],
    ]
    assert list(out.columns[2:]) == list(rows[0]) and out["lon"][0] == IN_CELL["lon"]
    assert "'soon' is not an ISO 8601" in out["reasons"][0] and "unknown category '9999'" in out["reasons"][1]
