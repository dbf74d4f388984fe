"""Hot spots: counts and adjacency in SQL on a 20 × 20 grid; Gi* finds a planted cluster and nothing in noise."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import text

from gridmgr.analytics import hotspots
from gridmgr.analytics.accountability import Period
from gridmgr.analytics.hotspots import analyse, change, classify, fdr_bh, gi_star
from gridmgr.errors import InputError

TZ = ZoneInfo("Asia/Shanghai")
N, STEP, X0, Y0 = 20, 0.001, 116.500, 39.800
COMMUNITY = "110105001001"
AT = datetime(2026, 10, 31, 12, tzinfo=TZ)
AFTER = date(2026, 11, 30)


def code(row: int, col: int) -> str:
    """The cell in `row` (0 = north) and `col` (0 = west): numbered west→east, north→south."""
    return f"{COMMUNITY}{row * N + col + 1:03d}"


@pytest.fixture
def grid(conn):
    """District → street → community and 20 × 20 square cells of 0.001°, plus a retired cell beyond the east edge."""
    box = f"ST_Multi(ST_MakeEnvelope({X0}, {Y0}, {X0 + N * STEP}, {Y0 + N * STEP}, 4326))"
    parent = None
    for level, rcode in (("district", "110105"), ("street", "110105001"), ("community", COMMUNITY)):
        parent = conn.execute(
            text(f"""
            INSERT INTO regions (level, code, name, parent_id, geom, area_m2)
            VALUES (:l, :c, :n, :p, {box}, ST_Area({box}::geography)) RETURNING id
        """),
            {"l": level, "c": rcode, "n": f"hot {level}", "p": parent},
        ).scalar()
    conn.execute(
        text(f"""
        INSERT INTO grid_cells (code, community_id, geom, area_m2, source)
        SELECT :cm || lpad((r * {N} + c + 1)::text, 3, '0'), :id, e.g, ST_Area(e.g::geography), 'generated'
        FROM generate_series(0, {N - 1}) r, generate_series(0, {N - 1}) c,
             LATERAL (SELECT ST_Multi(ST_MakeEnvelope({X0} + c * {STEP}, {Y0} + ({N - 1} - r) * {STEP},
                                                      {X0} + (c + 1) * {STEP}, {Y0} + ({N} - r) * {STEP}, 4326)) AS g) e
    """),
        {"cm": COMMUNITY, "id": parent},
    )
    conn.execute(
        text(f"""
        INSERT INTO grid_cells (code, community_id, geom, area_m2, source, valid_from, valid_to)
        SELECT :code, :id, e.g, ST_Area(e.g::geography), 'generated', '2020-01-01', '2021-01-01'
        FROM (SELECT ST_Multi(ST_MakeEnvelope({X0 + N * STEP}, {Y0}, {X0 + (N + 1) * STEP}, {Y0 + STEP}, 4326)) AS g) e
    """),
        {"code": f"{COMMUNITY}999", "id": parent},
    )
    return conn


def neighbourhood(cells: list[tuple[int, int]]) -> set[str]:
    """The cells and their queen neighbours."""
    return {
        code(r + dr, c + dc)
        for r, c in cells
        for dr in (-1, 0, 1)
        for dc in (-1, 0, 1)
        if 0 <= r + dr < N and 0 <= c + dc < N
    }


# a round cluster: a 4 × 4 block without its corners, so that every cell of it has at least 4 of its 8
# neighbours in it. (The corner of a square block sees only 3 high neighbours: drawing 3 of the few high
# counts among 8 random ones has a chance of ~1e-3, which BH over 400 cells turns into q ≈ 0.02, 95 %.)
CLUSTER = [(r, c) for r in range(8, 12) for c in range(12, 16) if (r in (8, 11)) + (c in (12, 15)) < 2]


# ------------------------------------------------------------------------------------------- adjacency


def test_adjacency_is_queen_contiguity_of_the_cells_valid_then(grid):
    w = hotspots.adjacency(grid, at=AT)
    assert w.n == N * N and f"{COMMUNITY}999" not in w.neighbors  # the retired cell is not in
    assert len(w.neighbors[code(5, 5)]) == 8 and len(w.neighbors[code(0, 0)]) == 3
    assert len(w.neighbors[code(0, 7)]) == 5
    assert set(w.neighbors[code(0, 0)]) == {code(0, 1), code(1, 0), code(1, 1)}
    assert sum(w.cardinalities.values()) == 2 * (2 * N * (N - 1) + 2 * (N - 1) ** 2)
    assert w.id_order == sorted(w.id_order)
    street = hotspots.adjacency(grid, at=AT, area="110105001")
    assert street.n == N * N and hotspots.adjacency(grid, at=AT, area="110106").n == 0


# ------------------------------------------------------------------------------------------------- Gi*


@pytest.fixture
def w(grid):
    return hotspots.adjacency(grid, at=AT)


def counts_for(w, values: dict[str, int]) -> np.ndarray:
    return np.array([values[c] for c in w.id_order])


def test_planted_cluster_is_hot_at_99(w):
    rng = np.random.default_rng(7)
    y = dict(zip(w.id_order, rng.poisson(1.0, N * N).tolist()))
    for r, c in CLUSTER:
        y[code(r, c)] += 15  # holds for 60 of 60 seeds (with +8, the weakest cells reach 99 % in 38 of 60)
    gi = gi_star(counts_for(w, y), w)
    spot = dict(zip(gi.codes, gi.spot))
    assert {spot[code(r, c)] for r, c in CLUSTER} == {"hot_99"}
    hot = {c for c, s in spot.items() if s.startswith("hot")}
    assert hot <= neighbourhood(CLUSTER)  # no hot spot away from the cluster
    # nothing else at 95 % or more (BH at 90 % may let one false discovery in per ten: here one cold_90 cell
    # whose eight neighbours hold one case, a chance of 0.3 %)
    assert {c for c, s in spot.items() if s not in ("ns", "hot_90", "cold_90")} <= neighbourhood(CLUSTER)
    assert gi.q.min() < 1e-4 and gi.method == "exact"


@pytest.mark.parametrize("mean", [0.2, 1.0, 5.0])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_uniform_noise_has_no_hot_spot(w, mean, seed):
    y = np.random.default_rng(seed).poisson(mean, N * N)
    gi = gi_star(y, w)
    assert set(gi.spot) == {"ns"}, dict(zip(*np.unique(gi.spot, return_counts=True)))


def test_permutation_method_agrees_with_exact(w):
    """esda's sampled permutations (fixed seed) give the exact randomisation p-values up to sampling noise."""
    y = np.random.default_rng(11).poisson(1.5, N * N)
    exact = gi_star(y, w)
    sampled = gi_star(y, w, method="permutation", permutations=9999, seed=5)
    assert set(sampled.spot) == {"ns"}
    diff = np.abs(exact.p - sampled.p)
    assert diff.mean() < 0.015 and diff.max() < 0.06
    # the window sums behind both: the cell and its neighbours, counted once each
    a = np.array(
        [
            [1 if (j == i or cj in w.neighbors[ci]) else 0 for j, cj in enumerate(w.id_order)]
            for i, ci in enumerate(w.id_order)
        ]
    )
    assert a.sum() == N * N + sum(w.cardinalities.values())
    # with 999 permutations no p-value is below 2/1000 (two-sided): why BH over many cells needs the exact method
    cluster = y.copy()
    cluster[[w.id_order.index(code(r, c)) for r, c in CLUSTER]] += 15
    assert gi_star(cluster, w, method="permutation", seed=5).p.min() >= 2 / 1000


