"""The house rules (docs/architecture.md), checked on the source: who may import whom, and thin views.

import-linter cannot see `gridmgr.layers` and `gridmgr.web` (setup.cfg maps them from layers/ and web/,
which its graph builder does not follow), so this reads every module's imports with `ast` instead.
Every module of the core is read, so direct imports are enough: a chain through the core into a
forbidden module would need one core module to import it directly.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folder → the installed package it is (setup.cfg package_dir)
FOLDERS = {"gridmgr": "gridmgr", "layers": "gridmgr.layers", "web": "gridmgr.web"}
# the entry points sit on top and may import anything of the project
ENTRY_POINTS = ("gridmgr.cli", "gridmgr.commands")
FLASK = ("flask", "flask_login", "flask_wtf", "flask_babel")  # werkzeug.security hashes passwords in the core


@dataclass(frozen=True)
class Import:
    """One import statement: the importing module, what it imports, and where."""

    module: str
    target: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: {self.module} imports {self.target}"


def module_name(path: Path) -> str:
    """The dotted name a source file is installed as."""
    folder, *rest = path.relative_to(ROOT).with_suffix("").parts
    parts = [FOLDERS[folder], *rest]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def imports() -> tuple[Import, ...]:
    """Every import of every module under gridmgr/, layers/ and web/."""
    found = []
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            module = module_name(path)
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found += [Import(module, a.name, path, node.lineno) for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:  # relative: resolve against the importing package
                        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                        base = ".".join([*anchor, base] if base else anchor)
                    # `from a import b` may import the module a.b: count both
                    found.append(Import(module, base, path, node.lineno))
                    found += [Import(module, f"{base}.{a.name}", path, node.lineno) for a in node.names]
    return tuple(found)


def within(name: str, *packages: str) -> bool:
    """Whether a dotted name is one of the packages or inside one."""
    return any(name == p or name.startswith(p + ".") for p in packages)


def core(module: str) -> bool:
    """The core: gridmgr/ less its entry points (cli, commands)."""
    return within(module, "gridmgr") and not within(module, "gridmgr.web", "gridmgr.layers", *ENTRY_POINTS)


def layer_of(name: str) -> str | None:
    """The layer a module belongs to (gridmgr.layers.parking.zones → parking), None outside the layers."""
    m = re.match(r"gridmgr\.layers\.(\w+)", name)
    return m and m[1]


def violations(rule) -> list[str]:
    return [str(i) for i in imports() if rule(i)]


def test_every_module_is_read():
    """The walk reaches each part of the house (a moved folder would silently check nothing)."""
    modules = {i.module for i in imports()}
    for expected in (
        "gridmgr.cases.workflow",
        "gridmgr.maps.tiles",
        "gridmgr.layers.parking.zones",
        "gridmgr.web.views.maps",
        "gridmgr.cli",
    ):
        assert expected in modules


def test_the_core_imports_neither_web_nor_a_layer_nor_flask():
    bad = violations(lambda i: core(i.module) and within(i.target, "gridmgr.web", "gridmgr.layers", *FLASK))
    assert not bad, "the core must not import web/, a layer or Flask:\n" + "\n".join(bad)


def demo_plugin(module: str) -> bool:
    """A plug-in's demo-data module (gridmgr.layers.demo_city, gridmgr.layers.frontage.demo)."""
    return bool(layer_of(module)) and module.rpartition(".")[2].startswith("demo")


def test_only_the_entry_points_import_the_demo():
    bad = violations(
        lambda i: (
            within(i.target, "gridmgr.demo")
            and not within(i.module, "gridmgr.demo", *ENTRY_POINTS)
            and not demo_plugin(i.module)
        )
    )
    assert not bad, "only gridmgr.cli, gridmgr.commands and demo plug-ins may import the demo:\n" + "\n".join(bad)


def test_a_layer_never_imports_another_layer():
    bad = violations(lambda i: layer_of(i.module) and layer_of(i.target) and layer_of(i.module) != layer_of(i.target))
    assert not bad, "a layer reaches another layer only through the registry:\n" + "\n".join(bad)


def test_layers_import_the_web_app_only_from_their_views():
    """A layer's pages live in its `views` module (its blueprint); nothing else of it knows Flask or web/."""
    bad = violations(
        lambda i: layer_of(i.module) and within(i.target, "gridmgr.web", *FLASK) and not i.module.endswith(".views")
    )
    assert not bad, "\n".join(bad)


# --- thin views --------------------------------------------------------------------------------

SQL_CALLS = re.compile(r"\b(text|select)\(|\.execute\(")


VIEWS = sorted([*(ROOT / "web").rglob("*.py"), *(ROOT / "layers").rglob("views.py")])


@pytest.mark.parametrize("path", VIEWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_views_run_no_sql_of_their_own(path):
    """web/ parses, calls the core and renders: its SQL lives in the core module of its domain."""
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if SQL_CALLS.search(line.split("#")[0])
    ]
    assert not hits, "move these into the core (gridmgr/maps/ for map queries):\n" + "\n".join(hits)


def test_the_rule_catches_what_it_should():
    """The pattern itself: a statement in a view is found, a call that only looks alike is not."""
    assert SQL_CALLS.search('conn.execute(text("SELECT 1"))')
    assert SQL_CALLS.search("rows = select(cells)")
    assert not SQL_CALLS.search("page_text()")
    assert not SQL_CALLS.search("request.args.get('text')")
