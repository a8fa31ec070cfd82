"""Measures landcover change's honesty on real imagery and prints the README tables.

1. No change: 1536 px crops of the six FLAIR zones and the same crops shifted by (37, 53) px (so the
   tiles move), both classified with flair-rgb: changed and uncertain shares of the common area for
   each --min-confidence threshold. The default threshold is the smallest one that keeps every crop's
   change at or below 1 %.
2. Real change: FLAIR crops with a 512 px block pasted from another zone (woodland into vineyards,
   town into farmland, lagoon shore into woods and fields): the share of the block's differing pixels reported as
   changed (detection) and the change outside the block, per threshold.
3. Greyscale vs RGB: the held-out Dubai tile 3 images as 1-band luma classified with dubai-grey,
   against the colour originals classified with dubai-rgb (same scene: every change is the two
   models disagreeing).

Classifications are cached in out/change_bench/. Usage: .venv/bin/python bench/change_threshold.py [--json out/change_bench.json]
``--demo DIR`` only writes the README's example pair, DIR/before.tif and DIR/after.tif (the first paste).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from osgeo import gdal

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from landcover_plugin.change import ChangeParams, change  # noqa: E402
from landcover_plugin.engine.classify import ClassifyParams, classify  # noqa: E402
from landcover_plugin.model.registry import resolve_model  # noqa: E402

DATA = REPO.parent / "shared" / "data"
ZONES = DATA / "flair" / "zones"
OUT = REPO / "out" / "change_bench"
SIZE, SHIFT = 1536, (37, 53)
CROPS = {"Z1": [(1024, 256), (4096, 768)], "Z2": [(256, 256)], "Z3": [(1024, 256), (5120, 768)],
         "Z4": [(1024, 256), (512, 4096)], "Z5": [(1024, 256), (512, 4096)], "Z6": [(1024, 256), (5120, 768)]}
# (base zone, crop, pasted zone, source window x, y, what)
PASTES = [("Z6", (1024, 256), "Z2", (512, 1024), "woodland into vineyards"),
          ("Z6", (5120, 768), "Z4", (1024, 4096), "town into farmland"),
          ("Z1", (1024, 256), "Z5", (1024, 2048), "lagoon shore into woods and fields")]
BLOCK = (512, 512, 512)  # x, y, size of the pasted block in the crop
THRESHOLDS = [0.0, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9]


def crop(zone: str, x: int, y: int, name: str) -> Path:
    path = OUT / f"{name}.tif"
    if not path.exists():
        gdal.Translate(str(path), str(ZONES / f"{zone}_image.vrt"), srcWin=[x, y, SIZE, SIZE])
    return path


def digest(*files: Path) -> str:
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:12]


ENGINE = digest(*sorted((REPO / "landcover_plugin" / "engine").glob("*.py")))


def classified(image: Path, model: str | None = None) -> tuple[Path, Path]:
    """Class and confidence rasters of ``image``, kept in OUT per model file and engine source (named by
    their SHA-256), so a retrained model or a changed engine is run again and an unchanged pair is not."""
    stem = f"{image.stem}_{digest(resolve_model(model))}_{ENGINE}"
    classes, conf = image.with_name(stem + "_classes.tif"), image.with_name(stem + "_conf.tif")
    if not classes.exists():
        classify(ClassifyParams(image, classes, model, confidence=conf))
    return classes, conf


def curve(before: Path, after: Path, model: str | None = None, after_model: str | None = None, block=None) -> list[dict]:
    (cb, pb), (ca, pa) = classified(before, model), classified(after, after_model or model)
    rows = []
    for t in THRESHOLDS:
        out = OUT / "change.tif"
        r = change(ChangeParams(cb, ca, out, confidence_before=pb, confidence_after=pa, min_confidence=t))
        row = {"threshold": t, "changed": r.changed_percent, "uncertain": r.uncertain_percent}
        if block is not None:
            code = gdal.Open(str(out)).ReadAsArray()
            x, y, s = block
            inside = np.zeros(code.shape, bool)
            inside[y:y + s, x:x + s] = True
            uncertain = r.k * r.k + 1
            changed = (code > 0) & (code < uncertain)
            differ = changed | (code == uncertain)
            row["detection"] = 100.0 * changed[inside].sum() / max(differ[inside].sum(), 1)
            row["block_differ"] = 100.0 * differ[inside].mean()
            row["elsewhere"] = 100.0 * changed[~inside].sum() / (~inside & (code != r.nodata)).sum()
        rows.append(row)
    return rows


def pasted(base: Path, zone: str, x: int, y: int, name: str) -> Path:
    path = OUT / f"{name}.tif"
    if not path.exists():
        dst = gdal.GetDriverByName("GTiff").CreateCopy(str(path), gdal.Open(str(base)))
        bx, by, s = BLOCK
        block = gdal.Open(str(ZONES / f"{zone}_image.vrt")).ReadAsArray(x, y, s, s)
        for b in range(3):
            dst.GetRasterBand(b + 1).WriteArray(block[b], bx, by)
        dst = None
    return path


def grey(image: Path, name: str) -> Path:
    path = OUT / f"{name}.tif"
    if not path.exists():
        rgb = gdal.Open(str(image)).ReadAsArray().astype(np.float64)
        luma = np.clip(np.round(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]), 0, 255).astype(np.uint8)
        ds = gdal.GetDriverByName("GTiff").Create(str(path), luma.shape[1], luma.shape[0], 1, gdal.GDT_Byte)
        ds.GetRasterBand(1).WriteArray(luma)
        ds.GetRasterBand(1).SetColorInterpretation(gdal.GCI_GrayIndex)
        ds = None
    return path


def table(title: str, rows: dict[str, list[dict]], key: str) -> str:
    head = f"| {title} | " + " | ".join(f"{t:g}" for t in THRESHOLDS) + " |"
    lines = [head, "|" + "---|" * (len(THRESHOLDS) + 1)]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{x[key]:.2f}" for x in r) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path)
    parser.add_argument("--demo", type=Path, help="write the example pair DIR/before.tif, DIR/after.tif and stop")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.demo:
        zone, (x, y), src, (sx, sy), _ = PASTES[0]
        base = crop(zone, x, y, f"{zone}_{x}_{y}_a")
        after = pasted(base, src, sx, sy, f"{zone}_{x}_{y}_paste_{src}")
        args.demo.mkdir(parents=True, exist_ok=True)
        for source, name in ((base, "before.tif"), (after, "after.tif")):
            gdal.Translate(str(args.demo / name), str(source))
        return
    results: dict = {"no_change": {}, "paste": {}, "dubai": {}}
    for zone, spots in CROPS.items():
        for x, y in spots:
            name = f"{zone}_{x}_{y}"
            a = crop(zone, x, y, f"{name}_a")
            b = crop(zone, x + SHIFT[0], y + SHIFT[1], f"{name}_b")
            results["no_change"][name] = curve(a, b)
            print(name, [f"{r['changed']:.2f}" for r in results["no_change"][name]], flush=True)
    for zone, (x, y), src, (sx, sy), what in PASTES:
        base = crop(zone, x, y, f"{zone}_{x}_{y}_a")
        after = pasted(base, src, sx, sy, f"{zone}_{x}_{y}_paste_{src}")
        results["paste"][f"{zone} {what}"] = curve(base, after, block=BLOCK)
    for image in sorted((DATA / "dubai" / "tile_3" / "images").glob("*.jpg")):
        g = grey(image, f"dubai3_{image.stem}_grey")
        rgb = OUT / f"dubai3_{image.stem}_rgb.tif"
        if not rgb.exists():
            gdal.Translate(str(rgb), str(image))
        results["dubai"][image.stem] = curve(g, rgb, "dubai-grey", "dubai-rgb")
    (OUT / "change.tif").unlink(missing_ok=True)
    (OUT / "change.qml").unlink(missing_ok=True)
    Path(f"{OUT / 'change.tif'}.aux.xml").unlink(missing_ok=True)

    nc = results["no_change"]
    worst = {t: max(r[i]["changed"] for r in nc.values()) for i, t in enumerate(THRESHOLDS)}
    default = min(t for t, w in worst.items() if w <= 1.0)
    print(f"\nNo change (shift {SHIFT} px), changed % of the common area by --min-confidence:\n")
    print(table("crop", nc, "changed"))
    print("| **worst** | " + " | ".join(f"**{w:.2f}**" for w in worst.values()) + " |")
    print("\nUncertain % (classes differ below the threshold):\n")
    print(table("crop", nc, "uncertain"))
    print(f"\nSmallest threshold with every crop ≤ 1 %: {default:g}")
    print("\nReal change: detection % (block pixels whose maps differ, reported changed) / change elsewhere %:\n")
    print("| paste | " + " | ".join(f"{t:g}" for t in THRESHOLDS) + " |")
    print("|" + "---|" * (len(THRESHOLDS) + 1))
    for name, r in results["paste"].items():
        print(f"| {name} (maps differ on {r[0]['block_differ']:.1f} % of the block) | "
              + " | ".join(f"{x['detection']:.1f} / {x['elsewhere']:.2f}" for x in r) + " |")
    print("\nDubai grey (dubai-grey) vs RGB (dubai-rgb), tile 3: changed % / uncertain %:\n")
    print(table("image", results["dubai"], "changed"))
    d = results["dubai"]
    i = THRESHOLDS.index(default)
    total = {k: np.mean([r[i][k] for r in d.values()]) for k in ("changed", "uncertain")}
    disagree = np.mean([r[0]["changed"] for r in d.values()])
    print(f"\nDubai mean at {default:g}: changed {total['changed']:.2f} %, uncertain {total['uncertain']:.2f} %; "
          f"maps differ on {disagree:.2f} %")
    results["default"] = default
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
