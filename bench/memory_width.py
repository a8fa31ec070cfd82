"""Peak memory against raster width and height: `landcover classify` (default settings) on a VRT
100,000 px wide × 1,024 px tall and on one 1,024 px wide × 100,000 px tall, both repeating a real
FLAIR strip (zone Z3, 0.2 m RGB), each run as a process of its own whose peak RSS is read from the
kernel (``wait4``'s ``ru_maxrss``: the process itself, start-up, model and writing included).

Usage: .venv/bin/python bench/memory_width.py [--length 100000] [--side 1024] [--zone Z3] [--json out.json]
       [--keep DIR] [-- EXTRA CLASSIFY ARGS]
The limit the engine must keep is 1 GB for both shapes (issue 14); the script exits 1 when a run
exceeds ``--limit-gb`` (default 1.0).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ZONES = REPO.parent / "shared" / "data" / "flair" / "zones"


def repeating_vrt(source: Path, path: Path, width: int, height: int, strip: tuple[int, int, int, int]) -> Path:
    """A ``width`` × ``height`` VRT tiling the window ``strip`` (col, row, w, h) of ``source`` left to right and
    top to bottom (the last copies cropped), georeferenced as ``source`` at its origin."""
    from osgeo import gdal

    ds = gdal.Open(str(source))
    gt, wkt = ds.GetGeoTransform(), ds.GetProjection()
    names = [gdal.GetColorInterpretationName(ds.GetRasterBand(b + 1).GetColorInterpretation()) for b in range(ds.RasterCount)]
    ds = None
    col, row, sw, sh = strip
    sources = []
    for y in range(0, height, sh):
        for x in range(0, width, sw):
            w, h = min(sw, width - x), min(sh, height - y)
            sources.append(f'<SrcRect xOff="{col}" yOff="{row}" xSize="{w}" ySize="{h}"/>'
                           f'<DstRect xOff="{x}" yOff="{y}" xSize="{w}" ySize="{h}"/>')
    bands = "".join(
        f'<VRTRasterBand dataType="Byte" band="{b}"><ColorInterp>{name}</ColorInterp>' + "".join(
            f'<SimpleSource><SourceFilename relativeToVRT="0">{source}</SourceFilename><SourceBand>{b}</SourceBand>'
            f'{rects}</SimpleSource>' for rects in sources) + "</VRTRasterBand>"
        for b, name in zip(range(1, 4), names))
    srs = wkt.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    path.write_text(f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>{srs}</SRS>'
                    f'<GeoTransform>{", ".join(map(str, gt))}</GeoTransform>{bands}</VRTDataset>')
    return path


def run(cmd: list[str]) -> tuple[float, float, int]:
    """Run ``cmd``; wall seconds, peak RSS of that process (GB, 10⁹ bytes) and exit status."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        print(err, file=sys.stderr)
    return seconds, usage.ru_maxrss * 1024 / 1e9, proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=100_000, help="the long side, px (default 100000)")
    parser.add_argument("--side", type=int, default=1024, help="the short side, px (default 1024)")
    parser.add_argument("--zone", default="Z3", help="FLAIR zone whose mosaic is repeated (default Z3)")
    parser.add_argument("--limit-gb", type=float, default=1.0, help="peak RSS allowed (default 1.0 GB)")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    parser.add_argument("--keep", type=Path, help="write the VRTs and outputs here and keep them")
    parser.add_argument("--only", choices=("wide", "tall"), help="measure one shape only")
    parser.add_argument("extra", nargs="*", help="further `landcover classify` arguments (after --)")
    args = parser.parse_args(argv)
    source = ZONES / f"{args.zone}_image.vrt"
    if not source.exists():
        print(f"skipped: {source} is absent (the real data sits beside the repository)", file=sys.stderr)
        return 0
    from osgeo import gdal

    ds = gdal.Open(str(source))
    zw, zh = ds.RasterXSize, ds.RasterYSize
    ds = None
    shapes = {"wide": (args.length, args.side, (0, 0, zw, min(args.side, zh))),
              "tall": (args.side, args.length, (0, 0, min(args.side, zw), zh))}
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name, (width, height, strip) in shapes.items():
            if args.only and name != args.only:
                continue
            vrt = repeating_vrt(source, folder / f"{name}_{width}x{height}.vrt", width, height, strip)
            out = folder / f"{name}_classes.tif"
            cmd = [str(REPO / ".venv" / "bin" / "landcover"), "classify", str(vrt), str(out), "-q", *args.extra]
            seconds, rss, code = run(cmd)
            results.append({"shape": name, "width": width, "height": height, "megapixels": width * height / 1e6,
                            "peak_rss_gb": round(rss, 3), "seconds": round(seconds, 1), "exit": code,
                            "command": " ".join(cmd)})
            if not args.keep:
                out.unlink(missing_ok=True)
                out.with_suffix(".qml").unlink(missing_ok=True)
                Path(f"{out}.aux.xml").unlink(missing_ok=True)
    print(f"Peak RSS of `landcover classify` (default settings, flair-rgb), {args.zone} repeated; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"{'raster':<22}{'MP':>8}{'peak RSS':>12}{'seconds':>10}{'MP/s':>8}")
    for r in results:
        print(f"{r['width']:>9,} × {r['height']:<10,}{r['megapixels']:>8.1f}{r['peak_rss_gb']:>9.3f} GB"
              f"{r['seconds']:>10.1f}{r['megapixels'] / r['seconds']:>8.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"limit_gb": args.limit_gb, "runs": results}, indent=2))
    failed = [r for r in results if r["exit"] != 0 or r["peak_rss_gb"] >= args.limit_gb]
    for r in failed:
        print(f"FAILED: {r['shape']} exit {r['exit']}, peak RSS {r['peak_rss_gb']:.3f} GB (limit {args.limit_gb} GB)",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
