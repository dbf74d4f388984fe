"""The roster (定人、定岗、定责): units, people, their cells and duty grids, from one spreadsheet and back.

The template is fixed (docs/roster.md): an XLSX workbook with the six sheets of SHEETS, or a folder of
six CSV files of the same names. Reading, checking and storing are separate steps, so that every problem
of a file is reported together and nothing is stored unless the whole file is right.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, column, insert, literal_column, or_, table, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import ReturningInsert

from gridmgr.db.models import CELL_DUTIES, PERSON_ROLES, POSTS, UNIT_KINDS, DutyGrid, Person, Unit
from gridmgr.errors import InputError
from gridmgr.glossary import key_for as glossary_key
from gridmgr.people.roster_sheets import REQUIRED, SHEETS, Problem, Sheet, read_sheets, write_sheets

# what makes a row unique in its sheet (one unit per cell and duty)
KEYS: dict[str, tuple[str, ...]] = {
    "units": ("code",),
    "people": ("code",),
    "duty_grids": ("code",),
    "cell_units": ("cell_code", "duty"),
    "cell_people": ("cell_code", "person_code", "post"),
    "duty_grid_cells": ("duty_grid_code", "cell_code"),
}

# The roster's label table: an enumerated field accepts its English key or its Chinese label (and,
# failing both, any label of the shared glossary, gridmgr.glossary). Duties use the short forms that
# bureaus write in duty tables (环卫, not the office's name 环卫所).
_PERSON_LABELS = {"grid_leader": "网格长", "grid_officer": "网格员", "supervisor": "监督员", "staff": "工作人员"}
LABELS: dict[str, dict[str, str]] = {
    "kind": {
        "enforcement_squad": "执法中队",
        "sanitation": "环卫所",
        "street_office": "街道办事处",
        "department": "职能部门",
        "company": "企业",
        "other": "其他",
    },
    "role": _PERSON_LABELS,
    "post": {k: _PERSON_LABELS[k] for k in POSTS},
    "duty": {
        "territorial": "属地",
        "enforcement": "执法",
        "sanitation": "环卫",
        "maintenance": "养护",
        "other": "其他",
    },
}
ENUMS = {"kind": UNIT_KINDS, "role": PERSON_ROLES, "post": POSTS, "duty": CELL_DUTIES}
ENUM_NOUN = {"kind": "unit kind", "role": "person role", "post": "post", "duty": "duty"}

# which roster entity a code column refers to
REFS = {
    ("units", "region_code"): "region",
    ("people", "unit_code"): "unit",
    ("cell_units", "cell_code"): "cell",
    ("cell_units", "unit_code"): "unit",
    ("cell_people", "cell_code"): "cell",
    ("cell_people", "person_code"): "person",
    ("duty_grids", "unit_code"): "unit",
    ("duty_grids", "supervisor_code"): "person",
    ("duty_grid_cells", "duty_grid_code"): "duty_grid",
    ("duty_grid_cells", "cell_code"): "cell",
}
ENTITY_SHEET = {"unit": "units", "person": "people", "duty_grid": "duty_grids"}
CODE_MAX = 32  # units.code, people.code, duty_grids.code and phone are VARCHAR(32)
CELL_CODE = re.compile(r"^[0-9]{15}$")
REGION_CODE = re.compile(r"^[0-9]{6}([0-9]{3}){0,2}$")
MAX_LISTED = 100  # problems spelled out in the error message; all of them are on .problems


class RosterError(InputError):
    """The roster file has problems; `problems` lists every one, and nothing was stored."""

    def __init__(self, problems: list[Problem], source: str = "the roster"):
        self.problems = sorted(problems, key=Problem.sort_key)
        n = len(self.problems)
        lines = [
            f"{source}: {n} problem{'s' if n != 1 else ''}, nothing stored",
            *(f"  - {p}" for p in self.problems[:MAX_LISTED]),
        ]
        if n > MAX_LISTED:
            lines.append(f"  … and {n - MAX_LISTED} more")
        super().__init__("\n".join(lines))
        self.record, self.field = self.problems[0].record, self.problems[0].field


@dataclass
class SheetCount:
    """What an import did to one sheet's table."""

    rows: int = 0  # rows of the sheet
    added: int = 0  # new units/people/duty grids, or new links
    changed: int = 0  # units/people/duty grids whose fields changed
    removed: int = 0  # links (or duty grids) no longer in the file


