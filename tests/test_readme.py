"""The README documents every command and setting (a missing one fails here)."""

from pathlib import Path

import click

from gridmgr.cli import main
from gridmgr.config import SETTINGS
from gridmgr.paths import ROOT

README = (ROOT / "README.md").read_text()


def _commands(group: click.Group, prefix: str = ""):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}"


def test_every_command_in_readme():
    missing = []
    for cmd in _commands(main):
        parts = cmd.split()
        # a row may name sub-commands after the first as `db up` / `db down`
        if (
            f"gridmgr {cmd}" not in README
            and f"`{parts[0]} {parts[-1]}`" not in README
            and not (len(parts) > 1 and f"/ `{parts[0]} {parts[1]}`" in README)
        ):
            missing.append(cmd)
    assert missing == []


def test_every_setting_in_readme():
    assert [s.name for s in SETTINGS if s.name not in README] == []


def test_quick_start_is_the_two_commands():
    quick = README.split("## Quick start", 1)[1].split("```", 2)[1]
    lines = [ln.split("#")[0].strip() for ln in quick.strip().splitlines()[1:]]
    assert lines == ["make demo", "make test"]


def test_the_layout_names_every_subpackage():
    """The README's layout names each subpackage of the core, and docs/architecture.md (or a layer's README) every module."""
    layout = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    packages = sorted(p.parent.name for p in (ROOT / "gridmgr").glob("*/__init__.py"))
    assert [p for p in packages if f"{p}/" not in layout] == []
    architecture = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = [
        p.relative_to(ROOT)
        for folder in ("gridmgr", "layers", "web")
        for p in (ROOT / folder).rglob("*.py")
        # migration revisions are named by their folder (a layer's versions/, like migrations/versions/)
        if p.name != "__init__.py" and "commands" not in p.parts and "versions" not in p.parts
    ]

    def documented(module: Path) -> bool:
        # a layer in a folder of its own may name its modules in its README.md instead
        readme = ROOT / Path(*module.parts[:2]) / "README.md"
        own = module.parts[0] == "layers" and readme.exists() and module.name in readme.read_text(encoding="utf-8")
        return own or module.name in architecture

    assert [str(m) for m in modules if not documented(m)] == []
