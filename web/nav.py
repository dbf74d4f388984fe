"""The menu: each audience's pages, shown to the roles that may use them, in the page's language."""

from __future__ import annotations

from flask import Flask, current_app
from flask_login import current_user

from gridmgr.plugins.hooks import MenuEntry, gather
from gridmgr.web.i18n import t

# the core's pages; None = every logged-in user. Entries whose view is not there are left out.
MENU = (
    MenuEntry("maps.supervisor_map", "地图", "Map"),
    MenuEntry("cases.report_form", "上报", "Report", ("supervisor", "receiver", "sysadmin")),
    MenuEntry("cases.queue", "案件", "Cases"),
    MenuEntry("reports.dashboard", "领导驾驶舱", "Dashboard", ("leader", "sysadmin")),
    MenuEntry("reports.reports", "考核报表", "Reports", ("leader", "sysadmin")),
    MenuEntry("reports.hotspots", "热点", "Hot spots", ("leader", "sysadmin")),
    MenuEntry("security.sessions", "登录会话", "Sessions", ("secadmin",)),
    MenuEntry("security.account_list", "账号安全", "Accounts", ("secadmin",)),
    MenuEntry("security.audit_log", "审计日志", "Audit log", ("auditor",)),
    MenuEntry("home.overview", "概览", "Overview"),
)


def menu() -> list[MenuEntry]:
    """The core's entries with the plug-ins' (`gridmgr_menu`) placed after the entry each names, else before the overview."""
    entries = list(MENU)
    for extra in gather("gridmgr_menu"):
        anchors = [i for i, e in enumerate(entries) if e.endpoint == extra.after]
        entries.insert(anchors[-1] + 1 if anchors else len(entries) - 1, extra)
    return entries


def nav_items() -> list[tuple[str, str]]:
    """The menu entries for the current user: (endpoint, label)."""
    if not current_user.is_authenticated:
        return []
    views = current_app.view_functions
    return [
        (e.endpoint, t(e.zh, e.en))
        for e in current_app.extensions["gridmgr_menu"]
        if e.endpoint in views and (e.roles is None or current_user.role in e.roles)
    ]


def init_app(app: Flask) -> None:
    """Make the menu available to every template."""
    app.extensions["gridmgr_menu"] = menu()
    app.jinja_env.globals["nav_items"] = nav_items
