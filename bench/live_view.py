"""View-to-result times of the QGIS live layer, measured in the real QGIS desktop under Xvfb.

Runs tests/qgis_plugin/desktop_live.py (the plugin from this checkout, a fresh profile, a 1366×768
map canvas over the FLAIR zone mosaic Z3 at 0.2 m/px) and prints, per view change, the seconds from
the change to the class layer showing it, what was classified and the UI thread's longest stall.
Screenshots go to --shots (``make screenshots`` uses docs/).

    .venv/bin/python bench/live_view.py [--shots DIR] [--json out/live_view.json]
"""
import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.qgis_plugin.test_desktop import run_desktop  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", default=str(REPO / "out" / "live"), help="folder for the screenshots")
    parser.add_argument("--json", default=str(REPO / "out" / "live_view.json"), help="report to write")
    parser.add_argument("--scene", default=str(REPO.parent / "shared/data/flair/zones/Z3_image.vrt"))
    args = parser.parse_args()
    shots = Path(args.shots).resolve()  # QGIS runs in a temporary folder
    shots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        report, _ = run_desktop(REPO, shots, Path(work), args.scene, REPO / "landcover_plugin/sample/flair_sample.tif")
    for leftover in ("sample_classes.tif", "sample_classes.tif.aux.xml", "sample_classes.qml", "sample_polygons.gpkg",
                     "sample_polygons.qml"):
        (shots / leftover).unlink(missing_ok=True)  # intermediate outputs of the vectorize screenshot
    if "error" in report:
        print(report["error"], file=sys.stderr)
        return 1
    print(f"QGIS desktop, canvas {report['canvas_px'][0]}×{report['canvas_px'][1]} px, {Path(args.scene).name}")
    print(f"{'view change':<32}{'seconds':>9}  what ran")
    for v in report["views"]:
        detail = v["status"].replace("\n", " ").removeprefix("Live: ")
        print(f"{v['view']:<32}{v['seconds']:>9.2f}  {detail}")
    print(f"longest UI-thread stall while live ran: {report['ui_max_gap_ms']:.0f} ms ({report['ui_ticks']} timer ticks)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
