"""The supervisor map and the cell page in headless Chromium: offline, tiles drawn, clicks, popups, the styling hook.

The seed is tests/test_maps.py's (`seed_map_site`: the 2 × 2 test grid, people, duty grids, four cases,
a billboard), committed in the live server's fresh database. The app's "now" is a fixed instant
(`app_now`, GRIDMGR_NOW for the pages and the tiles), never the wall clock: the tests whose answer
depends on the time of day (overdue marks, the case tiles' 30-day window) run at a working-day morning,
a working-day evening and a public holiday. `sup` answers for the west column (001 north, 003 south):
the map opens on it.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from test_maps import CELLS, CENTRE, PASSWORD, XSS, seed_map_site

from browser import (  # noqa: F401
    browser_fixture,
    live_app_fixture,
    live_server_fixture,
    login,
    page_fixture,
    screenshot,
    watch,
)

TZ = ZoneInfo("Asia/Shanghai")
OUTLINE_MINE = (15, 118, 110)  # #0f766e: the supervisor's cells
OUTLINE_CELL = (30, 58, 138)  # #1e3a8a: other cells
SELECTED = (220, 38, 38)  # #dc2626: the cell whose panel is open


def setup_live_app(app):
    """The map draws every layer from the vector tile endpoint (gridmgr.web.views.tiles): without it, say so."""
    if not any(str(rule.rule).startswith("/tiles/") for rule in app.url_map.iter_rules()):
        pytest.fail(
            "no /tiles/<layer>/<z>/<x>/<y>.pbf route: gridmgr.web.views.tiles is not registered, and the map "
            "draws its cells and layers from it",
            pytrace=False,
        )


# instants of the working calendar (data/calendar/CN-2026.csv) the clock-sensitive tests run at
INSTANTS = {
    "workday-morning": datetime(2026, 10, 13, 10, 37, tzinfo=TZ),  # a Tuesday, in working hours
    "workday-evening": datetime(2026, 10, 13, 19, 30, tzinfo=TZ),  # the same day, after hours
    "holiday": datetime(2026, 10, 2, 10, 37, tzinfo=TZ),  # 国庆节, a public holiday
}
at_every_instant = pytest.mark.parametrize("app_now", INSTANTS.values(), ids=INSTANTS.keys(), indirect=True)


@pytest.fixture
def app_now(request):
    """The app's "now" (the live app reads this fixture): a working-day morning unless parametrised."""
    return getattr(request, "param", INSTANTS["workday-morning"])


@pytest.fixture
def seeded(fresh_db, app_now):
    return seed_map_site(fresh_db[1], app_now)


def open_map(page, path="/map", user="sup"):
    login(page, user, PASSWORD)
    page.goto(path)
    page.wait_for_function("window.gridmgr && window.gridmgr.ready === true")
    settle(page)


def settle(page):
    """Wait until the tiles asked for have arrived and been drawn."""
    page.wait_for_load_state("networkidle")
    page.wait_for_function("""() => Object.values(gridmgr.map.layers).every(l => !l._map || !l._loading)""")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def point_on_page(page, lat, lon):
    """Where a lat/lon is on the page (pixels), through the map's own projection."""
    x, y = page.evaluate("ll => { var p = gridmgr.map.map.latLngToContainerPoint(ll); return [p.x, p.y]; }", [lat, lon])
    box = page.locator(".folium-map").bounding_box()
    return box["x"] + x, box["y"] + y


def click_at(page, lon, lat):
    page.mouse.click(*point_on_page(page, lat, lon))


def colours_near(shot_path, targets, tolerance=40):
    """How many pixels of the screenshot are close to each target colour."""
    with Image.open(shot_path) as img:
        counts = dict.fromkeys(targets, 0)
        for (r, g, b), n in ((c, n) for n, c in img.convert("RGB").getcolors(maxcolors=1 << 20)):
            for t in targets:
                if abs(r - t[0]) + abs(g - t[1]) + abs(b - t[2]) <= tolerance:
                    counts[t] += n
        return counts


def pixel(shot_path, x, y):
    with Image.open(shot_path) as img:
        return img.convert("RGB").getpixel((int(x), int(y)))


