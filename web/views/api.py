"""The JSON API under /api/v1, documented by web/openapi.json (served at /api/v1/openapi.json).

Who may call: API clients with `Authorization: Bearer TOKEN` (`gridmgr users token USERNAME`), and the
pages' own JSON calls with the session cookie (writes carry the X-CSRFToken header; web/auth.py checks
it). Views only adapt: query values and bodies → gridmgr.cases.filters, gridmgr.cases.queries / gridmgr.cases.workflow →
JSON. Every read and change of a case goes through the actor's scope, so a case of another cell or unit is
a 404; leaders (and the other roles that take no workflow action) read and change nothing. Errors are
{"error": {"status", "message"}} from web/errors.py. "Now" is the request time, or the app's
GRIDMGR_NOW setting (see gridmgr.cases.queries.resolve_now) for deterministic tests.
"""

from __future__ import annotations

import json
from datetime import date
from importlib import resources

from flask import Blueprint, Response, abort, current_app, g, request
from flask_login import current_user

from gridmgr.cases import filters, queries, workflow
from gridmgr.codes import TZ
from gridmgr.errors import Forbidden, InputError, NotFound
from gridmgr.web.auth import current_actor
from gridmgr.web.database import engine

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# roles that take at least one workflow action; the others (leader, planner, admin) change no case
ACTING_ROLES = frozenset(r for t in workflow.TRANSITIONS.values() for r in t.roles)
# what the `data` of an action may carry, and its type
ACTION_DATA = {"unit": str, "unit_id": int, "limit": str, "photos": list}
PUBLIC_ENDPOINTS = ("api.openapi",)


def json_response(data, status: int = 200, headers: dict | None = None) -> Response:
    """A JSON response whose user text cannot be read as HTML (see queries.to_json); never cached."""
    return json_text_response(queries.to_json(data), status, headers)


def json_text_response(body: str, status: int = 200, headers: dict | None = None) -> Response:
    """`json_response` for JSON text made already (safe inside HTML, as queries.to_json makes it)."""
    resp = current_app.response_class(body, status=status, mimetype="application/json")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Cache-Control"] = "private, no-store"
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def request_now():
    """ "Now" of this request: GRIDMGR_NOW from the app config when set (tests), else the clock; fixed per request."""
    if "gridmgr_now" not in g:
        g.gridmgr_now = queries.resolve_now(current_app.config.get("GRIDMGR_NOW"))
    return g.gridmgr_now


def query_float(name: str) -> float:
    """A finite number from the query string, named in the error when it is missing or not one."""
    return filters.parse_float(request.args.get(name, ""), name)


def request_today() -> date:
    """Today in the bureau's time zone, at this request's "now"."""
    return request_now().astimezone(TZ).date()


def calendar():
    """The app's working calendar (app.extensions["gridmgr.calendar"], shared with the case pages), read once."""
    cal = current_app.extensions.get("gridmgr.calendar")
    if cal is None:
        cal = current_app.extensions["gridmgr.calendar"] = queries.default_calendar()
    return cal


def workflow_settings() -> workflow.Settings:
    """The bureau's workflow settings from the app's config (GRIDMGR_CLOSE_ON_CHECK), for pages and API alike."""
    return workflow.Settings(close_on_check=current_app.config["GRIDMGR"].flag("GRIDMGR_CLOSE_ON_CHECK"))


@bp.before_request
def authenticate():
    """Every call but the OpenAPI document needs a session or a valid bearer token (else 401)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    bearer = request.headers.get("Authorization", "").startswith("Bearer ")
    # Flask-Login tries the session cookie before the token; a request that names a token is judged by it
    if bearer and not (current_user.is_authenticated and g.get("token_auth")):
        abort(401, description="无效的令牌 invalid or missing API token")
    current_actor()  # 401 for nobody


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI 3 document of this API (public: it describes, it holds no data)."""
    doc = json.loads(resources.files("gridmgr.web").joinpath("openapi.json").read_text(encoding="utf-8"))
    return json_response(doc)


@bp.get("/me")
def me():
    """Who is calling: account, person, role and unit, and how they authenticated."""
    actor = current_actor()
    with engine().connect() as conn:
        unit = queries.unit(conn, unit_id=actor.unit_id) if actor.unit_id is not None else None
    return json_response(
        {
            "user_id": actor.user_id,
            "username": current_user.username,
            "name": actor.name,
            "role": actor.role,
            "person_id": actor.person_id,
            "unit": unit,
            "auth": "token" if g.get("token_auth") else "session",
            "acts_on_cases": actor.role in ACTING_ROLES,
        }
    )


