"""A plug-in from another distribution (tests/plugin_dist) is pip-installed and found through the hooks.

The distribution is built and installed into a folder of the test's own (pip --target), that folder is
put on sys.path, and the plug-in manager is rebuilt, so the entry point is found exactly as an installed
one is. Its layer then takes its migration branch, an import, the layer list, an export, the reports, and
the map's tiles, popups and values.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from gridmgr.analytics.accountability import Period, compute
from gridmgr.db.models import Base
from gridmgr.people import accounts
from gridmgr.plugins import hooks, registry
from gridmgr.web import create_app

from support import SMALL_ORIGIN, SMALL_STEP, insert_small_grid, tile_at

DIST = Path(__file__).resolve().parent / "plugin_dist"


def _reload_plugins() -> None:
    """Forget the plug-in manager and the registry's load, so the next use reads the entry points again."""
    hooks._manager = None
    registry._loaded = False


@pytest.fixture
def hydrants(tmp_path):
    """The outside distribution, installed where only this test's sys.path sees it."""
    source, target = tmp_path / "src", tmp_path / "site"
    shutil.copytree(DIST, source)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(target))
    _reload_plugins()
    try:
        yield registry.get("hydrants")
    finally:
        sys.path.remove(str(target))
        registry.unregister("hydrants")
        Base.metadata.remove(Base.metadata.tables["hydrants"])
        for name in [m for m in sys.modules if m.startswith("gridmgr_hydrants")]:
            del sys.modules[name]
        _reload_plugins()


def test_an_installed_distribution_is_a_layer_end_to_end(hydrants, cli, fresh_db, tmp_path):
    _, eng = fresh_db
    assert "h001" in (cli("db", "migrate").output)  # its branch, found through gridmgr_migrations
    with eng.begin() as conn:
        insert_small_grid(conn)
    x, y = SMALL_ORIGIN[0] + SMALL_STEP / 2, SMALL_ORIGIN[1] + SMALL_STEP / 2
    csv = tmp_path / "hydrants.csv"
    csv.write_text(f"hydrant_no,status,lon,lat\nXH-1,损坏,{x},{y}\nXH-2,working,{x},{y}\n", encoding="utf-8")
    imported = cli("layer", "import", "hydrants", csv).output
    assert "hydrants" in imported and "2" in imported
    listed = cli("layer", "list").output
    assert "消火栓 fire hydrants: 2 (POINT" in listed
    out = tmp_path / "out.geojson"
    cli("layer", "export", "hydrants", "-f", "geojson", "-o", out)
    assert "XH-1" in out.read_text(encoding="utf-8") and "XH-2" in out.read_text(encoding="utf-8")
    with eng.connect() as conn:
        broken = conn.execute(text("SELECT count(*) FROM hydrants WHERE status = 'broken' AND cell_id IS NOT NULL"))
        assert broken.scalar() == 1  # 损坏 read through its code list's label, assigned to its cell
    with eng.begin() as conn:
        conn.execute(text("INSERT INTO people (code, name, role) VALUES ('P1', '张三', 'staff')"))
        accounts.add_user(conn, "leader", "P1", "leader", "secret-pass")
        token = accounts.new_token(conn, "leader")
        hydrant = conn.execute(text("SELECT id, cell_id FROM hydrants WHERE hydrant_no = 'XH-1'")).one()
        ids = conn.execute(text("SELECT id FROM hydrants")).scalars().all()
        cell_code = conn.execute(text("SELECT code FROM grid_cells WHERE id = :c"), {"c": hydrant.cell_id}).scalar()
        # in the reports: its metric per cell, beside the core's figures
        rep = compute(conn, period=Period.parse("2026-10"), level="cell", today=date(2026, 11, 1))
    assert "broken_hydrants" in {d.key for d in rep.definitions}
    assert sum(r["broken_hydrants"] or 0 for r in rep.rows) == 1
    # on the map and in its JSON: the layer's tiles, a feature's popup, the metric's values per cell
    client = create_app({"GRIDMGR_DATABASE_URL": fresh_db[0], "GRIDMGR_SECRET_KEY": "test-secret"}).test_client()
    auth = {"Authorization": f"Bearer {token}"}
    assert "消火栓" in client.get("/map", headers=auth).get_data(as_text=True)
    tile = client.get(tile_at("hydrants", x, y, 16), headers=auth)
    assert tile.status_code == 200
    drawn = {f["properties"]["id"] for f in mapbox_vector_tile.decode(tile.data)["hydrants"]["features"]}
    assert drawn == set(ids)
    popup = client.get(f"/map/features/hydrants/{hydrant.id}", headers=auth).get_json()
    assert popup["layer"] == "hydrants" and popup["cell"] == cell_code
    values = client.get("/map/values/broken_hydrants", headers=auth).get_json()["values"]
    assert list(values.values()) == [1]
