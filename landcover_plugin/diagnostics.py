"""What Landcover can run on here: library versions, onnxruntime's execution providers (available, and
the one a session really gets for ``auto``), and the bundled models."""
from __future__ import annotations

import platform

from . import __version__


def diagnostics() -> dict:
    """A dict of versions, providers and bundled models (name → classes, bands, GSD, path or error)."""
    import onnxruntime as ort
    import rasterio
    from osgeo import gdal

    from .errors import LandcoverError
    from .model.adapter import OnnxModel, read_metadata
    from .model.registry import DEFAULT_MODEL, bundled_models

    models = {}
    for name, path in bundled_models().items():
        try:
            meta = read_metadata(path)
            models[name] = {"path": str(path), "classes": meta.num_classes, "bands": list(meta.input_bands or []),
                            "gsd_m": meta.gsd, "default": name == DEFAULT_MODEL}
        except LandcoverError as exc:
            models[name] = {"path": str(path), "error": str(exc)}
    used = None
    default = bundled_models().get(DEFAULT_MODEL)
    if default is not None:
        try:
            used = OnnxModel(default, "auto").provider
        except LandcoverError as exc:
            used = f"error: {exc}"
    return {
        "landcover": __version__, "python": platform.python_version(), "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "onnxruntime": ort.__version__,
        "onnxruntime_device": ort.get_device(), "available_providers": ort.get_available_providers(),
        "provider_used_for_auto": used, "gdal": gdal.__version__, "rasterio": rasterio.__version__, "models": models,
    }


def diagnostics_text(report: dict | None = None) -> str:
    """``diagnostics()`` as readable lines."""
    from .model.metadata import gsd_text

    d = report or diagnostics()
    lines = [f"Landcover {d['landcover']} — Python {d['python']} on {d['platform']} ({d['processor']})",
             f"onnxruntime {d['onnxruntime']} ({d['onnxruntime_device']} build); available execution providers: "
             f"{', '.join(d['available_providers'])}",
             f"execution provider used for device 'auto': {d['provider_used_for_auto']}",
             f"GDAL {d['gdal']}, rasterio {d['rasterio']}", "bundled models:"]
    for name, m in d["models"].items():
        if "error" in m:
            lines.append(f"  {name}: ERROR {m['error']}")
        else:
            lines.append(f"  {name}{' (default)' if m['default'] else ''}: {m['classes']} classes, bands "
                         f"{', '.join(m['bands']) or 'unnamed'}, GSD {gsd_text(m['gsd_m'])} — {m['path']}")
    return "\n".join(lines)
