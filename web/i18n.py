"""The pages' language: Chinese (zh_CN) by default, English on request, with no message catalogue.

Flask-Babel holds the locale of a request. A user picks it with `?lang=en` or `?lang=zh` on any page
(the 中文 | English links of the top bar): the choice goes into a year-long cookie and the page is
reloaded without the parameter. Nothing else changes it: a browser's Accept-Language is ignored on
purpose, since the bureaus' machines often run English systems and DESIGN.md makes Chinese the default.

Words come from two places and nowhere else: domain terms from the glossary (gridmgr.glossary, through
the `label` filter), every other phrase as a Chinese/English pair written where it is used,
`t('上报', 'Report')` in templates and Python alike, so no second catalogue can drift from the code.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

from flask import Flask, has_request_context, redirect, request
from flask_babel import Babel, get_locale
from jinja2 import pass_context

from gridmgr import glossary

DEFAULT = "zh_CN"
COOKIE = "gridmgr_lang"
COOKIE_AGE = 365 * 24 * 3600
# locale → (<html lang>, the switch's own name for it)
LOCALES = {"zh_CN": ("zh-CN", "中文"), "en": ("en", "English")}
# bodies that speak the same whatever the page language (API keys and codes): `?lang=` means nothing there
NEUTRAL = ("/api/", "/open311/", "/tiles/", "/healthz")
# text written by code this layer does not own as "中文… English…": Chinese first, then English with no CJK
_CJK = "\u2e80-\u9fff\u3000-\u303f\uff00-\uffef"
_PAIR = re.compile(rf"([{_CJK}].*?)\s*([A-Za-z][^{_CJK}]*)", re.S)


def normalise(value: str | None) -> str | None:
    """The locale a `lang` value names (zh, zh-CN, zh_CN → zh_CN; en, en-GB → en), else None."""
    v = (value or "").strip().lower().replace("-", "_")
    if v == "zh" or v.startswith("zh_"):
        return "zh_CN"
    if v == "en" or v.startswith("en_"):
        return "en"
    return None


def select_locale() -> str:
    """This request's locale: `?lang=`, else the cookie, else Chinese (never the browser's Accept-Language)."""
    if not has_request_context():
        return DEFAULT
    return normalise(request.args.get("lang")) or normalise(request.cookies.get(COOKIE)) or DEFAULT


def locale() -> str:
    """The current locale key (zh_CN or en); the default outside a request."""
    found = get_locale() if has_request_context() else None
    return "en" if found is not None and found.language == "en" else DEFAULT


def is_zh() -> bool:
    """Whether the current page speaks Chinese."""
    return locale() == DEFAULT


def t(zh: str, en: str) -> str:
    """One UI phrase in the current language, written as its Chinese/English pair where it is used."""
    return zh if is_zh() else en


def name(zh: str, en: str | None) -> str:
    """A name kept in both languages where the English one may be missing (categories, layer fields)."""
    return t(zh, en or zh)


def label(key: str, scope: str | None = None) -> str:
    """The glossary label of a key in the current language (see gridmgr.glossary)."""
    return glossary.zh(key, scope) if is_zh() else glossary.en(key, scope)


def one_language(text: str | None) -> str:
    """The current language's half of a "中文… English…" text that other code wrote bilingual (else the text)."""
    found = _PAIR.fullmatch(text or "")
    if not found:
        return text or ""
    return found[1] if is_zh() else found[2]


def html_lang() -> str:
    """The <html lang> value of the current locale."""
    return LOCALES[locale()][0]


def _this_page(extra: list[tuple[str, str]]) -> str:
    """This page's URL with its query but `lang`, plus `extra`."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"] + extra
    return request.script_root + request.path + (f"?{urlencode(args)}" if args else "")


def switch_links() -> list[dict]:
    """The 中文 | English links: this page again with `?lang=` (other query values kept)."""
    return [
        {"code": code, "name": own, "lang": tag, "current": code == locale(), "url": _this_page([("lang", code)])}
        for code, (tag, own) in LOCALES.items()
    ]


def _remember_choice():
    """`?lang=` on a page: store the choice in the cookie and show the same URL without the parameter."""
    if "lang" not in request.args or request.method not in ("GET", "HEAD") or request.path.startswith(NEUTRAL):
        return None
    chosen = normalise(request.args["lang"])
    response = redirect(_this_page([]))
    if chosen:
        response.set_cookie(
            COOKIE, chosen, max_age=COOKIE_AGE, samesite="Lax", httponly=True, path=request.script_root or "/"
        )
    return response


def init_app(app: Flask) -> None:
    """Flask-Babel with our selector, the `?lang=` switch, and the template helpers."""
    Babel(app, locale_selector=select_locale, default_locale=DEFAULT, default_timezone="Asia/Shanghai")
    app.before_request(_remember_choice)
    app.jinja_env.globals.update(t=t, name=name, html_lang=html_lang, lang_links=switch_links, locale=locale)
    app.jinja_env.filters.update(label=_per_render(label), one_language=_per_render(one_language))


def _per_render(function):
    """A filter run at each rendering (Jinja folds a plain filter of a constant, `'cell'|label`, when compiling)."""

    @pass_context
    def run(_context, *args):
        return function(*args)

    return run
