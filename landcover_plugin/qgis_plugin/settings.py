"""Landcover's settings in the QGIS profile (``QgsSettings``, section ``landcover/``): models the user
added, the live layer's model, device, cache size and opacity."""
from __future__ import annotations

import json
from pathlib import Path

from qgis.core import QgsSettings

from ..model.registry import DEFAULT_MODEL, bundled_models

SECTION = "landcover"
DEFAULTS = {"live/model": DEFAULT_MODEL, "live/device": "auto", "live/cache_mb": 256, "live/opacity": 1.0}


def get(key: str):
    """A setting (a key of ``DEFAULTS``), typed like its default."""
    default = DEFAULTS[key]
    return QgsSettings().value(f"{SECTION}/{key}", default, type=type(default))


def put(key: str, value) -> None:
    QgsSettings().setValue(f"{SECTION}/{key}", value)


def added_models() -> dict[str, str]:
    """Models the user added in the model manager: name → ONNX path."""
    return json.loads(QgsSettings().value(f"{SECTION}/models", "{}", type=str))


def set_added_models(models: dict[str, str]) -> None:
    QgsSettings().setValue(f"{SECTION}/models", json.dumps(models))


def all_models() -> dict[str, Path]:
    """Bundled models, then added ones (an added name equal to a bundled one gets " (added)")."""
    models = dict(bundled_models())
    for name, path in added_models().items():
        models[f"{name} (added)" if name in models else name] = Path(path)
    return models
