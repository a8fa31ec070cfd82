"""What Landcover can run on here: its Python dependencies (what is missing and how to fix it), library
versions, onnxruntime's execution providers (available, and the one a session really gets for
``auto``), and the bundled models. Works without onnxruntime and without GDAL."""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

from . import __version__
from .dependencies import ONNXRUNTIME_RANGE, likely_python


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


def diagnostics(added: dict[str, Path] | None = None, private_dir: str | Path | None = None) -> dict:
    """A dict of versions, dependencies, devices, providers and models (name → classes, bands, GSD,
    path or error): the bundled ones and ``added`` (name → path, e.g. from the QGIS model manager).
    Works without onnxruntime or GDAL: ``dependencies`` then says what is missing, and models are
    listed without their metadata. ``private_dir``: Landcover's packages folder in the QGIS profile."""
    from .dependencies import probe
    from .model.registry import DEFAULT_MODEL, bundled_models

    report = probe(private_dir, deep=True)
    ort_usable = report.get("onnxruntime").problem is None  # type: ignore[union-attr]
    gdal = report.get("GDAL")
    result: dict = {
        "landcover": __version__, "python": platform.python_version(), "executable": likely_python(),
        "platform": platform.platform(), "devices": device_names(), "dependencies": report.to_dict(),
        "ready": report.ready, "missing": [] if report.ready else [f.dist for f in report.missing],
        "gdal": gdal.version if gdal and gdal.problem is None else None,
        "onnxruntime": None, "onnxruntime_device": None, "available_providers": [], "provider_used_for_auto": None,
    }
    models = {}
    if ort_usable:
        import onnxruntime as ort

        from .errors import LandcoverError
        from .model.adapter import OnnxModel, read_metadata

        result.update(onnxruntime=ort.__version__, onnxruntime_device=ort.get_device(),
                      available_providers=ort.get_available_providers())
        for name, path in {**bundled_models(), **(added or {})}.items():
            try:
                meta = read_metadata(path)
                models[name] = {"path": str(path), "classes": meta.num_classes, "bands": list(meta.input_bands or []),
                                "gsd_m": meta.gsd_m, "default": name == DEFAULT_MODEL, "added": name in (added or {})}
            except LandcoverError as exc:
                models[name] = {"path": str(path), "error": str(exc)}
        default = bundled_models().get(DEFAULT_MODEL)
        if default is not None:
            try:
                result["provider_used_for_auto"] = OnnxModel(default, "auto").provider
            except LandcoverError as exc:
                result["provider_used_for_auto"] = f"error: {exc}"
    else:
        for name, path in {**bundled_models(), **(added or {})}.items():
            size = Path(path).stat().st_size if Path(path).exists() else None
            models[name] = {"path": str(path), "unread": "metadata not read: onnxruntime is missing",
                            "size_mb": round(size / 2 ** 20, 1) if size else None, "default": name == DEFAULT_MODEL,
                            "added": name in (added or {})}
    result["models"] = models
    return result


def diagnostics_text(report: dict | None = None, fix: str | None = None) -> str:
    """``diagnostics()`` as readable lines. ``fix`` says how to install what is missing (the host
    knows: the QGIS plugin names its installer); default: pip for this interpreter."""
    from .dependencies import Report, probe_lines
    from .model.metadata import gsd_text

    d = report or diagnostics()
    deps = d["dependencies"]
    lines = [f"Landcover {d['landcover']} — Python {d['python']} ({d['executable']}) on {d['platform']}",
             f"CPU: {d['devices']['cpu']}; GPU: {', '.join(d['devices']['gpus']) or 'none found (no nvidia-smi)'}"]
    if not d["ready"]:
        lines.append(f"MISSING: {', '.join(d['missing'])} — Landcover cannot classify until "
                     f"{'it is' if len(d['missing']) == 1 else 'they are'} installed.")
        lines.append("Fix: " + (fix or f"{d['executable']} -m pip install 'onnxruntime{ONNXRUNTIME_RANGE}' "
                                "(in the environment Landcover runs in)"))
    if d["onnxruntime"]:
        lines += [f"onnxruntime {d['onnxruntime']} ({d['onnxruntime_device']} build); available execution providers: "
                  f"{', '.join(d['available_providers'])}",
                  f"execution provider used for device 'auto': {d['provider_used_for_auto']}"]
    lines.append(f"GDAL {d['gdal'] or 'bindings missing'}")
    lines.append("Python packages:")
    packages = Report(**{**deps, "packages": [_found(f) for f in deps["packages"]]})
    lines += ["  " + line for line in probe_lines(packages)]
    if deps.get("private_dir"):
        lines.append(f"Landcover's packages folder: {deps['private_dir']}"
                     + ("" if Path(deps["private_dir"]).is_dir() else " (none installed)"))
    lines.append("models (bundled, and added in QGIS):")
    for name, m in d["models"].items():
        tag = " (default)" if m.get("default") else " (added)" if m.get("added") else ""
        if "error" in m:
            lines.append(f"  {name}: ERROR {m['error']}")
        elif "unread" in m:
            lines.append(f"  {name}{tag}: {m['size_mb']} MB, {m['unread']} — {m['path']}")
        else:
            lines.append(f"  {name}{tag}: {m['classes']} classes, bands "
                         f"{', '.join(m['bands']) or 'unnamed'}, GSD {gsd_text(m['gsd_m'])} — {m['path']}")
    return "\n".join(lines)


def _found(item: dict):
    from .dependencies import Found

    return Found(**item)
