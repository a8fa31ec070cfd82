"""Grid shift: does the class map depend on where the tiles fall?

Each validation block of a training config (the rightmost ``val_fraction`` of each scene's columns, or
the ``val_pairs`` images) is classified whole and cropped by an odd offset (default 173 px from the
left, 211 px from the top), so every window of the grid moves. Printed per tiling, window function and
test-time augmentation:

- **agreement**: share of pixels with the same class in both maps, leaving out ``--margin`` px (128)
  along the crop's new (left and top) edges, where the cropped raster lacks context;
- **seam ratio**: rate of class changes between neighbouring pixels within 2 px of the tiling's lines
  (across the line: left/right neighbours for vertical lines, up/down for horizontal ones) divided by
  the rate everywhere else, pooled over both maps on their own grids. Two sets of lines: inner window
  edges, and overlap mid-lines (where a centre-crop stitcher cuts); the table's ratio is the larger.
  1.0 = no seams;
- **cost**: pixels run through the network (padded tiles × TTA passes), relative to 512 px tiles
  with 128 px overlap without TTA: on the validation blocks themselves (narrow rasters, where large
  tiles waste more at the edges) and on a large raster (``--cost-raster``, default 8192×2560 px, a
  FLAIR zone); and the seconds of inference measured here (a shared 2-core machine: seconds are
  noisy, the pixel ratios are exact);
- **mIoU** and **OA** of the uncropped maps against the labels.

Blending is done here, over ``OnnxModel.predict``: ``hann`` is the engine's own window
(``engine.blend.tile_weights``; ``--engine`` runs the real ``classify`` pipeline instead, for the
default-settings figure), the others are candidates (all flat on sides touching the raster edge):
``tukey`` (flat centre, cosine tapers over the overlap), ``triangle`` (linear), ``gauss``
(σ = tile/6), ``centre`` (hard centre crop at the overlap mid-lines: GeoDeep/Deepness-style
stitching) and ``box`` (plain mean). TTA: ``none``, ``d4`` (the engine's 8 flips and rotations),
``rot180`` (the tile and its 180° rotation, 2 passes).

Usage: .venv/bin/python bench/grid_shift.py [--config models/flair-rgb.train.json]
       [--model models/flair-rgb.onnx] [--tilings 512/128 1024/128] [--windows hann tukey ...]
       [--tta none d4] [--offset 173 211] [--engine] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from landcover_plugin.engine.blend import tile_weights  # noqa: E402
from landcover_plugin.engine.windows import starts, window_rows  # noqa: E402
from landcover_plugin.metrics import confusion_matrix, scores  # noqa: E402
from landcover_plugin.model.adapter import OnnxModel  # noqa: E402
from landcover_plugin.train.config import load_config  # noqa: E402
from landcover_plugin.train.data import load_pairs  # noqa: E402

WINDOWS = ("hann", "tukey", "triangle", "gauss", "centre", "box")
REFERENCE = (512, 128)  # costs are relative to this tiling without TTA, on the same rasters


def taper(kind: str, at_start: bool, at_end: bool, size: int, overlap: int) -> np.ndarray:
    """1-D weights of a window function over ``size`` px, flat on a side that touches the raster edge."""
    j = np.arange(size) + 0.5
    if kind == "tukey":  # flat top; raised-cosine tapers over the overlap
        ramp = max(overlap, 1)
        w = np.minimum(1.0, np.minimum(j, size - j) / ramp)
        w = 0.5 - 0.5 * np.cos(np.pi * w)
    elif kind == "triangle":
        w = 1 - np.abs(2 * j / size - 1)
    elif kind == "gauss":
        w = np.exp(-0.5 * ((j - size / 2) / (size / 6)) ** 2)
    elif kind == "centre":  # keep the pixels closer to this tile's centre than to the next tile's
        half = overlap / 2
        w = ((j >= half) & (j <= size - half)).astype(float)
    elif kind == "box":
        w = np.ones(size)
    else:
        raise ValueError(kind)
    if at_start:
        w[: size // 2] = np.maximum(w[: size // 2], w.max())
    if at_end:
        w[size // 2:] = np.maximum(w[size // 2:], w.max())
    return np.maximum(w, 1e-6).astype(np.float32)


def weights(kind: str, win, width: int, height: int, overlap: int) -> np.ndarray:
    if kind == "hann":
        return tile_weights(win, width, height)
    return _weights(kind, win.row == 0, win.row + win.height >= height, win.height,
                    win.col == 0, win.col + win.width >= width, win.width, overlap)


@lru_cache(maxsize=64)
def _weights(kind, top, bottom, rows, left, right, cols, overlap) -> np.ndarray:
    return np.outer(taper(kind, top, bottom, rows, overlap), taper(kind, left, right, cols, overlap))


def predict(model: OnnxModel, x: np.ndarray, tta: str) -> np.ndarray:
    if tta == "none":
        return model.predict(x)
    if tta == "d4":
        return model.predict(x, tta=True)
    if tta == "rot180":
        p = model.predict(x)
        q = model.predict(np.ascontiguousarray(x[..., ::-1, ::-1]))[..., ::-1, ::-1]
        return (p + q) / 2
    raise ValueError(tta)


PASSES = {"none": 1, "rot180": 2, "d4": 8}


def blend(model: OnnxModel, image: np.ndarray, tile: int, overlap: int, tta: str, kinds: list[str],
          batch: int = 4) -> tuple[dict[str, np.ndarray], float, float]:
    """Class index maps ``{window kind: (H, W) uint8}``, network pixels run and inference seconds."""
    _, height, width = image.shape
    k = model.meta.num_classes
    sums = {kind: np.zeros((k, height, width), np.float32) for kind in kinds}
    wsum = {kind: np.zeros((height, width), np.float32) for kind in kinds}
    wins = [w for row in window_rows(width, height, tile, overlap) for w in row]
    pixels, seconds = 0.0, 0.0
    for i in range(0, len(wins), batch):
        group = wins[i:i + batch]
        x = np.stack([image[:, w.row:w.row + w.height, w.col:w.col + w.width] for w in group]).astype(np.float32)
        t = time.perf_counter()
        probs = predict(model, x, tta)
        seconds += time.perf_counter() - t
        ph, pw = model.padded_size(x.shape[2], x.shape[3])
        pixels += len(group) * ph * pw * PASSES[tta]
        for w, p in zip(group, probs):
            for kind in kinds:
                wt = weights(kind, w, width, height, overlap)
                sums[kind][:, w.row:w.row + w.height, w.col:w.col + w.width] += p * wt
                wsum[kind][w.row:w.row + w.height, w.col:w.col + w.width] += wt
    return {kind: sums[kind].argmax(0).astype(np.uint8) for kind in kinds}, pixels, seconds


def network_pixels(model: OnnxModel, width: int, height: int, tile: int, overlap: int,
                   origin: tuple[int, int] = (0, 0)) -> int:
    """Pixels the network runs on for one pass over a ``width`` × ``height`` raster (padded tiles)
    whose pixel (0, 0) has lattice index ``origin`` (``engine.windows``)."""
    return sum(int(np.prod(model.padded_size(w.height, w.width)))
               for row in window_rows(width, height, tile, overlap, origin) for w in row)


def mean_network_pixels(model: OnnxModel, width: int, height: int, tile: int, overlap: int) -> float:
    """``network_pixels`` averaged over every placement of a georeferenced raster on the window
    lattice (a raster's extent is arbitrary; the anchored grid adds at most one window row and column)."""
    stride = tile - overlap
    per_axis = [np.mean([len(starts(n, tile, overlap, o)) for o in range(stride)]) for n in (width, height)]
    return per_axis[0] * per_axis[1] * float(np.prod(model.padded_size(min(tile, height), min(tile, width))))


ORIGIN = (3_000_101, -24_000_057)  # lattice index (col, row) of the uncropped block's pixel (0, 0) (engine runs)


def engine_map(model_path: str, image: np.ndarray, tile: int, overlap: int, tta: bool, tmp: Path,
               value_to_index: np.ndarray, origin: tuple[int, int] | None, gsd: float | None) -> tuple[np.ndarray, float]:
    """The real classify pipeline on ``image`` written to a GeoTIFF: class indices and seconds. With
    ``origin`` the GeoTIFF is georeferenced (pixels of ``gsd`` m, 1 without, in UTM 31N when ``gsd`` is
    known) with its pixel (0, 0) at that lattice index, as a crop made by ``gdal_translate -srcwin`` or
    QGIS' Clip raster keeps the pixel grid; without, it has pixel coordinates only."""
    import rasterio
    from rasterio.transform import Affine

    from landcover_plugin.engine.classify import ClassifyParams, classify

    src, out = tmp / "block.tif", tmp / "classes.tif"
    geo = {}
    if origin is not None:
        size = gsd or 1.0
        geo = {"transform": Affine(size, 0, origin[0] * size, 0, -size, -origin[1] * size)}  # map y up
        if gsd:
            geo["crs"] = "EPSG:32631"
    with rasterio.open(src, "w", driver="GTiff", width=image.shape[2], height=image.shape[1], count=image.shape[0],
                       dtype=image.dtype, **geo) as dst:
        dst.write(image)
    result = classify(ClassifyParams(src, out, model_path, tile, overlap, device="cpu", tta=tta))
    with rasterio.open(out) as o:
        return value_to_index[o.read(1)], result.seconds


def lines(length: int, tile: int, overlap: int, origin: int = 0) -> tuple[set[int], set[int]]:
    """Inner window edges and overlap mid-lines along one axis (a line at ``c`` lies between px c-1 and c)."""
    s = starts(length, tile, overlap, origin)
    edges = ({a for a in s} | {a + min(tile, length) for a in s}) - {0, length}
    mids = {(b + a + tile) // 2 for a, b in zip(s, s[1:])}
    return edges, mids


def near(length: int, positions: set[int], radius: int = 2) -> np.ndarray:
    """Mask over boundaries 1..length-1 (between px j-1 and j) within ``radius`` px of a line."""
    j = np.arange(1, length)
    mask = np.zeros(length - 1, bool)
    for c in positions:
        mask |= np.abs(j - c) <= radius
    return mask


def change_counts(m: np.ndarray, tile: int, overlap: int, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """[[changes near, boundaries near, changes elsewhere, boundaries elsewhere] for edges, mid-lines]."""
    height, width = m.shape
    h = m[:, 1:] != m[:, :-1]
    v = m[1:, :] != m[:-1, :]
    out = np.zeros((2, 4), np.int64)
    (ex, mx), (ey, my) = lines(width, tile, overlap, origin[0]), lines(height, tile, overlap, origin[1])
    for i, (lx, ly) in enumerate(((ex, ey), (mx, my))):
        nx, ny = near(width, lx), near(height, ly)
        out[i] += [h[:, nx].sum(), h[:, nx].size, h[:, ~nx].sum(), h[:, ~nx].size]
        out[i] += [v[ny].sum(), v[ny].size, v[~ny].sum(), v[~ny].size]
    return out


def seam_ratio(c: np.ndarray) -> float:
    return float((c[0] / max(c[1], 1)) / max(c[2] / max(c[3], 1), 1e-12))


def val_blocks(config) -> list[tuple[str, np.ndarray, np.ndarray]]:
    blocks = []
    for p in load_pairs(config):
        if p.split_col < p.image.shape[2]:
            blocks.append((Path(p.name).name, np.ascontiguousarray(p.image[:, :, p.split_col:]),
                           np.ascontiguousarray(p.label[:, p.split_col:])))
    return blocks


def mosaic(blocks: list[tuple[str, np.ndarray, np.ndarray]]) -> tuple[str, np.ndarray, np.ndarray]:
    """One raster of ``rows × cols`` blocks (rows = floor(sqrt(n)), cols = n // rows; the rest left out),
    each cut to the smallest block's height and width from its top-left corner: for configs whose
    validation images are too small for a tiling to matter (Dubai: 509–682 px)."""
    rows = int(np.sqrt(len(blocks)))
    cols = len(blocks) // rows
    h = min(image.shape[1] for _, image, _ in blocks)
    w = min(image.shape[2] for _, image, _ in blocks)
    cells = [(image[:, :h, :w], label[:h, :w]) for _, image, label in blocks[:rows * cols]]
    image = np.concatenate([np.concatenate([c[0] for c in cells[r * cols:(r + 1) * cols]], axis=2) for r in range(rows)],
                           axis=1)
    label = np.concatenate([np.concatenate([c[1] for c in cells[r * cols:(r + 1) * cols]], axis=1) for r in range(rows)])
    return f"mosaic of {rows}×{cols} blocks of {w}×{h} px", np.ascontiguousarray(image), np.ascontiguousarray(label)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=str(REPO / "models" / "flair-rgb.train.json"))
    ap.add_argument("--model", default=str(REPO / "models" / "flair-rgb.onnx"))
    ap.add_argument("--tilings", nargs="+", default=["512/128"])
    ap.add_argument("--windows", nargs="+", default=["hann"], choices=WINDOWS)
    ap.add_argument("--tta", nargs="+", default=["none"], choices=tuple(PASSES))
    ap.add_argument("--offset", nargs=2, type=int, default=[173, 211], metavar=("DX", "DY"))
    ap.add_argument("--margin", type=int, default=128)
    ap.add_argument("--engine", action="store_true", help="run the real classify pipeline (Hann window only)")
    ap.add_argument("--pixel-only", action="store_true",
                    help="with --engine: write the blocks without a georeference, so the window grid cannot be "
                         "anchored to a map lattice and moves with the crop (the model's own stability)")
    ap.add_argument("--label", default="", help="a name for the model in the table")
    ap.add_argument("--cost-raster", default="8192x2560", help="WIDTHxHEIGHT of the large raster for the cost ratio")
    ap.add_argument("--mosaic", action="store_true", help="classify the validation blocks as one mosaic (see mosaic())")
    ap.add_argument("--json")
    args = ap.parse_args()
    config = load_config(args.config)
    model = OnnxModel(args.model, "cpu")
    k = model.meta.num_classes
    value_to_index = np.full(256, 255, np.uint8)
    for i, v in enumerate(model.meta.class_values):
        value_to_index[v] = i
    dx, dy, margin = *args.offset, args.margin
    blocks = [mosaic(val_blocks(config))] if args.mosaic else val_blocks(config)
    kinds = ["hann"] if args.engine else args.windows
    georef = args.engine and not args.pixel_only
    origins = (ORIGIN, (ORIGIN[0] + dx, ORIGIN[1] + dy)) if georef else ((0, 0), (0, 0))
    ttas = [t for t in args.tta if not args.engine or t in ("none", "d4")]
    stats = {}
    for tiling in args.tilings:
        tile, overlap = map(int, tiling.split("/"))
        for tta in ttas:
            acc = {kind: {"same": 0, "compared": 0, "changes": np.zeros((2, 4), np.int64),
                          "cm": np.zeros((k, k), np.int64)} for kind in kinds}
            pixels = ref_pixels = seconds = 0.0
            for name, image, label in blocks:
                crop = np.ascontiguousarray(image[:, dy:, dx:])
                if args.engine:
                    with tempfile.TemporaryDirectory() as tmp:
                        a, s1 = engine_map(args.model, image, tile, overlap, tta == "d4", Path(tmp), value_to_index,
                                           origins[0] if georef else None, config.gsd)
                        b, s2 = engine_map(args.model, crop, tile, overlap, tta == "d4", Path(tmp), value_to_index,
                                           origins[1] if georef else None, config.gsd)
                    maps_a, maps_b, sec = {"hann": a}, {"hann": b}, s1 + s2
                    pixels += sum(network_pixels(model, im.shape[2], im.shape[1], tile, overlap, o) * PASSES[tta]
                                  for im, o in zip((image, crop), origins))
                else:
                    maps_a, p1, s1 = blend(model, image, tile, overlap, tta, kinds)
                    maps_b, p2, s2 = blend(model, crop, tile, overlap, tta, kinds)
                    pixels += p1 + p2
                    sec = s1 + s2
                seconds += sec
                ref_pixels += sum(network_pixels(model, im.shape[2], im.shape[1], *REFERENCE) for im in (image, crop))
                for kind in kinds:
                    a, b = maps_a[kind], maps_b[kind]
                    region_a = a[dy + margin:, dx + margin:]
                    region_b = b[margin:, margin:]
                    acc[kind]["same"] += int((region_a == region_b).sum())
                    acc[kind]["compared"] += region_a.size
                    acc[kind]["changes"] += (change_counts(a, tile, overlap, origins[0])
                                             + change_counts(b, tile, overlap, origins[1]))
                    acc[kind]["cm"] += confusion_matrix(label, a, k)
                print(f"  {name} {tiling} tta={tta}: {sec:.1f} s", file=sys.stderr, flush=True)
            cost = pixels / ref_pixels
            cw, ch = map(int, args.cost_raster.split("x"))
            large = (mean_network_pixels(model, cw, ch, tile, overlap) if georef
                     else network_pixels(model, cw, ch, tile, overlap))
            cost_large = large * PASSES[tta] / network_pixels(model, cw, ch, *REFERENCE)
            for kind in kinds:
                a = acc[kind]
                s = scores(a["cm"])
                engine = ("engine, map lattice" if georef else "engine, pixel only") if args.engine else ""
                key = f"{tiling} {kind}{f' ({engine})' if engine else ''} tta={tta}"
                stats[key] = {
                    "tiling": tiling, "window": kind, "tta": tta, "engine": args.engine, "georeferenced": georef,
                    "agreement": a["same"] / a["compared"],
                    "seam_ratio_edges": seam_ratio(a["changes"][0]), "seam_ratio_midlines": seam_ratio(a["changes"][1]),
                    "change_rate": float(a["changes"][0, [0, 2]].sum() / a["changes"][0, [1, 3]].sum()),
                    "cost": cost, "cost_large_raster": cost_large, "seconds": seconds,
                    "miou": s["miou"], "overall_accuracy": s["overall_accuracy"],
                    "iou": dict(zip(model.meta.class_names, s["iou"])),
                }
                r = stats[key]
                print(f"  => {key}: agreement {r['agreement']:.4f}, seam {r['seam_ratio_edges']:.2f}/"
                      f"{r['seam_ratio_midlines']:.2f}, cost {cost:.2f}, mIoU {r['miou']:.4f}", file=sys.stderr, flush=True)
    label = args.label or Path(args.model).stem
    what = blocks[0][0] if args.mosaic else f"{len(blocks)} validation blocks"
    print(f"\n{label}: {what} of {Path(args.config).name}, crop offset ({dx}, {dy}) px, "
          f"margin {margin} px")
    print(f"| model | tiling | window | TTA | agreement | seam ratio (edges / mid-lines) | cost: blocks, {args.cost_raster} | "
          "inference s | mIoU | OA |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in stats.values():
        seam = max(r["seam_ratio_edges"], r["seam_ratio_midlines"])
        engine = ("engine, map lattice" if r["georeferenced"] else "engine, pixel only") if r["engine"] else ""
        print(f"| {label} | {r['tiling']} | {r['window']}{f' ({engine})' if engine else ''} | {r['tta']} | "
              f"**{r['agreement']:.4f}** | {seam:.2f} ({r['seam_ratio_edges']:.2f} / {r['seam_ratio_midlines']:.2f}) | "
              f"{r['cost']:.2f}×, {r['cost_large_raster']:.2f}× | {r['seconds']:.0f} | {r['miou']:.4f} | "
              f"{r['overall_accuracy']:.4f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"model": args.model, "config": args.config, "label": label,
                                               "offset": [dx, dy], "margin": margin, "results": stats}, indent=2))


if __name__ == "__main__":
    main()
