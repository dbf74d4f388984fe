"""Packaging: the metadata is in setup.cfg; this finds the packages, so a new layer folder needs no listing.

Four folders are installed as one namespace (gridmgr/ → gridmgr, layers/ → gridmgr.layers, web/ →
gridmgr.web, migrations/ → gridmgr.migrations). Every folder below them holding code or page files is
a package, and its templates, scripts, styles and documents are installed with it.
"""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
FOLDERS = {"gridmgr": "gridmgr", "layers": "gridmgr.layers", "web": "gridmgr.web", "migrations": "gridmgr.migrations"}
DATA = ("*.html", "*.js", "*.css", "*.json", "*.mako", "*.csv", "*.geojson")


def _packages() -> dict[str, list[str]]:
    """Package name → its data patterns, for every folder with Python or data files."""
    found: dict[str, list[str]] = {}
    for folder, name in FOLDERS.items():
        for path in sorted([ROOT / folder, *(ROOT / folder).rglob("*")]):
            if not path.is_dir() or "__pycache__" in path.parts or path.name.startswith("."):
                continue
            patterns = [p for p in DATA if any(path.glob(p))]
            if patterns or any(path.glob("*.py")):
                found[".".join([name, *path.relative_to(ROOT / folder).parts])] = patterns
    return found


PACKAGES = _packages()
setup(
    package_dir={name: folder for folder, name in FOLDERS.items()},
    packages=list(PACKAGES),
    package_data={name: patterns for name, patterns in PACKAGES.items() if patterns},
)
