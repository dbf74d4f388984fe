"""Report tables and their files: scored, ranked and compared rows, written as CSV, XLSX or standalone HTML.

`table(report, scheme="jinniu", previous=previous_report)` turns a `gridmgr.analytics.accountability.Report` into a
`Table`: one row per object (ranked within its group, best first, then the unranked) and the total
last, with rank, score, every figure, every rate followed by its change on the previous period,
and the inventory. `book(...)` gathers the tables of one period with the definitions; `write(book,
"xlsx", path)` writes it. Pages render the same `Table` with `display()`, so a page, a CSV and a
workbook always show the same figures.

Figures are rounded once, here (`figure`, half up: rates to 0.01 %, scores, hours and changes to
0.01): the workbook stores the rounded numbers with a matching number format, the CSV and HTML
print them, so the files agree cell for cell. A missing value (a rate with no cases, a rank not
given) is None, shown "—". Rate changes are in percentage points; rank change = previous rank −
rank (positive = up).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from gridmgr import glossary
from gridmgr.analytics import indicators, scoring
from gridmgr.analytics.accountability import Period, Report
from gridmgr.codes import TZ
from gridmgr.errors import InputError
from gridmgr.io import sheets
from gridmgr.paths import ROOT

NONE = "—"
FORMATS = ("csv", "xlsx", "html")
# kind → (decimals, signed); text, int (rank) and count are printed as they are
_DECIMALS = {"rate": 4, "pp": 2, "score": 2, "score_change": 2, "hours": 2, "number": 2}
XLSX_FORMATS = {
    "int": "0",
    "count": "0",
    "signed_int": "+0;-0;0",
    "rate": "0.00%",
    "pp": "+0.00;-0.00;0.00",
    "score": "0.00",
    "score_change": "+0.00;-0.00;0.00",
    "hours": "0.00",
    "number": "0.00",
}
_ATTRS = {
    "parent": ("上级代码", "parent code"),
    "kind": ("单位类型", "unit kind"),
    "unit": ("所属单位", "unit"),
    "supervisor": ("监督员", "supervisor"),
}


@dataclass(frozen=True)
class Column:
    """One column: its key, bilingual header, kind (how it is rounded and shown) and which way is better."""

    key: str
    header: str
    kind: str = "text"  # text, int, signed_int, count, hours, rate, pp, score, score_change, number
    better: str | None = None  # "higher" or "lower" for changes (pages colour them)


@dataclass
class Table:
    """The rows of one level: rounded figures aligned with `columns`; the last row is the total."""

    level: str
    title: str
    columns: list[Column]
    rows: list[list[Any]]

    def records(self) -> list[dict[str, Any]]:
        """Rows as column key → figure (for JSON)."""
        return [dict(zip((c.key for c in self.columns), r)) for r in self.rows]


@dataclass
class Book:
    """The tables of one period with what a reader needs to read them."""

    period: Period
    previous: Period | None
    scheme: scoring.Scheme
    cutoff: datetime
    area: str | None
    tables: list[Table]
    definitions: list[tuple[str, str, str, str, str]]  # key, 中文, English, formula, counting rule
    generated: datetime = field(default_factory=lambda: datetime.now(TZ).replace(microsecond=0))

    @property
    def title(self) -> str:
        """网格化城市管理考核报告 + period."""
        return f"网格化城市管理考核报告 Accountability report {self.period.label}"


# ------------------------------------------------------------------------------------------- figures


def figure(value: Any, kind: str) -> Any:
    """A value rounded as the files show it (half up), or None."""
    if value is None:
        return None
    if kind == "pp":
        value = value * 100
    if kind in _DECIMALS:
        if kind == "number" and isinstance(value, int):
            return value
        return float(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-_DECIMALS[kind]), ROUND_HALF_UP))
    return value


def display(value: Any, kind: str) -> str:
    """A rounded figure as text: 93.72%, +2.50, 87.50, 12, — for None."""
    if value is None:
        return NONE
    if kind == "rate":
        return f"{value * 100:.2f}%"
    if kind in ("pp", "score_change"):
        return f"{value:+.2f}" if value else "0.00"
    if kind == "signed_int":
        return f"{value:+d}" if value else "0"
    if kind in ("score", "hours") or (kind == "number" and not isinstance(value, int)):
        return f"{value:.2f}"
    return str(value)


def _label(value: Any) -> Any:
    return glossary.bilingual(value) if isinstance(value, str) and value in glossary.entries() else value


# --------------------------------------------------------------------------------------------- build


def table(
    report: Report,
    *,
    scheme: scoring.Scheme | str = "jinniu",
    previous: Report | None = None,
    group_by: scoring.GroupBy = None,
) -> Table:
    """Score, rank (within groups) and compare one report with the period before; the rows to show."""
    scheme = scoring.load(scheme) if isinstance(scheme, str) else scheme
    # ranked rows by group, then the cases of no object (out of grid, never dispatched) before the total
    ranked = sorted(scoring.rank(scoring.score(report, scheme), group_by), key=lambda r: r.code is None)
    total = scoring.score([report.total], scheme)[0]
    changes: Sequence[scoring.Change | None] = [None] * len(ranked)
    total_change = None
    if previous is not None:
        changes = scoring.compare(ranked, scoring.rank(scoring.score(previous, scheme), group_by))
        total_change = scoring.compare([total], scoring.score([previous.total], scheme))[0]
    grouped = any(r.group is not None for r in ranked)
    attrs = [
        k
        for k in dict.fromkeys(k for r in report.rows for k in r.attrs)
        if k != "group" and not (grouped and all(r.attrs.get(k) == r.group for r in ranked))
    ]  # units: group = kind
    inventory = [d for d in report.definitions if d.kind == "inventory"]

    cols = [Column("group", "组别 group")] if grouped else []
    cols += [Column("rank", "排名 rank", "int")]
    if previous is not None:
        cols += [
            Column("previous_rank", "上期排名 previous rank", "int"),
            Column("rank_change", "排名变化 rank change", "signed_int", "higher"),
        ]
    cols += [Column("code", "代码 code"), Column("name", "名称 name")]
    cols += [Column(a, " ".join(_ATTRS.get(a, (a, a))) if a in _ATTRS else a) for a in attrs]
    cols += [Column("score", f"得分 score ({scheme.name})", "score")]
    if previous is not None:
        cols += [
            Column("previous_score", "上期得分 previous score", "score"),
            Column("score_change", "得分变化 score change", "score_change", "higher"),
        ]
    cols += [Column(d.key, f"{d.zh} {d.en}", "hours" if d.kind == "hours" else "count") for d in indicators.COUNTS]
    for r in indicators.RATES:
        cols.append(Column(r.key, f"{r.zh} {r.en}", "rate"))
        if previous is not None:
            cols.append(Column(f"{r.key}_change", f"{r.zh}较上期 {r.en} change (pp)", "pp", r.better))
    cols += [Column(d.key, f"{d.zh} {d.en}", "number") for d in inventory]

    def line(row: scoring.Scored, ch: scoring.Change | None, name: str | None = None) -> list[Any]:
        raw = {
            "group": _label(row.group),
            "rank": row.rank,
            "code": row.code,
            "name": name or row.name,
            "score": row.score,
            **{a: _label(row.attrs.get(a)) for a in attrs},
            **row.values,
        }
        if ch is not None:
            raw.update(
                previous_rank=ch.previous_rank,
                rank_change=ch.rank_change,
                previous_score=ch.previous_score,
                score_change=ch.score_change,
                **{f"{k}_change": v[2] for k, v in ch.rates.items()},
            )
        return [figure(raw.get(c.key), c.kind) for c in cols]

    rows = [line(r, ch) for r, ch in zip(ranked, changes)]
    rows.append(line(total, total_change, "合计 total"))
    title = f"{glossary.zh(report.level).replace('/', '、')} {glossary.en(report.level)}"
    return Table(report.level, title, cols, rows)


def scheme_formula(scheme: scoring.Scheme) -> str:
    """A scheme in words: 处置率 × 30 + (1 − 返工率) × 20 …, thresholds and penalties."""
    parts = []
    for i in scheme.items:
        minus = "".join(f" − {indicators.BY_KEY[m].zh}" for m in i.minus)
        name = f"{i.label}（分母{minus}）" if minus else i.label
        if i.weight is not None:
            parts.append(f"(1 − {name}) × {i.weight:g}" if i.inverse else f"{name} × {i.weight:g}")
        else:
            parts.append(f"{name} ≥ {i.threshold:.0%} 得 {i.points:g} 分、每低 1 个百分点扣 {i.per_point:g} 分")
        if i.if_none == "zero":
            parts[-1] += "（无案件得 0 分）"
    text_ = " + ".join(parts) + "".join(f" − {p.points:g} × {p.label}" for p in scheme.penalties)
    return text_ + (f"；最低 {scheme.minimum:g} 分" if scheme.minimum is not None else "")


def definitions(report: Report, scheme: scoring.Scheme) -> list[tuple[str, str, str, str, str]]:
    """Every column's definition: key, 中文, English, formula, counting rule."""
    out = [
        (
            "score",
            "得分",
            f"score: {scheme.title_en}",
            scheme_formula(scheme),
            f"{scheme.title_zh}, full score {scheme.maximum:g}; rows with nothing due get no score and no rank",
        ),
        (
            "rank",
            "排名",
            "rank",
            "按得分从高到低排名（同分同名次）",
            "within each group (units by kind unless --group-by says otherwise); previous rank − rank = change",
        ),
    ]
    for d in report.definitions:
        if d.is_rate:
            better = "lower is better" if d.better == "lower" else "higher is better"
            rule = (
                f"{d.cohort_en}; — when the denominator is 0; {better}; "
                "change against the previous period in percentage points"
            )
            out.append((d.key, d.zh, d.en, f"{d.formula}：{d.cohort_zh}", rule))
        else:
            out.append((d.key, d.zh, d.en, d.formula, d.rule))
    return out


