"""The test-size demo loads through the real import paths, and a second run changes nothing."""

from datetime import date

from sqlalchemy import text

from gridmgr.demo import loader
from gridmgr.grid import cells


def test_demo_loads_idempotently(fresh_db, tmp_path):
    _, eng = fresh_db
    with eng.begin() as conn:
        first = loader.load(conn, "test", tmp_path, today=date(2026, 11, 22))
    assert first.loaded
    c = first.counts
    assert c["streets"] == 3 and c["communities"] >= 8 and c["cells"] > 50
    assert c["units"] > 5 and c["people"] > 10 and c["duty grids"] >= 1
    assert c["cases"] > 300 and c["parking_zones"] > 0 and c["construction"] > 0 and c["billboards"] > 0
    with eng.begin() as conn:
        assert cells.check(conn, "110101") == []
        # every cell has its territorial owner, grid officer and supervisor (定人、定岗、定责)
        assert (
            conn.execute(
                text("""SELECT count(*) FROM grid_cells g WHERE g.valid_to IS NULL AND NOT EXISTS
            (SELECT 1 FROM cell_units u WHERE u.cell_id = g.id AND u.duty = 'territorial')""")
            ).scalar()
            == 0
        )
        # every imported case begins its audit trail
        assert (
            conn.execute(
                text(
                    "SELECT count(*) FROM cases f WHERE NOT EXISTS (SELECT 1 FROM case_events e WHERE e.case_id = f.id)"
                )
            ).scalar()
            == 0
        )
        # last month before the anchor is a full month of cases
        # (cases raised by layer rules on the anchor day are not part of the imported year)
        months = conn.execute(
            text(
                "SELECT count(DISTINCT date_trunc('month', reported_at AT TIME ZONE 'Asia/Shanghai')) "
                "FROM cases WHERE source <> 'rule'"
            )
        ).scalar()
        assert months == 12
    with eng.begin() as conn:
        second = loader.load(conn, "test", tmp_path, today=date(2026, 12, 30))
    assert not second.loaded and second.anchor == date(2026, 11, 22) and second.counts == first.counts
