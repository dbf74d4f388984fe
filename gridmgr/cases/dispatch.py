"""Dispatch rules (派遣规则): which unit handles a case, as editable data; the most specific rule wins."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Text, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column

from gridmgr.db.models import CELL_DUTIES, Base
from gridmgr.errors import InputError
from gridmgr.paths import DATA

DEFAULT_FILE = DATA / "dispatch_rules.csv"
AREA_LEVEL = {6: 1, 9: 2, 12: 3, 15: 4}  # district, street, community, cell: longer is more specific


class DispatchRule(Base):
    """(category or class, area) → a fixed unit, or the unit holding a duty for the case's cell."""

    __tablename__ = "dispatch_rules"
    __table_args__ = (
        CheckConstraint("(unit_id IS NULL) <> (duty IS NULL)", name="one_target"),
        CheckConstraint("category ~ '^(\\*|C?[0-9]{4}|(event|component):[0-9]{2})$'", name="category_format"),
        CheckConstraint("area ~ '^(\\*|[0-9]{6}|[0-9]{9}|[0-9]{12}|[0-9]{15})$'", name="area_format"),
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # an exact code (0102, C0101), a class (event:01, component:01) or * for any
    category: Mapped[str] = mapped_column(String(16), nullable=False)
    # a district, street, community or cell code (the case's cell code starts with it), or *
    area: Mapped[str] = mapped_column(String(15), nullable=False)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    duty: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)


# Specificity: the category first (exact code > class > any), then the area (cell > community >
# street > district > any). A case's category says what kind of work it is, which decides the
# kind of unit; the area then picks among units of that kind.
RESOLVE = """
SELECT COALESCE(r.unit_id, cu.unit_id) AS unit_id, r.id AS rule_id
FROM dispatch_rules r
JOIN categories k ON k.code = :category
LEFT JOIN cell_units cu ON cu.cell_id = :cell_id AND cu.duty = r.duty
WHERE (r.category = '*' OR r.category = k.code OR r.category = k.kind || ':' || k.major_code)
  AND (r.area = '*' OR :cell_code LIKE r.area || '%')
  AND COALESCE(r.unit_id, cu.unit_id) IS NOT NULL
ORDER BY CASE WHEN r.category = k.code THEN 2 WHEN r.category = '*' THEN 0 ELSE 1 END DESC,
         CASE WHEN r.area = '*' THEN 0 ELSE length(r.area) END DESC, r.id
LIMIT 1
"""


def resolve(conn: Connection, category: str, cell_id: int | None) -> tuple[int | None, str]:
    """The unit a case of this category in this cell goes to, and why (the rule, or 属地兜底)."""
    cell_code = None
    if cell_id is not None:
        cell_code = conn.execute(text("SELECT code FROM grid_cells WHERE id = :c"), {"c": cell_id}).scalar()
    row = conn.execute(text(RESOLVE), {"category": category, "cell_id": cell_id, "cell_code": cell_code or ""}).first()
    if row is not None:
        return row.unit_id, f"rule {row.rule_id}"
    owner = (
        conn.execute(
            text("SELECT unit_id FROM cell_units WHERE cell_id = :c AND duty = 'territorial'"), {"c": cell_id}
        ).scalar()
        if cell_id is not None
        else None
    )
    return owner, "territorial owner (属地兜底)"


def load(conn: Connection, path: Path = DEFAULT_FILE) -> int:
    """Replace the rules with a file's (columns category, area, unit, duty, note); returns the count."""
    path = Path(path)
    rows = []
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for line, raw in enumerate(csv.DictReader(fh), start=2):
            rec = f"{path.name} line {line}"
            unit_code = (raw.get("unit") or "").strip() or None
            duty = (raw.get("duty") or "").strip() or None
            if (unit_code is None) == (duty is None):
                raise InputError("give either a unit code or a duty, not both or neither", record=rec, field="unit")
            if duty and duty not in CELL_DUTIES:
                raise InputError(f"{duty!r} is not one of {', '.join(CELL_DUTIES)}", record=rec, field="duty")
            unit_id = None
            if unit_code:
                unit_id = conn.execute(text("SELECT id FROM units WHERE code = :c"), {"c": unit_code}).scalar()
                if unit_id is None:
                    raise InputError(f"unknown unit {unit_code!r}", record=rec, field="unit")
            rows.append(
                {
                    "category": (raw.get("category") or "*").strip(),
                    "area": (raw.get("area") or "*").strip(),
                    "unit_id": unit_id,
                    "duty": duty,
                    "note": (raw.get("note") or "").strip() or None,
                }
            )
    conn.execute(text("DELETE FROM dispatch_rules"))
    if rows:
        conn.execute(
            text(
                "INSERT INTO dispatch_rules (category, area, unit_id, duty, note) "
                "VALUES (:category, :area, :unit_id, :duty, :note)"
            ),
            rows,
        )
    return len(rows)