def test_permutation_method_is_reproducible(w):
    y = np.random.default_rng(3).poisson(2, N * N)
    a, b = (gi_star(y, w, method="permutation", permutations=199, seed=9) for _ in range(2))
    assert np.array_equal(a.p, b.p)


def test_no_cases_and_islands_are_never_significant(w):
    zero = gi_star(np.zeros(N * N, dtype=int), w)
    assert set(zero.spot) == {"ns"} and np.isnan(zero.z).all()
    from libpysal.weights import W

    lonely = W({"a": [], "b": ["c"], "c": ["b"]}, silence_warnings=True)
    gi = gi_star([50, 0, 1], lonely)
    assert gi.islands == ["a"] and gi.spot[0] == "ns" and np.isnan(gi.z[0])
    with pytest.raises(InputError):
        gi_star([1, -1, 0], lonely)
    with pytest.raises(InputError):
        gi_star([1, 1, 0], lonely, method="magic")


def test_gi_star_leaves_the_weights_unchanged(w):
    before = {k: list(v) for k, v in w.neighbors.items()}
    gi_star(np.random.default_rng(1).poisson(1, N * N), w)
    assert w.neighbors == before and w.sparse.diagonal().sum() == 0


# ---------------------------------------------------------------------------------------------- FDR


def test_fdr_bh_by_hand_and_against_esda():
    assert np.allclose(fdr_bh([0.01, 0.04, 0.03, 0.005]), [0.02, 0.04, 0.04, 0.02])
    assert fdr_bh([]).size == 0 and fdr_bh([0.9, 1.0]).max() == 1.0
    import esda

    rng = np.random.default_rng(4)
    p = np.concatenate([rng.uniform(0, 0.002, 40), rng.uniform(0, 1, 400)])
    for alpha in (0.01, 0.05, 0.10):
        assert set(np.flatnonzero(fdr_bh(p) <= alpha)) == set(np.flatnonzero(p <= esda.fdr(p, alpha)))


