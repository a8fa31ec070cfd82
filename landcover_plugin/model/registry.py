"""Bundled models: ONNX files in the ``models/`` folder of the repository or of the plugin package."""
from __future__ import annotations

from pathlib import Path

from ..errors import ModelError

DEFAULT_MODEL = "flair-rgb"
_PACKAGE = Path(__file__).resolve().parent.parent


def model_dirs() -> list[Path]:
    """Folders searched for bundled models: ``landcover_plugin/models`` (packaged plugin), then the
    repository's ``models/``."""
    return [d for d in (_PACKAGE / "models", _PACKAGE.parent / "models") if d.is_dir()]


def bundled_models() -> dict[str, Path]:
    """Bundled model names (file stem) → ONNX paths; earlier folders win."""
    found: dict[str, Path] = {}
    for folder in model_dirs():
        for path in sorted(folder.glob("*.onnx")):
            found.setdefault(path.stem, path)
    return found


def resolve_model(name_or_path: str | Path | None) -> Path:
    """A bundled model's name, or a path to an ONNX file, → the file's path.

    ``None`` or ``""`` means the default model. Raises ``ModelError`` when neither exists.
    """
    value = str(name_or_path or DEFAULT_MODEL)
    bundled = bundled_models()
    if value in bundled:
        return bundled[value]
    path = Path(value).expanduser()
    if path.is_file():
        return path
    names = ", ".join(sorted(bundled)) or "none"
    raise ModelError(f"model '{value}' is neither a bundled model ({names}) nor an existing ONNX file: check --model")
