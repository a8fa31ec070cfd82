"""A PNG preview: the input image and its class map side by side, with a legend of the classes present.

Usage: ``python -m landcover_plugin.preview INPUT CLASSES OUTPUT.png``. Large rasters are read
decimated (at most ``max_size`` px a side) by GDAL's overview/nearest reading.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import ColorInterp, Resampling


def _out_shape(ds, max_size: int) -> tuple[int, int]:
    scale = min(1.0, max_size / max(ds.width, ds.height))
    return max(1, round(ds.height * scale)), max(1, round(ds.width * scale))


def read_rgb(path: str | Path, max_size: int = 1200) -> np.ndarray:
    """``(H, W, 3)`` float in [0, 1]: R, G, B by colour interpretation (else bands 1–3, or grey),
    stretched between the 2nd and 98th percentiles when not 8-bit."""
    with rasterio.open(path) as ds:
        ci = list(ds.colorinterp)
        wanted = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
        bands = [ci.index(c) + 1 for c in wanted] if all(c in ci for c in wanted) else [1, 2, 3] if ds.count >= 3 else [1] * 3
        data = ds.read(bands, out_shape=(3, *_out_shape(ds, max_size)), resampling=Resampling.average).astype(np.float64)
    if data.max() > 255 or data.dtype.kind == "f":
        lo, hi = np.nanpercentile(data, [2, 98])
        data = (data - lo) / max(hi - lo, 1e-9)
    else:
        data = data / 255.0
    return np.clip(np.moveaxis(data, 0, -1), 0, 1)


def render(input_path: str | Path, class_path: str | Path, png: str | Path, max_size: int = 1200) -> Path:
    """Write the side-by-side preview to ``png`` and return its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    with rasterio.open(class_path) as ds:
        classes = ds.read(1, out_shape=_out_shape(ds, max_size), resampling=Resampling.nearest)
        cmap = ds.colormap(1)
        names = {int(k): v for k, v in json.loads(ds.tags().get("LANDCOVER_CLASSES", "{}")).items()}
        nodata = ds.nodata
        model = ds.tags().get("LANDCOVER_MODEL", "")
    rgba = np.zeros((*classes.shape, 4))
    for value in np.unique(classes):
        if value != nodata:
            rgba[classes == value] = np.array(cmap[int(value)]) / 255.0
    present = [v for v in sorted(names) if (classes == v).any()]
    share = {v: 100.0 * (classes == v).sum() / max((classes != nodata).sum(), 1) for v in present}
    fig, axes = plt.subplots(1, 2, figsize=(13, 6.2), dpi=110)
    axes[0].imshow(read_rgb(input_path, max_size))
    axes[0].set_title(Path(input_path).name)
    axes[1].imshow(rgba, interpolation="nearest")
    axes[1].set_title(f"land cover ({model})")
    for ax in axes:
        ax.set_axis_off()
    handles = [Patch(facecolor=np.array(cmap[v][:3]) / 255.0, edgecolor="#555555", label=f"{names[v]} ({share[v]:.1f} %)")
               for v in present]
    fig.legend(handles=handles, loc="center right", frameon=False, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.8, 1))
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m landcover_plugin.preview INPUT CLASSES OUTPUT.png")
    print(f"Wrote {render(*sys.argv[1:])}")
