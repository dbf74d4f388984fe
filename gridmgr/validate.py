"""Field validation for imports: text columns in, typed columns and (row, field, reason) problems out."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.labels import key_for
from gridmgr.registry import Field, Layer

LOCAL_TZ = "Asia/Shanghai"  # times without an offset are local time in mainland China
TRUE = {"true", "t", "1", "yes", "y", "是", "有"}
FALSE = {"false", "f", "0", "no", "n", "否", "无"}
HAS_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:?\d{2})$")
ARRAY_SEP = re.compile(r"[;|；]")
# control characters never belong in a text field (tab, newline and carriage return do); refusing
# them also keeps NUL out of PostgreSQL and frees \x01 to mark NULL in the COPY to staging
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass
class Problems:
    """Problems found in an input, by row index; each names the field and the reason."""

    by_row: dict[int, list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, mask: np.ndarray | pd.Series, field_name: str, reason) -> None:
        """Record a problem for every row where mask is true; `reason` is a str or a row → str function."""
        for i in np.flatnonzero(np.asarray(mask)):
            msg = reason(int(i)) if callable(reason) else reason
            self.by_row.setdefault(int(i), []).append((field_name, msg))

    def __len__(self) -> int:
        return len(self.by_row)

    def lines(self, records: np.ndarray, limit: int | None = None) -> list[str]:
        """Human lines: `row 17, field 'reported_at': reason`, in row order."""
        out = []
        for i in sorted(self.by_row)[:limit]:
            for f, msg in self.by_row[i]:
                out.append(f"{records[i]}, field '{f}': {msg}")
        return out


def _empty(s: pd.Series) -> pd.Series:
    return s.eq("") | s.str.lower().isin(("nan", "none", "null", "nat"))


def parse_field(f: Field, s: pd.Series, problems: Problems, conn: Connection) -> pd.Series:
    """One field's text column → typed values (None where empty), recording every bad value."""
    empty = _empty(s)
    if f.required and not f.generated:
        problems.add(empty, f.name, "is missing (required)")
    if f.type in ("text", "text[]"):
        problems.add(s.str.contains(CONTROL), f.name, "contains a control character (e.g. NUL)")
    if f.type == "text":
        if f.max_length:
            problems.add(s.str.len() > f.max_length, f.name, f"is longer than {f.max_length} characters")
        return s.where(~empty, None)
    if f.type in ("int", "float"):
        num = pd.to_numeric(s.where(~empty), errors="coerce")
        bad = ~empty & num.isna()
        problems.add(bad, f.name, lambda i: f"{s.iat[i]!r} is not a number")
        if f.type == "int":
            frac = ~empty & num.notna() & (num != np.floor(num.fillna(0)))
            problems.add(frac, f.name, lambda i: f"{s.iat[i]!r} is not a whole number")
        if f.minimum is not None:
            problems.add(num < f.minimum, f.name, lambda i: f"{s.iat[i]} is below {f.minimum:g}")
        # built as an object column: pandas would turn whole numbers with a gap back into floats
        cast = int if f.type == "int" else float
        return pd.Series([cast(v) if v == v else None for v in num], index=s.index, dtype=object)
    if f.type == "bool":
        low = s.str.lower()
        problems.add(~empty & ~low.isin(TRUE | FALSE), f.name,
                     lambda i: f"{s.iat[i]!r} is not yes/no (true/false, 是/否)")
        return low.map(lambda v: True if v in TRUE else (False if v in FALSE else None))
    if f.type == "date":
        d = pd.to_datetime(s.where(~empty), format="ISO8601", errors="coerce")
        problems.add(~empty & d.isna(), f.name, lambda i: f"{s.iat[i]!r} is not a date (YYYY-MM-DD)")
        return d.dt.date.astype(object).where(d.notna(), None)
    if f.type == "datetime":
        return _parse_datetime(f, s, empty, problems)
    if f.type == "choice":
        mapping = {v: key_for(v, f.choices) for v in s[~empty].unique()}
        problems.add(~empty & s.map(mapping).isna(), f.name,
                     lambda i: f"{s.iat[i]!r} is not one of {', '.join(f.choices)}")
        out = s.map(mapping).where(~empty, f.default)
        return out.astype(object).where(out.notna(), None)
    if f.type == "ref":
        table, key, stored = f.ref
        wanted = list(s[~empty].unique())
        target = "id" if stored.endswith("_id") else key
        found = dict(conn.execute(text(f"SELECT {key}, {target} FROM {table} WHERE {key} = ANY(:v)"),
                                  {"v": wanted}).all()) if wanted else {}
        what = f.label_en or f.name
        problems.add(~empty & ~s.isin(list(found)), f.name, lambda i: f"unknown {what} {s.iat[i]!r}")
        return s.map(found).astype(object).where(~empty & s.isin(list(found)), None)
    if f.type == "text[]":
        return s.map(lambda v: [p.strip() for p in ARRAY_SEP.split(v) if p.strip()] if v else [])
    raise AssertionError(f.type)


def _parse_datetime(f: Field, s: pd.Series, empty: pd.Series, problems: Problems) -> pd.Series:
    """ISO 8601 date-times; those without an offset are Asia/Shanghai local time; all to UTC."""
    aware = s.str.contains(HAS_OFFSET) & ~empty
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    if aware.any():
        out[aware] = pd.to_datetime(s[aware], format="ISO8601", errors="coerce", utc=True)
    naive = ~aware & ~empty
    if naive.any():
        local = pd.to_datetime(s[naive], format="ISO8601", errors="coerce")
        out[naive] = local.dt.tz_localize(LOCAL_TZ, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    problems.add(~empty & out.isna(), f.name,
                 lambda i: f"{s.iat[i]!r} is not an ISO 8601 date-time (e.g. 2026-10-01T08:30:00)")
    return out


def parse_fields(layer: Layer, frame: pd.DataFrame, problems: Problems, conn: Connection) -> pd.DataFrame:
    """Every declared field parsed (missing columns count as empty): the typed frame."""
    out = {}
    n = len(frame)
    for f in layer.fields:
        col = frame[f.name] if f.name in frame else pd.Series([""] * n, index=frame.index, dtype=object)
        col = col.astype(str)
        parsed = parse_field(f, col, problems, conn)
        if f.default is not None:
            parsed = parsed.where(~_empty(col), f.default)
        out[f.name] = parsed
    typed = pd.DataFrame(out, index=frame.index)
    key = layer.natural_key
    if key in frame:
        keys = frame[key]
        dup = keys.ne("") & keys.duplicated(keep="first")
        problems.add(dup, key, lambda i: f"{keys.iat[i]!r} appears twice in the file")
    return typed
