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
    """Bundled model names (file stem) → ONNX paths; earlier folders win; then the models the package
    lists but does not hold, once fetched (``remote``)."""
    from .remote import fetched, remote_models

    found: dict[str, Path] = {}
    for folder in model_dirs():
        for path in sorted(folder.glob("*.onnx")):
            found.setdefault(path.stem, path)
    for name, model in remote_models().items():
        have = fetched(model)
        if have is not None:
            found.setdefault(name, have)
    return found


def resolve_model(name_or_path: str | Path | None) -> Path:
    """A bundled model's name, or a path to an ONNX file, → the file's path. A bundled model that the
    plugin package lists but does not hold is fetched on first use (``remote``).

    ``None`` or ``""`` means the default model. Raises ``ModelError`` when neither exists.
    """
    from .remote import fetch, remote_models

    value = str(name_or_path or DEFAULT_MODEL)
    bundled = bundled_models()
    if value in bundled:
        return bundled[value]
    remote = remote_models()
    if value in remote:
        return fetch(remote[value])
    path = Path(value).expanduser()
    if path.is_file():
        return path
    names = ", ".join(sorted(set(bundled) | set(remote))) or "none"
    raise ModelError(f"model '{value}' is neither a bundled model ({names}) nor an existing ONNX file: check --model")
