"""Layer rules: expired permits (0202), overdue inspections (0205), failed dust (0302) and 门前三包 checks; idempotent."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from gridmgr.cases.intake import NewCase, report
from gridmgr.cases.rules import rules, run_rules
from gridmgr.cases.workcalendar import WorkCalendar
from gridmgr.cases.workflow import SYSTEM, apply

from support import SMALL_ORIGIN, SMALL_STEP, insert_small_grid

TZ = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 10, 13)
NOW = datetime(2026, 10, 13, 9, 0, tzinfo=TZ)  # a Tuesday, working hours
X0, Y0 = SMALL_ORIGIN
D = SMALL_STEP
CAL = WorkCalendar.load()
RECENT = TODAY - timedelta(days=30)
ZERO = {name: 0 for name in rules()}


def board(
    conn,
    ad_no,
    *,
    valid_to=TODAY + timedelta(days=200),
    valid_from=date(2025, 1, 1),
    last_inspection=RECENT,
    status="permitted",
    at=(0.5, 0.5),
):
    """One billboard in the small grid (by default permitted, valid and recently inspected); its id."""
    return conn.execute(
        text("""
        INSERT INTO billboards (geom, cell_id, ad_no, type, owner, permit_no, address, valid_from, valid_to,
                                last_inspection, status)
        SELECT p.g, (SELECT cell_id FROM cell_for(p.g)), :ad, 'pole', '模拟广告有限公司', :permit, '东华门大街1号',
               :vf, :vt, :li, :st
        FROM (SELECT ST_SetSRID(ST_MakePoint(:x, :y), 4326) AS g) p RETURNING id
    """),
        {
            "ad": ad_no,
            "permit": f"GG-{ad_no}",
            "vf": valid_from,
            "vt": valid_to,
            "li": last_inspection,
            "st": status,
            "x": X0 + at[0] * D,
            "y": Y0 + at[1] * D,
        },
    ).scalar()


def site(conn, permit_no="110101-2026-0001"):
    """A construction site over the western half of the small grid; its id."""
    env = f"ST_Multi(ST_MakeEnvelope({X0 + 0.2 * D}, {Y0 + 0.2 * D}, {X0 + 0.8 * D}, {Y0 + 1.8 * D}, 4326))"
    return conn.execute(
        text(f"""
        INSERT INTO construction_sites (geom, cell_id, permit_no, project_name, builder)
        SELECT g, (SELECT cell_id FROM cell_for(g)), :p, '东华门社区住宅项目', '模拟建设工程有限公司'
        FROM (SELECT {env} AS g) s RETURNING id
    """),
        {"p": permit_no},
    ).scalar()


def inspection(conn, site_id, no, *, failed=(), unchecked=(), at=NOW - timedelta(days=2), note=None):
    """One inspection of a site: the items in `failed` fail, those in `unchecked` are NULL; its id."""
    from gridmgr.layers.construction import DUST_ITEMS

    items = {i: (False if i in failed else None if i in unchecked else True) for i in DUST_ITEMS}
    cols = ", ".join(items)
    return conn.execute(
        text(f"""
        INSERT INTO site_inspections (inspection_no, site_id, inspected_at, inspector, note, {cols})
        VALUES (:no, :s, :at, '李巡查', :note, {", ".join(":" + i for i in items)}) RETURNING id
    """),
        {"no": no, "s": site_id, "at": at, "note": note, **items},
    ).scalar()


def run(conn, **kw):
    kw.setdefault("today", TODAY)
    kw.setdefault("now", NOW)
    return run_rules(conn, calendar=CAL, **kw)


def opened(**counts):
    return {**ZERO, **counts}


def origins(conn, rule=None):
    """(rule, layer, feature_id, open, category, status) of every rule case, oldest first."""
    return conn.execute(
        text("""
        SELECT o.rule, o.layer, o.feature_id, o.open, f.category_code, f.status FROM case_origins o
        JOIN cases f ON f.id = o.case_id WHERE :r IS NULL OR o.rule = :r ORDER BY o.case_id
    """),
        {"r": rule},
    ).all()


def case_of(conn, rule, feature_id):
    return (
        conn.execute(
            text("""
        SELECT f.*, ST_X(f.geom) AS lon, ST_Y(f.geom) AS lat FROM cases f JOIN case_origins o ON o.case_id = f.id
        WHERE o.rule = :r AND o.feature_id = :f AND o.open
    """),
            {"r": rule, "f": feature_id},
        )
        .mappings()
        .one()
    )


def close(conn, case_id, unit_id):
    """Take a case on through the workflow to closed (as the system: roles and scopes not in question)."""
    steps = {
        "reported": ("register", {}),
        "registered": ("dispatch", {"data": {"unit_id": unit_id}}),
        "dispatched": ("handle", {"note": "已处置"}),
        "handled": ("check_pass", {}),
        "checked": ("close", {}),
    }
    while (state := conn.execute(text("SELECT status FROM cases WHERE id = :c"), {"c": case_id}).scalar()) != "closed":
        action, kw = steps[state]
        apply(conn, SYSTEM, case_id, action, now=NOW, calendar=CAL, **kw)


def test_expired_by_date(conn, small_grid):
    expired = board(conn, "AD-1", valid_to=TODAY - timedelta(days=1))
    board(conn, "AD-2", valid_to=TODAY)  # valid through today: not expired yet
    board(conn, "AD-3")  # valid for months
    board(conn, "AD-4", valid_to=None)  # no end date recorded
    board(conn, "AD-5", valid_to=date(2025, 1, 1), status="unpermitted")  # unpermitted: another problem
    board(conn, "AD-6", valid_to=date(2025, 1, 1), status="removed")
    assert run(conn) == opened(billboard_permit_expired=1)
    assert origins(conn) == [("billboard_permit_expired", "billboards", expired, True, "0202", "reported")]
    case = case_of(conn, "billboard_permit_expired", expired)
    assert case["source"] == "rule" and case["reported_at"] == NOW and case["deadline"] is not None
    assert (
        "AD-1" in case["description"] and "GG-AD-1" in case["description"] and "模拟广告有限公司" in case["description"]
    )
    assert "2026-10-12" in case["description"] and "已过期 1 天" in case["description"]
    assert case["address"] == "东华门大街1号"
    assert (case["lon"], case["lat"]) == pytest.approx((X0 + 0.5 * D, Y0 + 0.5 * D))
    assert case["cell_id"] == small_grid["110101001001003"]  # the board's cell (SW)
    event = conn.execute(
        text("SELECT action, to_state, role, user_id FROM case_events WHERE case_id = :c"), {"c": case["id"]}
    ).one()
    assert tuple(event) == ("report", "reported", "system", None)


def test_one_case_per_feature_and_rule_when_run_twice(conn, small_grid):
    both = board(conn, "AD-1", valid_to=TODAY - timedelta(days=10), last_inspection=TODAY - timedelta(days=400))
    board(conn, "AD-2", valid_to=TODAY - timedelta(days=3))
    assert run(conn) == opened(billboard_permit_expired=2, billboard_inspection_overdue=1)
    assert run(conn) == ZERO
    assert run(conn, today=TODAY + timedelta(days=30)) == ZERO  # still expired, still one open case each
    assert [(r.rule, r.feature_id) for r in origins(conn) if r.feature_id == both] == [
        ("billboard_permit_expired", both),
        ("billboard_inspection_overdue", both),
    ]
    assert conn.execute(text("SELECT count(*) FROM cases WHERE source = 'rule'")).scalar() == 3


def test_overdue_inspection(conn, small_grid):
    year = TODAY - timedelta(days=365)
    overdue = board(conn, "AD-1", last_inspection=year - timedelta(days=1))
    board(conn, "AD-2", last_inspection=year)  # exactly 365 days ago: due today, not overdue
    never_old = board(conn, "AD-3", last_inspection=None, valid_from=date(2024, 1, 1))
    board(conn, "AD-4", last_inspection=None, valid_from=TODAY - timedelta(days=20))  # new permit: not yet due
    never_undated = board(conn, "AD-5", last_inspection=None, valid_from=None)
    board(conn, "AD-6", last_inspection=None, status="unpermitted")  # no permit holder to inspect
    assert run(conn) == opened(billboard_inspection_overdue=3)
    assert {r.feature_id for r in origins(conn)} == {overdue, never_old, never_undated}
    assert all(r.category_code == "0205" for r in origins(conn))
    text_ = case_of(conn, "billboard_inspection_overdue", overdue)["description"]
    assert "最近安全检查 2025-10-12" in text_ and "距今 366 天" in text_ and "365 天" in text_
    assert "无安全检查记录" in case_of(conn, "billboard_inspection_overdue", never_old)["description"]


def test_inspection_interval_is_configurable(conn, small_grid):
    board(conn, "AD-1", last_inspection=TODAY - timedelta(days=40))
    assert run(conn, settings={"days": 365}) == ZERO
    assert run(conn, settings={"days": 30}) == opened(billboard_inspection_overdue=1)


def test_failed_inspection_opens_0302_naming_the_failed_items(conn, small_grid):
    s = site(conn)
    inspection(conn, s, "INS-1")  # all six passed
    inspection(conn, s, "INS-2", unchecked=("wet_work", "closed_transport"))  # not checked is not failed
    failed = inspection(conn, s, "INS-3", failed=("hoarding", "washing"), note="东侧围挡缺口约5米")
    inspection(conn, s, "INS-4", failed=("covering",), at=NOW + timedelta(hours=1))  # after `now`: not yet
    assert run(conn) == opened(site_dust_failed=1)
    assert origins(conn) == [("site_dust_failed", "site_inspections", failed, True, "0302", "reported")]
    case = case_of(conn, "site_dust_failed", failed)
    assert "不合格项：围挡、车辆冲洗。" in case["description"]
    for other in ("物料覆盖", "地面硬化", "湿法作业", "渣土密闭运输"):
        assert other not in case["description"]
    assert "INS-3" in case["description"] and "110101-2026-0001" in case["description"]
    assert "东侧围挡缺口约5米" in case["description"]
    inside = conn.execute(
        text("SELECT ST_Covers(s.geom, f.geom) FROM construction_sites s, cases f WHERE s.id = :s AND f.id = :c"),
        {"s": s, "c": case["id"]},
    ).scalar()
    assert inside  # ST_PointOnSurface of the site
    assert run(conn) == ZERO


def test_failed_inspection_raises_one_case_ever(conn, small_grid):
    unit = conn.execute(
        text("INSERT INTO units (code, name, kind) VALUES ('ZF01', '第一执法中队', 'enforcement_squad') RETURNING id")
    ).scalar()
    failed = inspection(conn, site(conn), "INS-1", failed=("hardening",))
    run(conn)
    close(conn, case_of(conn, "site_dust_failed", failed)["id"], unit)
    # an inspection is an event, not a lasting condition: its case closed, it raises nothing again
    assert run(conn) == ZERO
    assert origins(conn) == [("site_dust_failed", "site_inspections", failed, False, "0302", "closed")]


def test_closed_or_rejected_case_lets_a_new_one_open(conn, small_grid):
    unit = conn.execute(
        text("INSERT INTO units (code, name, kind) VALUES ('ZF01', '第一执法中队', 'enforcement_squad') RETURNING id")
    ).scalar()
    b = board(conn, "AD-1", valid_to=TODAY - timedelta(days=5))
    run(conn)
    first = case_of(conn, "billboard_permit_expired", b)["id"]
    apply(conn, SYSTEM, first, "register", now=NOW, calendar=CAL)
    assert run(conn) == ZERO  # registered is still open
    close(conn, first, unit)
    # the data still says expired (nobody updated the register): the rule raises it again
    assert run(conn) == opened(billboard_permit_expired=1)
    second = case_of(conn, "billboard_permit_expired", b)["id"]
    apply(conn, SYSTEM, second, "reject", now=NOW, calendar=CAL, note="许可已续办，台账未更新")
    assert run(conn) == opened(billboard_permit_expired=1)
    assert [(r.open, r.status) for r in origins(conn)] == [(False, "closed"), (False, "rejected"), (True, "reported")]


def test_database_refuses_a_second_open_case_for_a_feature(conn, small_grid):
    b = board(conn, "AD-1", valid_to=TODAY - timedelta(days=5))
    run(conn)
    other = report(conn, SYSTEM, NewCase("0202", X0 + 0.5 * D, Y0 + 0.5 * D, "rule", "重复"), now=NOW, calendar=CAL)
    insert = text(
        "INSERT INTO case_origins (case_id, rule, layer, feature_id, opened_at, open) "
        "VALUES (:c, 'billboard_permit_expired', 'billboards', :f, :now, :open)"
    )
    with pytest.raises(IntegrityError, match="uq_case_origins_open_feature"), conn.begin_nested():
        # `open` is derived from the case's status whatever the writer says
        conn.execute(insert, {"c": other, "f": b, "now": NOW, "open": False})
    by_hand = report(
        conn, SYSTEM, NewCase("0202", X0 + 0.5 * D, Y0 + 0.5 * D, "supervisor", "手工"), now=NOW, calendar=CAL
    )
    with pytest.raises(DBAPIError, match="only cases raised by a rule"), conn.begin_nested():
        conn.execute(insert, {"c": by_hand, "f": b + 1, "now": NOW, "open": True})


def test_unknown_rule_is_refused(conn, small_grid):
    from gridmgr.errors import InputError

    with pytest.raises(InputError, match="unknown rule nope"):
        run(conn, names=["nope"])
    with pytest.raises(InputError, match="no rule run here has the setting 'dayz'"):
        run(conn, settings={"dayz": 3})
    with pytest.raises(InputError, match="at least 1"):
        run(conn, settings={"days": 0})
    board(conn, "AD-1", valid_to=TODAY - timedelta(days=5), last_inspection=None, valid_from=None)
    assert run(conn, names=["billboard_inspection_overdue"]) == {"billboard_inspection_overdue": 1}


def test_cli_rules_run(cli, fresh_db):
    _, eng = fresh_db
    with eng.begin() as conn:
        insert_small_grid(conn)
        expired = board(conn, "AD-1", valid_to=date(2026, 9, 30))
        failed = inspection(conn, site(conn), "INS-1", failed=("wet_work",), at=NOW - timedelta(days=1))
    out = cli("rules", "run", "--today", "2026-10-13").output
    assert "billboard_permit_expired" in out and "2 cases opened" in out
    assert "0 cases opened" in cli("rules", "run", "--today", "2026-10-13").output
    with eng.connect() as conn:
        rows = conn.execute(
            text("""
            SELECT o.rule, o.feature_id, f.category_code, (f.reported_at AT TIME ZONE 'Asia/Shanghai')::date
            FROM case_origins o JOIN cases f ON f.id = o.case_id ORDER BY o.rule
        """)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("billboard_permit_expired", expired, "0202", TODAY),
        ("site_dust_failed", failed, "0302", TODAY),
    ]
    assert "site_dust_failed" in cli("rules", "list").output
    assert "--set days=365" in cli("rules", "list").output
    bad = cli("rules", "run", "--set", "days=x", ok=False)
    assert bad.exit_code == 2 and "NAME=N" in bad.output
    bad = cli("rules", "run", "--rule", "nope", ok=False)
    assert bad.exit_code == 1 and "unknown rule nope" in bad.output


def test_cli_jobs_run_the_rules_daily(cli, fresh_db):
    """`gridmgr jobs run rules` is the scheduled form of `rules run`: today's date, its own transaction."""
    _, eng = fresh_db
    with eng.begin() as conn:
        insert_small_grid(conn)
        board(conn, "AD-1", valid_to=date(2026, 1, 1), last_inspection=date.today())
    assert "daily at 06:00" in cli("jobs", "list").output
    out = cli("jobs", "run", "rules").output
    assert "rules: 1 cases opened" in out and "1 job run" in out
    assert "rules: 0 cases opened" in cli("jobs", "run").output
    bad = cli("jobs", "run", "nope", ok=False)
    assert bad.exit_code == 1 and "unknown job nope" in bad.output


