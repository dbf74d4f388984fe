"""Hot spots (热点分析): per-cell case counts, Getis-Ord Gi* hot and cold cells with FDR, choropleth classes.

`analyse(conn, period=Period.parse("2026-10"), category="01", area="110101001")` gives a `HotSpots`:
for every cell valid at the period's cutoff, its case count, Gi* z-score, p-value, FDR-adjusted
q-value, hot/cold class at 99/95/90 % confidence, choropleth class and the change against the
previous period. `HotSpots.values("spot")` is the small code → value mapping the map styles the
cell vector tiles from; `heat_points` gives the heat-map input (counts at the cells' points).

How it counts and tests (the choices, and why):

* **Counts** are the cases *reported in the period and not rejected by the cutoff* — the report's
  有效上报数 (`valid_reported`), per cell. A case counts in the cell of its code among the cells
  valid at the last moment read (`cutoff − 1 µs`); cases out of the grid or in a cell code that no
  longer exists are counted in `unmatched`. `category` is one or more category codes or prefixes
  (`0102`, `01` = the event major class 01, `C01` = component class 01).
* **Adjacency** is queen contiguity (cells sharing at least one point), one GiST self-join in SQL
  (`ST_Intersects`, which also joins neighbours with overlaps below the grid's 0.01 m² tolerance
  that `ST_Touches` would miss), into a libpysal `W` keyed by cell code.
* **Gi*** is `esda.G_Local(y, w, transform="B", star=True)`: binary weights, the cell counted in its
  own window. Cells with no neighbour (islands) are never hot or cold.
* **p-values** come from conditional randomisation (the cell's own count fixed, its k neighbours
  drawn at random from the counts of the area). With `method="exact"` (default) the randomisation
  distribution of the neighbour sum is computed exactly, as the k-fold convolution of the count
  distribution (draws with replacement: slightly conservative against esda's draws without), so
  p-values go as low as the data allow. `method="permutation"` samples it with esda
  (`permutations`, `seed`) — but the smallest such p-value is 1/(permutations + 1), and
  Benjamini–Hochberg over ~5,000 cells then never reaches 99 % (it would need ~1,000 cells at the
  floor); esda's own folded `p_sim` also calls every all-zero window "extreme" (ties counted as
  larger), and its normal approximations (`p_z_sim`, `p_norm`) flag dozens of false hot spots on
  sparse random counts. Both methods here count ties on the observed side and report a two-sided
  p = min(1, 2 × min(P(T ≥ t), P(T ≤ t))).
* **FDR**: Benjamini–Hochberg adjusted p-values (q-values, `fdr_bh`); a cell is hot (cold) at
  99/95/90 % when its q ≤ 0.01/0.05/0.10 and its window is above (below) what randomisation expects.
  Equivalent to running BH separately at each level.
* **Choropleth**: Fisher–Jenks natural breaks (exact, on the distinct counts weighted by frequency)
  or quantiles; classes 0 … k−1 with their upper bounds.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.analytics.accountability import Period, cutoff_for
from gridmgr.codes import TZ
from gridmgr.errors import InputError

DEFAULT_SEED = 20261022
_KEEP_ALL = object()
LEVELS = ((0.01, "99"), (0.05, "95"), (0.10, "90"))
SPOT_LABELS = {  # class → (中文, English), also the legend order
    "hot_99": ("热点 99%", "hot spot 99%"),
    "hot_95": ("热点 95%", "hot spot 95%"),
    "hot_90": ("热点 90%", "hot spot 90%"),
    "ns": ("不显著", "not significant"),
    "cold_90": ("冷点 90%", "cold spot 90%"),
    "cold_95": ("冷点 95%", "cold spot 95%"),
    "cold_99": ("冷点 99%", "cold spot 99%"),
}
CHANGE_LABELS = {
    "became_hot": ("新增热点", "became hot"),
    "stayed_hot": ("持续热点", "stayed hot"),
    "cooled": ("热点消退", "cooled"),
    "became_cold": ("新增冷点", "became cold"),
    "stayed_cold": ("持续冷点", "stayed cold"),
    "warmed": ("冷点消退", "warmed"),
    "not_significant": ("不显著", "not significant"),
}


# ---------------------------------------------------------------------------------------------- SQL


def _snapshot_where(alias: str) -> str:
    return (
        f"{alias}.valid_from <= :at AND ({alias}.valid_to IS NULL OR {alias}.valid_to > :at) "
        f"AND (CAST(:area AS text) IS NULL OR {alias}.code LIKE CAST(:area AS text) || '%')"
    )


def _check_area(area: str | None) -> str | None:
    if area is not None and not re.fullmatch(r"[0-9]{1,15}", area):
        raise InputError(f"bad area {area!r}: expected a district, street or community code prefix", field="area")
    return area


def check_category(category: str | Iterable[str] | None) -> list[str] | None:
    """The LIKE patterns of a category filter (codes or prefixes, comma-separated), or InputError."""
    if category is None:
        return None
    codes = [c.strip() for c in ([category] if isinstance(category, str) else category) for c in c.split(",")]
    codes = [c for c in codes if c]
    for c in codes:
        if not re.fullmatch(r"C?[0-9]{1,4}", c):
            raise InputError(f"bad category {c!r}: expected a code or prefix such as 0102, 01 or C01", field="category")
    return [c + "%" for c in codes] or None


def snapshot_at(period: Period, today: date | None = None) -> datetime:
    """The moment whose cells a period's hot spots use: the last instant read (cutoff − 1 µs)."""
    return cutoff_for(period, today or datetime.now(TZ).date()) - timedelta(microseconds=1)


