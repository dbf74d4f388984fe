"""The one writer of CSV and XLSX files: safe text cells, typed values, and a print setup for wide sheets.

A text cell that a spreadsheet would run as a formula (it starts with = + - @, a tab or a carriage
return, OWASP's "CSV injection" list) is neutralised: in a CSV with a leading apostrophe, in an XLSX
as a string cell with Excel's quote prefix (the value itself is unchanged). Numbers, dates, times and
booleans are never text: they are written as their types, so a negative number stays a number.

`restore` undoes the prefix, and the layer import does the same in SQL for CSV and XLSX input (never
for GIS files, which nothing neutralises; `gridmgr.io.validate`): an apostrophe is added only before a
trigger (or before apostrophes followed by one), and removed only there, so any text survives
export → import exactly. An XLSX cell gets the apostrophe only when its text starts with its own.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
PREFIX = "'"
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"


def needs_prefix(text: str) -> bool:
    """The text starts with a formula trigger, after any apostrophes (those too must survive `restore`)."""
    return text.lstrip(PREFIX).startswith(TRIGGERS)


def neutralise(text: str) -> str:
    """Text as a CSV cell holds it: a leading apostrophe when a spreadsheet would read it as a formula."""
    return PREFIX + text if needs_prefix(text) else text


def restore(text: str) -> str:
    """The text a neutralised CSV cell stands for: one leading apostrophe removed where `neutralise` adds it."""
    return text[1:] if text.startswith(PREFIX) and needs_prefix(text) else text


def _blank(value: Any) -> bool:
    # pandas gives NaN/NaT for missing values in typed columns
    return value is None or (isinstance(value, float) and math.isnan(value)) or repr(value) in ("NaT", "<NA>")


def csv_value(value: Any) -> str:
    """A value as CSV text: numbers and dates as such, booleans true/false, text neutralised, None empty."""
    if _blank(value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars (np.bool_, np.int64, …) as their Python value
        return csv_value(value.item())
    return neutralise(str(value))


def write_csv(
    path: str | Path,
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    render: Callable[[Any], str] = csv_value,
) -> None:
    """Rows under a header as CSV, each cell by `render` (safe by default); UTF-8 with a BOM for Excel."""
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        out = csv.writer(f)
        out.writerow([neutralise(h) for h in header])
        for row in rows:
            out.writerow([render(v) for v in row])


def xlsx_value(value: Any) -> Any:
    """A value as an XLSX cell holds it: None, bool, number, naive date/datetime, or text."""
    if _blank(value):
        return None
    if hasattr(value, "item") and not isinstance(value, (datetime, date, time)):
        value = value.item()
    if isinstance(value, datetime) and value.tzinfo is not None:
        # a workbook has no time zones: the wall-clock time of the offset it was given (callers give local time)
        value = value.replace(tzinfo=None)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bool, int, float, date, datetime, time)):
        return value
    return str(value)


def xlsx_cell(ws: Any, value: Any, number_format: str | None = None) -> Any:
    """A write-only cell of `value` (typed as `xlsx_value`), text never read as a formula."""
    from openpyxl.cell import WriteOnlyCell

    v = xlsx_value(value)
    if isinstance(v, str) and v.startswith(PREFIX):
        # the import restores CSV and XLSX cells alike, so an apostrophe of the text's own before a
        # trigger gets the CSV's extra one here too (the only text whose XLSX value is not the text)
        v = neutralise(v)
    c = WriteOnlyCell(ws, value=v)
    if isinstance(v, str):
        c.data_type = "s"  # a string cell, whatever it starts with: openpyxl takes "=…" for a formula
        if needs_prefix(v):
            c.quotePrefix = True  # and Excel keeps it text when someone edits the cell
    elif isinstance(v, datetime):
        c.number_format = DATETIME_FORMAT
    elif isinstance(v, date):
        c.number_format = DATE_FORMAT
    if number_format:
        c.number_format = number_format
    return c


def print_setup(ws: Any, columns: int, rows: int) -> None:
    """Set a wide sheet to print landscape, one page wide, the header row repeated, panes frozen below it."""
    from openpyxl.utils import get_column_letter

    ws.freeze_panes = "A2"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = "9"  # A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0  # as many pages down as it takes
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = "1:1"
    ws.print_area = f"A1:{get_column_letter(max(columns, 1))}{max(rows, 1)}"


def write_xlsx(
    path: str | Path,
    sheets: dict[str, tuple[Sequence[str], Iterable[Sequence[Any]]]],
    *,
    widths: bool = True,
    text_columns: bool = False,
) -> None:
    """Sheets of rows under bold headers (name → (header, rows)), typed cells, frozen header, print setup."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    bold = Font(bold=True)
    for name, (header, rows) in sheets.items():
        ws = wb.create_sheet(name)
        rows = [list(r) for r in rows]
        for i, h in enumerate(header):
            dim = ws.column_dimensions[get_column_letter(i + 1)]
            if widths:
                widest = max([text_width(str(h)), *(text_width(_shown(r[i])) for r in rows[:200] if i < len(r))])
                dim.width = min(max(widest + 2, 8), 50)
            if text_columns:
                dim.number_format = "@"  # codes typed in later stay text, leading zeros and all
        print_setup(ws, len(header), len(rows) + 1)
        head = []
        for h in header:
            c = xlsx_cell(ws, h)
            c.font = bold
            head.append(c)
        ws.append(head)
        for r in rows:
            ws.append([xlsx_cell(ws, v) for v in r])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def _shown(value: Any) -> str:
    v = xlsx_value(value)
    if v is None:
        return ""
    return v.isoformat(sep=" ") if isinstance(v, datetime) else str(v)


def text_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: CJK characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
