"""docs/layers.md works: its manhole-cover layer (module + migration) is run as written.

The python blocks under "### layers/manholes.py" and "### migrations/versions/NNNN_manholes.py" are
taken from the document; the migration's upgrade() creates the table inside the test's transaction
(rolled back), the module is added as a plug-in and its hook gives the layer, which imports, assigns
and exports like a built-in. Afterwards the layer and its table leave the registry and the metadata.
"""

from __future__ import annotations

import configparser
import io
import re
import types
from datetime import date
from importlib.metadata import entry_points
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from geoalchemy2 import alembic_helpers
from sqlalchemy import UniqueConstraint, text

from gridmgr.db.models import Base
from gridmgr.errors import InputError
from gridmgr.glossary import entries, zh
from gridmgr.io.exporter import export_layer
from gridmgr.io.importer import import_file
from gridmgr.plugins import hooks, registry
from gridmgr.plugins.features import feature_table

from support import SMALL_ORIGIN, SMALL_STEP

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "layers.md"
X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP
NW, NE, SW, SE = (f"110101001001{i:03d}" for i in range(1, 5))


def block_under(heading: str, lang: str) -> str:
    """The first ```lang fenced block after a heading line of docs/layers.md (`heading` is a regex)."""
    doc = DOC.read_text(encoding="utf-8")
    m = re.search(rf"^#+ {heading}\s*$(.*?)^```{lang}\n(.*?)^```", doc, re.S | re.M)
    assert m, f"docs/layers.md has no ```{lang} block under '{heading}'"
    assert not re.search(r"^#+ ", m.group(1), re.M), f"the block after '{heading}' belongs to another heading"
    return m.group(2)


MODULE = r"layers/manholes\.py"
MIGRATION = r"migrations/versions/\d+_manholes\.py"  # numbered after the migrations of the day


def run_migration(conn, step: str) -> None:
    """Run the documented migration's upgrade() or downgrade() through Alembic on the test connection."""
    code = compile(block_under(MIGRATION, "python"), "manholes migration", "exec")
    ns: dict = {}
    with Operations.context(MigrationContext.configure(conn)):
        exec(code, ns)
        ns[step]()


@pytest.fixture
def conn(owner_conn):
    """This module's tests run the documented migration (DDL) in their transaction: as the owner."""
    return owner_conn


@pytest.fixture
def manholes(conn):
    """The documented layer: table created by its migration, module registered; both gone afterwards."""
    run_migration(conn, "upgrade")
    module = types.ModuleType("gridmgr.layers.manholes")
    module.__file__ = str(DOC)
    before = set(Base.metadata.tables)
    try:
        exec(compile(block_under(MODULE, "python"), "layers/manholes.py", "exec"), module.__dict__)
        assert registry.add_plugin(module, "manholes") == [module.LAYER]  # as its entry point would
        yield module.LAYER
    finally:
        registry.remove_plugin("manholes")
        for name in set(Base.metadata.tables) - before:
            Base.metadata.remove(Base.metadata.tables[name])


def covers_csv(tmp_path) -> Path:
    """The documented covers.csv, its points moved into the small grid's cells."""
    text_ = block_under("Try it", "csv")
    df = pd.read_csv(io.StringIO(text_), dtype=str, keep_default_na=False)
    assert len(df) == 3
    df["经度"] = [f"{X0 + 0.5 * D}", f"{X0 + 1.5 * D}", f"{X0 + 0.5 * D}"]
    df["纬度"] = [f"{Y0 + 1.5 * D}", f"{Y0 + 1.5 * D}", f"{Y0 + 0.5 * D}"]
    extra = {
        "井盖编号": "JG-0004",
        "部件类别": "C0101",
        "权属单位": "",
        "所在道路": "",
        "直径": "800",
        "安装日期": "",
        "最近巡检日期": "2026-06-30",
        "是否破损": "",
        "照片": "",
        "经度": f"{X0 + 0.02}",
        "纬度": f"{Y0 + 0.02}",
    }  # outside the grid, inside the city
    df = pd.concat([df, pd.DataFrame([extra])], ignore_index=True)
    path = tmp_path / "covers.csv"
    df.to_csv(path, index=False)
    return path


