"""The hooks a plug-in implements, and the plug-in manager that finds plug-ins through entry points.

Every layer, built in or not, is a plug-in: a module named by an entry point of the `gridmgr` group
whose functions are marked `@hookimpl` (pluggy, as pytest and datasette use it). The core never lists
the built-ins; it asks the hooks:

    from gridmgr.plugins.hooks import hookimpl

    @hookimpl
    def gridmgr_layers():
        return [LAYER]

A hook returns a list (or None); the manager concatenates what the plug-ins return, in the order of
their entry-point names. `docs/architecture.md` ("Writing a layer") walks through one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:  # the registry imports this module; the name is for annotations only
    from gridmgr.plugins.registry import Layer

PROJECT = "gridmgr"
ENTRY_POINT_GROUP = "gridmgr"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Spec:
    """The hook specifications (each one a list the core gathers from every plug-in)."""

    @hookspec
    def gridmgr_layers(self) -> list[Layer] | None:
        """The layers this plug-in adds: fields, table, metrics, map style, popup and public fields."""


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
