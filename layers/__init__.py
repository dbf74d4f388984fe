"""The thematic layers (cases, parking, construction sites, billboards), installed as gridmgr.layers."""

if __name__ != "gridmgr.layers":  # pragma: no cover - `layers.x` beside `gridmgr.layers.x` doubles tables
    raise ImportError("import this package as gridmgr.layers, not " + __name__)