@dataclass
class RosterSummary:
    """The counts of one import, per sheet present, and the workbook's sheets that were not read."""

    sheets: dict[str, SheetCount] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line for the CLI: rows per sheet and what changed."""
        parts = []
        for name, c in self.sheets.items():
            detail = [f"{c.added} new", c.changed and f"{c.changed} changed", c.removed and f"{c.removed} removed"]
            parts.append(f"{name} {c.rows} ({', '.join(d for d in detail if d)})")
        return "roster: " + ", ".join(parts)


# ---------------------------------------------------------------- checking


def _enum(field_name: str, value: str) -> str | None:
    labels = LABELS[field_name]
    if value.lower() in labels:
        return value.lower()
    value = unicodedata.normalize("NFKC", value)
    by_label = {zh: key for key, zh in labels.items()}
    return by_label.get(value) or glossary_key(value, ENUMS[field_name])


def _check_row(sheet: str, number: int, values: dict, problems: list[Problem]) -> dict:
    """The row's values made canonical; a bad value is reported and becomes None."""
    out = {}
    for col in SHEETS[sheet]:
        v = values.get(col)
        if v is None:
            if col in REQUIRED[sheet]:
                problems.append(Problem(sheet, number, col, "is missing"))
        elif col in ENUMS:
            canon = _enum(col, v)
            if canon is None:
                choices = ", ".join(f"{k} ({zh})" for k, zh in LABELS[col].items())
                problems.append(Problem(sheet, number, col, f"{v!r} is not a {ENUM_NOUN[col]}; use one of {choices}"))
            v = canon
        elif col == "cell_code" and not CELL_CODE.match(v):
            problems.append(Problem(sheet, number, col, f"{v!r} is not a 15-digit cell code"))
            v = None
        elif col == "region_code" and not REGION_CODE.match(v):
            problems.append(
                Problem(sheet, number, col, f"{v!r} is not a 6-, 9- or 12-digit district, street or community code")
            )
            v = None
        elif col != "name" and len(v) > CODE_MAX:
            problems.append(Problem(sheet, number, col, f"is longer than {CODE_MAX} characters"))
            v = None
        out[col] = v
    return out


def _check_sheet(sheet: Sheet, problems: list[Problem]) -> list[tuple[int, dict]]:
    rows: list[tuple[int, dict]] = []
    first: dict[tuple, int] = {}
    keys = KEYS[sheet.name]
    for number, values in sheet.rows:
        row = _check_row(sheet.name, number, values, problems)
        key = tuple(row[k] for k in keys)
        if all(k is not None for k in key):
            if key in first:
                what = ", ".join(f"{k} {v}" for k, v in zip(keys, key))
                problems.append(
                    Problem(sheet.name, number, keys[-1], f"duplicate: {what} is already on row {first[key]}")
                )
            else:
                first[key] = number
        rows.append((number, row))
    return rows


def _referenced(rows: dict[str, list[dict]], kind: str) -> set[str]:
    """Every code of `kind` (unit, person, …) that the rows name."""
    return {r[col] for (sheet, col), k in REFS.items() if k == kind for r in rows.get(sheet, ()) if r[col]}


def _codes_in_db(conn: Connection, table_name: str, codes: set[str]) -> dict[str, int]:
    if not codes:
        return {}
    found = conn.execute(text(f"SELECT code, id FROM {table_name} WHERE code = ANY(:codes)"), {"codes": sorted(codes)})
    return dict(found.all())


def _cells(conn: Connection, codes: set[str], at: datetime) -> tuple[dict[str, int], dict[str, str]]:
    """Cell codes → the id of the version valid at `at`; and why the others are not current."""
    if not codes:
        return {}, {}
    found = conn.execute(
        text("""
        SELECT code,
               max(id) FILTER (WHERE valid_from <= :at AND (valid_to IS NULL OR :at < valid_to)),
               max(valid_to) FILTER (WHERE valid_to <= :at),
               min(valid_from) FILTER (WHERE valid_from > :at)
        FROM grid_cells WHERE code = ANY(:codes) GROUP BY code"""),
        {"codes": sorted(codes), "at": at},
    )
    current, why = {}, {}
    for code, cell_id, closed, opens in found:
        if cell_id is not None:
            current[code] = cell_id
        elif closed is not None:
            why[code] = f"cell {code} is not current: its last version closed on {closed:%Y-%m-%d %H:%M}"
        else:
            why[code] = f"cell {code} is not current: it opens on {opens:%Y-%m-%d %H:%M}"
    return current, why