@dataclass
class CellCounts:
    """Per-cell case counts of one period: `codes` (cells valid at `at`, in code order) and `counts`."""

    codes: list[str]
    counts: np.ndarray
    unmatched: int  # cases of the period in no cell of the snapshot (out of grid, retired code)
    at: datetime

    def as_dict(self) -> dict[str, int]:
        """code → count."""
        return dict(zip(self.codes, self.counts.tolist()))


def cell_counts(
    conn: Connection,
    *,
    period: Period,
    category: str | Iterable[str] | None = None,
    area: str | None = None,
    today: date | None = None,
) -> CellCounts:
    """Valid cases reported in the period per cell (see the module docstring), computed in SQL."""
    at = snapshot_at(period, today)
    params = {
        "at": at,
        "area": _check_area(area),
        "cats": check_category(category),
        "start": period.start,
        "end": min(period.end, at + timedelta(microseconds=1)),
    }
    codes = (
        conn.execute(
            text(f"SELECT DISTINCT g.code FROM grid_cells g WHERE {_snapshot_where('g')} ORDER BY g.code"), params
        )
        .scalars()
        .all()
    )
    rows = conn.execute(
        text("""
        SELECT gc.code, count(*) AS n
        FROM cases c LEFT JOIN grid_cells gc ON gc.id = c.cell_id
        WHERE c.reported_at >= :start AND c.reported_at < :end
          AND (CAST(:cats AS text[]) IS NULL OR c.category_code LIKE ANY (CAST(:cats AS text[])))
          AND (CAST(:area AS text) IS NULL OR gc.code LIKE CAST(:area AS text) || '%')
          AND NOT EXISTS (SELECT 1 FROM case_events e
                          WHERE e.case_id = c.id AND e.action = 'reject' AND e.at <= :at)
        GROUP BY gc.code"""),
        params,
    ).all()
    by_code: dict[str, int] = dict(rows)
    counts = np.array([by_code.pop(c, 0) for c in codes], dtype=np.int64)
    return CellCounts(list(codes), counts, int(sum(by_code.values())), at)


def adjacency(conn: Connection, *, at: datetime, area: str | None = None, codes: Sequence[str] | None = None) -> Any:
    """Queen contiguity of the cells valid at `at` (within `area`), as a libpysal W keyed by cell code."""
    from libpysal.weights import W

    params = {"at": at, "area": _check_area(area)}
    if codes is None:
        codes = (
            conn.execute(
                text(f"SELECT DISTINCT g.code FROM grid_cells g WHERE {_snapshot_where('g')} ORDER BY g.code"), params
            )
            .scalars()
            .all()
        )
    pairs = conn.execute(
        text(f"""
        SELECT a.code, b.code FROM grid_cells a
        JOIN grid_cells b ON a.geom && b.geom AND a.code < b.code AND ST_Intersects(a.geom, b.geom)
        WHERE {_snapshot_where("a")} AND {_snapshot_where("b")}"""),
        params,
    ).all()
    neighbours: dict[str, list[str]] = {c: [] for c in codes}
    for a, b in pairs:
        if a in neighbours and b in neighbours:
            neighbours[a].append(b)
            neighbours[b].append(a)
    with warnings.catch_warnings():  # islands and disconnected parts are expected at area edges
        warnings.simplefilter("ignore")
        return W(neighbours, id_order=list(codes), silence_warnings=True)