# -------------------------------------------------------------------------------------- change, classes


def test_change_on_the_previous_period():
    now = {"a": "hot_99", "b": "hot_90", "c": "ns", "d": "cold_95", "e": "cold_90", "f": "ns", "g": "ns", "h": "hot_95"}
    before = {
        "a": "hot_90",
        "b": "ns",
        "c": "hot_99",
        "d": "ns",
        "e": "cold_99",
        "f": "cold_90",
        "g": "ns",
        "h": "cold_99",
    }
    assert change(now, before) == {
        "a": "stayed_hot",
        "b": "became_hot",
        "c": "cooled",
        "d": "became_cold",
        "e": "stayed_cold",
        "f": "warmed",
        "g": "not_significant",
        "h": "became_hot",
    }
    assert change({"new": "hot_99"}, {}) == {"new": "became_hot"}
    assert set(change(now, before).values()) <= set(hotspots.CHANGE_LABELS)


def _brute_jenks(values: list[float], k: int) -> list[float]:
    distinct = sorted(set(values))
    best = None
    for cuts in itertools.combinations(range(1, len(distinct)), k - 1):
        bounds = [0, *cuts, len(distinct)]
        classes = [[v for v in values if distinct[a] <= v <= distinct[b - 1]] for a, b in itertools.pairwise(bounds)]
        sse = sum(float(np.sum((np.array(c) - np.mean(c)) ** 2)) for c in classes)
        if best is None or sse < best[0] - 1e-9:
            best = (sse, [distinct[b - 1] for b in bounds[1:]])
    return best[1]


def test_classify_jenks_is_optimal_and_quantiles_are_monotone():
    rng = np.random.default_rng(2)
    values = [0] * 60 + rng.poisson(3, 30).tolist() + [12, 15, 40, 41, 90]
    data = {f"c{i}": v for i, v in enumerate(values)}
    jenks = classify(data, k=4)
    assert jenks.breaks == _brute_jenks(values, 4)
    assert jenks.classes["c0"] == 0 and jenks.classes[f"c{len(values) - 1}"] == 3
    quant = classify(data, k=5, method="quantiles")
    assert quant.breaks == sorted(quant.breaks) and quant.breaks[-1] == 90
    order = sorted(data, key=data.get)
    assert [quant.classes[c] for c in order] == sorted(quant.classes[c] for c in order)
    assert classify({"a": 0, "b": 2}, k=5).breaks == [0, 2] and classify({}, k=5).classes == {}
    with pytest.raises(InputError):
        classify(data, method="equal")


# ---------------------------------------------------------------------------------- from the database

_case_no = itertools.count(1)


def add_cases(conn, cell: str, n: int, at: datetime, category: str = "0102") -> list[int]:
    return (
        conn.execute(
            text("""
        INSERT INTO cases (geom, cell_id, case_no, category_code, source, reported_at)
        SELECT ST_PointOnSurface(g.geom), g.id, 'H' || lpad((:no + i)::text, 8, '0'),
               :cat, 'supervisor', :at
        FROM grid_cells g, generate_series(1, :n) i WHERE g.code = :cell AND g.valid_to IS NULL
        RETURNING id
    """),
            {"cell": cell, "n": n, "at": at, "cat": category, "no": next(_case_no) * 1000},
        )
        .scalars()
        .all()
    )


