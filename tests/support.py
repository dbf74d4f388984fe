"""Helpers shared by the tests (importable: tests/ is on pytest's pythonpath)."""

import math
import re
from datetime import date

from sqlalchemy import text

# A 2 × 2 grid of 0.001° squares at (116.400, 39.900) in one community, for assignment tests.
SMALL_ORIGIN = (116.400, 39.900)
SMALL_STEP = 0.001
DEMO_ANCHOR = date(2026, 11, 22)  # the "today" of the tests' shared demo (conftest.test_demo)


def insert_small_grid(c, valid_from: str = "-infinity") -> dict[str, int]:
    """Insert district 110101 → street 110101001 → community 110101001001 and 4 cells; code → id."""
    x0, y0, d = *SMALL_ORIGIN, SMALL_STEP
    box = f"ST_Multi(ST_MakeEnvelope({x0}, {y0}, {x0 + 2 * d}, {y0 + 2 * d}, 4326))"
    ids = {}
    parent = None
    for level, code in (("district", "110101"), ("street", "110101001"), ("community", "110101001001")):
        parent = c.execute(
            text(f"""
            INSERT INTO regions (level, code, name, parent_id, geom, area_m2)
            VALUES (:l, :c, :n, :p, {box}, ST_Area({box}::geography)) RETURNING id
        """),
            {"l": level, "c": code, "n": f"test {level}", "p": parent},
        ).scalar()
    # numbered west→east, north→south: 001 NW, 002 NE, 003 SW, 004 SE
    for seq, (i, j) in enumerate([(0, 1), (1, 1), (0, 0), (1, 0)], start=1):
        code = f"110101001001{seq:03d}"
        env = f"ST_Multi(ST_MakeEnvelope({x0 + i * d}, {y0 + j * d}, {x0 + (i + 1) * d}, {y0 + (j + 1) * d}, 4326))"
        ids[code] = c.execute(
            text(f"""
            INSERT INTO grid_cells (code, community_id, geom, area_m2, valid_from, source)
            VALUES (:code, :cm, {env}, ST_Area({env}::geography), CAST(:vf AS timestamptz), 'generated')
            RETURNING id
        """),
            {"code": code, "cm": parent, "vf": valid_from},
        ).scalar()
    return ids


def tile_at(layer: str, lon: float, lat: float, z: int) -> str:
    """The path of a layer's tile holding a point at zoom z."""
    n = 2**z
    y = (1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * n
    return f"/tiles/{layer}/{z}/{int((lon + 180) / 360 * n)}/{int(y)}.pbf"


def tile_path(z: int) -> str:
    """The cells tile over the middle of the small test grid at zoom z."""
    return tile_at("cells", SMALL_ORIGIN[0] + SMALL_STEP, SMALL_ORIGIN[1] + SMALL_STEP, z)


CSRF = re.compile(r'name="csrf[-_]token" (?:value|content)="([^"]+)"')


def csrf(html: str) -> str:
    """The CSRF token a page carries (its forms' field or its <meta name="csrf-token">)."""
    return CSRF.search(html).group(1)


def login_client(app, username: str, password: str):
    """A Flask test client logged in through the real login form (CSRF token and all)."""
    client = app.test_client()
    r = client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": csrf(client.get("/login").get_data(as_text=True)),
        },
    )
    assert r.status_code == 302, r.get_data(as_text=True)
    return client


def page_csrf(client, path: str = "/overview") -> str:
    """The CSRF token of a logged-in client's pages, for its JSON writes."""
    return csrf(client.get(path).get_data(as_text=True))


def record_status(c, case_id: int, status: str) -> None:
    """Write the event a test's direct status change needs (a case's status changes only with its event)."""
    c.execute(
        text("""INSERT INTO case_events (case_id, at, action, from_state, to_state, actor, role)
                SELECT id, now(), 'test_setup', status, :s, 'test', 'system' FROM cases WHERE id = :c"""),
        {"s": status, "c": case_id},
    )