# ---------------------------------------------------------------------------- 门前三包 (layers/frontage)


def contract(conn, no, *, valid_until=TODAY + timedelta(days=300), status="active"):
    """A shop's frontage along the south edge of the SW cell; its id."""
    y = Y0 + 0.1 * D
    line = f"ST_GeomFromText('LINESTRING({X0 + 0.2 * D} {y}, {X0 + 0.6 * D} {y})', 4326)"
    return conn.execute(
        text(f"""
        INSERT INTO frontage_contracts (geom, cell_id, contract_no, shop_name, road, address, valid_until, status)
        SELECT g, (SELECT cell_id FROM cell_for(g)), :no, '福来便利店', '东华门大街', '东华门大街1号', :vu, :st
        FROM (SELECT {line} AS g) s RETURNING id
    """),
        {"no": no, "vu": valid_until, "st": status},
    ).scalar()


def frontage_check(conn, contract_id, no, *, neglected=(), at=NOW - timedelta(days=1)):
    """One inspection of a contract: the duties in `neglected` were not kept (greenery not checked)."""
    conn.execute(
        text("""
        INSERT INTO frontage_inspections (inspection_no, contract_id, inspected_at, inspector, tidy, clean, orderly, note)
        VALUES (:no, :c, :at, '网格监督员 赵磊', :tidy, :clean, :orderly, :note)
    """),
        {
            "no": no,
            "c": contract_id,
            "at": at,
            **{d: d not in neglected for d in ("tidy", "clean", "orderly")},
            "note": "店外摆放商品" if neglected else None,
        },
    )


