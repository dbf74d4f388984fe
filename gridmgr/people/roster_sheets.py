"""The roster template's six sheets: their columns, and reading and writing them as XLSX or CSV files.

Only the files: what the values mean (enumerations, references, the database) is gridmgr.people.roster's.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from gridmgr.errors import InputError
from gridmgr.io import sheets

# sheet → its columns, in template order (docs/roster.md documents each)
SHEETS: dict[str, tuple[str, ...]] = {
    "units": ("code", "name", "kind", "region_code", "phone"),
    "people": ("code", "name", "role", "unit_code", "phone"),
    "cell_units": ("cell_code", "duty", "unit_code"),
    "cell_people": ("cell_code", "person_code", "post"),
    "duty_grids": ("code", "name", "unit_code", "supervisor_code"),
    "duty_grid_cells": ("duty_grid_code", "cell_code"),
}
# the columns a sheet must have and every one of its rows must fill
REQUIRED: dict[str, tuple[str, ...]] = {
    "units": ("code", "name", "kind"),
    "people": ("code", "name", "role"),
    "cell_units": ("cell_code", "duty", "unit_code"),
    "cell_people": ("cell_code", "person_code", "post"),
    "duty_grids": ("code", "name"),
    "duty_grid_cells": ("duty_grid_code", "cell_code"),
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the file: sheet, row as the spreadsheet shows it (header = 1), field."""

    sheet: str
    row: int | None
    field: str | None
    message: str

    @property
    def record(self) -> str:
        return self.sheet if self.row is None else f"{self.sheet} row {self.row}"

    def sort_key(self) -> tuple:
        cols = SHEETS.get(self.sheet, ())
        return (
            list(SHEETS).index(self.sheet) if self.sheet in SHEETS else -1,
            self.row or 0,
            cols.index(self.field) if self.field in cols else -1,
            self.message,
        )

    def __str__(self) -> str:
        where = self.record + (f", field '{self.field}'" if self.field else "")
        return f"{where}: {self.message}"


@dataclass
class Sheet:
    """One sheet as read: its template columns present and its non-blank rows."""

    name: str
    columns: tuple[str, ...]  # template columns present in the header
    rows: list[tuple[int, dict[str, str | None]]]  # (row number, column → text)


# ---------------------------------------------------------------- reading


def as_text(value: object) -> str | None:
    """A cell as the text it means: codes typed as numbers keep all their digits; blank is None."""
    if value is None:
        return None
    if isinstance(value, bool):
        s = str(value).upper()
    elif isinstance(value, int):
        s = str(value)
    elif isinstance(value, float):
        # 110101001001001 stored as a number comes back as a float; it is exact below 2**53
        s = str(int(value)) if value.is_integer() else repr(value)
    elif isinstance(value, (datetime, date)):
        s = value.isoformat()
    else:
        s = str(value)
    # a neutralised cell of our own export ('=…) reads back as the text it was
    s = sheets.restore(s.strip())
    return s or None


def _sheet(name: str, table_rows: Iterable[Sequence[Any]], problems: list[Problem]) -> Sheet | None:
    """A sheet from its rows of raw values; the first row is the header."""
    it = iter(table_rows)
    header = next(it, None)
    keys = [(as_text(h) or "").lower() for h in (header or ())]
    known = SHEETS[name]
    bad = False
    missing = [c for c in REQUIRED[name] if c not in keys]
    if missing:
        problems.append(
            Problem(
                name,
                1 if header else None,
                None,
                f"missing required column(s) {', '.join(missing)}; the header row must name {', '.join(known)}",
            )
        )
        bad = True
    for i, k in enumerate(keys):
        if k and k not in known:
            problems.append(Problem(name, 1, k, f"unknown column; the columns are {', '.join(known)}"))
            bad = True
        elif k and keys.index(k) != i:
            problems.append(Problem(name, 1, k, "column appears twice"))
            bad = True
    if bad:
        return None
    index = {k: i for i, k in enumerate(keys) if k}
    rows = []
    for number, raw in enumerate(it, start=2):
        raw = tuple(raw)
        values = {k: as_text(raw[i]) if i < len(raw) else None for k, i in index.items()}
        if any(v is not None for v in values.values()):
            rows.append((number, values))
    return Sheet(name, tuple(c for c in known if c in index), rows)


def _read_xlsx(path: Path, problems: list[Problem]) -> tuple[dict[str, Sheet | None], list[str]]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InputError(f"not a readable .xlsx workbook ({exc})", record=str(path)) from exc
    try:
        sheets: dict[str, Sheet | None] = {}
        ignored: list[str] = []
        for ws in wb.worksheets:
            name = ws.title.strip().lower()
            if name not in SHEETS:
                ignored.append(ws.title)
                continue
            if name in sheets:
                problems.append(Problem(name, None, None, "the workbook has this sheet twice"))
                continue
            ws.reset_dimensions()  # some writers store a wrong size; read every row there is
            sheets[name] = _sheet(name, ws.iter_rows(values_only=True), problems)
        return sheets, ignored
    finally:
        wb.close()


def _read_csv_dir(path: Path, problems: list[Problem]) -> tuple[dict[str, Sheet | None], list[str]]:
    sheets: dict[str, Sheet | None] = {}
    for name in SHEETS:
        f = path / f"{name}.csv"
        if not f.is_file():
            continue
        try:
            content = f.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            problems.append(
                Problem(name, None, None, f"{f.name} is not UTF-8 text; save it as CSV UTF-8 (逗号分隔, UTF-8)")
            )
            continue
        sheets[name] = _sheet(name, csv.reader(io.StringIO(content, newline="")), problems)
    return sheets, []


def read_sheets(path: Path, problems: list[Problem]) -> tuple[dict[str, Sheet | None], list[str]]:
    """The template's sheets of a workbook or CSV folder (None for a sheet with a bad header), and the ignored ones."""
    if path.is_dir():
        sheets, ignored = _read_csv_dir(path, problems)
        where = f"no {', '.join(n + '.csv' for n in SHEETS)} in the folder"
    elif path.suffix.lower() == ".xlsx":
        sheets, ignored = _read_xlsx(path, problems)
        where = f"no sheet named {', '.join(SHEETS)} in the workbook"
    elif not path.exists():
        raise InputError("no such file or folder", record=str(path))
    else:
        raise InputError(
            "a roster is an .xlsx workbook or a folder of CSV files (save .xls as .xlsx)", record=str(path)
        )
    if not sheets and not problems:
        raise InputError(where, record=str(path))
    return sheets, ignored


# ---------------------------------------------------------------- writing


def _write_xlsx(path: Path, data: dict[str, list[tuple]]) -> None:
    # text columns: codes typed in later stay text, leading zeros and all
    sheets.write_xlsx(path, {name: (SHEETS[name], rows) for name, rows in data.items()}, text_columns=True)


def _write_csv_dir(path: Path, data: dict[str, list[tuple]]) -> None:
    if path.exists() and not path.is_dir():
        raise InputError("exists and is not a folder; name an .xlsx file or a folder", record=str(path))
    path.mkdir(parents=True, exist_ok=True)
    for name, rows in data.items():
        sheets.write_csv(path / f"{name}.csv", SHEETS[name], rows)


def write_sheets(path: Path, data: dict[str, list[tuple]]) -> None:
    """Write the sheets' rows under the template's headers: an .xlsx workbook, else a folder of CSVs."""
    if path.suffix.lower() == ".xlsx":
        _write_xlsx(path, data)
    else:
        _write_csv_dir(path, data)
