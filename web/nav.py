"""The menu: each audience's pages, shown to the roles that may use them, in the page's language."""

from __future__ import annotations

from flask import Flask, current_app
from flask_login import current_user

from gridmgr.web.i18n import t

# (endpoint, (中文, English), roles); None = every logged-in user. Entries whose view is not there are left out.
MENU = (
    ("maps.supervisor_map", ("地图", "Map"), None),
    ("cases.report_form", ("上报", "Report"), ("supervisor", "receiver", "admin")),
    ("cases.queue", ("案件", "Cases"), None),
    ("planner.index", ("停车规划", "Parking"), ("planner", "leader", "admin")),
    ("reports.dashboard", ("领导驾驶舱", "Dashboard"), ("leader", "admin")),
    ("reports.reports", ("考核报表", "Reports"), ("leader", "admin")),
    ("reports.hotspots", ("热点", "Hot spots"), ("leader", "admin")),
    ("home.overview", ("概览", "Overview"), None),
)


def nav_items() -> list[tuple[str, str]]:
    """The menu entries for the current user: (endpoint, label)."""
    if not current_user.is_authenticated:
        return []
    views = current_app.view_functions
    return [(e, t(*label)) for e, label, roles in MENU if e in views and (roles is None or current_user.role in roles)]


def init_app(app: Flask) -> None:
    """Make the menu available to every template."""
    app.jinja_env.globals["nav_items"] = nav_items
