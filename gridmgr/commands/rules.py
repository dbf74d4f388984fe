"""`gridmgr rules list|run`: layer rules that open cases from layer data (source `rule`)."""

from __future__ import annotations

from datetime import date, datetime

import click

from gridmgr.commands import Timer, engine, summary


@click.group("rules")
def rules_group() -> None:
    """Layer rules: expired billboard permits, overdue inspections, failed dust checks → cases."""


@rules_group.command("list")
def list_cmd() -> None:
    """List the rules, the layer each reads and the category it raises."""
    from gridmgr.cases.rules import RULES

    for rule in RULES.values():
        once = "; one case per feature ever" if rule.once else ""
        click.echo(f"{rule.name:30} {rule.layer} → {rule.category}  {rule.title_zh} {rule.title_en}{once}")


@rules_group.command("run")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The day the rules judge by (YYYY-MM-DD); cases are reported on it at the current "
    "clock time. Default: today in the working calendar's time zone.",
)
@click.option("--rule", "names", multiple=True, help="Only this rule (repeatable; see `gridmgr rules list`).")
@click.option(
    "--inspection-days",
    type=click.IntRange(min=1),
    default=None,
    help="A billboard's safety inspection is overdue after this many days (default 365).",
)
def run_cmd(today: datetime | None, names: tuple[str, ...], inspection_days: int | None) -> None:
    """Open a case for each feature a rule flags, unless the rule already has an open case for it."""
    from gridmgr.cases import categories
    from gridmgr.cases.rules import DEFAULT_INSPECTION_DAYS, run_rules
    from gridmgr.cases.workcalendar import WorkCalendar

    timer = Timer()
    calendar = WorkCalendar.load()
    now = datetime.now(calendar.hours.tz)
    day: date = today.date() if today else now.date()
    now = datetime.combine(day, now.timetz())
    with engine().begin() as conn:
        categories.ensure_loaded(conn)
        opened = run_rules(
            conn,
            today=day,
            now=now,
            calendar=calendar,
            rules=list(names) or None,
            inspection_days=inspection_days or DEFAULT_INSPECTION_DAYS,
        )
    for name, n in opened.items():
        click.echo(f"{name:30} {n:,} case{'s' if n != 1 else ''} opened")
    summary(f"rules as of {day}: {sum(opened.values()):,} cases opened", timer)


COMMANDS = [rules_group]
