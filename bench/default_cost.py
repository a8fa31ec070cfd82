"""End-to-end time of `landcover classify` with each model's default settings, against a reference
model and tiling ("today's" defaults), in rounds run back to back so both see the same machine load.

Usage: .venv/bin/python bench/default_cost.py MODEL [MODEL ...] [--reference models/flair-rgb.onnx]
       [--reference-tiling 512/128] [--raster ../shared/data/flair/zones/Z3_image.vrt] [--rounds 3]
Prints, per model, the median seconds (range) over the rounds and the median over rounds of its time
divided by the reference's time in the same round.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LANDCOVER = REPO / ".venv" / "bin" / "landcover"


def run(raster: str, model: str, extra: list[str], out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([str(LANDCOVER), "classify", raster, str(out), "--model", model, "--device", "cpu", "-q", *extra],
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--reference", default=str(REPO / "models" / "flair-rgb.onnx"))
    ap.add_argument("--reference-tiling", default="512/128")
    ap.add_argument("--raster", default=str(REPO.parent / "shared" / "data" / "flair" / "zones" / "Z3_image.vrt"))
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tile, overlap = args.reference_tiling.split("/")
    runs = [("reference", args.reference, ["--tile-size", tile, "--overlap", overlap])]
    runs += [(Path(m).name, m, []) for m in args.models]
    times: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for name, model, extra in runs:
                times[name].append(run(args.raster, model, extra, Path(tmp) / "out.tif"))
                print(f"  round {r + 1}: {name} {times[name][-1]:.1f} s", file=sys.stderr, flush=True)
    print(f"\n{Path(args.raster).name}, {args.rounds} rounds, `landcover classify --device cpu` end to end")
    print("| model | settings | median s (range) | × reference (median of per-round ratios) |")
    print("|---|---|---|---|")
    for name, _, _ in runs:
        t = times[name]
        settings = f"{tile}/{overlap}" if name == "reference" else "model defaults"
        print(f"| {name if name != 'reference' else Path(args.reference).name} | {settings} | {statistics.median(t):.1f} "
              f"({min(t):.1f}–{max(t):.1f}) | {statistics.median(a / b for a, b in zip(t, times['reference'])):.2f} |")


if __name__ == "__main__":
    main()
