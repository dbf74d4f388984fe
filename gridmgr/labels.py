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
}


def zh(key: str) -> str:
    """The Chinese label of a key (the key itself when it has none)."""
    return GLOSSARY.get(key, (key, key))[0]


def en(key: str) -> str:
    """The English label of a key."""
    return GLOSSARY.get(key, (key, key))[1]


def bilingual(key: str) -> str:
    """`中文 English`, as the CLI prints labels."""
    z, e = GLOSSARY.get(key, (key, key))
    return f"{z} {e}" if z != e else z


def key_for(label: str, allowed: tuple[str, ...]) -> str | None:
    """The key among `allowed` that a key or a Chinese/English label names, or None."""
    text = label.strip()
    for key in allowed:
        z, e = GLOSSARY.get(key, (key, key))
        if text in (key, z, e) or text.lower() == e.lower():
            return key
    return None
