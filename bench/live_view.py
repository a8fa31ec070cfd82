"""View-to-result times of the QGIS live layer, measured in the real QGIS desktop under Xvfb.

Runs tests/qgis_plugin/desktop_live.py (the plugin from this checkout, a fresh profile, a 1366×768
map canvas at 0.2 ground m per screen pixel) and prints, per view change, the seconds from the change
to the class layer showing it, what was classified and the UI thread's longest stall. The layer is the
FLAIR zone mosaic Z3 (a file), or with ``--web xyz`` an XYZ basemap of a 2048×1536 px crop of it served
over HTTP on 127.0.0.1 (gdal2tiles tiles), or with ``--web wms`` the same crop published as WMS by QGIS
Server on 127.0.0.1. Screenshots go to --shots (``make screenshots`` uses docs/).

    .venv/bin/python bench/live_view.py [--web xyz|wms] [--shots DIR] [--json out/live_view.json]
"""
import argparse
import json
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.qgis_plugin.test_desktop import run_desktop  # noqa: E402


def web_layer(kind: str, work: Path, stack: ExitStack, scene: Path) -> tuple[str, dict]:
    """Serve a crop of ``scene`` as an XYZ or WMS layer; returns (layer URI, extra desktop variables)."""
    from osgeo import gdal

    from tests.fixtures import crop
    from tests.web import MapServer, TileServer, xyz_tiles, xyz_uri

    ortho = crop(scene, work / "ortho.tif", 2048, 512, 2048, 1536)
    if kind == "xyz":
        mercator = xyz_tiles(ortho, work / "tiles")
        server = stack.enter_context(TileServer(work / "tiles"))
        uri, area = xyz_uri(server.url), mercator
        units = 0.2 / 0.7243  # Web Mercator metres per 0.2 ground m at 43.6° N
    else:
        (work / "server").mkdir(mode=0o700)
        server = stack.enter_context(MapServer(ortho, work / "server"))
        uri, area, units = server.uri, ortho, 0.2
    ds = gdal.Open(str(area))
    x0, dx, _, y1, _, dy = ds.GetGeoTransform()
    extent = f"{x0},{y1 + ds.RasterYSize * dy},{x0 + ds.RasterXSize * dx},{y1}"
    return uri, {"web": kind, "extent": extent, "units_per_px": units}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", default=str(REPO / "out" / "live"), help="folder for the screenshots")
    parser.add_argument("--json", default=str(REPO / "out" / "live_view.json"), help="report to write")
    parser.add_argument("--scene", default=str(REPO.parent / "shared/data/flair/zones/Z3_image.vrt"))
    parser.add_argument("--web", choices=("xyz", "wms"), help="classify a web layer serving a crop of the scene")
    args = parser.parse_args()
    shots = Path(args.shots).resolve()  # QGIS runs in a temporary folder
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work, ExitStack() as stack:
        scene, extra = args.scene, {}
        if args.web:
            scene, extra = web_layer(args.web, Path(work), stack, Path(args.scene))
        report, _ = run_desktop(REPO, shots, Path(work), scene, REPO / "landcover_plugin/sample/flair_sample.tif",
                                **extra)
    for leftover in ("sample_classes.tif", "sample_classes.tif.aux.xml", "sample_classes.qml", "sample_polygons.gpkg",
                     "sample_polygons.qml"):
        (shots / leftover).unlink(missing_ok=True)  # intermediate outputs of the vectorize screenshot
    if "error" in report:
        print(report["error"], file=sys.stderr)
        return 1
    what = f"{args.web.upper()} layer over a crop of {Path(args.scene).name}" if args.web else Path(args.scene).name
    print(f"QGIS desktop, canvas {report['canvas_px'][0]}×{report['canvas_px'][1]} px, {what}")
    print(f"{'view change':<32}{'seconds':>9}  what ran")
    for v in report["views"]:
        detail = v["status"].replace("\n", " ").removeprefix("Live: ")
        print(f"{v['view']:<32}{v['seconds']:>9.2f}  {detail}")
    print(f"longest UI-thread stall while live ran: {report['ui_max_gap_ms']:.0f} ms ({report['ui_ticks']} timer ticks); "
          f"longest UI-thread CPU time in a live slot: {report['ui_max_slot_cpu_ms']:.0f} ms")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
