"""Open311 GeoReport v2 under /open311/v2: public service list and requests, reports by API key.

Resources (each as .json or .xml): discovery, services, services/<code>, requests (GET, and POST with
an `api_key` from `gridmgr apikey add NAME`), requests/<service_request_id>. A POST creates a
`reported` case with source `public` through gridmgr.cases.intake.report (lat/long required; the
reporter's name, email, phone and device are not asked for and not stored). GET requests takes
service_request_id, service_code, start_date, end_date, status and the page/page_size extension
(total in the X-Total-Count header). Errors are the spec's list of {code, description}: 400 bad
input, 403 missing or invalid api_key, 404 unknown resource.

Mapping: service_code = category code; service_request_id = case number; closed and rejected cases
are `closed`, every other state `open`, with the state in status_notes as "中文标签 (key)";
agency_responsible = the unit the case is dispatched to; expected_datetime = the current deadline.
The public sees only the fields below (`public_request`); no actor, note, photo path or account.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from gridmgr.cases import filters, queries
from gridmgr.cases.intake import MAX_DESCRIPTION, NewCase, report
from gridmgr.cases.workflow import PUBLIC_SOURCES, TERMINAL, Actor, public_reader
from gridmgr.codes import CASE_SOURCES, CASE_STATES
from gridmgr.errors import DatabaseUnavailable, Forbidden, GridmgrError, InputError, NotFound
from gridmgr.glossary import zh
from gridmgr.people import accounts
from gridmgr.web import errors
from gridmgr.web.database import engine
from gridmgr.web.errors import DB_DOWN, both
from gridmgr.web.views.api import calendar, request_now

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

SPEC = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-24T00:00:00+08:00"  # when this endpoint's behaviour last changed
CONTACT = "城市管理和综合执法局 数字城管指挥中心 (the bureau's command centre)"
KEY_SERVICE = "API 密钥由管理员发放：gridmgr apikey add NAME. Keys are issued by the administrator."
MIME = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
FMT = "<any(json, xml):fmt>"
OPEN_STATES = tuple(s for s in CASE_STATES if s not in TERMINAL)
MAX_SPAN = timedelta(days=90)  # the spec's longest start_date…end_date window (and the default one)
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 500
MAX_ADDRESS, MAX_URL = 300, 1000
# a description is shown to the public only for these sources: hotline transcripts and leaders'
# instructions may name or quote the people who called or assigned them, and a rule's names the
# inspector whose record raised it (巡查人 …)
PUBLIC_TEXT_SOURCES = ("public", "supervisor", "video")


def _public() -> Actor:
    """The reader behind every public GET: no role that acts, and only the sources GRIDMGR_PUBLIC_SOURCES lets out."""
    raw = current_app.config["GRIDMGR"].get("GRIDMGR_PUBLIC_SOURCES") or ",".join(PUBLIC_SOURCES)
    sources = tuple(s.strip() for s in raw.split(",") if s.strip())
    unknown = [s for s in sources if s not in CASE_SOURCES]
    if unknown:  # a setting's mistake, not the client's: the operator reads the log
        raise RuntimeError(f"GRIDMGR_PUBLIC_SOURCES names unknown sources: {', '.join(unknown)}")
    return public_reader(sources)


# the XML element of each item of a list (JSON arrays follow the Spark convention)
ITEM = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML 1.0


# ---------------------------------------------------------------- responses


def _fill(el: ET.Element, value) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _fill(ET.SubElement(el, k), v)
    elif isinstance(value, list):
        for v in value:
            _fill(ET.SubElement(el, ITEM[el.tag]), v)
    elif isinstance(value, bool):
        el.text = "true" if value else "false"
    elif value is not None:
        el.text = _XML_BAD.sub("", str(value))


def _xml(root: str, data) -> bytes:
    el = ET.Element(root)
    _fill(el, data)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(el, encoding="unicode").encode("utf-8")


def respond(fmt: str, root: str, data, status: int = 200, headers: dict | None = None) -> Response:
    """`data` as JSON or as XML under `root`; user text is escaped either way."""
    data = queries.jsonable(data)
    body = queries.to_json(data) if fmt == "json" else _xml(root, data)
    resp = current_app.response_class(body, status=status, content_type=MIME[fmt])
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Access-Control-Allow-Origin"] = "*"  # public data, read by third-party apps
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _fmt() -> str:
    fmt = (request.view_args or {}).get("fmt")
    if fmt in MIME:
        return fmt
    return "xml" if request.path.endswith(".xml") else "json"


def _error(status: int, description: str) -> Response:
    return respond(_fmt(), "errors", [{"code": status, "description": description}], status)


errors.own_format(bp.url_prefix + "/", _error)  # an unknown method is refused before the blueprint sees it


@bp.errorhandler(GridmgrError)
def _gridmgr_error(exc: GridmgrError):
    if isinstance(exc, DatabaseUnavailable):
        current_app.logger.warning("database unavailable: %s", exc)
        return _error(503, both(DB_DOWN))
    # the spec's codes: 404 unknown resource, 403 api_key, 400 for every other refusal
    status = exc.status if exc.status in (403, 404) else 400
    return _error(status, exc.message)


@bp.errorhandler(OperationalError)
def _db_error(exc: OperationalError):
    current_app.logger.warning("database error: %s", exc)
    return _error(503, both(DB_DOWN))


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return errors.http_error(exc)


@bp.errorhandler(Exception)
def _internal(exc: Exception):
    current_app.logger.exception("unhandled error on %s", request.path)
    return _error(500, "内部错误，已记录。An internal error occurred and has been logged.")


def _w3(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment is not None else None


# ---------------------------------------------------------------- discovery and services


@bp.get(f"/discovery.{FMT}")
def discovery(fmt: str):
    """Service discovery: where this GeoReport v2 endpoint is and which formats it speaks."""
    root = request.url_root.rstrip("/") + bp.url_prefix
    return respond(
        fmt,
        "discovery",
        {
            "changeset": CHANGESET,
            "contact": CONTACT,
            "key_service": KEY_SERVICE,
            "endpoints": [
                {
                    "specification": SPEC,
                    "url": root,
                    "changeset": CHANGESET,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        },
    )


def _service(c: queries.CategoryInfo) -> dict:
    keywords = [k for k in (c.name_en, c.major_name, zh(c.kind)) if k]
    return {
        "service_code": c.code,
        "service_name": c.name,
        "description": c.register_condition or c.name,
        "metadata": False,
        "type": "realtime",
        "keywords": ", ".join(keywords),
        "group": c.major_name,
    }


@bp.get(f"/services.{FMT}")
def services(fmt: str):
    """The service list: one service per case category."""
    with engine().connect() as conn:
        return respond(fmt, "services", [_service(c) for c in queries.categories(conn)])


@bp.get(f"/services/<code>.{FMT}")
def service_definition(code: str, fmt: str):
    """A service definition (no extra attributes: every category needs only the common fields)."""
    with engine().connect() as conn:
        c = queries.category(conn, code)
    return respond(fmt, "service_definition", {"service_code": c.code, "attributes": []})


# ---------------------------------------------------------------- requests


def public_request(case: dict) -> dict:
    """A case as the public sees it: only these non-personal fields."""
    status, source = case["status"], case["source"]
    media = None
    if source == "public" and case["photos"] and case["photos"][0].startswith(("http://", "https://")):
        media = case["photos"][0]  # what the reporter posted as media_url
    return {
        "service_request_id": case["case_no"],
        "status": "closed" if status in TERMINAL else "open",
        "status_notes": f"{zh(status)} ({status})",
        "service_name": case["category"]["name"],
        "service_code": case["category"]["code"],
        "description": case["description"] if source in PUBLIC_TEXT_SOURCES else None,
        "agency_responsible": case["unit"]["name"] if case["unit"] else None,
        "service_notice": None,
        "requested_datetime": _w3(case["reported_at"]),
        "updated_datetime": _w3(case["updated_at"] or case["reported_at"]),
        "expected_datetime": _w3(case["deadline"]),
        "address": case["address"],
        "lat": case["lat"],
        "long": case["lon"],
        "media_url": media,
    }


def _list(name: str) -> tuple[str, ...]:
    return filters.split_values(request.args, name)


def _window(now: datetime) -> tuple[datetime, datetime]:
    start = request.args.get("start_date", "").strip()
    end = request.args.get("end_date", "").strip()
    start_at = filters.parse_datetime(start, "start_date") if start else None
    end_at = filters.parse_datetime(end, "end_date") if end else None
    if start_at is None and end_at is None:
        end_at = now
    if start_at is None:
        start_at = end_at - MAX_SPAN
    if end_at is None:
        end_at = start_at + MAX_SPAN
    if end_at < start_at:
        raise InputError("end_date is before start_date", field="end_date")
    if end_at - start_at > MAX_SPAN:
        raise InputError("start_date…end_date may not span more than 90 days", field="end_date")
    return start_at, end_at + timedelta(microseconds=1)  # end_date is inclusive


@bp.get(f"/requests.{FMT}")
def requests_list(fmt: str):
    """Service requests, newest first: by id list, or by service, status and date window; paged."""
    ids = _list("service_request_id")
    page, size = filters.parse_page(request.args, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    if ids:  # "this overrides all other arguments"
        flt = filters.CaseFilter(case_nos=ids)
    else:
        statuses = _list("status")
        bad = [s for s in statuses if s not in ("open", "closed")]
        if bad:
            raise InputError(f"{', '.join(bad)}: status is open or closed", field="status")
        states = ()
        if set(statuses) == {"open"}:
            states = OPEN_STATES
        elif set(statuses) == {"closed"}:
            states = TERMINAL
        flt = filters.CaseFilter(statuses=states, categories=_list("service_code"), period=_window(request_now()))
    with engine().connect() as conn:
        result = queries.list_cases(
            conn, _public(), flt, now=request_now(), calendar=calendar(), page=page, page_size=size
        )
    return respond(
        fmt,
        "service_requests",
        [public_request(c) for c in result.items],
        headers={"X-Total-Count": str(result.total), "X-Page": str(result.page), "X-Page-Size": str(result.page_size)},
    )


@bp.get(f"/requests/<request_id>.{FMT}")
def request_one(request_id: str, fmt: str):
    """One service request by its id (the case number)."""
    with engine().connect() as conn:
        result = queries.list_cases(
            conn,
            _public(),
            filters.CaseFilter(case_nos=(request_id,)),
            now=request_now(),
            calendar=calendar(),
            page_size=1,
        )
    if not result.items:
        raise NotFound(f"no service request {request_id}")
    return respond(fmt, "service_requests", [public_request(result.items[0])])


def _client(conn) -> str:
    """The name of the client whose api_key this is; 403 when missing, unknown or revoked."""
    key = (request.form.get("api_key") or "").strip()  # in the body only: a key in a URL ends up in logs
    if not key:
        raise Forbidden("缺少 api_key。Missing api_key.")
    if not accounts.api_key_valid(conn, key):
        raise Forbidden("api_key 无效或已撤销。Invalid or revoked api_key.")
    # the client's name goes into the audit row (who reported)
    return accounts.api_key_name(conn, key) or "?"


def _coordinate(name: str, low: float, high: float) -> float:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        raise InputError("is required (this endpoint needs lat and long; an address alone is not enough)", field=name)
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{raw!r} is not a number", field=name) from None
    if not math.isfinite(value) or not low <= value <= high:
        raise InputError(f"{raw!r} is out of range {low}…{high}", field=name)
    return value


def _text(name: str, limit: int) -> str:
    value = (request.form.get(name) or "").strip()
    if len(value) > limit:
        raise InputError(f"is longer than {limit} characters", field=name)
    return value


@bp.post(f"/requests.{FMT}")
def request_create(fmt: str):
    """Create a service request: a `reported` case from the public, verified on site before registration."""
    now = request_now()
    with engine().begin() as conn:
        client = _client(conn)
        code = (request.form.get("service_code") or "").strip()
        if not code:
            raise InputError("is required", field="service_code")
        queries.category(conn, code)  # 404 for an unknown service
        lat, lon = _coordinate("lat", -90, 90), _coordinate("long", -180, 180)
        media = _text("media_url", MAX_URL)
        if media and (urlsplit(media).scheme not in ("http", "https") or not urlsplit(media).netloc):
            raise InputError("must be an http(s) URL", field="media_url")
        new = NewCase(
            category=code,
            lon=lon,
            lat=lat,
            source="public",
            description=_text("description", MAX_DESCRIPTION),
            address=_text("address_string", MAX_ADDRESS),
            photos=(media,) if media else (),
        )
        actor = Actor(None, f"Open311 {client}", "public")
        case_id = report(conn, actor, new, now=now, calendar=calendar())
        case_no = queries.case_number(conn, case_id)
    notice = "已受理，网格监督员将现场核实。Received; a grid supervisor will verify it on site."
    return respond(
        fmt,
        "service_requests",
        [{"service_request_id": case_no, "service_notice": notice, "account_id": None}],
        status=201,
    )


@bp.route("/", defaults={"rest": ""}, methods=["GET", "POST"])
@bp.route("/<path:rest>", methods=["GET", "POST"])
def unknown(rest: str):
    """Anything else under /open311/v2 is a 404 in the spec's error format."""
    raise NotFound(f"no such Open311 resource: /{rest}; start at discovery.json or services.json")