def book(
    reports: Sequence[Report],
    *,
    scheme: scoring.Scheme | str = "jinniu",
    previous: Sequence[Report] | None = None,
    group_by: scoring.GroupBy = None,
) -> Book:
    """The tables of one period (one per report, same period) and the definitions, ready to write."""
    if not reports:
        raise InputError("no report to write")
    scheme = scoring.load(scheme) if isinstance(scheme, str) else scheme
    prev = list(previous) if previous is not None else [None] * len(reports)
    tables = [table(r, scheme=scheme, previous=p, group_by=group_by) for r, p in zip(reports, prev)]
    first = reports[0]
    return Book(
        first.period,
        prev[0].period if prev[0] is not None else None,
        scheme,
        first.cutoff,
        first.area,
        tables,
        definitions(first, scheme),
    )


# -------------------------------------------------------------------------------------------- writers


def csv_text(value: Any, kind: str) -> str:
    """A figure as the CSV holds it; text that Excel would run as a formula gets a leading apostrophe."""
    out = display(value, kind)
    # a figure's "+2.50" or "-1" is a number to a spreadsheet, not a formula: only text is neutralised
    return sheets.neutralise(out) if kind == "text" and value is not None else out


def write_csv(tbl: Table, path: str | Path) -> None:
    """One table as CSV, UTF-8 with a BOM so that Excel reads the Chinese."""
    sheets.write_csv(
        path,
        [c.header for c in tbl.columns],
        ([csv_text(v, c.kind) for v, c in zip(row, tbl.columns)] for row in tbl.rows),
        render=str,
    )


