"""The plug-in hooks beyond the layers: a plug-in's own migration branch, and no core module naming a layer's table."""

from __future__ import annotations

import ast
import re
import types
from pathlib import Path

import pytest
from sqlalchemy import inspect

from gridmgr.db import migrate
from gridmgr.plugins import hooks, registry
from gridmgr.plugins.hooks import hookimpl

ROOT = Path(__file__).resolve().parents[1]

BRANCH = '''
"""A plug-in's first revision: a table of its own, on a branch that depends on the core."""
import sqlalchemy as sa
from alembic import op

revision = "tp01"
down_revision = None
branch_labels = ("testplugin",)
depends_on = {core}


def upgrade():
    op.create_table("testplugin_things", sa.Column("id", sa.BigInteger, primary_key=True))


def downgrade():
    op.drop_table("testplugin_things")
'''


@pytest.fixture
def branch_plugin(tmp_path):
    """A plug-in (registered as an entry point would be) whose gridmgr_migrations hook gives a version directory."""
    core = migrate.head()
    versions = tmp_path / "versions"
    versions.mkdir()
    # on every head the code has (the core's and the other plug-ins' branches, e.g. "0011,f001")
    (versions / "tp01_things.py").write_text(BRANCH.replace("{core}", repr(tuple(core.split(",")))), encoding="utf-8")
    plugin = types.ModuleType("testplugin")
    plugin.gridmgr_migrations = hookimpl(lambda: [versions])  # type: ignore[attr-defined]
    hooks.manager().register(plugin, "testplugin")
    try:
        yield core
    finally:
        hooks.manager().unregister(plugin)


def test_a_plugin_migration_branch_is_found_upgraded_and_downgraded(branch_plugin, owner_db):
    core = branch_plugin
    _, eng = owner_db
    assert "tp01" in migrate.head().split(",")  # the branch's head (it depends on the core's)
    assert migrate.current(eng) == core != migrate.head()  # the template knows only the core
    migrate.upgrade(eng)
    assert migrate.current(eng) == migrate.head()
    assert "testplugin_things" in inspect(eng).get_table_names()
    migrate.downgrade(eng, "testplugin@base")
    assert migrate.current(eng) == core and "testplugin_things" not in inspect(eng).get_table_names()


# --- the core names no layer's table ---------------------------------------------------------------


def _strings(path: Path) -> list[tuple[int, str]]:
    """Every string literal and name of a module but its docstrings (words about a layer are fine)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.Name):
            out.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            out.append((node.lineno, node.attr))
    return out


def test_no_core_module_names_a_layer_table_but_the_cases_spine():
    """The core and the web app reach a layer's table only through the registry; cases are the spine."""
    names = {la.table.name for la in registry.layers()} | {la.name for la in registry.layers()}
    names -= {"cases"}
    assert {"billboards", "construction_sites", "parking_zones", "roads"} <= names
    word = re.compile(r"\b(" + "|".join(sorted(names)) + r")\b")
    found = []
    for folder in ("gridmgr", "web"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            found += [f"{path.relative_to(ROOT)}:{n}: {s[:60]!r}" for n, s in _strings(path) if word.search(s)]
    assert found == []


def test_the_scan_sees_a_table_name(tmp_path):
    """The check itself: a table named in SQL is found, a docstring that mentions one is not."""
    probe = tmp_path / "probe.py"
    probe.write_text('"""About billboards."""\nSQL = "SELECT * FROM billboards"\n', encoding="utf-8")
    assert sorted(s for _, s in _strings(probe)) == ["SELECT * FROM billboards", "SQL"]
