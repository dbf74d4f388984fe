"""The hooks a plug-in implements, and the plug-in manager that finds plug-ins through entry points.

Every layer, built in or not, is a plug-in: a module named by an entry point of the `gridmgr` group
whose functions are marked `@hookimpl` (pluggy, as pytest and datasette use it). The core never lists
the built-ins; it asks the hooks:

    from gridmgr.plugins.hooks import hookimpl

    @hookimpl
    def gridmgr_layers():
        return [LAYER]

A list hook returns a list (or None); `gather` concatenates what the plug-ins return, in the order of
their entry-point names. `gridmgr_features_in_area` is the one asked of each plug-in until one answers.
`docs/architecture.md` ("Writing a layer") walks through a layer that uses them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from gridmgr.errors import InputError

if TYPE_CHECKING:  # these modules import this one; the names are for annotations only
    from sqlalchemy.engine import Connection

    from gridmgr.analytics.indicators import Indicator, Rate
    from gridmgr.cases.rules import Rule
    from gridmgr.plugins.registry import Layer

PROJECT = "gridmgr"
ENTRY_POINT_GROUP = "gridmgr"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
T = TypeVar("T")


@dataclass(frozen=True)
class CodeList:
    """A layer's code list: stable English keys (as its CHECK constraints hold them) and their labels."""

    name: str  # the scope a Field's `labels` names, e.g. "billboard_type"
    labels: dict[str, tuple[str, str]]  # key → (中文, English), in the list's order

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.labels)


@dataclass(frozen=True)
class MenuEntry:
    """A page in the menu: its endpoint, label and the roles that see it (None: every logged-in user)."""

    endpoint: str
    zh: str
    en: str
    roles: tuple[str, ...] | None = None
    after: str | None = None  # placed after this endpoint (default: before the overview)


@dataclass
class DemoContext:
    """What the layers' demo data is made from: the district, its streets and communities, the day, the size."""

    workdir: Path
    district: Any  # shapely geometry, WGS84
    streets: Any  # GeoDataFrame: code, name, geometry (WGS84)
    communities: Any  # GeoDataFrame: code, name, parent, geometry (WGS84)
    anchor: date  # the demo's "today"
    size: str  # "test" or "demo"
    seed: int
    cache: dict[str, Any] = field(default_factory=dict)  # for data one plug-in generates together


@dataclass(frozen=True)
class DemoData:
    """One layer's demo data: `make(conn, ctx)` writes an import file, loaded after the layers named in `after`."""

    layer: str
    make: Callable[[Connection, DemoContext], Path]
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchField:
    """Text of a layer's features a place search may match (a shop's name, a road's name)."""

    layer: str
    fields: tuple[str, ...]
    label: str | None = None  # the field shown as the match's name (default: the first)


@dataclass(frozen=True)
class Collection:
    """A layer offered as an OGC API Features collection, with the fields and rows anonymous clients see."""

    layer: str
    public_fields: tuple[str, ...]
    # SQL condition on the layer's rows `f` that an anonymous client may see (None: none of them)
    public_where: str | None = "true"
    # SQL condition on `f` for a logged-in user limited to some cells, given as :cell_ids (None: all rows)
    scope_where: str | None = "f.cell_id = ANY(:cell_ids)"


@dataclass(frozen=True)
class Job:
    """A scheduled job: a name, how often it is due, and what it does in one transaction."""

    name: str
    title_zh: str
    title_en: str
    every: str  # "daily" or "hourly"
    run: Callable[[Connection, datetime], str]  # returns a one-line summary
    at: str = "02:00"  # for daily jobs, the local time it is due