def _check(
    conn: Connection, sheets: dict[str, Sheet | None], at: datetime, problems: list[Problem]
) -> tuple[dict[str, list[dict]], dict[str, dict[str, int]]]:
    """Every row checked, every code resolved; returns the rows and the ids of cells and regions."""
    rows = {name: _check_sheet(s, problems) for name, s in sheets.items() if s is not None}
    # a sheet that could not be read is reported once; codes it would have defined are not chased
    unreadable = {kind for kind, s in ENTITY_SHEET.items() if s in sheets and sheets[s] is None}
    plain = {name: [r for _, r in rs] for name, rs in rows.items()}
    refs = {kind: _referenced(plain, kind) for kind in set(REFS.values())}
    # a code is known when its sheet lists it (even on a bad row: that row is reported already)
    in_file = {kind: {r["code"] for _, r in rows.get(s, ()) if r["code"]} for kind, s in ENTITY_SHEET.items()}
    known = {
        kind: in_file[kind] | set(_codes_in_db(conn, t, refs[kind] - in_file[kind]))
        for kind, t in (("unit", "units"), ("person", "people"))
    }
    # duty grids missing from a duty_grids sheet are deleted, so only that sheet counts then
    known["duty_grid"] = (
        in_file["duty_grid"] if "duty_grids" in rows else set(_codes_in_db(conn, "duty_grids", refs["duty_grid"]))
    )
    ids = {"region": _codes_in_db(conn, "regions", refs["region"])}
    ids["cell"], not_current = _cells(conn, refs["cell"], at)
    known["region"], known["cell"] = set(ids["region"]), set(ids["cell"])
    for (sheet, col), kind in REFS.items():
        for number, r in rows.get(sheet, ()):
            code = r[col]
            if code is None or code in known[kind] or kind in unreadable:
                continue
            if kind == "cell":
                msg = not_current.get(code) or f"unknown cell code {code}"
            elif kind == "region":
                msg = f"unknown region code {code} (import the regions first)"
            elif kind == "duty_grid" and "duty_grids" in rows:
                msg = f"unknown duty grid code {code}: it is not in the duty_grids sheet"
            else:
                msg = (
                    f"unknown {kind.replace('_', ' ')} code {code}: "
                    f"not in the {ENTITY_SHEET[kind]} sheet nor in the database"
                )
            problems.append(Problem(sheet, number, col, msg))
    return plain, ids


# ---------------------------------------------------------------- storing

# a code column is stored as the id of what it names
ID_COLUMN = {
    "region_code": "region_id",
    "unit_code": "unit_id",
    "person_code": "person_id",
    "supervisor_code": "supervisor_id",
    "duty_grid_code": "duty_grid_id",
    "cell_code": "cell_id",
}
# the entity sheets, upserted by code in this order (each refers only to those before it)
ENTITIES = (("units", "unit", Unit), ("people", "person", Person), ("duty_grids", "duty_grid", DutyGrid))


def _db_row(sheet: str, row: dict, ids: dict[str, dict[str, int]]) -> dict:
    return {ID_COLUMN.get(c, c): ids[REFS[sheet, c]].get(v) if (sheet, c) in REFS else v for c, v in row.items()}


def _upsert(conn: Connection, sheet: Sheet, rows: list[dict], ids: dict) -> tuple[int, int]:
    """Insert or update by code; a column absent from the sheet is left as it is. Returns (added, changed)."""
    if not rows:
        return 0, 0
    # a declarative model's __table__ is a Table (SQLAlchemy types it as FromClause)
    t = cast(Table, {s: m for s, _, m in ENTITIES}[sheet.name].__table__)
    stmt = pg_insert(t)
    update = [ID_COLUMN.get(c, c) for c in sheet.columns if c != "code"]
    upsert: ReturningInsert[Any] = stmt.on_conflict_do_update(
        index_elements=[t.c.code],
        set_={c: stmt.excluded[c] for c in update},
        where=or_(*(t.c[c].is_distinct_from(stmt.excluded[c]) for c in update)),
    ).returning(literal_column("xmax = 0"))  # xmax = 0: the row was inserted, not updated
    flags = conn.execute(upsert, [_db_row(sheet.name, r, ids) for r in rows]).scalars().all()
    return sum(flags), len(flags) - sum(flags)


def _valid_at(alias: str) -> str:
    return f"{alias}.valid_from <= :at AND ({alias}.valid_to IS NULL OR :at < {alias}.valid_to)"