def test_counts_analyse_and_heat_points_from_the_database(grid):
    oct_ = datetime(2026, 10, 10, 9, tzinfo=TZ)
    for r, c in CLUSTER:
        add_cases(grid, code(r, c), 6, oct_)
    for r, c in ((1, 1), (17, 3), (4, 18), (16, 16)):
        add_cases(grid, code(r, c), 1, oct_)
    add_cases(grid, code(2, 2), 3, oct_, category="0201")  # another category
    add_cases(grid, code(2, 2), 2, datetime(2026, 9, 30, 23, tzinfo=TZ))  # September
    rejected = add_cases(grid, code(1, 1), 1, oct_)[0]
    grid.execute(
        text("""
        INSERT INTO case_events (case_id, at, action, from_state, to_state, actor, role)
        VALUES (:c, :at, 'reject', 'reported', 'rejected', 'test', 'system')
    """),
        {"c": rejected, "at": datetime(2026, 10, 10, 10, tzinfo=TZ)},
    )
    grid.execute(
        text("""
        INSERT INTO cases (geom, cell_id, case_no, category_code, source, reported_at)
        VALUES (ST_SetSRID(ST_MakePoint(117.9, 39.1), 4326), NULL, 'HOUT', '0102', 'supervisor', :at)
    """),
        {"at": oct_},
    )

    period = Period.parse("2026-10")
    counts = hotspots.cell_counts(grid, period=period, today=AFTER)
    d = counts.as_dict()
    assert len(d) == N * N and d[code(9, 13)] == 6 and d[code(1, 1)] == 1 and d[code(2, 2)] == 3
    assert sum(d.values()) == 12 * 6 + 4 + 3 and counts.unmatched == 1  # the case out of the grid
    only = hotspots.cell_counts(grid, period=period, category="0102", today=AFTER).as_dict()
    assert only[code(2, 2)] == 0 and sum(only.values()) == 76
    assert sum(hotspots.cell_counts(grid, period=period, category=["02", "C01"], today=AFTER).as_dict().values()) == 3
    assert sum(hotspots.cell_counts(grid, period=Period.parse("2026-09"), today=AFTER).as_dict().values()) == 2
    assert hotspots.cell_counts(grid, period=period, area="110106", today=AFTER).codes == []
    with pytest.raises(InputError, match="bad category"):
        hotspots.cell_counts(grid, period=period, category="01;drop", today=AFTER)
    with pytest.raises(InputError, match="bad area"):
        hotspots.cell_counts(grid, period=period, area="11'", today=AFTER)

    h = analyse(grid, period="2026-10", category="01", today=AFTER)
    spot = h.values("spot")
    assert {spot[code(r, c)] for r, c in CLUSTER} == {"hot_99"}
    assert {c for c, s in spot.items() if s != "ns"} <= neighbourhood(CLUSTER)
    assert h.previous.period.label == "2026-09" and set(h.previous.values("spot").values()) == {"ns"}
    assert h.values("change")[code(9, 13)] == "became_hot" and h.values("change")[code(0, 0)] == "not_significant"
    assert h.values("count")[code(9, 13)] == 6 and h.values("class")[code(9, 13)] == max(h.choropleth.classes.values())
    assert h.values("z")[code(9, 13)] > 3 and 0 <= h.values("q")[code(0, 0)] <= 1
    assert h.summary()["hot_99"] >= 12 and set(h.timings) == {"counts", "adjacency", "gi_star", "classes"}
    assert len(h.values("spot", omit="ns")) == sum(1 for s in spot.values() if s != "ns")
    import json

    json.dumps({k: h.values(k) for k in ("count", "spot", "z", "p", "q", "class", "change")})  # plain data

    heat = hotspots.heat_points(grid, period="2026-10", today=AFTER)
    assert len(heat) == 12 + 4 + 1 and sum(n for _, _, n in heat) == 79
    lat, lon, _ = next(p for p in heat if p[2] == 3)  # cell (2, 2): 3 cases of 0201
    assert X0 + 2 * STEP < lon < X0 + 3 * STEP and Y0 + (N - 3) * STEP < lat < Y0 + (N - 2) * STEP
    assert hotspots.heat_points(grid, period="2026-10", category="0505", today=AFTER) == []
