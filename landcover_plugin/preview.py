"""A PNG preview: the input image and its class map side by side, with a legend of the classes present.

Usage: ``python -m landcover_plugin.preview INPUT CLASSES OUTPUT.png``. Large rasters are read
decimated (at most ``max_size`` px a side) by GDAL's overview/nearest reading.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from osgeo import gdal

from .engine.reader import color_names, open_raster
from .engine.writer import read_classes_tag


def _out_shape(ds: gdal.Dataset, max_size: int) -> tuple[int, int]:
    scale = min(1.0, max_size / max(ds.RasterXSize, ds.RasterYSize))
    return max(1, round(ds.RasterYSize * scale)), max(1, round(ds.RasterXSize * scale))


def _read(ds: gdal.Dataset, bands: list[int], max_size: int, resampling: str) -> np.ndarray:
    h, w = _out_shape(ds, max_size)
    data = ds.ReadAsArray(0, 0, ds.RasterXSize, ds.RasterYSize, buf_xsize=w, buf_ysize=h, band_list=bands,
                          resample_alg=getattr(gdal, f"GRIORA_{resampling}"))
    return data[None] if data.ndim == 2 else data


def read_rgb(path: str | Path, max_size: int = 1200) -> np.ndarray:
    """``(H, W, 3)`` float in [0, 1]: R, G, B by colour interpretation (else bands 1–3, or grey),
    stretched between the 2nd and 98th percentiles when not 8-bit."""
    ds = open_raster(path)
    ci = color_names(ds)
    wanted = ["red", "green", "blue"]
    bands = [ci.index(c) + 1 for c in wanted] if all(c in ci for c in wanted) else [1, 2, 3] if ds.RasterCount >= 3 else [1] * 3
    data = _read(ds, bands, max_size, "Average").astype(np.float64)
    if data.max() > 255 or gdal.GetDataTypeName(ds.GetRasterBand(1).DataType).startswith("Float"):
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

    ds = open_raster(class_path, "class raster")
    classes = _read(ds, [1], max_size, "NearestNeighbour")[0]
    table = ds.GetRasterBand(1).GetColorTable()
    cmap = {i: table.GetColorEntry(i) for i in range(table.GetCount())} if table else {}
    names = read_classes_tag(ds, str(class_path))
    nodata = ds.GetRasterBand(1).GetNoDataValue()
    model = ds.GetMetadataItem("LANDCOVER_MODEL") or ""
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
    print(f"Wrote {render(sys.argv[1], sys.argv[2], sys.argv[3])}")