def _replace_links(conn: Connection, name: str, rows: list[dict], at: datetime) -> tuple[int, int]:
    """Make the links of the cells valid at `at` exactly `rows` (a set-based diff); (added, removed)."""
    cols = tuple(ID_COLUMN.get(c, c) for c in SHEETS[name])
    tmp, col_list = f"roster_{name}", ", ".join(cols)
    conn.execute(text(f"CREATE TEMP TABLE {tmp} (LIKE {name}) ON COMMIT DROP"))
    if rows:
        conn.execute(insert(table(tmp, *(column(c) for c in cols))), rows)
    same = " AND ".join(f"n.{c} = t.{c}" for c in cols)
    # links of other cells (closed versions: history; future ones) are not the roster's to touch
    removed = conn.execute(
        text(f"""
        DELETE FROM {name} t USING grid_cells g
        WHERE g.id = t.cell_id AND {_valid_at("g")}
          AND NOT EXISTS (SELECT 1 FROM {tmp} n WHERE {same})"""),
        {"at": at},
    ).rowcount
    added = conn.execute(
        text(f"""
        INSERT INTO {name} ({col_list}) SELECT {col_list} FROM {tmp} n
        WHERE NOT EXISTS (SELECT 1 FROM {name} t WHERE {same})""")
    ).rowcount
    conn.execute(text(f"DROP TABLE {tmp}"))
    return added, removed


def _store(
    conn: Connection,
    sheets: dict[str, Sheet | None],
    rows: dict[str, list[dict]],
    ids: dict[str, dict[str, int]],
    at: datetime,
) -> dict[str, SheetCount]:
    counts = {name: SheetCount(rows=len(rows[name])) for name in SHEETS if name in rows}
    for name, kind, model in ENTITIES:
        if name in rows:
            c = counts[name]
            sheet = sheets[name]
            assert sheet is not None  # rows holds only the sheets that were read (_check)
            c.added, c.changed = _upsert(conn, sheet, rows[name], ids)
        if name in rows and name == "duty_grids":  # duty grids are part of the roster: replaced
            c.removed = conn.execute(
                text("DELETE FROM duty_grids WHERE NOT (code = ANY(:codes))"),
                {"codes": [r["code"] for r in rows[name]]},
            ).rowcount
        ids[kind] = _codes_in_db(conn, model.__tablename__, _referenced(rows, kind))
    for name in ("cell_units", "cell_people", "duty_grid_cells"):
        if name in rows:
            c = counts[name]
            c.added, c.removed = _replace_links(conn, name, [_db_row(name, r, ids) for r in rows[name]], at)
    return counts


def import_roster(conn: Connection, path: str | Path, *, at: datetime | None = None) -> RosterSummary:
    """Load the roster file into the caller's transaction: all of it, or nothing and a RosterError."""
    path = Path(path)
    at = at or datetime.now(timezone.utc)
    problems: list[Problem] = []
    sheets, ignored = read_sheets(path, problems)
    rows, ids = _check(conn, sheets, at, problems)
    if problems:
        raise RosterError(problems, source=str(path))
    return RosterSummary(_store(conn, sheets, rows, ids, at), ignored)


# ---------------------------------------------------------------- exporting

EXPORT_SQL = {
    "units": """SELECT u.code, u.name, u.kind, r.code, u.phone
                FROM units u LEFT JOIN regions r ON r.id = u.region_id ORDER BY u.code""",
    "people": """SELECT p.code, p.name, p.role, u.code, p.phone
                 FROM people p LEFT JOIN units u ON u.id = p.unit_id ORDER BY p.code""",
    "cell_units": f"""SELECT g.code, cu.duty, u.code FROM cell_units cu
                      JOIN grid_cells g ON g.id = cu.cell_id AND {_valid_at("g")}
                      JOIN units u ON u.id = cu.unit_id ORDER BY g.code, cu.duty""",
    "cell_people": f"""SELECT g.code, p.code, cp.post FROM cell_people cp
                       JOIN grid_cells g ON g.id = cp.cell_id AND {_valid_at("g")}
                       JOIN people p ON p.id = cp.person_id ORDER BY g.code, cp.post, p.code""",
    "duty_grids": """SELECT d.code, d.name, u.code, p.code FROM duty_grids d
                     LEFT JOIN units u ON u.id = d.unit_id LEFT JOIN people p ON p.id = d.supervisor_id
                     ORDER BY d.code""",
    "duty_grid_cells": f"""SELECT d.code, g.code FROM duty_grid_cells dc
                           JOIN duty_grids d ON d.id = dc.duty_grid_id
                           JOIN grid_cells g ON g.id = dc.cell_id AND {_valid_at("g")}
                           ORDER BY d.code, g.code""",
}


def export_roster(conn: Connection, path: str | Path, *, at: datetime | None = None) -> dict[str, int]:
    """Write the roster in the template (.xlsx, else a folder of CSVs); the links of cells valid at `at`."""
    path = Path(path)
    at = at or datetime.now(timezone.utc)
    data = {name: [tuple(r) for r in conn.execute(text(sql), {"at": at})] for name, sql in EXPORT_SQL.items()}
    write_sheets(path, data)
    return {name: len(rows) for name, rows in data.items()}