def drawn_cell_codes(page):
    return set(
        page.evaluate("""() => {
        var l = gridmgr.map.layers.cells, codes = [];
        Object.values(l._vectorTiles || {}).forEach(t => Object.values(t._features || {}).forEach(
            f => { if (f.layerName === 'cells') codes.push(f.feature.properties.code); }));
        return codes; }""")
    )


def test_map_loads_offline_and_draws_the_cells(page, seeded, tmp_path):
    open_map(page)
    w = watch(page)
    tiles = [u for u in w.requests if "/tiles/cells/" in u]
    assert tiles, "no cell tile was requested"
    assert any("/tiles/cases/" in u for u in w.requests)
    assert not w.failed, w.failed  # every tile (and script, and JSON call) answered below 400
    assert drawn_cell_codes(page) == CELLS
    shot = screenshot(page, tmp_path / "map.png")
    assert not shot.blank
    found = colours_near(shot.path, [OUTLINE_MINE, OUTLINE_CELL])
    assert found[OUTLINE_MINE] > 300, found  # the supervisor's two cells, outlined
    # the legend, the layer switcher, the search box
    assert page.locator("#map-legend").count() == 1
    assert page.locator(".leaflet-control-layers-overlays label").count() >= 6
    assert page.locator("#map-search-input").count() == 1
    w.assert_clean()


@at_every_instant
def test_click_on_a_cell_opens_its_panel(page, seeded, tmp_path):
    open_map(page)
    x, y = CENTRE["110101001001001"]
    click_at(page, x + 0.0003, y + 0.0003)  # off the centre, where the code label sits
    page.wait_for_selector("#map-panel:not([hidden]) .cell-code")
    assert page.inner_text("#map-panel .cell-code") == "110101001001001"
    panel = page.inner_text("#map-panel")
    assert "网格长1" in panel and "13700000001" in panel and "东华门街道办事处" in panel
    assert "网格长3" not in panel
    settle(page)
    shot = screenshot(page, tmp_path / "panel.png")
    assert colours_near(shot.path, [SELECTED])[SELECTED] > 200  # the clicked cell is outlined in red
    # another cell: the panel follows
    x, y = CENTRE["110101001001003"]
    click_at(page, x - 0.0003, y - 0.0003)
    page.wait_for_function("document.querySelector('#map-panel .cell-code').textContent === '110101001001003'")
    assert "东华门大街" not in page.inner_text("#map-panel")  # descriptions, not addresses, are listed
    assert page.locator("#map-panel .case-list li").count() == 2
    assert page.locator("#map-panel .case-list li.overdue").count() == 1
    watch(page).assert_clean()


@at_every_instant
def test_case_popup_shows_html_as_text(page, seeded, tmp_path):
    open_map(page)
    x, y = CENTRE["110101001001003"]
    page.evaluate(f"gridmgr.map.map.setView([{y}, {x}], 19)")
    settle(page)
    click_at(page, x, y)
    page.wait_for_selector(".map-popup h3")
    page.wait_for_function("document.querySelector('.map-popup').textContent.includes('问题描述')")
    popup = page.locator(".map-popup")
    text = popup.inner_text()
    assert XSS in text, text
    assert seeded["cases"]["xss"][1] in text
    assert popup.locator("script").count() == 0 and popup.locator("img").count() == 0
    assert popup.locator("b").count() == 0
    assert page.evaluate("window.__xss") is None
    assert popup.locator("a").get_attribute("href") == f"/cases/{seeded['cases']['xss'][1]}"
    assert not [u for u in watch(page).requests if u.endswith("/x")]  # the <img src=x> never loaded
    screenshot(page, tmp_path / "popup.png")
    # the overdue case beside it is a feature of its own, flagged
    click_at(page, x + 0.0003, y)
    page.wait_for_function(
        "document.querySelector('.map-popup') && document.querySelector('.map-popup').textContent.includes('超期')"
    )
    assert seeded["cases"]["overdue"][1] in page.inner_text(".map-popup")
    watch(page).assert_clean()


def test_billboard_popup_links_to_its_cell(page, seeded):
    open_map(page, user="sup2")
    x, y = CENTRE["110101001001004"]
    page.evaluate(f"gridmgr.map.map.setView([{y}, {x}], 19)")
    settle(page)
    click_at(page, x, y)
    page.wait_for_function(
        "document.querySelector('.map-popup') && document.querySelector('.map-popup').textContent.includes('AD-1')"
    )
    text = page.inner_text(".map-popup")
    assert "许可过期" in text and "<b>某</b>公司" in text
    assert page.locator(".map-popup a").get_attribute("href") == "/cells/110101001001004#layer-billboards"
    watch(page).assert_clean()


