"""The pages' language: Chinese by default, English on request, remembered; one glossary, phrases as pairs.

The phrases a test looks for are read from the code itself (every `t('中文', 'English')` pair of the
templates and web modules, and the glossary), so a phrase added later is checked without a new test.
"""

import re
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from werkzeug.security import generate_password_hash

from gridmgr.cases import dispatch
from gridmgr.cases.intake import NewCase, report
from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.cases.workflow import actor_for
from gridmgr.glossary import entries
from gridmgr.web import create_app, i18n

from support import SMALL_ORIGIN, SMALL_STEP, insert_small_grid, login_client

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 10, 13, 9, 0, tzinfo=TZ)
PASSWORD = "secret-pass"
WEB = Path(__file__).resolve().parents[1] / "web"
LAYERS = WEB.parent / "layers"
# people, units, regions and the case's text: data, shown as they were entered whatever the language
DATA = (
    "张监督",
    "赵派遣",
    "钱值班",
    "东华门街道办事处",
    "东城区环卫所",
    "人行道上有暴露垃圾",
    "东华门大街1号",
    "test district",
    "test street",
    "test community",
)
CJK = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef]")


def _pairs() -> list[tuple[str, str]]:
    """Every (中文, English) phrase pair written in the templates and the web modules, and the glossary's.

    In templates the pairs are `t('中文', 'English')` calls; in Python also the pairs kept in tables
    (menus, tabs, actions): two adjacent string literals, the first with Chinese, the second without.
    """
    quoted = r"""f?(['"])((?:(?!\1).)*)\1"""
    call = re.compile(rf"\bt\(\s*{quoted}\s*,\s*{quoted}\s*\)")
    adjacent = re.compile(
        r'f?"([^"\n]*[\u4e00-\u9fff][^"\n]*)",\s*'
        r'f?"([^"\n\u4e00-\u9fff]*[A-Za-z][^"\n\u4e00-\u9fff]*)"'
    )
    found = []
    for root in (WEB, LAYERS):  # the layers bring pages and menu entries of their own
        for path in root.glob("**/templates/**/*.html"):
            found += [(m[2], m[4]) for m in call.finditer(path.read_text(encoding="utf-8"))]
        for path in root.glob("**/*.py"):
            found += [(m[1], m[2]) for m in adjacent.finditer(path.read_text(encoding="utf-8"))]
    return found + list(entries().values())


def _fragments(phrase: str) -> list[str]:
    """The fixed parts of a phrase (between {placeholders}, %d and %s), stripped."""
    return [p.strip(" :：,，.。;；()（）·—-") for p in re.split(r"\{[^}]*\}|%[ds]", phrase)]


PAIRS = _pairs()
# English words a Chinese page must not show (4+ letters, not the same in both languages)
ENGLISH = sorted(
    {f for zh, en in PAIRS if zh != en for f in _fragments(en) if re.search(r"[A-Za-z]{4}", f) and f not in zh},
    key=len,
    reverse=True,
)


class _Visible(HTMLParser):
    """The text a reader sees: text nodes outside scripts and styles, and the attributes shown as text."""

    SHOWN = ("title", "placeholder", "aria-label", "alt", "label")

    def __init__(self):
        super().__init__()
        self.parts, self._skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        a = dict(attrs)
        self.parts += [a[k] for k in self.SHOWN if a.get(k)]
        if tag == "input" and a.get("type") in ("submit", "button", "text") and a.get("value"):
            self.parts.append(a["value"])

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.parts.append(data.strip())


def visible(html: str, data: tuple[str, ...] = DATA) -> str:
    """The page's text without its data and without the language links (each names its own language)."""
    parser = _Visible()
    parser.feed(re.sub(r'<span class="lang-switch".*?</span>', "", html, flags=re.S))
    shown = "\n".join(parser.parts)
    for d in sorted(data, key=len, reverse=True):
        shown = shown.replace(d, "")
    return shown


def english_in(html: str) -> list[str]:
    """The English phrases a Chinese page shows: none."""
    shown = visible(html)
    return [w for w in ENGLISH if re.search(rf"(?<![A-Za-z]){re.escape(w)}(?![A-Za-z])", shown)]


def chinese_in(html: str, data: tuple[str, ...] = DATA) -> list[str]:
    """The lines still holding Chinese once the data is taken out: none on an English page."""
    return [line for line in visible(html, data).splitlines() if CJK.search(line)]