def test_documented_layer_imports_assigns_and_exports(conn, small_grid, manholes, tmp_path):
    assert registry.get("manholes") is manholes and manholes in registry.layers(spatial=True)
    res = import_file(conn, manholes, covers_csv(tmp_path))
    assert (res.rows, res.imported, res.rejected, res.out_of_grid) == (4, 4, 0, 1)
    assert res.ignored_columns == []
    rows = {
        r.cover_no: r
        for r in conn.execute(
            text("""
        SELECT f.cover_no, c.code, f.category, f.diameter_mm, f.damaged, f.photos, f.installed_on, f.out_of_grid
        FROM manholes f LEFT JOIN grid_cells c ON c.id = f.cell_id""")
        ).all()
    }
    assert {k: r.code for k, r in rows.items()} == {"JG-0001": NW, "JG-0002": NE, "JG-0003": SW, "JG-0004": None}
    assert rows["JG-0002"].category == "C0102" and rows["JG-0002"].damaged is True
    assert rows["JG-0002"].photos == ["jg2a.jpg", "jg2b.jpg"] and rows["JG-0001"].photos == []
    assert rows["JG-0001"].diameter_mm == 700 and rows["JG-0001"].installed_on == date(2015, 6, 1)
    assert rows["JG-0004"].out_of_grid is True

    # the metrics are aggregates per cell, with :today like the derived value
    per_cell = {
        m.name: dict(
            conn.execute(
                text(f"SELECT c.code, {m.sql} FROM manholes f JOIN grid_cells c ON c.id = f.cell_id GROUP BY c.code"),
                {"today": date(2026, 12, 1)},
            ).all()
        )
        for m in manholes.metrics
    }
    assert per_cell["manholes"] == {NW: 1, NE: 1, SW: 1}
    assert per_cell["damaged_manholes"] == {NW: 0, NE: 1, SW: 0}
    assert per_cell["manholes_inspection_due"] == {NW: 0, NE: 1, SW: 1}

    # export: the import template, cell codes, the derived value at the caller's today
    out = tmp_path / "covers-out.csv"
    assert export_layer(conn, manholes, "csv", out, today=date(2026, 12, 1)) == 4
    df = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("cover_no")
    assert df.loc["JG-0002", "cell_code"] == NE and df.loc["JG-0004", "cell_code"] == ""
    assert df.loc["JG-0002", "photos"] == "jg2a.jpg;jg2b.jpg" and df.loc["JG-0002", "damaged"] == "true"
    assert {k: v.lower() for k, v in df["inspection_due"].items()} == {
        "JG-0001": "false",
        "JG-0002": "true",
        "JG-0003": "true",
        "JG-0004": "false",
    }
    # the export imports again: every cover already present
    again = import_file(conn, manholes, out)
    assert (again.imported, again.existing) == (0, 4)
    # a filtered GIS export
    gpkg = tmp_path / "covers.gpkg"
    assert export_layer(conn, manholes, "gpkg", gpkg, area=("community", "110101001001")) == 3
    assert sorted(gpd.read_file(gpkg)["cover_no"]) == ["JG-0001", "JG-0002", "JG-0003"]


