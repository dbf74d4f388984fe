"""The glossary: one Chinese and English label for every English key used in code, DB and UI.

The core's keys are listed here; each layer brings its code lists through the `gridmgr_code_lists` hook,
merged in on first use under "<list>:<key>" (what a field's `labels` names) and under the bare key where
no one has taken it (a suspended case is 挂账, a suspended site 停工: "site_status:suspended").
"""

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
    "sysadmin": ("系统管理员", "system administrator"),
    "secadmin": ("安全管理员", "security administrator"),
    "auditor": ("审计管理员", "audit administrator"),
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
}


_merged_from: object = None  # the plug-in manager whose code lists are merged


def entries() -> dict[str, tuple[str, str]]:
    """Every label, the core's and the plug-ins' code lists' (merged once per plug-in manager)."""
    global _merged_from
    from gridmgr.plugins import hooks  # the layers import this module

    # a rebuilt manager may have found new plug-ins, so their lists are merged then too
    if _merged_from is not hooks.manager():
        _merged_from = hooks.manager()
        for code_list in hooks.gather("gridmgr_code_lists"):
            merge(code_list.name, code_list.labels)
    return GLOSSARY


def merge(scope: str, labels: dict[str, tuple[str, str]]) -> None:
    """Add a code list's labels under "<scope>:<key>", and under the bare key where that is still free."""
    for key, label in labels.items():
        GLOSSARY.setdefault(key, label)
        GLOSSARY[f"{scope}:{key}"] = label


def _entry(key: str, scope: str | None) -> tuple[str, str]:
    table = entries()
    if scope and f"{scope}:{key}" in table:
        return table[f"{scope}:{key}"]
    return table.get(key, (key, key))


def zh(key: str, scope: str | None = None) -> str:
    """The Chinese label of a key, in a code list (`scope`) where the key means something else."""
    return _entry(key, scope)[0]


def en(key: str, scope: str | None = None) -> str:
    """The English label of a key."""
    return _entry(key, scope)[1]


def bilingual(key: str) -> str:
    """`中文 English`, as the CLI prints labels."""
    z, e = entries().get(key, (key, key))
    return f"{z} {e}" if z != e else z


def key_for(label: str, allowed: tuple[str, ...]) -> str | None:
    """The key among `allowed` that a key or a Chinese/English label names, or None."""
    text = label.strip()
    table = entries()
    for key in allowed:
        labels = [table.get(key, (key, key))] + [v for k, v in table.items() if k.endswith(":" + key)]
        for z, e in labels:
            if text in (key, z, e) or text.lower() == e.lower():
                return key
    return None