@pytest.fixture
def site(fresh_db, tmp_path):
    """A 2 × 2 grid, its units and rules, a supervisor, a dispatcher and a shift leader, one reported case."""
    url, eng = fresh_db
    with eng.begin() as c:
        cells = insert_small_grid(c)
        units = {
            code: c.execute(
                text("INSERT INTO units (code, name, kind) VALUES (:c, :n, :k) RETURNING id"),
                {"c": code, "n": name, "k": kind},
            ).scalar()
            for code, name, kind in (
                ("JD01", "东华门街道办事处", "street_office"),
                ("HW01", "东城区环卫所", "sanitation"),
            )
        }
        for cell in cells.values():
            for duty, unit in (("territorial", "JD01"), ("sanitation", "HW01")):
                c.execute(text("INSERT INTO cell_units VALUES (:c, :d, :u)"), {"c": cell, "d": duty, "u": units[unit]})
        users = {}
        for i, (username, name, role) in enumerate(
            (("sup", "张监督", "supervisor"), ("dsp", "赵派遣", "dispatcher"), ("lead", "钱值班", "shift_leader"))
        ):
            person = c.execute(
                text("INSERT INTO people (code, name, role) VALUES (:c, :n, :r) RETURNING id"),
                {"c": f"P{i}", "n": name, "r": "supervisor" if role == "supervisor" else "staff"},
            ).scalar()
            users[username] = c.execute(
                text(
                    "INSERT INTO users (username, person_id, role, password_hash) VALUES (:u, :p, :r, :h) RETURNING id"
                ),
                {"u": username, "p": person, "r": role, "h": generate_password_hash(PASSWORD)},
            ).scalar()
            if role == "supervisor":
                grid = c.execute(
                    text("INSERT INTO duty_grids (code, name, supervisor_id) VALUES ('DG1', 'DG1', :p) RETURNING id"),
                    {"p": person},
                ).scalar()
                for cell in cells.values():
                    c.execute(text("INSERT INTO duty_grid_cells VALUES (:g, :c)"), {"g": grid, "c": cell})
        dispatch.load(c)
        x, y = SMALL_ORIGIN[0] + 0.5 * SMALL_STEP, SMALL_ORIGIN[1] + 0.5 * SMALL_STEP
        case_id = report(
            c,
            actor_for(c, users["sup"]),
            NewCase("0102", x, y, "supervisor", "人行道上有暴露垃圾", "东华门大街1号"),
            now=NOW,
            calendar=WorkCalendar.load(),
        )
        case_no = c.execute(text("SELECT case_no FROM cases WHERE id = :i"), {"i": case_id}).scalar()
        categories = tuple(c.execute(text("SELECT DISTINCT major_name FROM categories")).scalars())
    app = create_app({"GRIDMGR_DATABASE_URL": url, "GRIDMGR_VAR": str(tmp_path / "var")})
    app.config["GRIDMGR_NOW"] = NOW
    return {"app": app, "case_no": case_no, "categories": categories}


def login(site, username):
    return login_client(site["app"], username, PASSWORD)


def page(client, path):
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code)
    return r.get_data(as_text=True)


def switch(client, lang, path="/cases"):
    """Follow the page's own language link, as a browser without scripts would."""
    html = page(client, path)
    href = re.search(rf'<a href="([^"]+)" lang="[^"]+" hreflang="[^"]+" rel="alternate">{lang}</a>', html)[1]
    r = client.get(href.replace("&amp;", "&"))
    assert r.status_code == 302
    return r


def test_the_phrase_lists_are_read_from_the_code():
    assert ("上报案件", "Report a case") in PAIRS and ("派遣至", "Dispatch to") in PAIRS
    assert ("派遣台", "Dispatch desk") in PAIRS and ("没有这个页面。", "There is no such page.") in PAIRS
    assert "Report a case" in ENGLISH and "Dispatch to" in ENGLISH and "reported" in ENGLISH


def test_chinese_is_the_default_whatever_the_browser_asks(site):
    sup = login(site, "sup")
    for path in ("/cases?tab=all", "/cases/new", f"/cases/{site['case_no']}", "/login"):
        r = sup.get(path, headers={"Accept-Language": "en-US,en;q=0.9"})
        html = r.get_data(as_text=True)
        assert '<html lang="zh-CN">' in html, path
        assert english_in(html) == [], path
    html = page(sup, "/cases/new")
    assert "上报案件" in html and "问题描述" in html and "预览" in html
    assert "Report a case" not in html and "Description" not in html


def test_english_pages_say_nothing_in_chinese_but_data(site):
    data = DATA + site["categories"]  # a category class has no English name (data/categories.csv)
    for user, paths in (
        ("sup", ("/cases/new", "/cases?tab=all", f"/cases/{site['case_no']}", "/overview")),
        ("dsp", ("/cases?tab=all",)),
        ("lead", ("/cases?tab=register", f"/cases/{site['case_no']}")),
    ):
        client = login(site, user)
        switch(client, "English")
        for path in paths:
            html = page(client, path)
            assert '<html lang="en">' in html, path
            assert chinese_in(html, data) == [], (user, path)
    assert '<html lang="zh-CN">' in page(login(site, "lead"), "/cases")  # another browser has not chosen


