"""The planner page in headless Chromium: draw a kerb line with the mouse (Geoman), see the live estimate,
fill the form, save, and read the zone back from the API with its cells and capacity; a leader approves."""

from test_planner import KERB_120, PASSWORD, build_world

from browser import (  # noqa: F401
    browser_fixture,
    live_app_fixture,
    live_server_fixture,
    login,
    page_fixture,
    screenshot,
    watch,
)


def to_latlng(lonlat):
    return [lonlat[1], lonlat[0]]


def point_at(page, latlng):
    """Page coordinates of a lat/lon on the planner map."""
    x, y = page.evaluate("ll => { var p = window.planner.map.latLngToContainerPoint(ll); return [p.x, p.y]; }", latlng)
    box = page.locator("#planner-map").bounding_box()
    return box["x"] + x, box["y"] + y


def open_planner(page, user):
    login(page, user, PASSWORD)
    page.goto("/planner")
    page.wait_for_function("window.planner && window.planner.zonesLoaded !== null")


def api(page, path, method="GET"):
    """A JSON call from the page itself (its session cookie; writes carry the page's CSRF token)."""
    return page.evaluate(
        """([path, method]) => fetch(path, {method: method, headers: {
        'Accept': 'application/json', 'Content-Type': 'application/json',
        'X-CSRFToken': document.querySelector('meta[name=csrf-token]').content}}).then(r => r.json())""",
        [path, method],
    )


def test_draw_a_kerb_line_save_it_and_read_it_back(page, fresh_db, tmp_path):
    with fresh_db[1].begin() as c:
        build_world(c)
    open_planner(page, "planner")
    start, end = (to_latlng(p) for p in KERB_120["coordinates"])

    page.locator(".leaflet-pm-icon-polyline").click()  # Geoman's line tool
    page.mouse.click(*point_at(page, start))
    # on the way the live estimate follows the mouse: 63 m of parallel kerb is 10 stalls
    mid = [start[0] + (end[0] - start[0]) * 0.525, start[1] + (end[1] - start[1]) * 0.525]
    page.mouse.move(*point_at(page, mid), steps=5)
    page.wait_for_function(
        "document.getElementById('live-count') && document.getElementById('live-count').textContent === '10'"
    )
    page.mouse.move(*point_at(page, end), steps=5)
    page.mouse.click(*point_at(page, end))
    page.mouse.click(*point_at(page, end))  # the last vertex again: finish
    page.wait_for_function("window.planner.current && window.planner.current.layer && window.planner.checked >= 1")
    assert page.locator("#live-count").inner_text() == "20"
    assert "→ 20" in page.locator("#server-capacity").inner_text()
    assert "规则检查通过" in page.locator("#check-result").inner_text()
    assert "机动车乱停放（0505）案件" in page.locator("#evidence-cases").inner_text()
    assert page.locator("#evidence-cells tr").count() == 2

    form = page.locator("#zone-form")
    form.locator("input[name=name]").fill("东四北大街东侧")
    form.locator("input[name=street_name]").fill("东四北大街")
    form.locator("select[name=street_side]").select_option("east")
    form.locator("select[name=parking_angle]").select_option("parallel")
    form.locator("input[name=fee_rule]").fill("首小时免费")
    for day in ("mon", "tue", "wed", "thu", "fri"):
        form.locator(f"input[name=days][value={day}]").check()
    form.locator("#save-zone").click()
    page.wait_for_selector("#saved")
    zone_id = page.evaluate("window.planner.saved.id")

    zone = api(page, f"/api/v1/parking/zones/{zone_id}")
    assert (zone["name"], zone["street_side"], zone["status"], zone["capacity"]) == (
        "东四北大街东侧",
        "east",
        "draft",
        20,
    )
    assert zone["time_rules"] == [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "07:00", "to": "21:00"}]
    assert {c["code"] for c in zone["cells"]} == {"110101001001001", "110101001001003"}
    assert abs(zone["length_m"] - 120) < 0.5  # drawn by mouse: within a pixel
    assert [(e["action"], e["actor"]) for e in zone["events"]] == [("create", "人员planner")]
    # the saved zone is on the map, and the planner submits it from the page
    page.wait_for_function("window.planner.zonesLoaded === 1")
    page.locator("#zone-actions button[data-action=submit]").click()
    page.wait_for_function("document.getElementById('zone-title').textContent.indexOf('已提交') >= 0")  # submitted
    assert api(page, f"/api/v1/parking/zones/{zone_id}")["status"] == "submitted"
    shot = screenshot(page, tmp_path / "planner.png")
    assert not shot.blank and shot.colours > 10
    watch(page).assert_clean()


def test_a_leader_approves_from_the_page(page, fresh_db):
    with fresh_db[1].begin() as c:
        build_world(c)
    open_planner(page, "planner")
    created = api_post(page, {"name": "待批", "geometry": KERB_120, "parking_angle": "parallel"})
    api(page, f"/api/v1/parking/zones/{created['id']}/actions/submit", "POST")
    page.context.clear_cookies()
    open_planner(page, "leader")
    assert page.locator(".leaflet-pm-toolbar").count() == 0  # no drawing tools for leaders
    page.wait_for_function("window.planner.zonesLoaded === 1")
    page.evaluate(f"window.planner.select({created['id']})")
    page.locator("#zone-actions button[data-action=approve]").click()
    page.wait_for_function("document.getElementById('zone-title').textContent.indexOf('已批准') >= 0")
    zone = api(page, f"/api/v1/parking/zones/{created['id']}")
    assert zone["status"] == "approved" and zone["events"][-1]["actor"] == "人员leader"
    watch(page).assert_clean()


def api_post(page, body):
    return page.evaluate(
        """body => fetch('/api/v1/parking/zones', {method: 'POST', body: JSON.stringify(body),
        headers: {'Accept': 'application/json', 'Content-Type': 'application/json',
                  'X-CSRFToken': document.querySelector('meta[name=csrf-token]').content}}).then(r => r.json())""",
        body,
    )
