"""Case categories (事件/部件) and their time limits: data in data/categories.csv, loaded into a table."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.errors import InputError
from gridmgr.paths import DATA

DEFAULT_FILE = DATA / "categories.csv"
COLUMNS = (
    "code",
    "kind",
    "major_code",
    "major_name",
    "name",
    "name_en",
    "verify_limit",
    "register_limit",
    "dispatch_limit",
    "handle_limit",
    "handle_limit_urgent",
    "check_limit",
    "register_condition",
    "close_condition",
)
REQUIRED = ("code", "kind", "major_code", "major_name", "name")
LIMIT = re.compile(r"^[0-9]+(\.[0-9]+)?[hd]$")
CODE = re.compile(r"^C?[0-9]{4}$")


def read(path: Path = DEFAULT_FILE) -> list[dict]:
    """Read and validate a categories file; every problem names its line and field."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path.name}: missing columns {', '.join(missing)}")
        rows: list[dict] = []
        seen: set[str | None] = set()
        for line, raw in enumerate(reader, start=2):
            rec = f"{path.name} line {line}"
            row = {c: (raw.get(c) or "").strip() or None for c in COLUMNS}
            for c in REQUIRED:
                if not row[c]:
                    raise InputError("is empty", record=rec, field=c)
            code = row["code"]
            assert code is not None  # a REQUIRED column, checked just above
            if not CODE.match(code):
                raise InputError(
                    f"{row['code']!r} is not a 4-digit event code or C + 4 digits", record=rec, field="code"
                )
            if row["kind"] not in ("event", "component") or code.startswith("C") != (row["kind"] == "component"):
                raise InputError(f"kind {row['kind']!r} does not fit code {row['code']}", record=rec, field="kind")
            if code.lstrip("C")[:2] != row["major_code"]:
                raise InputError(
                    f"major code {row['major_code']} does not fit code {row['code']}", record=rec, field="major_code"
                )
            for c in COLUMNS:
                value = row[c]
                if c.endswith(("_limit", "_urgent")) and value and not LIMIT.match(value):
                    raise InputError(
                        f"{row[c]!r} is not <n>h (working hours) or <n>d (working days)", record=rec, field=c
                    )
            if row["code"] in seen:
                raise InputError(f"duplicate code {row['code']}", record=rec, field="code")
            seen.add(row["code"])
            rows.append(row)
    return rows


def load(conn: Connection, path: str | Path = DEFAULT_FILE) -> int:
    """Insert or update every category of the file by code; returns how many rows it holds."""
    rows = read(Path(path))
    cols = ", ".join(COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "code")
    conn.execute(
        text(
            f"INSERT INTO categories ({cols}) VALUES ({', '.join(':' + c for c in COLUMNS)}) "
            f"ON CONFLICT (code) DO UPDATE SET {updates}"
        ),
        rows,
    )
    return len(rows)


def ensure_loaded(conn: Connection) -> None:
    """Load the shipped categories when the table is empty (first import on a new database)."""
    if not conn.execute(text("SELECT EXISTS (SELECT 1 FROM categories)")).scalar():
        load(conn)