def test_the_choice_is_remembered_across_requests_and_logins(site):
    client = login(site, "sup")
    r = switch(client, "English", "/cases?tab=all&status=reported")
    assert r.headers["Location"] == "/cases?tab=all&status=reported"  # the same page, the choice taken out
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(f"{i18n.COOKIE}=en;") and "Max-Age=31536000" in cookie and "HttpOnly" in cookie
    assert "Report a case" in page(client, "/cases/new") and "Cases" in page(client, "/cases")
    client.post(
        "/logout", data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', page(client, "/cases"))[1]}
    )
    html = page(client, "/login")
    assert '<html lang="en">' in html and "Username" in html and "Logged out." in html and "已退出" not in html
    switch(client, "中文", "/login")
    assert "用户名" in page(client, "/login")


def test_the_switch_is_two_plain_links_and_the_current_language_is_no_link(site):
    client = login(site, "sup")
    bar = page(client, "/cases?tab=all").split('<span class="lang-switch"', 1)[1].split("</span>", 1)[0]
    assert '<b lang="zh-CN" aria-current="true">中文</b>' in bar
    assert 'href="/cases?tab=all&amp;lang=en"' in bar and "<script" not in bar and "onclick" not in bar
    assert client.get("/cases?lang=nonsense").status_code == 302  # an unknown value changes nothing
    assert '<html lang="zh-CN">' in page(client, "/cases")


def test_glossary_labels_and_flashes_follow_the_language(site):
    lead = login(site, "lead")
    zh = page(lead, f"/cases/{site['case_no']}")
    assert '<span class="badge">上报</span>' in zh and "监督员上报" in zh
    switch(lead, "English")
    en = page(lead, f"/cases/{site['case_no']}")
    assert '<span class="badge">reported</span>' in en and "supervisor&#39;s report" in en
    token = re.search(r'name="csrf_token" value="([^"]+)"', en)[1]
    lead.post(f"/cases/{site['case_no']}/actions/register", data={"csrf_token": token})
    flash = re.search(r'<p class="flash">(.*?)</p>', page(lead, f"/cases/{site['case_no']}"), re.S)[1]
    assert flash == f"Case {site['case_no']}: register, reported → registered."
    with site["app"].test_request_context("/", headers={"Cookie": f"{i18n.COOKIE}=en"}):
        assert i18n.label("closed") == "closed" and i18n.t("上报", "Report") == "Report"
    with site["app"].test_request_context("/"):
        assert i18n.label("closed") == "结案" and i18n.label("suspended", "site_status") == "停工"


def test_errors_speak_the_page_language(site):
    client = login(site, "sup")
    r = client.get("/nowhere")
    assert r.status_code == 404 and "没有这个页面" in r.get_data(as_text=True)
    switch(client, "English")
    body = client.get("/nowhere").get_data(as_text=True)
    assert "There is no such page." in body and "Home" in body and chinese_in(body) == []
    api = client.get("/api/v1/cases/999999")  # API bodies keep their one language-neutral form
    assert api.status_code == 404 and api.is_json


def test_one_language_takes_a_half_of_bilingual_text_from_elsewhere(site):
    with site["app"].test_request_context("/"):
        assert i18n.one_language("用户名或密码错误。Wrong username or password.") == "用户名或密码错误。"
        assert i18n.one_language("东城区环卫所") == "东城区环卫所"
        mixed = "R1 is reported (上报): a supervisor verifies it on site (核实) first"
        assert i18n.one_language(mixed) == mixed  # not a "中文 English" pair: as it is
    with site["app"].test_request_context("/?lang=en"):
        assert i18n.one_language("请先登录 Please log in.") == "Please log in."
        assert (
            i18n.one_language("此页面仅限 supervisor。This page is for supervisor.") == "This page is for supervisor."
        )


def test_the_map_scripts_get_their_words_in_the_page_language(site):
    client = login(site, "sup")
    config = re.search(r'id="map-config">(.*?)</script>', page(client, "/map"), re.S)[1]
    assert '"legend": "图例"' in config and '"search": "搜索"' in config
    switch(client, "English", "/map")
    config = re.search(r'id="map-config">(.*?)</script>', page(client, "/map"), re.S)[1]
    assert (
        '"legend": "Legend"' in config
        and '"search": "Search"' in config
        and not CJK.search(re.search(r'"text": (\{.*?\})', config, re.S)[1])
    )