# ------------------------------------------------------------------------------------------- Gi* core


def fdr_bh(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values: q_(i) = min over j ≥ i of n·p_(j)/j, capped at 1."""
    p = np.asarray(pvalues, dtype=float)
    n = len(p)
    if n == 0:
        return p
    order = np.argsort(p)
    scaled = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


@dataclass
class GiStar:
    """Gi* per cell, aligned with `codes`: z-score, two-sided p, FDR q and the hot/cold class."""

    codes: list[str]
    z: np.ndarray
    p: np.ndarray
    q: np.ndarray
    spot: list[str]
    islands: list[str]
    method: str


def _exact_tails(y: np.ndarray, k: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(S ≥ t) and P(S ≤ t) for S the sum of k draws (with replacement) from the values y."""
    pmf = np.bincount(y) / len(y)
    upper, lower = np.ones(len(t)), np.ones(len(t))
    dist = np.array([1.0])
    for kk in range(int(k.max(initial=0)) + 1):
        if kk:
            dist = np.convolve(dist, pmf)
        sel = np.flatnonzero(k == kk)
        if not len(sel):
            continue
        sf, cdf, ts = np.cumsum(dist[::-1])[::-1], np.cumsum(dist), t[sel]
        inside = np.clip(ts, 0, len(dist) - 1)
        upper[sel] = np.where(ts <= 0, 1.0, np.where(ts >= len(dist), 0.0, sf[inside]))
        lower[sel] = np.where(ts < 0, 0.0, np.where(ts >= len(dist) - 1, 1.0, cdf[inside]))
    return upper, lower


def gi_star(
    counts: Sequence[int] | np.ndarray,
    w: Any,
    *,
    method: str = "exact",
    permutations: int = 999,
    seed: int = DEFAULT_SEED,
) -> GiStar:
    """Gi* of integer counts aligned with `w.id_order`, p-values by randomisation, BH-corrected, classified."""
    import esda
    from libpysal.weights import W

    if method not in ("exact", "permutation"):
        raise InputError(f"unknown method {method!r}: exact or permutation", field="method")
    codes = list(w.id_order)
    y = np.asarray(counts, dtype=np.int64)
    if y.shape != (len(codes),) or (y < 0).any():
        raise InputError("counts must be non-negative integers, one per cell of the weights")
    # the window of each cell: itself and its neighbours (a fresh W: esda changes the one it is given)
    window = {c: [c, *w.neighbors[c]] for c in codes}
    k = np.array([len(w.neighbors[c]) for c in codes])
    islands = [c for c, n in zip(codes, k) if n == 0]
    z, p = np.full(len(codes), np.nan), np.ones(len(codes))
    if y.sum() > 0 and (k > 0).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wstar = W(window, id_order=codes, silence_warnings=True)
            g = esda.G_Local(
                y.astype(float),
                wstar,
                transform="B",
                star=True,
                n_jobs=1,
                seed=seed,
                permutations=permutations if method == "permutation" else 0,
                keep_simulations=method == "permutation",
            )
        total = y.sum()
        observed = np.rint(g.Gs * total).astype(np.int64)  # the window sums (binary weights)
        if method == "exact":
            upper, lower = _exact_tails(y, k, observed - y)
        else:
            sims = np.rint(g.rGs * total)
            upper = ((sims >= observed[:, None]).sum(1) + 1) / (permutations + 1)
            lower = ((sims <= observed[:, None]).sum(1) + 1) / (permutations + 1)
        p = np.minimum(1.0, 2 * np.minimum(upper, lower))
        z = np.where(k > 0, np.asarray(g.Zs, dtype=float), np.nan)
        p[k == 0] = 1.0
        hot = upper < lower
    else:
        hot = np.zeros(len(codes), dtype=bool)
    q = fdr_bh(p)
    spot = []
    for qi, is_hot in zip(q, hot):
        level = next((name for alpha, name in LEVELS if qi <= alpha), None)
        spot.append("ns" if level is None else f"{'hot' if is_hot else 'cold'}_{level}")
    return GiStar(codes, z, p, q, spot, islands, method)


def change(current: Mapping[str, str], previous: Mapping[str, str]) -> dict[str, str]:
    """Per cell of `current`: became hot, stayed hot, cooled, became cold, stayed cold, warmed, not significant."""
    out = {}
    for code, now in current.items():
        before = previous.get(code, "ns")
        was_hot, was_cold = before.startswith("hot"), before.startswith("cold")
        if now.startswith("hot"):
            out[code] = "stayed_hot" if was_hot else "became_hot"
        elif now.startswith("cold"):
            out[code] = "stayed_cold" if was_cold else "became_cold"
        else:
            out[code] = "cooled" if was_hot else "warmed" if was_cold else "not_significant"
    return out


# -------------------------------------------------------------------------------------------- classes


@dataclass
class Classes:
    """A choropleth classification: `breaks` (upper bound of each class) and code → class 0 … k−1."""

    method: str
    breaks: list[float]
    classes: dict[str, int]


def _jenks(values: np.ndarray, weights: np.ndarray, k: int) -> list[float]:
    """Exact Fisher–Jenks breaks on sorted distinct values with frequencies (least within-class squares)."""
    u = len(values)
    c1, c2, c3 = (np.concatenate(([0.0], np.cumsum(a))) for a in (weights, weights * values, weights * values**2))

    def sse(a: np.ndarray, b: int) -> np.ndarray:  # classes values[a..b] for every start a
        n = c1[b + 1] - c1[a]
        return (c3[b + 1] - c3[a]) - (c2[b + 1] - c2[a]) ** 2 / n

    cost = np.array([sse(np.array([0]), b)[0] for b in range(u)])
    back = np.zeros((k, u), dtype=int)
    for j in range(1, k):
        new = np.full(u, np.inf)
        for b in range(j, u):
            a = np.arange(j, b + 1)
            total = cost[a - 1] + sse(a, b)
            best = int(np.argmin(total))
            new[b], back[j, b] = total[best], a[best]
        cost = new
    ends, b = [], u - 1
    for j in range(k - 1, 0, -1):
        ends.append(b)
        b = back[j, b] - 1
    ends.append(b)
    return [float(values[e]) for e in reversed(ends)]


def classify(values: Mapping[str, float], k: int = 5, method: str = "jenks") -> Classes:
    """Choropleth classes of code → value: Fisher–Jenks natural breaks or quantiles (fewer if values are few)."""
    if method not in ("jenks", "quantiles"):
        raise InputError(f"unknown classification {method!r}: jenks or quantiles", field="classification")
    codes = list(values)
    x = np.asarray([values[c] for c in codes], dtype=float)
    if not len(x):
        return Classes(method, [], {})
    distinct, freq = np.unique(x, return_counts=True)
    if len(distinct) <= k:
        breaks = [float(v) for v in distinct]
    elif method == "jenks":
        breaks = _jenks(distinct, freq.astype(float), k)
    else:  # upper bounds at the i/k quantiles (the 'lower' value: always a value that occurs)
        breaks = sorted({float(np.quantile(x, i / k, method="lower")) for i in range(1, k)} | {float(x.max())})
    idx = np.searchsorted(np.asarray(breaks), x, side="left")
    return Classes(method, breaks, dict(zip(codes, idx.tolist())))


# --------------------------------------------------------------------------------------------- entry


@dataclass
class HotSpots:
    """Everything the hot-spot map and table show for one period, per cell code."""

    period: Period
    category: str | None
    area: str | None
    at: Any
    counts: dict[str, int]
    gi: GiStar
    choropleth: Classes
    previous: HotSpots | None = None
    change: dict[str, str] = field(default_factory=dict)
    unmatched: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    weights: Any = field(default=None, repr=False)  # the libpysal W used

    def values(self, name: str, omit: Any = _KEEP_ALL) -> dict[str, Any]:
        """code → one value (count, spot, z, p, q, class, change), JSON-ready; `omit` drops one value (e.g. "ns")."""
        out: dict[str, Any]
        if name == "count":
            out = dict(self.counts)
        elif name == "class":
            out = dict(self.choropleth.classes)
        elif name == "change":
            out = dict(self.change)
        elif name == "spot":
            out = dict(zip(self.gi.codes, self.gi.spot))
        elif name in ("z", "p", "q"):
            arr = getattr(self.gi, name)
            out = {c: (None if np.isnan(v) else round(float(v), 6)) for c, v in zip(self.gi.codes, arr)}
        else:
            raise KeyError(name)
        return out if omit is _KEEP_ALL else {c: v for c, v in out.items() if v != omit}

    def summary(self) -> dict[str, int]:
        """How many cells in each hot/cold class (legend order)."""
        spots = self.gi.spot
        return {s: spots.count(s) for s in SPOT_LABELS}


def analyse(
    conn: Connection,
    *,
    period: Period | str,
    category: str | Iterable[str] | None = None,
    area: str | None = None,
    today: date | None = None,
    method: str = "exact",
    permutations: int = 999,
    seed: int = DEFAULT_SEED,
    k: int = 5,
    classification: str = "jenks",
    compare_previous: bool = True,
) -> HotSpots:
    """Counts, Gi* hot and cold cells, choropleth classes and (optionally) the change on the previous period."""
    period = Period.parse(period) if isinstance(period, str) else period
    options: dict[str, Any] = {
        "category": category,
        "area": area,
        "today": today,
        "method": method,
        "permutations": permutations,
        "seed": seed,
        "k": k,
        "classification": classification,
    }
    result = _analyse(conn, period, **options)
    if compare_previous:
        before = snapshot_at(period.previous(), today)
        same_grid = not conn.execute(
            text("""
            SELECT EXISTS (SELECT 1 FROM grid_cells g
                           WHERE ((g.valid_from > :before AND g.valid_from <= :at)
                                  OR (g.valid_to > :before AND g.valid_to <= :at))
                             AND (CAST(:area AS text) IS NULL OR g.code LIKE CAST(:area AS text) || '%'))"""),
            {"before": before, "at": result.at, "area": area},
        ).scalar()
        result.previous = _analyse(conn, period.previous(), w=result.weights if same_grid else None, **options)
        result.change = change(result.values("spot"), result.previous.values("spot"))
    return result


def _analyse(
    conn: Connection,
    period: Period,
    *,
    category: str | Iterable[str] | None,
    area: str | None,
    today: date | None,
    method: str,
    permutations: int,
    seed: int,
    k: int,
    classification: str,
    w: Any = None,
) -> HotSpots:
    timings: dict[str, float] = {}
    t = time.perf_counter()
    counts = cell_counts(conn, period=period, category=category, area=area, today=today)
    timings["counts"] = time.perf_counter() - t
    t = time.perf_counter()
    if w is None or list(w.id_order) != counts.codes:
        w = adjacency(conn, at=counts.at, area=area, codes=counts.codes)
    timings["adjacency"] = time.perf_counter() - t
    t = time.perf_counter()
    gi = gi_star(counts.counts, w, method=method, permutations=permutations, seed=seed)
    timings["gi_star"] = time.perf_counter() - t
    t = time.perf_counter()
    choropleth = classify(counts.as_dict(), k, classification)
    timings["classes"] = time.perf_counter() - t
    label = category if isinstance(category, str) or category is None else ",".join(category)
    return HotSpots(
        period,
        label,
        area,
        counts.at,
        counts.as_dict(),
        gi,
        choropleth,
        unmatched=counts.unmatched,
        timings=timings,
        weights=w,
    )


def heat_points(
    conn: Connection,
    *,
    period: Period | str,
    category: str | Iterable[str] | None = None,
    area: str | None = None,
    today: date | None = None,
) -> list[list[float]]:
    """Heat-map input: [lat, lon, count] at each cell's representative point, for cells with cases."""
    if isinstance(period, str):
        period = Period.parse(period)
    counts = {
        c: n
        for c, n in cell_counts(conn, period=period, category=category, area=area, today=today).as_dict().items()
        if n
    }
    if not counts:
        return []
    rows = conn.execute(
        text(f"""
        SELECT g.code, ST_Y(p.pt), ST_X(p.pt) FROM grid_cells g, LATERAL (SELECT ST_PointOnSurface(g.geom) AS pt) p
        WHERE {_snapshot_where("g")} AND g.code = ANY (CAST(:codes AS text[])) ORDER BY g.code"""),
        {"at": snapshot_at(period, today), "area": _check_area(area), "codes": list(counts)},
    ).all()
    return [[round(lat, 6), round(lon, 6), counts[code]] for code, lat, lon in rows]
