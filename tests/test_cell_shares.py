"""Shares of lines along cell edges (migration 0008): half to each side, summing to 1, primary consistent."""

import pytest
from sqlalchemy import text

from support import SMALL_ORIGIN, SMALL_STEP

X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP
SW, SE, NW, NE = "110101001001003", "110101001001004", "110101001001001", "110101001001002"


def line(*pts) -> str:
    return "ST_GeomFromText('LINESTRING(" + ", ".join(f"{X0 + x * D} {Y0 + y * D}" for x, y in pts) + ")', 4326)"


def shares(conn, ids, geom) -> dict[str, float]:
    code = {v: k for k, v in ids.items()}
    return {code[c]: s for c, s in conn.execute(text(f"SELECT cell_id, share FROM cell_shares({geom})"))}


def primary(conn, ids, geom) -> str:
    cid = conn.execute(text(f"SELECT cell_id FROM cell_for({geom})")).scalar()
    return {v: k for k, v in ids.items()}[cid]


def metres(conn, geom) -> float:
    return conn.execute(text(f"SELECT ST_Length(({geom})::geography)")).scalar()


def test_line_along_an_edge_is_shared_by_both_cells(conn, small_grid):
    kerb = line((1, 0.1), (1, 0.9))  # on the edge between SW and SE
    got = shares(conn, small_grid, kerb)
    assert got == pytest.approx({SW: 0.5, SE: 0.5})
    assert primary(conn, small_grid, kerb) == SW  # a tie: the lowest code, as for a point on the edge


def test_line_partly_along_an_edge(conn, small_grid):
    kerb = line((0.5, 0.2), (1, 0.2), (1, 0.8))  # inside SW, then up the SW|SE edge
    inside, edge = metres(conn, line((0.5, 0.2), (1, 0.2))), metres(conn, line((1, 0.2), (1, 0.8)))
    total = inside + edge
    got = shares(conn, small_grid, kerb)
    assert got == pytest.approx({SW: (inside + edge / 2) / total, SE: edge / 2 / total})
    assert sum(got.values()) == pytest.approx(1.0)
    assert primary(conn, small_grid, kerb) == max(got, key=got.get)


def test_line_through_a_corner_leaves_out_the_cells_it_only_touches(conn, small_grid):
    diagonal = line((0.5, 0.5), (1.5, 1.5))  # SW to NE through the vertex all four cells share
    got = shares(conn, small_grid, diagonal)
    assert set(got) == {SW, NE}
    assert sum(got.values()) == pytest.approx(1.0)


def test_polygon_touching_a_cell_along_an_edge_leaves_it_out(conn, small_grid):
    square = (
        "ST_GeomFromText('POLYGON(("
        + ", ".join(f"{X0 + x * D} {Y0 + y * D}" for x, y in ((0.2, 0.2), (1, 0.2), (1, 0.8), (0.2, 0.8), (0.2, 0.2)))
        + "))', 4326)"
    )
    assert shares(conn, small_grid, square) == pytest.approx({SW: 1.0})


def test_line_along_the_grid_boundary_belongs_to_the_one_cell_there(conn, small_grid):
    kerb = line((2, 0.1), (2, 0.9))  # the east edge of SE, nothing beyond it
    assert shares(conn, small_grid, kerb) == pytest.approx({SE: 1.0})
