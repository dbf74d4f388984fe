"""门前三包 (frontage responsibility contracts): one folder, plugged in through the hooks alone.

contracts.py holds the layers (the contracts with their frontage lines, and their inspections),
rules.py the cases they raise, demo.py the demo's shops, versions/ the migration branch of the tables.
"""

from __future__ import annotations

from pathlib import Path

from gridmgr.cases.rules import Rule
from gridmgr.layers.frontage import contracts, demo, rules
from gridmgr.plugins.hooks import CodeList, Collection, DemoData, SearchField, hookimpl
from gridmgr.plugins.registry import Layer


@hookimpl
def gridmgr_layers() -> list[Layer]:
    """The contracts and their inspections."""
    return [contracts.CONTRACTS, contracts.INSPECTIONS]


@hookimpl
def gridmgr_code_lists() -> list[CodeList]:
    """Its fields' code lists and its map flag."""
    return [contracts.PACKAGE, contracts.STATUS, contracts.DUTY, contracts.FLAGS]


@hookimpl
def gridmgr_rules() -> list[Rule]:
    """A failed inspection (→ 0504) and an expired contract (→ 0599), one open case per contract and rule."""
    return list(rules.RULES)


@hookimpl
def gridmgr_demo_data() -> list[DemoData]:
    """Shops along the demo's roads, and their inspections."""
    return list(demo.DEMO)


@hookimpl
def gridmgr_search_fields() -> list[SearchField]:
    """A place search finds a shop by its name or address."""
    return [SearchField(contracts.CONTRACTS.name, ("shop_name", "address", "road"))]


@hookimpl
def gridmgr_collections() -> list[Collection]:
    """The contracts as an OGC API collection; the shopkeeper's name and phone stay out of public output."""
    public = ("contract_no", "shop_name", "address", "road", "package", "valid_until", "status")
    return [Collection(contracts.CONTRACTS.name, public)]


@hookimpl
def gridmgr_migrations() -> list[Path]:
    """Its tables' migration branch."""
    return [Path(__file__).parent / "versions"]
