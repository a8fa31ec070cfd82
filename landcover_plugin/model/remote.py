"""Bundled models that are not inside the plugin package, fetched on first use.

The official QGIS plugin repository takes zips up to 25 MB, so ``make package`` keeps the default
model (flair-rgb) in the zip and lists the others in ``models/remote.json``: file, size, SHA-256 and
the URL it is fetched from. On first use a listed model is downloaded into the models cache folder
(one folder per SHA-256), checked against its SHA-256 (a file that differs is deleted, never used) and
from then on listed with the bundled models.

- URL: the manifest's, built from ``make package MODELS_URL=…`` (the base URL the release's model files
  were uploaded to); ``LANDCOVER_MODELS_URL`` (environment) replaces that base at run time.
- Cache folder: ``set_cache_dir`` (the QGIS plugin uses a folder in the QGIS profile), else
  ``LANDCOVER_MODELS_DIR``, else the user's cache folder (``~/.cache/landcover/models`` on Linux).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ModelError

MANIFEST = Path(__file__).resolve().parent.parent / "models" / "remote.json"
ENV_URL = "LANDCOVER_MODELS_URL"
ENV_DIR = "LANDCOVER_MODELS_DIR"
log = logging.getLogger("landcover")
_cache_dir: Path | None = None


@dataclass(frozen=True)
class RemoteModel:
    """A model listed in the manifest: its name, file name, size in bytes, SHA-256 and URL ("" when no
    download URL was configured)."""

    name: str
    file: str
    size: int
    sha256: str
    url: str


def set_cache_dir(folder: str | Path | None) -> None:
    """Where fetched models are kept (the QGIS plugin: a folder in the QGIS profile)."""
    global _cache_dir
    _cache_dir = Path(folder) if folder else None


def cache_dir() -> Path:
    """The folder fetched models are kept in (it may not exist yet)."""
    if _cache_dir is not None:
        return _cache_dir
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR])
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "landcover" / "models"


def remote_models(manifest: Path | None = None) -> dict[str, RemoteModel]:
    """The models the manifest lists (none when there is no manifest: a repository checkout has every
    model in ``models/``)."""
    path = manifest or MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    base = os.environ.get(ENV_URL) or data.get("base_url") or ""
    if base and not base.endswith("/"):
        base += "/"
    return {m["name"]: RemoteModel(m["name"], m["file"], int(m["size"]), m["sha256"],
                                   urllib.parse.urljoin(base, m["file"]) if base else "")
            for m in data.get("models", [])}


def cached_path(model: RemoteModel) -> Path:
    """Where the model's file is kept: one folder per SHA-256, so a newer release's model never meets an
    older file of the same name."""
    return cache_dir() / model.sha256[:16] / model.file


def fetched(model: RemoteModel) -> Path | None:
    """The model's file in the cache folder when it is there (complete: its size), else None."""
    path = cached_path(model)
    return path if path.is_file() and path.stat().st_size == model.size else None


def fetch(model: RemoteModel, progress: Callable[[float], None] | None = None,
          info: Callable[[str], None] | None = None) -> Path:
    """The model's file: from the cache folder, else downloaded from its URL into it and checked
    against its SHA-256. Raises ``ModelError`` (no URL, download failed, SHA-256 differs)."""
    have = fetched(model)
    if have is not None:
        return have
    say = info or log.info
    if not model.url:
        raise ModelError(f"model '{model.name}' is not in this package and no download URL is configured: set "
                         f"{ENV_URL}, or add the file {model.file} (SHA-256 {model.sha256}) with Models… → Add ONNX…")
    target = cached_path(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{model.file}.part")
    say(f"Downloading model {model.name} ({model.size / 1e6:.1f} MB) from {model.url}")
    digest = hashlib.sha256()
    try:
        request = urllib.request.Request(model.url, headers={"User-Agent": "landcover"})
        with urllib.request.urlopen(request, timeout=60) as response, open(partial, "wb") as out:  # noqa: S310 (configured URL)
            done = 0
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                digest.update(block)
                done += len(block)
                if progress:
                    progress(min(done / max(model.size, 1), 1.0))
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ModelError(f"model '{model.name}' could not be downloaded from {model.url} ({exc}): check the connection, "
                         f"or add the file with Models… → Add ONNX…") from None
    if digest.hexdigest() != model.sha256:
        partial.unlink(missing_ok=True)
        raise ModelError(f"model '{model.name}' downloaded from {model.url} does not have the expected SHA-256 "
                         f"({model.sha256}): not used")
    partial.replace(target)
    say(f"Model {model.name} verified (SHA-256 {model.sha256[:16]}…) and kept in {target}")
    return target


def write_manifest(files: list[Path], base_url: str, output: Path) -> dict[str, object]:
    """The manifest for ``make package``: name, file, size and SHA-256 of each ONNX file, the base URL."""
    models = []
    for path in sorted(files):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        models.append({"name": path.stem, "file": path.name, "size": path.stat().st_size, "sha256": digest})
    data: dict[str, object] = {"base_url": base_url, "models": models}
    output.write_text(json.dumps(data, indent=1) + "\n")
    return data


def main(argv: list[str] | None = None) -> int:
    """``python -m landcover_plugin.model.remote OUTPUT.json BASE_URL MODEL.onnx…`` (used by make package)."""
    args = argv if argv is not None else sys.argv[1:]
    output, base_url, files = Path(args[0]), args[1], [Path(a) for a in args[2:]]
    write_manifest(files, base_url, output)
    for m in json.loads(output.read_text())["models"]:
        print(f"{m['sha256']}  {m['file']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
