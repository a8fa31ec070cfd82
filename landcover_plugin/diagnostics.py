"""What Landcover can run on here: library versions, onnxruntime's execution providers (available, and
the one a session really gets for ``auto``), and the bundled models."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

from . import __version__


def device_names() -> dict:
    """The CPU's model name and logical core count and, when ``nvidia-smi`` exists, the GPUs' names."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpus = []
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10).stdout
            gpus = [line.strip() for line in out.splitlines() if line.strip()]
        except (OSError, subprocess.SubprocessError):
            pass
    return {"cpu": f"{cpu}, {os.cpu_count()} logical cores", "gpus": gpus}


def diagnostics(added: dict[str, Path] | None = None) -> dict:
    """A dict of versions, devices, providers and models (name → classes, bands, GSD, path or error):
    the bundled ones and ``added`` (name → path, e.g. from the QGIS model manager)."""
    import onnxruntime as ort
    from osgeo import gdal

    from .errors import LandcoverError
    from .model.adapter import OnnxModel, read_metadata
    from .model.registry import DEFAULT_MODEL, bundled_models

    models = {}
    for name, path in {**bundled_models(), **(added or {})}.items():
        try:
            meta = read_metadata(path)
            models[name] = {"path": str(path), "classes": meta.num_classes, "bands": list(meta.input_bands or []),
                            "gsd_m": meta.gsd_m, "default": name == DEFAULT_MODEL, "added": name in (added or {})}
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
        "devices": device_names(), "onnxruntime": ort.__version__,
        "onnxruntime_device": ort.get_device(), "available_providers": ort.get_available_providers(),
        "provider_used_for_auto": used, "gdal": gdal.__version__, "models": models,
    }


def diagnostics_text(report: dict | None = None) -> str:
    """``diagnostics()`` as readable lines."""
    from .model.metadata import gsd_text

    d = report or diagnostics()
    lines = [f"Landcover {d['landcover']} — Python {d['python']} on {d['platform']}",
             f"CPU: {d['devices']['cpu']}; GPU: {', '.join(d['devices']['gpus']) or 'none found (no nvidia-smi)'}",
             f"onnxruntime {d['onnxruntime']} ({d['onnxruntime_device']} build); available execution providers: "
             f"{', '.join(d['available_providers'])}",
             f"execution provider used for device 'auto': {d['provider_used_for_auto']}",
             f"GDAL {d['gdal']}", "models (bundled, and added in QGIS):"]
    for name, m in d["models"].items():
        if "error" in m:
            lines.append(f"  {name}: ERROR {m['error']}")
        else:
            tag = " (default)" if m["default"] else " (added)" if m["added"] else ""
            lines.append(f"  {name}{tag}: {m['classes']} classes, bands "
                         f"{', '.join(m['bands']) or 'unnamed'}, GSD {gsd_text(m['gsd_m'])} — {m['path']}")
    return "\n".join(lines)
