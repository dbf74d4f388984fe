"""`gridmgr report`: the accountability report of a period, scored, ranked and compared, as CSV, XLSX or HTML."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from gridmgr.commands import Timer, engine, summary

LEVEL_HELP = "cell, community, street, district, unit, supervisor or duty-grid (repeat for several sheets)."


@click.command("report")
@click.option(
    "--period",
    required=True,
    help="2026-W43 (week), 2026-10 (month), 2026Q4 (quarter), 2026 (year) or 2026-10-01..2026-10-15.",
)
@click.option("--level", "levels", multiple=True, required=True, help=LEVEL_HELP)
@click.option(
    "--scheme", default="jinniu", show_default=True, help="Scoring scheme: a preset (jinniu, jinhua) or a YAML file."
)
@click.option("--group-by", help="Rank within groups of this attribute (default: units by kind, others together).")
@click.option("--area", help="Only this district, street or community (code prefix).")
@click.option(
    "--today", type=click.DateTime(["%Y-%m-%d"]), help="Judge a running period as of this day (default: today)."
)
@click.option(
    "-f",
    "--format",
    "fmt",
    type=click.Choice(["csv", "xlsx", "html"]),
    help="Output format (default: from the file name).",
)
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False), required=True)
def report_cmd(
    period: str,
    levels: tuple[str, ...],
    scheme: str,
    group_by: str | None,
    area: str | None,
    today: datetime | None,
    fmt: str | None,
    out: str,
) -> None:
    """Write the report of a period (every indicator, score, rank, change on the previous period)."""
    from gridmgr.analytics import report_files, scoring
    from gridmgr.analytics.accountability import Period, compute, level_key
    from gridmgr.errors import InputError

    timer = Timer()
    fmt = fmt or Path(out).suffix.lstrip(".").lower()
    if fmt not in report_files.FORMATS:
        raise click.UsageError("give -f csv, xlsx or html (or an output file name ending so)")
    keys = list(dict.fromkeys(level_key(lv) for lv in levels))
    if fmt == "csv" and len(keys) > 1:
        raise click.UsageError("a CSV file holds one level: give one --level, or use -f xlsx or -f html")
    span = Period.parse(period)
    plan = scoring.load(scheme)
    day = today.date() if today else None
    current, previous = [], []
    with engine().connect() as conn:
        for level in keys:
            current.append(compute(conn, period=span, level=level, today=day, area=area))
            previous.append(compute(conn, period=span.previous(), level=level, today=day, area=area))
    if group_by:
        for rep in current:
            if not any(group_by in r.attrs or group_by in r.values for r in rep.rows):
                known = sorted({k for r in rep.rows for k in r.attrs if k != "group"})
                raise InputError(
                    f"level {rep.level} has no attribute {group_by!r} to group by; "
                    f"it has: {', '.join(known) or 'none'}",
                    field="group-by",
                )
    book = report_files.book(current, scheme=plan, previous=previous, group_by=group_by)
    report_files.write(book, fmt, out)
    rows = sum(len(t.rows) - 1 for t in book.tables)
    summary(
        f"report {span.label} ({', '.join(keys)}; {rows:,} rows; scheme {plan.name}; "
        f"compared with {span.previous().label}) written to {out}",
        timer,
    )


@click.command("check-figures")
@click.option(
    "--period",
    required=True,
    help="A period as for `gridmgr report`; a quarter, a year or a range also checks each month it touches.",
)
@click.option("--area", help="Only this district, street or community (code prefix).")
@click.option(
    "--today", type=click.DateTime(["%Y-%m-%d"]), help="Judge a running period as of this day (default: today)."
)
def check_figures_cmd(period: str, area: str | None, today: datetime | None) -> None:
    """Check the figures' own rules on the data: every rate a share of one population, at every level."""
    from gridmgr.analytics import consistency
    from gridmgr.analytics.accountability import Period

    timer = Timer()
    periods = consistency.months_of(Period.parse(period))
    with engine().connect() as conn:
        result = consistency.check(
            conn, periods, today=today.date() if today else None, area=area, progress=lambda m: click.echo(f"· {m}")
        )
    for problem in result.problems[:50]:
        click.echo(f"✗ {problem}", err=True)
    if len(result.problems) > 50:
        click.echo(f"✗ … and {len(result.problems) - 50:,} more", err=True)
    summary(
        f"figures checked: {result.periods} periods, {result.reports} reports, {result.cases:,} case-periods, "
        f"{len(result.problems):,} problems",
        timer,
    )
    if not result.ok:
        raise SystemExit(1)


COMMANDS = [report_cmd, check_figures_cmd]
