"""What `landcover finetune` gains on imagery the model never saw, with corrections a user could draw.

The scene: a window of a FLAIR zone (0.2 m aerial orthophoto, Hérault) classified with `dubai-rgb`
(trained on satellite imagery of Dubai), its FLAIR reference mapped onto dubai-rgb's classes:
1 building → building; 2 pervious surface, 4 bare soil, 12 plowed land → land (unpaved); 3 impervious
surface → road; 5 water → water; 6–11 (coniferous, deciduous, brushwood, vineyard, herbaceous,
agricultural) → vegetation; 13–19 are not scored.

Corrections are simulated as a user would draw them: small squares (``--square`` px) where the
reference is uniform (one class over the whole square), ``--per-class`` of each class, placed at random
(``--seed``) in one half of the window (``--train-half``) and written to a GeoPackage with the class
names in the field ``class``. `landcover finetune` adapts the model on them (the default budget unless
``--minutes``/``--steps``), then the other half is classified with the original and the adapted model
and scored against the reference: mIoU over the classes present there, per-class IoU, OA.

    .venv/bin/python bench/finetune_gain.py                      # the README figure (Z4, default budget)
    .venv/bin/python bench/finetune_gain.py --steps 40 --set distill=0   # a variant
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from osgeo import gdal, ogr, osr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"
FLAIR_TO_DUBAI = {1: 1, 2: 2, 4: 2, 12: 2, 3: 3, 5: 5, 6: 4, 7: 4, 8: 4, 9: 4, 10: 4, 11: 4}
MAPPINGS = {"dubai": FLAIR_TO_DUBAI,  # FLAIR codes onto dubai-rgb's classes
            "flair": {**{c: c for c in range(1, 13)}, **{c: 13 for c in range(13, 20)}}}  # onto flair-rgb's (13-19: other)


def mapped_reference(mask: np.ndarray, mapping: dict[int, int]) -> np.ndarray:
    lut = np.full(256, 255, np.uint8)
    for code, value in mapping.items():
        lut[code] = value
    return lut[mask]


def squares(reference: np.ndarray, rows: tuple[int, int], cols: tuple[int, int], size: int, per_class: int,
            values: list[int], seed: int, gap: int = 8) -> list[tuple[int, int, int]]:
    """``(value, row, col)`` of squares of ``size`` px where ``reference`` is one class, ``per_class`` per class
    value (fewer when the half has not that many), inside ``rows`` × ``cols``, not touching each other."""
    rng = np.random.default_rng(seed)
    taken = np.zeros(reference.shape, bool)
    found: list[tuple[int, int, int]] = []
    for value in values:
        n, tries = 0, 0
        ys, xs = np.nonzero(reference[rows[0]:rows[1] - size, cols[0]:cols[1] - size] == value)
        while n < per_class and tries < 4000 and len(ys):
            tries += 1
            i = rng.integers(len(ys))
            r, c = int(ys[i]) + rows[0], int(xs[i]) + cols[0]
            block = reference[r:r + size, c:c + size]
            if (block == value).all() and not taken[max(0, r - gap):r + size + gap, max(0, c - gap):c + size + gap].any():
                taken[r:r + size, c:c + size] = True
                found.append((value, r, c))
                n += 1
    return found


def write_squares(path: Path, found: list[tuple[int, int, int]], size: int, geotransform, wkt: str, names: dict[int, str]):
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromWkt(wkt)
    layer = ds.CreateLayer("corrections", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTString))
    x0, dx, _, y0, _, dy = geotransform
    for value, r, c in found:
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for cc, rr in ((c, r), (c + size, r), (c + size, r + size), (c, r + size), (c, r)):
            ring.AddPoint_2D(x0 + cc * dx, y0 + rr * dy)
        poly = ogr.Geometry(ogr.wkbPolygon)
        poly.AddGeometry(ring)
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField("class", names[value])
        feature.SetGeometry(poly)
        layer.CreateFeature(feature)
    ds = None


def score(pred: np.ndarray, ref: np.ndarray, values: list[int]) -> dict:
    from landcover_plugin.metrics import scores

    keep = (ref != 255) & np.isin(pred, values)
    index = np.full(256, 0, np.int64)
    for i, v in enumerate(values):
        index[v] = i
    k = len(values)
    cm = np.bincount(index[ref[keep]] * k + index[pred[keep]], minlength=k * k).reshape(k, k)
    s = scores(cm)
    return {"miou": s["miou"], "overall_accuracy": s["overall_accuracy"],
            "iou": {v: (None if not s["present"][i] else round(s["iou"][i], 4)) for i, v in enumerate(values)}}


def classify_array(image: Path, model: str, out: Path) -> np.ndarray:
    from landcover_plugin.engine.classify import ClassifyParams, classify

    classify(ClassifyParams(input=str(image), output=str(out), model=model))
    ds = gdal.Open(str(out))
    data = ds.ReadAsArray()
    ds = None
    return data


def run(args, work: Path) -> dict:
    from landcover_plugin.model.adapter import read_metadata
    from landcover_plugin.model.registry import resolve_model

    meta = read_metadata(resolve_model(args.model))
    names = dict(zip(meta.class_values, meta.class_names))
    col, row, width, height = args.window
    image = work / f"{args.zone}_window.tif"
    gdal.Translate(str(image), str(SHARED / f"flair/zones/{args.zone}_image.vrt"), srcWin=[col, row, width, height])
    mask_ds = gdal.Translate("", str(SHARED / f"flair/zones/{args.zone}_mask.vrt"), srcWin=[col, row, width, height], format="MEM")
    reference = mapped_reference(mask_ds.ReadAsArray(), MAPPINGS[args.mapping])
    ds = gdal.Open(str(image))
    gt, wkt = ds.GetGeoTransform(), ds.GetProjection()
    ds = None
    halves = {"top": ((0, height // 2), (0, width)), "bottom": ((height // 2, height), (0, width)),
              "left": ((0, height), (0, width // 2)), "right": ((0, height), (width // 2, width))}
    other = {"top": "bottom", "bottom": "top", "left": "right", "right": "left"}[args.train_half]
    (tr, tc), (sr, sc) = halves[args.train_half], halves[other]
    values = sorted(names)
    drawn_values = [v for v in values if not args.draw or names[v] in args.draw or str(v) in args.draw]
    found = squares(reference, tr, tc, args.square, args.per_class, drawn_values, args.seed)
    labels = work / "corrections.gpkg"
    write_squares(labels, found, args.square, gt, wkt, names)
    drawn = {names[v]: sum(1 for f in found if f[0] == v) for v in drawn_values}
    print(f"{len(found)} squares of {args.square} px in the {args.train_half} half: {drawn}", flush=True)
    adapted = work / "adapted.onnx"
    cmd = [str(REPO / ".venv/bin/landcover"), "finetune", str(image), str(labels), str(adapted), "--model", args.model,
           "--seed", str(args.seed)]
    if args.minutes:
        cmd += ["--minutes", str(args.minutes)]
    if args.steps:
        cmd += ["--steps", str(args.steps)]
    for item in args.set:
        cmd += ["--set", item]
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    minutes = (time.perf_counter() - started) / 60
    if proc.returncode != 0:
        raise SystemExit(f"finetune failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    print(proc.stdout, flush=True)
    scored = work / "scored_half.tif"
    gdal.Translate(str(scored), str(image), srcWin=[sc[0], sr[0], sc[1] - sc[0], sr[1] - sr[0]])
    ref = reference[sr[0]:sr[1], sc[0]:sc[1]]
    before = score(classify_array(scored, args.model, work / "before.tif"), ref, values)
    after = score(classify_array(scored, str(adapted), work / "after.tif"), ref, values)
    present = [names[v] for v in values if before["iou"][v] is not None]
    return {"zone": args.zone, "window": args.window, "model": args.model, "train_half": args.train_half,
            "scored_half": other, "squares": drawn, "square_px": args.square, "finetune_command": " ".join(cmd[1:]),
            "finetune_minutes": round(minutes, 2), "finetune_summary": proc.stdout.strip(), "classes_scored": present,
            "before": before, "after": after, "load_average": os.getloadavg(), "cpus": os.cpu_count()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zone", default="Z4")
    parser.add_argument("--window", type=lambda t: tuple(int(v) for v in t.split(",")), default=(0, 0, 2560, 4096),
                        help="col,row,width,height of the zone (default 0,0,2560,4096)")
    parser.add_argument("--model", default="dubai-rgb")
    parser.add_argument("--mapping", default="dubai", choices=sorted(MAPPINGS),
                        help="FLAIR codes onto the model's class values: dubai (default) or flair (flair-rgb's own)")
    parser.add_argument("--draw", type=lambda t: t.split(","), help="draw only these classes (names or values, comma-separated)")
    parser.add_argument("--train-half", default="right", choices=("top", "bottom", "left", "right"),
                        help="the half the corrections are drawn in (default right; the other half is scored)")
    parser.add_argument("--square", type=int, default=40, help="square edge in px (default 40 = 8 m)")
    parser.add_argument("--per-class", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--set", action="append", default=[])
    parser.add_argument("--keep", type=Path, help="keep the files in this folder")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not (SHARED / "flair/zones").is_dir():
        print(f"skipped: {SHARED} not found")
        return 0
    with tempfile.TemporaryDirectory(prefix="finetune-gain-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = run(args, work)
    b, a = result["before"], result["after"]
    print(f"\nOther ({result['scored_half']}) half, classes {', '.join(result['classes_scored'])}: mIoU {b['miou']:.3f} → "
          f"{a['miou']:.3f}, OA {b['overall_accuracy']:.3f} → {a['overall_accuracy']:.3f}; fine-tuning took "
          f"{result['finetune_minutes']:.1f} min (load average {result['load_average'][0]:.1f} on {result['cpus']} CPUs)")
    for v in b["iou"]:
        if b["iou"][v] is not None:
            print(f"  class {v}: IoU {b['iou'][v]:.3f} → {a['iou'][v]:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
