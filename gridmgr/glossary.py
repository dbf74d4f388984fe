"""The glossary: one Chinese and English label for every English key used in code, DB and UI."""

from __future__ import annotations

# key -> (中文, English)
GLOSSARY: dict[str, tuple[str, str]] = {
    # regions
    "district": ("区/县", "district"),
    "street": ("街道/乡镇", "street"),
    "community": ("社区/村", "community"),
    "cell": ("单元网格", "cell"),
    "duty_grid": ("责任网格", "duty grid"),
    # unit kinds
    "enforcement_squad": ("执法中队", "enforcement squad"),
    "sanitation": ("环卫所", "sanitation office"),
    "street_office": ("街道办事处", "street office"),
    "department": ("职能部门", "department"),
    "company": ("企业", "company"),
    "other": ("其他", "other"),
    # duties of a unit for a cell
    "territorial": ("属地", "territorial owner"),
    "enforcement": ("执法", "enforcement"),
    "maintenance": ("养护", "maintenance"),
    # posts and roles of people
    "grid_leader": ("网格长", "grid leader"),
    "grid_officer": ("网格员", "grid officer"),
    "supervisor": ("监督员", "supervisor"),
    "staff": ("工作人员", "staff"),
    "unit": ("责任单位", "responsible unit"),
    # account roles
    "receiver": ("受理员", "receiver"),
    "dispatcher": ("派遣员", "dispatcher"),
    "shift_leader": ("值班长", "shift leader"),
    "unit_handler": ("责任单位", "unit handler"),
    "planner": ("规划员", "planner"),
    "leader": ("领导", "leader"),
    "admin": ("管理员", "administrator"),
    "system": ("系统", "system"),
    # case sources
    "public": ("公众举报", "public report"),
    "hotline_12319": ("12319城管热线", "12319 hotline"),
    "hotline_12345": ("12345政务热线", "12345 hotline"),
    "video": ("视频发现", "video"),
    "source:leader": ("领导交办", "leader's assignment"),
    "source:supervisor": ("监督员上报", "supervisor's report"),
    "rule": ("规则生成", "raised by a rule"),
    # case states
    "reported": ("上报", "reported"),
    "verified": ("核实", "verified"),
    "registered": ("立案", "registered"),
    "rejected": ("不予立案", "rejected"),
    "dispatched": ("派遣", "dispatched"),
    "handled": ("处置完成", "handled"),
    "checked": ("核查通过", "checked"),
    "closed": ("结案", "closed"),
    "returned": ("回退", "returned"),
    "rework": ("返工", "rework"),
    "suspended": ("挂账", "suspended"),
    "deferred": ("缓办", "deferred"),
    "normal": ("一般", "normal"),
    "urgent": ("紧急", "urgent"),
    "event": ("事件", "event"),
    "component": ("部件", "component"),
    # layers' own lists
    "draft": ("草稿", "draft"),
    "submitted": ("已提交", "submitted"),
    "approved": ("已批准", "approved"),
    "painted": ("已施划", "painted"),
    "retired": ("已撤销", "retired"),
    "parallel": ("平行式", "parallel"),
    "perpendicular": ("垂直式", "perpendicular"),
    "angled_30": ("斜列式30°", "angled 30°"),
    "angled_45": ("斜列式45°", "angled 45°"),
    "angled_60": ("斜列式60°", "angled 60°"),
    "planned": ("计划", "planned"),
    "active": ("在建", "active"),
    "finished": ("完工", "finished"),
    "permitted": ("已许可", "permitted"),
    "unpermitted": ("未许可", "unpermitted"),
    "removed": ("已拆除", "removed"),
    "expired": ("许可过期", "permit expired"),
    "hoarding": ("围挡", "hoarding"),
    "covering": ("物料覆盖", "covered materials"),
    "washing": ("车辆冲洗", "vehicle washing"),
    "hardening": ("地面硬化", "hardened ground"),
    "wet_work": ("湿法作业", "wet work"),
    "closed_transport": ("渣土密闭运输", "closed muck transport"),
    "north": ("北侧", "north side"),
    "south": ("南侧", "south side"),
    "east": ("东侧", "east side"),
    "west": ("西侧", "west side"),
    "both": ("两侧", "both sides"),
    "standard": ("普通泊位", "standard"),
    "disabled": ("无障碍泊位", "accessible"),
    "ev_charging": ("充电泊位", "EV charging"),
    "loading": ("装卸泊位", "loading"),
    "motorcycle": ("摩托车泊位", "motorcycle"),
    "wall": ("墙面广告", "wall sign"),
    "rooftop": ("楼顶广告", "rooftop sign"),
    "pole": ("立杆广告", "pole sign"),
    "led_screen": ("LED电子屏", "LED screen"),
    "light_box": ("灯箱广告", "light box"),
    "neon": ("霓虹灯广告", "neon sign"),
    "building": ("建筑物", "building"),
    "ground": ("地面", "ground"),
    "municipal_facility": ("市政设施", "municipal facility"),
    "shelter": ("候车亭", "bus shelter"),
    # the same key in another code list: "<list>:<key>" (a suspended site is 停工, a suspended case 挂账)
    "site_status:suspended": ("停工", "suspended"),
    "billboard_type:hoarding": ("围挡广告", "hoarding"),
}


def _entry(key: str, scope: str | None) -> tuple[str, str]:
    if scope and f"{scope}:{key}" in GLOSSARY:
        return GLOSSARY[f"{scope}:{key}"]
    return GLOSSARY.get(key, (key, key))


def zh(key: str, scope: str | None = None) -> str:
    """The Chinese label of a key, in a code list (`scope`) where the key means something else."""
    return _entry(key, scope)[0]


def en(key: str, scope: str | None = None) -> str:
    """The English label of a key."""
    return _entry(key, scope)[1]


def bilingual(key: str) -> str:
    """`中文 English`, as the CLI prints labels."""
    z, e = GLOSSARY.get(key, (key, key))
    return f"{z} {e}" if z != e else z


def key_for(label: str, allowed: tuple[str, ...]) -> str | None:
    """The key among `allowed` that a key or a Chinese/English label names, or None."""
    text = label.strip()
    for key in allowed:
        entries = [GLOSSARY.get(key, (key, key))] + [v for k, v in GLOSSARY.items() if k.endswith(":" + key)]
        for z, e in entries:
            if text in (key, z, e) or text.lower() == e.lower():
                return key
    return None
