"""`gridmgr rules list|run`: layer rules that open cases from layer data (source `rule`)."""

from __future__ import annotations

from datetime import date, datetime

import click

from gridmgr.commands import Timer, engine, summary


@click.group("rules")
def rules_group() -> None:
    """Layer rules that open cases from the layers' data (each layer gives its own)."""


@rules_group.command("list")
def list_cmd() -> None:
    """List the rules, the layer each reads and the category it raises."""
    from gridmgr.cases.rules import rules

    for rule in rules().values():
        once = "; one case per feature ever" if rule.once else ""
        settings = "".join(f"; --set {k}={v}" for k, v in rule.settings.items())
        click.echo(f"{rule.name:30} {rule.layer} → {rule.category}  {rule.title_zh} {rule.title_en}{once}{settings}")


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
    "--set",
    "settings",
    multiple=True,
    metavar="NAME=N",
    help="A rule's setting, e.g. days=30 (a billboard's inspection is overdue after 30 days; see `rules list`).",
)
def run_cmd(today: datetime | None, names: tuple[str, ...], settings: tuple[str, ...]) -> None:
    """Open a case for each feature a rule flags, unless the rule already has an open case for it."""
    from gridmgr.cases import categories
    from gridmgr.cases.rules import run_rules
    from gridmgr.cases.workcalendar import WorkCalendar

    values: dict[str, int] = {}
    for item in settings:
        key, _, value = item.partition("=")
        if not value.strip().isdigit():
            raise click.BadParameter(f"{item!r}: give NAME=N with a whole number", param_hint="--set")
        values[key.strip()] = int(value)

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
            names=list(names) or None,
            settings=values,
        )
    for name, n in opened.items():
        click.echo(f"{name:30} {n:,} case{'s' if n != 1 else ''} opened")
    summary(f"rules as of {day}: {sum(opened.values()):,} cases opened", timer)


COMMANDS = [rules_group]