class Spec:
    """The hook specifications (each one a list the core gathers from every plug-in, unless it says so)."""

    @hookspec
    def gridmgr_layers(self) -> list[Layer] | None:
        """The layers this plug-in adds: fields, table, metrics, map style, popup and public fields."""

    @hookspec
    def gridmgr_code_lists(self) -> list[CodeList] | None:
        """The code lists of its fields, with their glossary labels (scoped where a key means more)."""

    @hookspec
    def gridmgr_rules(self) -> list[Rule] | None:
        """The rules that open cases from its data (`gridmgr.cases.rules.Rule`)."""

    @hookspec
    def gridmgr_blueprints(self) -> list[Any] | None:
        """Its Flask blueprints, each with its own templates and static scripts (`template_folder`, `static_folder`).

        Typed `Any`: the core does not import Flask; the web app registers what this returns.
        """

    @hookspec
    def gridmgr_menu(self) -> list[MenuEntry] | None:
        """Its pages in the menu."""

    @hookspec
    def gridmgr_demo_data(self) -> list[DemoData] | None:
        """Its demo data for `gridmgr demo`."""

    @hookspec
    def gridmgr_indicators(self) -> list[Indicator | Rate] | None:
        """Its report indicators (counts and rates beside the case figures; per-cell metrics are on the layer)."""

    @hookspec
    def gridmgr_search_fields(self) -> list[SearchField] | None:
        """The text of its features that a place search may match."""

    @hookspec
    def gridmgr_collections(self) -> list[Collection] | None:
        """Its OGC API Features collections and their scope rules."""

    @hookspec
    def gridmgr_append_only_tables(self) -> list[str] | None:
        """Its tables whose rows are never updated or deleted (audit-like; the database role gets INSERT only)."""

    @hookspec
    def gridmgr_jobs(self) -> list[Job] | None:
        """Its scheduled jobs."""

    @hookspec
    def gridmgr_outbox_channels(self) -> dict[str, Callable[[dict[str, Any]], None]] | None:
        """Its delivery channels for outgoing messages: name → a callable that sends one payload or raises.

        A mapping, not a list: gridmgr.plugins.outbox merges every plug-in's, and a name given twice is an error.
        """

    @hookspec
    def gridmgr_migrations(self) -> list[Path] | None:
        """Its Alembic version directories (a branch of its own, depending on the core's revisions)."""

    @hookspec(firstresult=True)
    def gridmgr_features_at(self, layer: str) -> str | None:
        """SQL selecting the features of `layer` that stand at the moment :at (id, geom and its fields).

        Asked of each plug-in until one answers; a layer answers only for its own names, where "standing
        at a moment" means more than its time column (an active site). gridmgr.plugins.area gives the
        default and `features_in_area`, which one layer's checks use to ask about another's features.
        """


_manager: pluggy.PluginManager | None = None


def manager() -> pluggy.PluginManager:
    """The plug-in manager, with every `gridmgr` entry point loaded (once per process)."""
    global _manager
    if _manager is None:
        pm = pluggy.PluginManager(PROJECT)
        pm.add_hookspecs(Spec)
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        _manager = pm
    return _manager


def gather(hook: str, **kwargs: Any) -> list[Any]:
    """Everything the plug-ins return for one hook, in the order of their entry-point names."""
    pm = manager()
    order = {name: i for i, name in enumerate(sorted(n for n, _ in pm.list_name_plugin() if n is not None))}
    results: list[tuple[int, Any]] = []
    for impl in getattr(pm.hook, hook).get_hookimpls():
        value = impl.function(**kwargs)
        if value:
            results.append((order.get(impl.plugin_name, len(order)), value))
    out: list[Any] = []
    for _, value in sorted(results, key=lambda r: r[0]):
        out.extend(value)
    return out


def chosen(known: dict[str, T], names: list[str] | None, kind: str) -> list[T]:
    """The items named (all when None), in the order given; InputError naming the unknown ones and the known."""
    unknown = [n for n in names or () if n not in known]
    if unknown:
        raise InputError(f"unknown {kind} {', '.join(unknown)}; known: {', '.join(known)}", field=kind)
    return [known[n] for n in names or known]
