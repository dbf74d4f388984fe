"""Field validation for imports, in SQL over the text staging table: (row, field, reason) problems out.

Every input, whatever its format, is first staged as text (`gridmgr.io.tabular`: `stage_raw`, one text
column per input column). One pass over it (`check`) trims every value as Python's str.strip() would,
runs every check of every field and writes the typed staging table `stage`: each field's typed value
(NULL where the value failed a check) and a bitmask of the checks each row failed. The messages of the
failed rows are written here in Python, from the values themselves. The INSERT reads `stage`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from gridmgr.geo import crs as crsmod
from gridmgr.glossary import key_for
from gridmgr.io.sheets import PREFIX, TRIGGERS
from gridmgr.plugins.registry import Field, Layer

LOCAL_TZ = "Asia/Shanghai"  # times without an offset are local time in mainland China
TRUE = ("true", "t", "1", "yes", "y", "是", "有")
FALSE = ("false", "f", "0", "no", "n", "否", "无")
# what Python's str.strip() removes (str.isspace), so the SQL trims input exactly as the readers do
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# control characters never belong in a text field (tab, newline and carriage return do); NUL cannot
# reach PostgreSQL at all: the general reader stages it as \x01, which this refuses by the same name
CONTROL = "[\x01-\x08\x0b\x0c\x0e-\x1f]"
EMPTY_WORDS = ("nan", "none", "null", "nat")  # what pandas and spreadsheets write for "no value"
# PostgreSQL runs a regular expression's automaton afresh for every value: simple, linear patterns
# without capturing groups cost a fraction of a microsecond, a pattern with alternatives and captures
# 10–25 µs (measured on 10⁵ values). Hence the split number test and the fixed-position date parts.
NUMBER_PLAIN = r"^[+-]?[0-9]*[.]?[0-9]*$"
NUMBER_EXP = r"^[+-]?[0-9]*[.]?[0-9]*[eE][+-]?[0-9][0-9]?[0-9]?$"
NUMBER_START = r"^[+-]?[.]?[0-9]"  # a digit in the mantissa: not "", ".", "-" or "e5"
# ISO 8601 date or date-time, YYYY-MM-DD[(T| )HH[:MM[:SS[.f]]]][Z|±HH[:]MM]
ISO = (
    r"^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9](?:[T ][0-9][0-9](?::[0-9][0-9](?::[0-9][0-9]"
    r"(?:[.][0-9][0-9]?[0-9]?[0-9]?[0-9]?[0-9]?[0-9]?[0-9]?[0-9]?)?)?)?)?(?:Z|[+-][0-9][0-9]:?[0-9][0-9])?$"
)
INT_RANGE = (-(2**31), 2**31 - 1)  # the `int` fields' integer columns


@dataclass
class Problems:
    """Problems found in an input, by row index; each names the field and the reason."""

    by_row: dict[int, list[tuple[str, str]]] = field(default_factory=dict)

    def add_row(self, row: int, field_name: str, reason: str) -> None:
        """Record one problem of one row."""
        self.by_row.setdefault(row, []).append((field_name, reason))

    def __len__(self) -> int:
        return len(self.by_row)

    def lines(self, records: Sequence[str] | np.ndarray, limit: int | None = None) -> list[str]:
        """Human lines: `row 17, field 'reported_at': reason`, in row order."""
        out = []
        for i in sorted(self.by_row)[:limit]:
            for f, msg in self.by_row[i]:
                out.append(f"{records[i]}, field '{f}': {msg}")
        return out


@dataclass
class Staged:
    """The text staging table `stage_raw` (row_no from 0): the column of each field, lon/lat or geometry."""

    rows: int
    fields: dict[str, str]  # field name → stage_raw text column
    headers: list[tuple[str, str]]  # (stage_raw column, the input's column name), for the rejects file
    records: Sequence[str] | np.ndarray  # "row 17" / "feature 3", by row_no
    lon: str | None = None  # text columns of WGS84 lon/lat (points from tables)
    lat: str | None = None
    geom: bool = False  # a `geom` geometry column, filled and checked in Python
    ignored: list[str] = field(default_factory=list)
    spreadsheet: bool = False  # from a CSV or XLSX: its neutralised text cells are restored (gridmgr.io.sheets)


@dataclass
class _Check:
    field: str
    condition: str  # SQL, true for a bad row
    message: Callable[[str | None], str]  # the reason, from the (trimmed) value


def empty(v: str) -> str:
    """SQL: the trimmed value `v` stands for no value (missing, blank, or a spreadsheet's NaN/None)."""
    words = ", ".join(repr(w) for w in EMPTY_WORDS)
    return f"({v} IS NULL OR {v} = '' OR (octet_length({v}) BETWEEN 3 AND 4 AND lower({v}) IN ({words})))"


def number(v: str) -> str:
    """SQL: the trimmed value `v` is a decimal number (exponent of at most 3 digits: a cast cannot overflow)."""
    # the plain form first (a digit is there unless the value is one of a few digit-less strings)
    return (
        f"(({v} ~ :num_plain AND {v} NOT IN ('', '+', '-', '.', '+.', '-.')) OR ({v} ~ :num_exp AND {v} ~ :num_start))"
    )


def offset_length(v: str) -> str:
    """SQL: the length of an ISO value's offset: 0, 1 (Z), 5 (±HHMM) or 6 (±HH:MM) (the shape rules out the rest)."""
    n = f"length({v})"
    return (
        f"CASE WHEN right({v}, 1) = 'Z' THEN 1 "
        f"WHEN substr({v}, {n} - 5, 1) IN ('+', '-') AND substr({v}, {n} - 2, 1) = ':' THEN 6 "
        f"WHEN substr({v}, {n} - 4, 1) IN ('+', '-') THEN 5 ELSE 0 END"
    )


def _valid_iso(v: str, o: str) -> str:
    """SQL: `v` (its offset `o` characters long) has the ISO shape and names a real date and time."""

    # digits compared as text (the shape guarantees two digits): no cast, no function that can fail
    def c(x: str) -> str:
        return f'{x} COLLATE "C"'

    local = f"(length({v}) - {o})"
    month = f"substr({v}, 6, 2)"
    year = f"left({v}, 4)::int"
    leap = f"({year} % 4 = 0 AND ({year} % 100 <> 0 OR {year} % 400 = 0))"
    last_day = (
        f"CASE {month} WHEN '02' THEN CASE WHEN {leap} THEN '29' ELSE '28' END "
        f"WHEN '04' THEN '30' WHEN '06' THEN '30' WHEN '09' THEN '30' WHEN '11' THEN '30' ELSE '31' END"
    )
    return (
        f"CASE WHEN {v} ~ :iso THEN {c(f'left({v}, 4)')} >= '0001' AND {c(month)} BETWEEN '01' AND '12' "
        f"AND {c(f'substr({v}, 9, 2)')} BETWEEN '01' AND {last_day} "
        f"AND ({local} < 13 OR {c(f'substr({v}, 12, 2)')} <= '23') "
        f"AND ({local} < 16 OR {c(f'substr({v}, 15, 2)')} <= '59') "
        f"AND ({local} < 19 OR {c(f'substr({v}, 18, 2)')} <= '59') "
        f"AND ({o} < 5 OR ({c(f'substr({v}, {local} + 2, 2)')} <= '15' AND {c(f'right({v}, 2)')} <= '59')) "
        f"ELSE false END"
    )


def _timestamptz(v: str, o: str) -> str:
    """SQL: the instant a valid ISO value stands for; without an offset it is Asia/Shanghai local time."""
    local = f"(length({v}) - {o})"
    # PostgreSQL reads every accepted form but an hour alone (…T08): that one gets its minutes
    time = f"CASE WHEN {local} = 13 THEN left({v}, 13) || ':' || '00' ELSE left({v}, {local}) END"
    offset = (
        f"CASE {o} WHEN 1 THEN '+00:00' WHEN 5 THEN left(right({v}, 5), 3) || ':' || right({v}, 2) "
        f"ELSE right({v}, 6) END"
    )
    return (
        f"CASE WHEN {o} = 0 AND {local} <> 13 THEN {v}::timestamp AT TIME ZONE '{LOCAL_TZ}' "
        f"WHEN {o} = 0 THEN ({time})::timestamp AT TIME ZONE '{LOCAL_TZ}' "
        f"ELSE ({time} || {offset})::timestamptz END"
    )


def trim(col: str, spreadsheet: bool = False) -> str:
    """SQL: a staged value without the whitespace Python's strip() removes (and a sheet's neutralising apostrophe)."""
    # btrim with a set of multibyte characters costs ~0.5 µs a value: only a value that begins or
    # ends with one of them is trimmed (ascii() gives a character's code point)
    trimmed = (
        f"CASE WHEN ascii({col}) = ANY(:ws_codes) OR ascii(right({col}, 1)) = ANY(:ws_codes) "
        f"THEN btrim({col}, :ws) ELSE {col} END"
    )
    if not spreadsheet:
        return trimmed
    # an export's neutralised text ('=…, see gridmgr.io.sheets) reads back as it was: one apostrophe
    # goes where apostrophes precede a formula trigger (the value starts with one, so no whitespace
    # precedes it and the trimmed value starts with it too)
    return (
        f"CASE WHEN left({col}, 1) = :apos AND left(ltrim({col}, :apos), 1) = ANY(:triggers) "
        f"THEN substr({trimmed}, 2) ELSE {trimmed} END"
    )


def _field_checks(f: Field, v: str | None) -> list[_Check]:
    """The SQL checks of one field on its trimmed value `v` (None: the input has no such column)."""
    if v is None:  # absent from the input: every row is empty
        return [_Check(f.name, "true", lambda _: "is missing (required)")] if f.required and not f.generated else []
    e = empty(v)
    checks = []
    if f.required and not f.generated:
        checks.append(_Check(f.name, e, lambda _: "is missing (required)"))
    if f.type in ("text", "text[]"):
        # any_ctl: one test of all text values of the row together (most rows have none)
        checks.append(_Check(f.name, f"any_ctl AND {v} ~ :ctl", lambda _: "contains a control character (e.g. NUL)"))
    if f.type == "text" and f.max_length:
        longest = f.max_length
        checks.append(
            _Check(
                f.name,
                f"char_length({v}) > {int(f.max_length)}",
                lambda _: f"is longer than {longest} characters",
            )
        )
    if f.type in ("int", "float"):
        num = number(v)
        lo: float  # ints for int fields, printed into the SQL as such
        hi: float
        checks.append(_Check(f.name, f"NOT {e} AND NOT {num}", lambda x: f"{x!r} is not a number"))
        if f.type == "int":
            checks.append(
                _Check(
                    f.name,
                    f"NOT {e} AND CASE WHEN {num} THEN {v}::numeric % 1 <> 0 END",
                    lambda x: f"{x!r} is not a whole number",
                )
            )
            lo, hi = INT_RANGE
        else:
            lo, hi = -1.7e308, 1.7e308
        checks.append(
            _Check(
                f.name,
                f"NOT {e} AND CASE WHEN {num} THEN {v}::numeric NOT BETWEEN {lo} AND {hi} END",
                lambda x: f"{x!r} is out of range",
            )
        )
        if f.minimum is not None:
            least = f.minimum
            checks.append(
                _Check(
                    f.name,
                    f"NOT {e} AND CASE WHEN {num} THEN {v}::numeric < {float(f.minimum)!r} END",
                    lambda x: f"{x} is below {least:g}",
                )
            )
    elif f.type == "bool":
        checks.append(
            _Check(
                f.name, f"NOT {e} AND lower({v}) <> ALL(:bools)", lambda x: f"{x!r} is not yes/no (true/false, 是/否)"
            )
        )
    elif f.type == "date":
        checks.append(
            _Check(f.name, f"NOT {e} AND NOT {_valid_iso(v, 'o_' + v)}", lambda x: f"{x!r} is not a date (YYYY-MM-DD)")
        )
    elif f.type == "datetime":
        checks.append(
            _Check(
                f.name,
                f"NOT {e} AND NOT {_valid_iso(v, 'o_' + v)}",
                lambda x: f"{x!r} is not an ISO 8601 date-time (e.g. 2026-10-01T08:30:00)",
            )
        )
    elif f.type == "choice":
        choices = f.choices
        checks.append(
            _Check(f.name, f"NOT {e} AND out_{v} IS NULL", lambda x: f"{x!r} is not one of {', '.join(choices)}")
        )
    elif f.type == "ref":
        what = f.label_en or f.name
        checks.append(_Check(f.name, f"NOT {e} AND out_{v} IS NULL", lambda x: f"unknown {what} {x!r}"))
    return checks


PARAMS = {
    "ws": WHITESPACE,
    "ws_codes": [ord(c) for c in WHITESPACE],
    "triggers": list(TRIGGERS),
    "apos": PREFIX,
    "ctl": CONTROL,
    "num_plain": NUMBER_PLAIN,
    "num_exp": NUMBER_EXP,
    "num_start": NUMBER_START,
    "iso": ISO,
    "bools": list(TRUE + FALSE),
    "true": list(TRUE),
}
BITS = 62  # checks per bigint bitmask column of `stage`


def _typed(f: Field, v: str, params: dict) -> str:
    """SQL: the stored value of field `f` from its trimmed value `v` (which passed the field's checks)."""
    if f.type == "text":
        parsed = v
    elif f.type == "int":
        parsed = f"{v}::numeric::int"
    elif f.type == "float":
        parsed = f"{v}::float8"
    elif f.type == "bool":
        parsed = f"lower({v}) = ANY(:true)"
    elif f.type == "date":
        parsed = f"left({v}, 10)::date"
    elif f.type == "datetime":
        parsed = _timestamptz(v, f"o_{v}")
    elif f.type in ("choice", "ref"):
        parsed = f"out_{v}"
    else:  # text[]: parts split at ; | ；, each trimmed, empty parts left out
        return (
            f"CASE WHEN {v} IS NULL OR {v} = '' THEN '{{}}'::text[] ELSE ARRAY(SELECT btrim(p, :ws) FROM "
            f"regexp_split_to_table({v}, '[;|；]') p WHERE btrim(p, :ws) <> '') END"
        )
    return f"CASE WHEN {empty(v)} THEN {_default(f, params)} ELSE {parsed} END"


def _default(f: Field, params: dict) -> str:
    if f.default is None:
        return "NULL"
    params[f"d_{f.name}"] = f.default
    return f":d_{f.name}"


def _distinct(conn: Connection, layer: Layer, staged: Staged) -> tuple[dict[str, list], list[str]]:
    """One scan of `stage_raw`: the distinct values of each choice and ref field, and the keys given twice."""
    fields = [f.name for f in layer.fields if f.type in ("choice", "ref") and f.name in staged.fields]
    key = staged.fields.get(layer.natural_key)
    cols = [staged.fields[f] for f in fields] + ([key] if key else [])
    if not cols:
        return {}, []
    g = [f"g{i}" for i in range(len(cols))]
    # the key's grouping keeps only repeated keys: the others' groups are all wanted
    having = f"HAVING GROUPING({g[-1]}) = 1 OR count(*) > 1" if key else ""
    rows = conn.execute(
        text(f"""
        SELECT {", ".join(g)}, {", ".join(f"GROUPING({x})" for x in g)}
        FROM (SELECT {", ".join(f"{trim(c, staged.spreadsheet)} AS {x}" for c, x in zip(cols, g))} FROM stage_raw) s
        GROUP BY GROUPING SETS ({", ".join(f"({x})" for x in g)}) {having}"""),
        PARAMS,
    ).all()
    values: dict[str, list] = {f: [] for f in fields}
    repeated = []
    n = len(cols)
    for row in rows:
        i = list(row[n:]).index(0)  # the grouping set this row belongs to
        if i < len(fields):
            values[fields[i]].append(row[i])
        elif row[i]:
            repeated.append(row[i])
    return values, repeated


def build_maps(conn: Connection, layer: Layer, values: dict[str, list]) -> None:
    """Fill `stage_map` (field, input value → stored value) for the choice and ref fields in the input."""
    conn.execute(text("DROP TABLE IF EXISTS pg_temp.stage_map"))
    conn.execute(
        text("CREATE TEMP TABLE stage_map (field text, v text, out text, PRIMARY KEY (field, v)) ON COMMIT DROP")
    )
    for name, given in values.items():
        f = layer.field(name)
        given = [v for v in given if v is not None]
        if f.type == "ref":  # the input names a row of another table by its key; stored: the key or the id
            assert f.ref is not None  # Field.__post_init__ requires ref exactly for type ref
            table, key, stored = f.ref
            target = "id" if stored.endswith("_id") else key
            conn.execute(
                text(
                    f"INSERT INTO stage_map (field, v, out) SELECT :f, t.{key}, t.{target}::text "
                    f"FROM {table} t WHERE t.{key} = ANY(:v)"
                ),
                {"f": name, "v": given},
            )
            continue
        # choices accept a key or its Chinese or English label: mapped in Python, once per distinct value
        pairs = [(v, k) for v in given if (k := key_for(v, f.choices)) is not None]
        conn.execute(
            text(
                "INSERT INTO stage_map (field, v, out) SELECT :f, unnest(CAST(:v AS text[])), "
                "unnest(CAST(:o AS text[]))"
            ),
            {"f": name, "v": [p[0] for p in pairs], "o": [p[1] for p in pairs]},
        )
    conn.execute(text("ANALYZE pg_temp.stage_map"))


def check(conn: Connection, layer: Layer, staged: Staged, problems: Problems, extent: crsmod.Extent | None) -> None:
    """Check and type every staged value in one pass into `stage`; record each bad value with its reason."""
    values, repeated = _distinct(conn, layer, staged)
    build_maps(conn, layer, values)
    params: dict[str, Any] = dict(PARAMS)
    # one statement, four levels, each computed once a row (OFFSET 0 keeps the planner from merging them
    # and repeating an expression wherever its name is used): 1 the trimmed values; 2 ISO offsets and
    # the choice/ref lookups; 3 every check's flag; 4 the typed values and the bitmask of failed checks
    value = {name: f"v{i}" for i, name in enumerate(staged.fields)}
    level1 = ["row_no"] + [f"{trim(col, staged.spreadsheet)} AS {value[name]}" for name, col in staged.fields.items()]
    carried = list(value.values())
    if staged.lon:
        assert staged.lat is not None  # lon and lat are staged together
        level1 += [f"{trim(staged.lon, staged.spreadsheet)} AS lon", f"{trim(staged.lat, staged.spreadsheet)} AS lat"]
        carried += ["lon", "lat"]
    if staged.geom:
        level1.append("geom")
        carried.append("geom")
    level2, joins, derived = ["r.row_no"] + [f"r.{c}" for c in carried], [], []
    texts = [f"r.{value[f.name]}" for f in layer.fields if f.type in ("text", "text[]") and f.name in value]
    if texts:
        level2.append(f"concat({', '.join(texts)}) ~ :ctl AS any_ctl")
        derived.append("any_ctl")
    for f in layer.fields:
        v = value.get(f.name)
        if v and f.type in ("date", "datetime"):
            level2.append(f"{offset_length('r.' + v)} AS o_{v}")
            derived.append(f"o_{v}")
        elif v and f.type in ("choice", "ref"):
            joins.append(f"LEFT JOIN stage_map m_{v} ON m_{v}.field = '{f.name}' AND m_{v}.v = r.{v}")
            level2.append(f"m_{v}.out AS out_{v}")
            derived.append(f"out_{v}")
    checks = [c for f in layer.fields for c in _field_checks(f, value.get(f.name))]
    level3 = ["row_no"] + carried + derived + [f"({c.condition}) IS TRUE AS b{i}" for i, c in enumerate(checks)]
    bits = [f"b{i}" for i in range(len(checks))]
    if staged.lon:
        level3.append(f"({number('lon')} AND {number('lat')}) IS TRUE AS lonlat_ok")
        bits += [
            "NOT lonlat_ok",
            (
                "CASE WHEN lonlat_ok THEN NOT (lon::float8 BETWEEN :x0 AND :x1 "
                "AND lat::float8 BETWEEN :y0 AND :y1) ELSE false END"
            ),
        ]
        assert extent is not None  # lon/lat are staged for spatial layers only, and those get the city extent
        params.update(x0=extent.lon_min, x1=extent.lon_max, y0=extent.lat_min, y1=extent.lat_max)
    masks = [
        " | ".join(
            f"(CASE WHEN {b} THEN {1 << (i % BITS)}::int8 ELSE 0 END)" for i, b in enumerate(bits) if i // BITS == k
        )
        for k in range((len(bits) + BITS - 1) // BITS)
    ]
    level4 = ["row_no"] + [f"{m} AS bad{k}" for k, m in enumerate(masks)]
    for f in layer.fields:
        v = value.get(f.name)
        if v is None:
            typed = "'{}'::text[]" if f.type == "text[]" else _default(f, params)
        else:
            typed = _typed(f, v, params)
            own = [f"b{i}" for i, c in enumerate(checks) if c.field == f.name]
            if own:  # a value that failed a check is never cast
                typed = f"CASE WHEN {' OR '.join(own)} THEN NULL ELSE {typed} END"
        sql_type = layer.table.c[f.column].type.compile(dialect=postgresql.dialect())
        level4.append(f"CAST({typed} AS {sql_type}) AS {f.column}")
    if staged.lon:
        level4 += ["CASE WHEN lonlat_ok THEN lon::float8 END AS lon", "CASE WHEN lonlat_ok THEN lat::float8 END AS lat"]
    if staged.geom:
        level4.append("geom")
    conn.execute(text("DROP TABLE IF EXISTS pg_temp.stage"))
    conn.execute(
        text(f"""
        CREATE TEMP TABLE stage ON COMMIT DROP AS
        SELECT {", ".join(level4)} FROM (
          SELECT {", ".join(level3)} FROM (
            SELECT {", ".join(level2)} FROM (SELECT {", ".join(level1)} FROM stage_raw OFFSET 0) r {" ".join(joins)}
            OFFSET 0) r2
          OFFSET 0) r3"""),
        params,
    )
    conn.execute(text("CREATE INDEX ON pg_temp.stage (row_no)"))  # the INSERT goes in the input's order
    conn.execute(text("ANALYZE pg_temp.stage"))
    bad_key = _duplicate_keys(conn, layer, staged, repeated)
    if masks:
        _messages(conn, layer, staged, problems, checks, len(masks), bad_key, extent)
    for row_no, key in sorted(bad_key.items()):  # duplicates in rows without any other problem
        _key_problem(problems, layer, row_no, key)


def _messages(
    conn: Connection,
    layer: Layer,
    staged: Staged,
    problems: Problems,
    checks: list[_Check],
    n_masks: int,
    bad_key: dict[int, str],
    extent: crsmod.Extent | None,
) -> None:
    """The reasons of every row whose bitmask is not 0, from its trimmed values."""
    bad = conn.execute(
        text(
            f"SELECT row_no, {', '.join(f'bad{k}' for k in range(n_masks))} FROM stage "
            f"WHERE {' OR '.join(f'bad{k} <> 0' for k in range(n_masks))} ORDER BY row_no"
        )
    ).all()
    if not bad:
        return
    names = list(staged.fields) + (["lon", "lat"] if staged.lon else [])
    cols = [trim(c, staged.spreadsheet) for c in staged.fields.values()]
    if staged.lon:
        assert staged.lat is not None  # lon and lat are staged together
        cols += [trim(staged.lon, staged.spreadsheet), trim(staged.lat, staged.spreadsheet)]
    shown = {
        r[0]: dict(zip(names, r[1:]))
        for r in conn.execute(
            text(f"SELECT row_no, {', '.join(cols) or 'NULL'} FROM stage_raw WHERE row_no = ANY(:rows)"),
            {**PARAMS, "rows": [r[0] for r in bad]},
        )
    }
    for row_no, *masks in bad:
        flag = [bool(masks[i // BITS] >> (i % BITS) & 1) for i in range(len(checks) + 2 * bool(staged.lon))]
        given = shown[row_no]
        for i, c in enumerate(checks):
            if flag[i]:
                problems.add_row(row_no, c.field, c.message(given.get(c.field)))
        _key_problem(problems, layer, row_no, bad_key.pop(row_no, None))
        if staged.lon and flag[len(checks)]:
            problems.add_row(row_no, "lon/lat", "is missing or not a number")
        elif staged.lon and flag[len(checks) + 1]:
            assert extent is not None  # lon/lat are staged for spatial layers only, and those get the city extent
            for _, reason in crsmod.bad_points([float(given["lon"])], [float(given["lat"])], extent):
                problems.add_row(row_no, "lon/lat", reason)


def _duplicate_keys(conn: Connection, layer: Layer, staged: Staged, repeated: list[str]) -> dict[int, str]:
    """row_no → natural key, for every row whose key an earlier row of the input already has."""
    if not repeated:
        return {}
    seen, out = set(), {}
    k = trim(staged.fields[layer.natural_key], staged.spreadsheet)
    for row_no, key in conn.execute(
        text(f"""
            SELECT row_no, k FROM (SELECT row_no, {k} AS k FROM stage_raw) s
            WHERE k = ANY(:keys) ORDER BY row_no"""),
        {**PARAMS, "keys": repeated},
    ):
        if key in seen:
            out[row_no] = key
        seen.add(key)
    return out


def _key_problem(problems: Problems, layer: Layer, row_no: int, key: str | None) -> None:
    if key is not None:
        problems.add_row(row_no, layer.natural_key, f"{key!r} appears twice in the file")