@bp.get("/cases")
def cases():
    """Cases the caller may see, filtered (see filters.FILTER_PARAMS) and paged: the list's fields of each."""
    actor = current_actor()
    flt = filters.parse_filter(request.args)
    page, size = filters.parse_page(request.args)
    sort = request.args.get("sort") or filters.DEFAULT_SORT
    with engine().connect() as conn:
        body, total = queries.list_cases_json(conn, actor, flt, now=request_now(), page=page, page_size=size, sort=sort)
    return json_text_response(body, headers={"X-Total-Count": str(total)})


@bp.get("/cases/<int:case_id>")
def case(case_id: int):
    """One case with its events and the actions the caller may take now (404 outside the caller's scope)."""
    actor = current_actor()
    with engine().connect() as conn:
        return json_response(queries.get_case(conn, actor, case_id, now=request_now(), calendar=calendar()))


def _action_body() -> tuple[str | None, dict]:
    """(note, data) from the JSON body {note, data}; anything else is a 400 naming the field."""
    if not request.get_data():
        return None, {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InputError('the body must be a JSON object {"note": …, "data": {…}}', field="body")
    unknown = sorted(set(body) - {"note", "data"})
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(unknown)}; the body has note and data", field="body")
    note, data = body.get("note"), body.get("data")
    if note is not None and not isinstance(note, str):
        raise InputError("must be text", field="note")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError("must be a JSON object", field="data")
    for key, value in data.items():
        kind = ACTION_DATA.get(key)
        if kind is None:
            raise InputError(f"unknown key {key!r}; known: {', '.join(ACTION_DATA)}", field="data")
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InputError(f"must be {kind.__name__}", field=f"data.{key}")
    if not all(isinstance(p, str) for p in data.get("photos", [])):
        raise InputError("must be a list of text", field="data.photos")
    return note, dict(data)


def _unit_for(conn, data: dict) -> None:
    """Turn data.unit (a unit code) into data.unit_id, and check that a given unit exists."""
    code = data.pop("unit", None)
    if code is not None:
        found = queries.unit(conn, code=code)
        if found is None:
            raise InputError(f"no unit {code!r}", field="data.unit")
        data["unit_id"] = found["id"]
    elif "unit_id" in data and queries.unit(conn, unit_id=data["unit_id"]) is None:
        raise InputError(f"no unit {data['unit_id']}", field="data.unit_id")


@bp.post("/cases/<int:case_id>/actions/<action>")
def case_action(case_id: int, action: str):
    """Take one workflow action on a case; writes its case_events row in the same transaction."""
    actor = current_actor()
    note, data = _action_body()
    now = request_now()
    with engine().begin() as conn:
        if not workflow.visible(conn, actor, case_id):
            raise NotFound(f"no case {case_id}")
        if action not in workflow.TRANSITIONS:
            raise NotFound(f"unknown action {action!r}; known: {', '.join(workflow.TRANSITIONS)}")
        if actor.role not in ACTING_ROLES:
            raise Forbidden(
                f"角色 {actor.role} 只能查看案件，不能处理。The role {actor.role} reads cases and changes none."
            )
        _unit_for(conn, data)
        outcome = workflow.apply(
            conn,
            actor,
            case_id,
            action,
            now=now,
            calendar=calendar(),
            note=note,
            data=data,
            settings=workflow_settings(),
        )
        try:
            after = queries.get_case(conn, actor, case_id, now=now, calendar=calendar())
        except NotFound:
            after = None  # the action moved the case out of the caller's scope
    return json_response(
        {
            "outcome": {
                "case_id": outcome.case_id,
                "action": outcome.action,
                "from_state": outcome.from_state,
                "to_state": outcome.to_state,
                "deadline": outcome.deadline,
                "event_id": outcome.event_id,
                "data": outcome.data,
            },
            "case": after,
        }
    )


def _at():
    raw = request.args.get("at", "").strip()
    return filters.parse_datetime(raw, "at") if raw else request_now()


@bp.get("/cells")
def cell_at_point():
    """The cell covering a point `?lon=&lat=` (optional crs, at), with its people and units."""
    lon, lat = query_float("lon"), query_float("lat")
    crs = request.args.get("crs", "wgs84").strip() or "wgs84"
    with engine().connect() as conn:
        info = queries.cell_at_point(conn, lon, lat, crs=crs, at=_at())
    return json_response(queries.cell_dict(info))


@bp.get("/cells/<code>")
def cell(code: str):
    """One cell by its 15-digit code, the version valid now (or `?at=`)."""
    with engine().connect() as conn:
        info = queries.cell_by_code(conn, code, _at())
    return json_response(queries.cell_dict(info))


@bp.get("/categories")
def categories():
    """The case categories with their time limits."""
    with engine().connect() as conn:
        rows = queries.categories(conn)
    return json_response(
        [
            {
                "code": c.code,
                "kind": c.kind,
                "major_code": c.major_code,
                "major_name": c.major_name,
                "name": c.name,
                "name_en": c.name_en,
                "register_condition": c.register_condition,
                "close_condition": c.close_condition,
                "limits": c.limits,
            }
            for c in rows
        ]
    )
