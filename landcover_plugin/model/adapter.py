"""The ONNX model adapter: ``(B, C, H, W)`` float32 in, ``(B, K, H, W)`` float32 probabilities out.

The adapter owns the onnxruntime session, the execution-provider choice, input normalisation and the
padding of tiles to sizes the network accepts; tiling, blending and I/O are the engine's.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import LandcoverError, ModelError
from .metadata import ModelMetadata, parse_metadata

log = logging.getLogger(__name__)
DEVICES = ("auto", "cpu", "cuda")
_PROVIDERS = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
SIZE_MULTIPLE = 32  # tiles are padded to a multiple of the network's total stride


def choose_providers(device: str, available: list[str] | None = None) -> list[str]:
    """Execution providers for ``device`` (``auto``, ``cpu`` or ``cuda``) from ``available``
    (default ``onnxruntime.get_available_providers()``).

    ``auto`` takes CUDA when onnxruntime offers it, else CPU. Raises ``LandcoverError`` when ``cuda``
    is asked for but this onnxruntime has no CUDA execution provider, or for an unknown device.
    """
    available = ort.get_available_providers() if available is None else available
    if device not in DEVICES:
        raise LandcoverError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "cuda" or (device == "auto" and _PROVIDERS["cuda"] in available):
        if _PROVIDERS["cuda"] not in available:
            raise LandcoverError("device 'cuda' asked for, but this onnxruntime has no CUDA execution provider "
                                 f"(available: {', '.join(available)}): install onnxruntime-gpu or use --device cpu")
        return [_PROVIDERS["cuda"], _PROVIDERS["cpu"]]
    return [_PROVIDERS["cpu"]]


def sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _session(path: Path, providers: list[str], options: ort.SessionOptions | None = None) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises InvalidProtobuf, Fail, ... for files it cannot load
        reason = str(exc).splitlines()[0][:200]
        raise ModelError(f"cannot load {path}: the file is not a valid ONNX model ({reason})") from None


def _parse(path: Path, session: ort.InferenceSession) -> ModelMetadata:
    try:
        return parse_metadata(session.get_modelmeta().custom_metadata_map)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from None


def read_metadata(path: str | Path) -> ModelMetadata:
    """Load and validate an ONNX file's metadata (``metadata_props``) on a CPU session.

    Raises ``ModelError`` for a missing file, a file that is not a valid ONNX model, or invalid metadata.
    """
    path = Path(path)
    return _parse(path, _session(path, ["CPUExecutionProvider"]))


class OnnxModel:
    """An ONNX segmentation model ready to run.

    ``predict(x)`` takes raw band values ``(B, C, H, W)`` float32 (already band-selected, nodata filled)
    and returns class probabilities ``(B, K, H, W)`` float32. ``provider`` is the execution provider
    the session really uses (``session.get_providers()[0]``).
    Raises ``ModelError`` for an unreadable model or metadata that does not match the network.
    """

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None):
        self.path = Path(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = _session(self.path, choose_providers(device), options)
        self.meta = _parse(self.path, self.session)
        self.provider = self.session.get_providers()[0]
        if device == "cuda" and self.provider != _PROVIDERS["cuda"]:
            raise LandcoverError(f"CUDA execution provider failed to start (session uses {self.provider}): check the CUDA/cuDNN install or use --device cpu")
        inputs = self.session.get_inputs()
        self.input_name = inputs[0].name
        shape = inputs[0].shape
        self.num_bands = shape[1] if isinstance(shape[1], int) else self.meta.num_bands
        if self.num_bands is None:
            raise ModelError(f"{self.path}: the input band count is neither fixed in the network nor given by 'input_bands'")
        if self.meta.num_bands is not None and self.meta.num_bands != self.num_bands:
            raise ModelError(f"{self.path}: metadata describes {self.meta.num_bands} input bands but the network takes {self.num_bands}")
        self.fixed_size = tuple(d if isinstance(d, int) else None for d in shape[2:4])
        low, high = self.meta.value_range
        mean = np.asarray(self.meta.mean or [0.0] * self.num_bands, np.float32)
        std = np.asarray(self.meta.std or [1.0] * self.num_bands, np.float32)
        # (x - low) / (high - low) then (x - mean) / std, folded into one multiply-add per band.
        self._scale = (1.0 / ((high - low) * std))[None, :, None, None].astype(np.float32)
        self._offset = (-(low / (high - low)) / std - mean / std)[None, :, None, None].astype(np.float32)
        log.info("model %s on %s", self.path.name, self.provider)

    @property
    def sha256(self) -> str:
        return sha256(self.path)

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The (H, W) px the network is run at for a tile of ``height`` × ``width``."""
        fh, fw = self.fixed_size
        up = lambda n: -(-n // SIZE_MULTIPLE) * SIZE_MULTIPLE  # noqa: E731
        return (fh or up(height), fw or up(width))

    def predict(self, x: np.ndarray, tta: bool = False) -> np.ndarray:
        """Probabilities ``(B, K, H, W)`` float32 for raw tiles ``x`` ``(B, C, H, W)``.

        ``tta``: test-time augmentation — the mean of the probabilities over the 8 flips and 90°
        rotations of the tile (the dihedral group D4), each mapped back; 8× the inference cost."""
        if not tta:
            return self._predict(x)
        total = None
        for k in range(4):
            for flip in (False, True):
                view = np.rot90(x, k, axes=(2, 3))
                view = view[..., ::-1] if flip else view
                p = self._predict(np.ascontiguousarray(view))
                p = p[..., ::-1] if flip else p
                p = np.rot90(p, -k, axes=(2, 3))
                total = p.copy() if total is None else total + p
        return total / 8

    def normalise(self, x: np.ndarray) -> np.ndarray:
        """The network's input ``(B, C, H, W)`` float32 for raw tiles ``x``: scaled from the model's
        ``value_range`` to 0-1, then ``(x - mean) / std`` per band."""
        out = np.multiply(x, self._scale, dtype=np.float32)  # one new array: no temporaries per batch
        out += self._offset
        return out

    def _predict(self, x: np.ndarray) -> np.ndarray:
        b, c, h, w = x.shape
        if c != self.num_bands:
            raise LandcoverError(f"model takes {self.num_bands} bands, got {c}")
        x = self.normalise(x)
        ph, pw = self.padded_size(h, w)
        if (ph, pw) != (h, w):
            if ph < h or pw < w:
                raise ModelError(f"tile {h}×{w} px is larger than the network's fixed input {ph}×{pw}: use --tile-size {min(ph, pw)}")
            x = np.pad(x, ((0, 0), (0, 0), (0, ph - h), (0, pw - w)), mode="reflect" if min(h, w) > 1 else "edge")
        out = self.session.run(None, {self.input_name: x})[0][:, :, :h, :w]
        if out.shape[1] != self.meta.num_classes:
            raise ModelError(f"{self.path}: network outputs {out.shape[1]} classes but metadata names {self.meta.num_classes}")
        if self.meta.output == "logits":
            out = out - out.max(axis=1, keepdims=True)
            np.exp(out, out=out)
            out /= out.sum(axis=1, keepdims=True)
        return out


def validate_model(path: str | Path) -> OnnxModel:
    """Open ``path`` on the CPU and run one tile of the model's tile size (at most 128 px) of mid-range
    values, checking that it yields ``(1, K, H, W)`` probabilities summing to 1.

    Returns the opened model. Raises ``ModelError`` (or ``LandcoverError``) naming what is wrong."""
    model = OnnxModel(path, "cpu")
    low, high = model.meta.value_range
    size = min(model.meta.tile_size, 128)
    x = np.full((1, model.num_bands, size, size), (low + high) / 2, np.float32)
    probs = model.predict(x)
    if probs.shape != (1, model.meta.num_classes, size, size):
        raise ModelError(f"{model.path}: a {size}×{size} tile gave output {probs.shape}, expected "
                         f"(1, {model.meta.num_classes}, {size}, {size}): the network is not a segmentation model")
    if not np.allclose(probs.sum(axis=1), 1, atol=1e-3):
        raise ModelError(f"{model.path}: outputs do not sum to 1 over classes: set metadata 'output' to 'logits'")
    return model