def xlsx_format(value: Any, kind: str) -> str | None:
    """The number format that shows a rounded figure as `display` prints it."""
    if value is None or isinstance(value, str):
        return None
    return "0" if kind == "number" and isinstance(value, int) else XLSX_FORMATS.get(kind)


def _width(s: str) -> int:
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in s)


def _sheet_name(title: str, used: set[str]) -> str:
    name = "".join("_" if ch in "[]:*?/\\" else ch for ch in title)[:31]
    base, n = name, 2
    while name in used:
        name = f"{base[:28]} {n}"
        n += 1
    used.add(name)
    return name


def write_xlsx(bk: Book, path: str | Path) -> None:
    """One sheet per table (bold frozen header, widths, number formats) and a 定义 Definitions sheet."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDE4EE")
    wrap = Alignment(wrap_text=True, vertical="top")
    used: set[str] = set()

    def cell(ws: Any, value: Any, fmt: str | None = None, header: bool = False) -> Any:
        c = sheets.xlsx_cell(ws, value, fmt)  # text never a formula, whatever a name starts with
        if header:
            c.font, c.fill, c.alignment = bold, fill, wrap
        return c

    for tbl in bk.tables:
        ws = wb.create_sheet(_sheet_name(tbl.title, used))
        shown = [[display(v, c.kind) for v, c in zip(r, tbl.columns)] for r in tbl.rows]
        for i, col in enumerate(tbl.columns):
            longest = max([_width(r[i]) for r in shown] + [min(_width(col.header), 24)])
            ws.column_dimensions[get_column_letter(i + 1)].width = min(max(longest + 2, 6), 50)
        # hundreds of rows of thirty columns: landscape, one page wide, the header on every page
        sheets.print_setup(ws, len(tbl.columns), len(tbl.rows) + 1)
        ws.auto_filter.ref = f"A1:{get_column_letter(len(tbl.columns))}{len(tbl.rows) + 1}"
        ws.append([cell(ws, c.header, header=True) for c in tbl.columns])
        for k, row in enumerate(tbl.rows):
            last = k == len(tbl.rows) - 1
            # a missing figure is an empty cell (sums and filters skip it), missing text shows "—"
            cells = [
                cell(ws, (NONE if c.kind == "text" else None) if v is None else v, xlsx_format(v, c.kind))
                for v, c in zip(row, tbl.columns)
            ]
            if last:
                for c in cells:
                    c.font = bold
            ws.append(cells)

    ws = wb.create_sheet("定义 Definitions")
    for width, letter in zip((26, 18, 28, 60, 70), "ABCDE"):
        ws.column_dimensions[letter].width = width
    ws.freeze_panes = "A2"
    ws.append(
        [cell(ws, h, header=True) for h in ("键 key", "中文", "English", "公式 formula", "统计口径 counting rule")]
    )
    for d in bk.definitions:
        ws.append([cell(ws, v) for v in d])
    ws.append([])
    for about_key, about_value in _about(bk):
        ws.append([cell(ws, about_key, header=True), cell(ws, about_value)])
    wb.save(path)


def _about(bk: Book) -> list[tuple[str, str]]:
    return [
        ("报告 report", bk.title),
        ("期间 period", f"{bk.period.label} ({bk.period.first} – {bk.period.last})"),
        ("上期 previous period", bk.previous.label if bk.previous else NONE),
        ("统计截止 data read up to", bk.cutoff.isoformat()),
        ("范围 area", bk.area or "全部 all"),
        ("考核方案 scoring scheme", f"{bk.scheme.name}: {bk.scheme.title_zh} {bk.scheme.title_en}"),
        ("生成时间 generated", bk.generated.isoformat()),
    ]


def render_html(bk: Book) -> str:
    """The standalone HTML page (no external asset; every value escaped)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    # the template sits with the web app's templates so pages can share its markup; it is read as a
    # file (the core never imports gridmgr.web)
    env = Environment(
        loader=FileSystemLoader(ROOT / "web" / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["display"] = display
    return env.get_template("reports/report_file.html").render(book=bk, about=_about(bk), dash=NONE)


def write_html(bk: Book, path: str | Path) -> None:
    """The standalone HTML page to a file."""
    Path(path).write_text(render_html(bk), encoding="utf-8")


def write(bk: Book, fmt: str, path: str | Path) -> None:
    """Write a book as csv (one table), xlsx or html."""
    if fmt == "csv":
        if len(bk.tables) != 1:
            raise InputError("a CSV file holds one level: give one --level, or use -f xlsx or -f html", field="format")
        write_csv(bk.tables[0], path)
    elif fmt == "xlsx":
        write_xlsx(bk, path)
    elif fmt == "html":
        write_html(bk, path)
    else:
        raise InputError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", field="format")