def test_failed_frontage_inspection_opens_one_0504_case_per_contract(conn, small_grid):
    unit = conn.execute(
        text("INSERT INTO units (code, name, kind) VALUES ('ZF01', '第一执法中队', 'enforcement_squad') RETURNING id")
    ).scalar()
    shop = contract(conn, "MQSB-1")
    frontage_check(conn, shop, "MQJC-1", neglected=("orderly",), at=NOW - timedelta(days=3))
    frontage_check(conn, shop, "MQJC-2", neglected=("orderly", "clean"))
    assert run(conn) == opened(frontage_inspection_failed=1)
    case = case_of(conn, "frontage_inspection_failed", shop)
    assert case["category_code"] == "0504" and case["cell_id"] == small_grid["110101001001003"]
    assert "MQJC-2" in case["description"] and "环境卫生、秩序规范" in case["description"]
    assert "福来便利店" in case["description"] and case["address"] == "东华门大街1号"
    frontage_check(conn, shop, "MQJC-3", neglected=("tidy",), at=NOW - timedelta(hours=2))
    assert run(conn) == ZERO  # still open: one case per contract and rule, however many failures
    close(conn, case["id"], unit)
    assert run(conn) == ZERO  # closed, and no inspection since has failed
    later = NOW + timedelta(days=1)
    frontage_check(conn, shop, "MQJC-4", at=later - timedelta(hours=3))
    assert run(conn, now=later) == ZERO  # the shop kept its duties when inspected again
    frontage_check(conn, shop, "MQJC-5", neglected=("orderly",), at=later - timedelta(hours=1))
    assert run(conn, now=later) == opened(frontage_inspection_failed=1)
    assert [(r.open, r.category_code) for r in origins(conn, "frontage_inspection_failed")] == [
        (False, "0504"),
        (True, "0504"),
    ]


def test_expired_frontage_contract_opens_one_case(conn, small_grid):
    ran_out = contract(conn, "MQSB-1", valid_until=TODAY - timedelta(days=10))
    contract(conn, "MQSB-2", valid_until=TODAY)  # its last day: still in force
    contract(conn, "MQSB-3", valid_until=TODAY - timedelta(days=400), status="terminated")
    assert run(conn) == opened(frontage_contract_expired=1)
    case = case_of(conn, "frontage_contract_expired", ran_out)
    assert case["category_code"] == "0599" and "已过期 10 天" in case["description"]
    assert run(conn) == ZERO