def test_documented_layer_refuses_other_components(conn, small_grid, manholes, tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text(
        f"cover_no,category,diameter_mm,lon,lat\nJG-9,C0104,700,{X0 + 0.5 * D},{Y0 + 0.5 * D}\n", encoding="utf-8"
    )
    with pytest.raises(InputError, match=r"row 2, field 'category': 'C0104' is not one of C0101, C0102"):
        import_file(conn, manholes, p)


def test_documented_migration_matches_the_module(conn, manholes):
    """The table the migration made is the one the module declares (as test_migrations checks for all)."""

    def only_manholes(obj, name, type_, reflected, compare_to):
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table == "manholes" and alembic_helpers.include_object(obj, name, type_, reflected, compare_to)

    ctx = MigrationContext.configure(conn, opts={"include_object": only_manholes, "compare_type": True})
    assert compare_metadata(ctx, Base.metadata) == []
    # and it goes down and up again
    run_migration(conn, "downgrade")
    assert conn.execute(text("SELECT to_regclass('manholes')")).scalar() is None
    run_migration(conn, "upgrade")
    assert conn.execute(text("SELECT to_regclass('manholes')")).scalar() == "manholes"


def test_documented_layer_leaves_no_trace():
    assert "manholes" not in Base.metadata.tables
    assert "manholes" not in [la.name for la in registry.layers()]


def test_documented_entry_points_match_setup_cfg():
    """The docs' setup.cfg block shows lines of the real group plus the one manholes line."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    real = {
        k.strip(): v.strip()
        for k, v in (
            line.split("=")
            for line in cfg["options.entry_points"][registry.ENTRY_POINT_GROUP].split("\n")
            if "=" in line
        )
    }
    installed = {ep.name: ep.value for ep in entry_points(group=registry.ENTRY_POINT_GROUP)}
    assert real == installed  # the package metadata is up to date with setup.cfg
    doc = configparser.ConfigParser()
    doc.read_string("[options.entry_points]\n" + block_under(r"setup\.cfg", "ini"))
    shown = {
        k.strip(): v.strip()
        for k, v in (
            line.split("=")
            for line in doc["options.entry_points"][registry.ENTRY_POINT_GROUP].split("\n")
            if "=" in line
        )
    }
    assert shown.pop("manholes") == "gridmgr.layers.manholes"
    assert shown and shown.items() <= real.items()


def _template_docs() -> dict[str, tuple[str, str]]:
    """Layer name → (where, text) of its template's documentation: its package's README.md, else docs/layers.md."""
    found = {}
    for _, plugin in hooks.manager().list_name_plugin():
        if not hasattr(plugin, "gridmgr_layers") or plugin.__file__ is None:
            continue
        readme = Path(plugin.__file__).parent / "README.md"
        where = readme if Path(plugin.__file__).name == "__init__.py" and readme.exists() else DOC
        for layer in plugin.gridmgr_layers():
            found[layer.name] = (where.name, where.read_text(encoding="utf-8"))
    return found


def test_templates_document_every_field_of_every_layer():
    docs = _template_docs()
    for layer in registry.layers():
        where, doc = docs[layer.name]
        section = re.search(rf"^### `{layer.name}` (.*?)(?=^##|\Z)", doc, re.S | re.M)
        assert section, f"{where} has no template section for {layer.name}"
        body = section.group(1)
        for f in layer.fields:
            assert f"`{f.name}`" in body, f"{layer.name}.{f.name} is not in its template"
            for choice in f.choices:
                assert f"`{choice}`" in body, f"{layer.name}.{f.name}: {choice} is not documented"
            for alias in f.aliases:
                assert alias in body, f"{layer.name}.{f.name}: alias {alias} is not documented"


def test_every_allowed_value_has_its_own_chinese_label():
    missing = []
    for layer in registry.layers():
        for f in layer.fields:
            for choice in f.choices:
                if choice not in entries():
                    missing.append(f"{layer.name}.{f.name}={choice}")
    assert missing == []
    # the same key in two code lists keeps two meanings: a suspended site is 停工, a suspended case 挂账
    status = registry.get("construction").field("status")
    assert zh("suspended", status.labels) == "停工" and zh("suspended") == "挂账"
    assert zh("hoarding", registry.get("billboards").field("type").labels) == "围挡广告"


@pytest.fixture
def defaults_layer(conn):
    """A layer of our own whose non-choice fields have defaults (table created in the test's transaction)."""
    from gridmgr.plugins.registry import Field, Layer

    fields = (
        Field("item_no", "text", required=True),
        Field("checked", "bool", default=False),
        Field("note", "text", default="无"),
        Field("kind", "choice", choices=("normal", "urgent"), default="normal"),
    )
    table = feature_table("test_defaults", "POINT", fields, UniqueConstraint("item_no"))
    try:
        table.create(conn)
        yield registry.register(Layer("test_defaults", "测试", "test", table, ("POINT",), fields, "item_no"))
    finally:
        registry.unregister("test_defaults")
        Base.metadata.remove(table)


def test_default_of_a_non_choice_field_is_applied(conn, small_grid, defaults_layer, tmp_path):
    p = tmp_path / "d.csv"
    p.write_text(f"item_no,checked,note,kind,lon,lat\nA1,,,,{X0 + 0.5 * D},{Y0 + 0.5 * D}\n", encoding="utf-8")
    assert import_file(conn, defaults_layer, p).imported == 1
    assert conn.execute(text("SELECT checked, note, kind FROM test_defaults")).first() == (False, "无", "normal")