def test_search_and_my_cells(page, seeded):
    open_map(page)
    page.fill("#map-search-input", "110101001001004")
    page.press("#map-search-input", "Enter")
    page.wait_for_function(
        "document.querySelector('#map-panel .cell-code') && "
        "document.querySelector('#map-panel .cell-code').textContent === '110101001001004'"
    )
    page.fill("#map-search-input", "不存在的地方")
    page.press("#map-search-input", "Enter")
    page.wait_for_function("document.getElementById('map-search-message').textContent.includes('没有找到')")
    page.click("#map-mine")
    page.wait_for_function("document.getElementById('map-search-message').textContent.includes('我的网格：2')")
    # the cases' filter reloads their tiles with the tile endpoint's own parameters
    with page.expect_request(lambda r: "/tiles/cases/" in r.url and "overdue=true" in r.url):
        page.select_option("#map-case-filter", "overdue=true")
    settle(page)
    watch(page).assert_clean()


def test_style_cells_hook(page, seeded, tmp_path):
    open_map(page, "/map?style=/map/values/open_cases")
    page.wait_for_function("!document.getElementById('map-legend-choropleth').hidden")
    assert "未结案件" in page.inner_text("#map-legend-choropleth")
    settle(page)
    x, y = CENTRE["110101001001003"]
    shot = screenshot(page, tmp_path / "styled.png")
    r, g, b = pixel(shot.path, *point_on_page(page, y - 0.0003, x - 0.0003))
    assert r > g + 60 and r > b + 40, (r, g, b)  # 003 holds 2 open cases: the darkest class
    # the hook from script: a colour per code, then cleared
    result = page.evaluate("() => gridmgr.styleCells({values: {'110101001001001': '#00cc00'}, title: 't'})")
    assert result["cells"] == 1
    settle(page)
    x1, y1 = CENTRE["110101001001001"]
    shot = screenshot(page, tmp_path / "styled2.png")
    r, g, b = pixel(shot.path, *point_on_page(page, y1 + 0.0003, x1 - 0.0003))
    assert g > r + 60 and g > b + 60, (r, g, b)
    r, g, b = pixel(shot.path, *point_on_page(page, y - 0.0003, x - 0.0003))
    assert abs(r - g) < 20, (r, g, b)  # 003 is back to no fill
    # a community-level mapping colours its cells ("key": "prefix"); category keys through a colours object
    result = page.evaluate("""() => gridmgr.styleCells({values: {'110101001001': 'hot'}, key: 'prefix', prefix: 12,
        colors: {hot: '#0000dd'}, legend: [['hot', '热点 hot spot']], title: '热点'})""")
    assert result["cells"] == 1
    settle(page)
    assert "热点 hot spot" in page.inner_text("#map-legend-choropleth")
    shot = screenshot(page, tmp_path / "styled3.png")
    for code in ("110101001001001", "110101001001003"):
        cx, cy = CENTRE[code]
        r, g, b = pixel(shot.path, *point_on_page(page, cy - 0.0003, cx - 0.0003))
        assert b > r + 60 and b > g + 60, (code, r, g, b)
    page.evaluate("() => gridmgr.styleCells(null)")
    assert page.locator("#map-legend-choropleth").is_hidden()
    watch(page).assert_clean()


def test_cell_page_loads_offline(page, seeded, tmp_path):
    open_map(page, "/cells/110101001001003")
    page.wait_for_selector("#cell-indicators table")
    assert page.locator('#cell-indicators [data-key="reported"]').inner_text() == "2"
    assert drawn_cell_codes(page) == CELLS  # the cell among its neighbours
    shot = screenshot(page, tmp_path / "cell.png")
    assert colours_near(shot.path, [SELECTED])[SELECTED] > 200  # the cell itself, outlined in red
    assert "网格长3" in page.inner_text("#cell-people")
    # a click on a neighbour goes to its page
    x, y = CENTRE["110101001001004"]
    with page.expect_navigation():
        click_at(page, x + 0.0003, y - 0.0003)
    assert page.url.endswith("/cells/110101001001004")
    watch(page).assert_clean()
