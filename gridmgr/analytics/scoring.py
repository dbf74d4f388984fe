"""Scoring schemes (考核方案) as data, composite scores, rankings within groups (分赛区) and change on the period before.

A scheme is a YAML file (presets in `data/scoring/`: `jinniu`, `jinhua`) in a small fixed schema,
validated on load and never evaluated as code:

    scheme: jinniu                 # its name
    title_zh: …  title_en: …       # labels; `source` and `note` are free text
    minimum: 0                     # optional floor of the total
    items:                         # what earns points, each on one rate of gridmgr.analytics.indicators.RATES
      - rate: handle_rate
        weight: 30                 # points = weight × rate
      - rate: rework_rate
        weight: 20
        inverse: true              # points = weight × (1 − rate)
      - rate: closed_on_time_rate
        denominator_minus: [deferred_due]   # the rate over (denominator − these counts)
        threshold: 0.70            # full `points` at ≥ 70 %;
        points: 50                 # below it, `per_point` off per percentage point short
        per_point: 1               # (continuously: 67.5 % → 47.5), never below 0
      - rate: urgent_on_time_rate
        weight: 10
        if_none: full              # a rate with no cases scores full (default) or zero
    penalties:                     # points off per counted case
      - count: rework
        points: 0.2

A row none of whose items has a rate (nothing was due) gets no score and no rank. Every error on
load names the file, the key and the problem (`SchemeError`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from gridmgr.analytics import indicators
from gridmgr.errors import InputError
from gridmgr.paths import DATA

SCHEME_DIR = DATA / "scoring"
IF_NONE = ("full", "zero")


class SchemeError(InputError):
    """A scheme file that does not follow the schema: names the file, the key and the problem."""


@dataclass(frozen=True)
class Item:
    """Points earned on one rate: by weight (× rate or × (1 − rate)) or by a threshold rule."""

    rate: str
    label: str
    weight: float | None = None
    inverse: bool = False
    threshold: float | None = None
    points: float | None = None
    per_point: float | None = None
    minus: tuple[str, ...] = ()
    if_none: str = "full"

    @property
    def maximum(self) -> float:
        """The most points this item gives."""
        if self.weight is not None:
            return self.weight
        assert self.points is not None  # a threshold item has points (Scheme reading requires them)
        return self.points

    def rate_of(self, values: Mapping[str, Any]) -> float | None:
        """The rate this item scores, with its denominator adjustment."""
        rate = indicators.BY_KEY[self.rate]
        assert isinstance(rate, indicators.Rate)  # an item's rate is one of RATES (key_of checks it)
        return rate.of(values, self.minus)

    def points_for(self, rate: float | None) -> float:
        """The points of a rate (None: full or zero, as the scheme says)."""
        if rate is None:
            return self.maximum if self.if_none == "full" else 0.0
        if self.weight is not None:
            return self.weight * ((1 - rate) if self.inverse else rate)
        # a threshold item has all three (Scheme reading requires them)
        assert self.threshold is not None and self.points is not None and self.per_point is not None
        if rate >= self.threshold:
            return self.points
        return max(0.0, self.points - self.per_point * (self.threshold - rate) * 100)


@dataclass(frozen=True)
class Penalty:
    """Points off for each case of a count (e.g. −0.2 per rework)."""

    count: str
    points: float
    label: str


@dataclass(frozen=True)
class Scheme:
    """A validated scoring scheme."""

    name: str
    title_zh: str
    title_en: str
    items: tuple[Item, ...]
    penalties: tuple[Penalty, ...] = ()
    minimum: float | None = None
    source: str = ""
    note: str = ""
    path: str = ""

    @property
    def maximum(self) -> float:
        """The full score (the sum of the items' maxima)."""
        return sum(i.maximum for i in self.items)


# ---------------------------------------------------------------------------------------------- loading


def presets() -> list[str]:
    """The names of the shipped schemes."""
    return sorted(p.stem for p in SCHEME_DIR.glob("*.yaml"))


def load(name_or_path: str | Path) -> Scheme:
    """A scheme by preset name (`jinniu`) or by file path, validated."""
    path = Path(name_or_path)
    if not path.suffix and not path.exists():
        path = SCHEME_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise SchemeError(f"no scoring scheme {name_or_path!r}; presets: {', '.join(presets())}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SchemeError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SchemeError(f"{path}: not valid YAML: {exc}") from None
    return parse(raw, str(path))


def parse(raw: Any, origin: str = "<scheme>") -> Scheme:
    """Validate a scheme read from YAML (a mapping) and build it; `origin` names the file in errors."""
    v = _Validator(origin)
    top = v.mapping(
        raw,
        "",
        {"scheme", "title_zh", "title_en", "source", "note", "minimum", "items", "penalties"},
        required={"scheme", "title_zh", "title_en", "items"},
    )
    items_raw = v.list_of(top["items"], "items", nonempty=True)
    items, seen = [], set()
    for i, entry in enumerate(items_raw):
        items.append(v.item(entry, f"items[{i}]"))
        if items[-1].rate in seen:
            v.fail(f"items[{i}].rate", f"{items[-1].rate!r} is scored twice")
        seen.add(items[-1].rate)
    penalties = [
        v.penalty(entry, f"penalties[{i}]") for i, entry in enumerate(v.list_of(top.get("penalties", []), "penalties"))
    ]
    minimum = v.number(top["minimum"], "minimum") if "minimum" in top else None
    return Scheme(
        v.text(top["scheme"], "scheme"),
        v.text(top["title_zh"], "title_zh"),
        v.text(top["title_en"], "title_en"),
        tuple(items),
        tuple(penalties),
        minimum,
        v.text(top.get("source", ""), "source", empty=True),
        v.text(top.get("note", ""), "note", empty=True),
        origin,
    )


class _Validator:
    """Checks one scheme file, raising SchemeError('<file>: <key>: <problem>')."""

    def __init__(self, origin: str):
        self.origin = origin

    def fail(self, key: str, problem: str) -> NoReturn:
        raise SchemeError(f"{self.origin}: {key or 'top level'}: {problem}")

    def mapping(self, raw: Any, key: str, allowed: set[str], required: set[str]) -> dict:
        if not isinstance(raw, dict):
            self.fail(key, f"must be a mapping of keys, got {type(raw).__name__}")
        for k in raw:
            if k not in allowed:
                self.fail(f"{key}.{k}" if key else str(k), f"unknown key; allowed: {', '.join(sorted(allowed))}")
        for k in sorted(required - raw.keys()):
            self.fail(f"{key}.{k}" if key else k, "is required")
        return raw

    def list_of(self, raw: Any, key: str, nonempty: bool = False) -> list:
        if not isinstance(raw, list):
            self.fail(key, f"must be a list, got {type(raw).__name__}")
        if nonempty and not raw:
            self.fail(key, "must not be empty")
        return raw

    def number(self, raw: Any, key: str, lo: float = 0.0, hi: float | None = None) -> float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            self.fail(key, f"must be a number, got {raw!r}")
        if raw < lo or (hi is not None and raw > hi):
            self.fail(
                key,
                f"must be between {lo:g} and {hi:g}, got {raw!r}"
                if hi is not None
                else f"must be at least {lo:g}, got {raw!r}",
            )
        return float(raw)

    def text(self, raw: Any, key: str, empty: bool = False) -> str:
        if not isinstance(raw, str) or (not empty and not raw.strip()):
            self.fail(key, f"must be {'a' if empty else 'a non-empty'} string, got {raw!r}")
        return raw

    def key_of(self, raw: Any, key: str, rate: bool) -> str:
        pool = [d.key for d in (indicators.RATES if rate else indicators.COUNTS) if d.kind in ("rate", "count")]
        if raw not in pool:
            self.fail(key, f"{raw!r} is not a known {'rate' if rate else 'count'}; known: {', '.join(pool)}")
        return raw

    def item(self, raw: Any, key: str) -> Item:
        d = self.mapping(
            raw,
            key,
            {"rate", "label", "weight", "inverse", "threshold", "points", "per_point", "denominator_minus", "if_none"},
            required={"rate"},
        )
        rate = self.key_of(d["rate"], f"{key}.rate", rate=True)
        label = self.text(d.get("label", indicators.BY_KEY[rate].zh), f"{key}.label")
        minus = tuple(
            self.key_of(m, f"{key}.denominator_minus[{j}]", rate=False)
            for j, m in enumerate(self.list_of(d.get("denominator_minus", []), f"{key}.denominator_minus"))
        )
        if_none = d.get("if_none", "full")
        if if_none not in IF_NONE:
            self.fail(f"{key}.if_none", f"must be one of {', '.join(IF_NONE)}, got {if_none!r}")
        if ("weight" in d) == ("threshold" in d):
            self.fail(key, "give either `weight` or `threshold` (with `points` and `per_point`)")
        if "weight" in d:
            for extra in ("points", "per_point"):
                if extra in d:
                    self.fail(f"{key}.{extra}", "belongs to a threshold rule, not to a weighted item")
            inverse = d.get("inverse", False)
            if not isinstance(inverse, bool):
                self.fail(f"{key}.inverse", f"must be true or false, got {inverse!r}")
            return Item(
                rate,
                label,
                weight=self.number(d["weight"], f"{key}.weight"),
                inverse=inverse,
                minus=minus,
                if_none=if_none,
            )
        if "inverse" in d:
            self.fail(f"{key}.inverse", "only a weighted item can be inverse")
        for needed in ("points", "per_point"):
            if needed not in d:
                self.fail(f"{key}.{needed}", "is required with `threshold`")
        return Item(
            rate,
            label,
            threshold=self.number(d["threshold"], f"{key}.threshold", 0.0, 1.0),
            points=self.number(d["points"], f"{key}.points"),
            per_point=self.number(d["per_point"], f"{key}.per_point"),
            minus=minus,
            if_none=if_none,
        )

    def penalty(self, raw: Any, key: str) -> Penalty:
        d = self.mapping(raw, key, {"count", "points", "label"}, required={"count", "points"})
        count = self.key_of(d["count"], f"{key}.count", rate=False)
        return Penalty(
            count,
            self.number(d["points"], f"{key}.points"),
            self.text(d.get("label", indicators.BY_KEY[count].zh), f"{key}.label"),
        )


# ---------------------------------------------------------------------------------------------- scoring


@dataclass
class Scored:
    """One row of a report with its score, the points of each item and penalty, and (after rank) its rank."""

    level: str
    code: str | None
    name: str
    attrs: dict[str, Any]
    values: dict[str, Any]
    score: float | None
    parts: dict[str, float] = field(default_factory=dict)  # item rate key → points
    penalties: dict[str, float] = field(default_factory=dict)  # count key → points off (negative)
    rates: dict[str, float | None] = field(default_factory=dict)  # the rates as scored (adjusted)
    rank: int | None = None
    group: Any = None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


def score(report: Any, scheme: Scheme | str) -> list[Scored]:
    """Score every row of a report (or an iterable of report rows) with a scheme (or a preset name)."""
    if isinstance(scheme, (str, Path)):
        scheme = load(scheme)
    rows = report.rows if hasattr(report, "rows") else list(report)
    out = []
    for row in rows:
        rates = {i.rate: i.rate_of(row.values) for i in scheme.items}
        if all(r is None for r in rates.values()):
            out.append(Scored(row.level, row.code, row.name, dict(row.attrs), dict(row.values), None, rates=rates))
            continue
        parts = {i.rate: round(i.points_for(rates[i.rate]), 4) for i in scheme.items}
        penalties = {p.count: round(-p.points * (row.values.get(p.count) or 0), 4) for p in scheme.penalties}
        total = sum(parts.values()) + sum(penalties.values())
        if scheme.minimum is not None:
            total = max(scheme.minimum, total)
        out.append(
            Scored(
                row.level,
                row.code,
                row.name,
                dict(row.attrs),
                dict(row.values),
                round(total, 4),
                parts,
                penalties,
                rates,
            )
        )
    return out


GroupBy = str | Callable[[Scored], Any] | Mapping[str | None, Any] | None  # a row's code may be None


def _grouper(group_by: GroupBy) -> Callable[[Scored], Any]:
    if group_by is None:  # units compete within their kind (分赛区); others in one field
        return lambda r: (r.attrs.get("group") or r.attrs.get("kind")) if r.level == "unit" else None
    if isinstance(group_by, str):
        return lambda r: r.attrs.get(group_by, r.values.get(group_by))
    if isinstance(group_by, Mapping):
        return lambda r: group_by.get(r.code)
    return group_by


def rank(rows: Iterable[Scored], group_by: GroupBy = None) -> list[Scored]:
    """Rank scored rows within groups, best first (ties share a rank: 1, 2, 2, 4).

    `group_by`: None (units by their `group` attribute, default their kind; other levels one group),
    an attribute name, a mapping code → group, or a function of the row. Rows without a score or a
    code (cases of no object) get no rank. Returns new rows sorted by group, then rank.
    """
    key = _grouper(group_by)
    groups: dict[Any, list[Scored]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    out = []
    for g in sorted(groups, key=lambda x: (x is not None, str(x))):
        members = sorted(
            groups[g], key=lambda r: (r.score is None or r.code is None, -round(r.score or 0, 6), str(r.code))
        )
        last, last_rank = None, 0
        for i, r in enumerate(members, start=1):
            ranked = r.score is not None and r.code is not None
            if r.score is not None and r.code is not None and round(r.score, 6) != last:  # i.e. ranked
                last, last_rank = round(r.score, 6), i
            out.append(dataclasses.replace(r, group=g, rank=last_rank if ranked else None))
    return out


@dataclass
class Change:
    """How one object moved against the period before: rank (positive = up), score and every rate."""

    code: str | None
    name: str
    group: Any
    rank: int | None
    previous_rank: int | None
    rank_change: int | None
    score: float | None
    previous_score: float | None
    score_change: float | None
    rates: dict[str, tuple[float | None, float | None, float | None]]  # key → (current, previous, change)


def compare(current: Iterable[Any], previous: Iterable[Any]) -> list[Change]:
    """Match rows by code and give the change of rank, score and each rate (None where either side has none).

    Takes ranked rows (`rank`), scored rows or plain report rows (then only the rates change).
    """
    before = {r.code: r for r in previous}
    out = []
    for r in current:
        p = before.get(r.code)
        cur_rank, prev_rank = getattr(r, "rank", None), getattr(p, "rank", None) if p else None
        cur_score, prev_score = getattr(r, "score", None), getattr(p, "score", None) if p else None
        rates = {}
        for d in indicators.RATES:
            a, b = r.values.get(d.key), p.values.get(d.key) if p else None
            rates[d.key] = (a, b, None if a is None or b is None else round(a - b, 6))
        out.append(
            Change(
                r.code,
                r.name,
                getattr(r, "group", None),
                cur_rank,
                prev_rank,
                None if cur_rank is None or prev_rank is None else prev_rank - cur_rank,
                cur_score,
                prev_score,
                None if cur_score is None or prev_score is None else round(cur_score - prev_score, 4),
                rates,
            )
        )
    return out
