"""The ONNX model adapter: ``(B, C, H, W)`` float32 raw band values in, ``(B, K, H, W)`` float32
probabilities out.

The adapter owns the onnxruntime session, the execution-provider choice, input normalisation, the
padding of tiles to sizes the network accepts, the network's batch size, and the reading of every
segmentation output form Deepness and GeoDeep models use: ``(B, K, H, W)`` softmax, logits or
per-class sigmoids, one sigmoid channel ``(B, 1, H, W)`` or ``(B, H, W)`` (two classes, background
and the class, thresholded at ``seg_thresh``), several outputs (one chosen), and outputs smaller than
the input (centred; the border is marked unreliable through ``padding_px``). Tiling, blending and
I/O are the engine's.

The model's contract is checked when it is opened: one ``(B, C, H, W)`` input, an output of rank 3
or 4 whose class axis matches the metadata and whose spatial size is the input's (or centred
smaller), and a segmentation ``model_type``. Anything else is a one-line ``ModelError`` naming the
problem and the fix.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from ..errors import LandcoverError, ModelError
from . import onnx_proto
from .metadata import ModelMetadata, model_kind, parse_metadata, with_notes
from .normalise import Normaliser

log = logging.getLogger(__name__)
DEVICES = ("auto", "cpu", "cuda")
_PROVIDERS = {"cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
SIZE_MULTIPLE = 32  # tiles are padded to a multiple of the network's total stride
SUM_TOLERANCE = 1e-2  # probabilities must sum to 1 within this
NON_FINITE = ("{path}: the network produced non-finite values (NaN or infinity) for this tile: check the input's "
              "value range and the model's metadata (value_range, standardisation)")
FLOAT_TENSORS = ("tensor(float)", "tensor(float16)", "tensor(double)")
_QUIET = ort.RunOptions()
_QUIET.log_severity_level = 4  # a failing run becomes one ModelError line, not also onnxruntime's log


class _TilingChanges(TypedDict, total=False):
    """The ``ModelMetadata`` tiling fields that the network's declared shapes override."""

    tile_size_px: int
    padding_px: int
    overlap_px: int


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


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _model_source(path: Path) -> tuple[str | bytes, bool]:
    """What onnxruntime opens: the path, or, for a model whose metadata says ``size_multiple`` (its static
    input size is for other tools), its bytes with the spatial dimensions declared dynamic. The second
    value says whether the dimensions were relaxed."""
    if not path.is_file():
        raise ModelError(f"model file not found: {path}: check the path")
    try:
        props = onnx_proto.file_metadata_props(path)
    except (ValueError, UnicodeDecodeError, OSError):
        return str(path), False  # onnxruntime says what is wrong with it
    if "size_multiple" not in props:
        return str(path), False
    try:
        return onnx_proto.free_spatial_dims(path.read_bytes()), True
    except ValueError:
        return str(path), False


def _session(path: Path, source: str | bytes, providers: list[str], options: ort.SessionOptions | None = None) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(source, options, providers=providers)
    except Exception as exc:  # onnxruntime raises InvalidProtobuf, Fail, ... for files it cannot load
        raise ModelError(f"cannot load {path}: the file is not a valid ONNX model ({_first_line(exc)})") from None


def _static(d: object) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


class _Contract:
    """What the network's declared shapes say, checked: raises ``ModelError`` (without the path)."""

    def __init__(self, session: ort.InferenceSession, props: dict[str, str], output: int):
        kind = model_kind(props)
        if kind is not None:
            raise ModelError(f"the model is {kind} (model_type {props['model_type']}), not a segmentation model: "
                             "Landcover classifies pixels; use a segmentation model")
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ModelError(f"the network has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); Landcover runs "
                             "networks with one image input (B, C, H, W): export the model with a single input")
        if inputs[0].type != "tensor(float)":
            raise ModelError(f"the network's input is {inputs[0].type}; Landcover feeds float32 band values (B, C, H, W): "
                             "export the model with a float32 input")
        shape = list(inputs[0].shape)
        if len(shape) != 4:
            raise ModelError(f"the network's input has shape {tuple(shape)}; Landcover needs (B, C, H, W): "
                             "export the model with an NCHW image input")
        self.input_name = inputs[0].name
        self.batch = _static(shape[0])
        self.channels = _static(shape[1])
        self.size = (_static(shape[2]), _static(shape[3]))
        outputs = session.get_outputs()
        self.num_outputs = len(outputs)
        if not 0 <= output < len(outputs):
            raise ModelError(f"output {output} asked for, but the network has {len(outputs)} output"
                             f"{'s' if len(outputs) != 1 else ''} (0..{len(outputs) - 1}): choose one with --model-output")
        self.output_index = output
        self.output_name = outputs[output].name
        if outputs[output].type not in FLOAT_TENSORS:
            raise ModelError(f"the network's output is {outputs[output].type}, not class scores (class indices after an "
                             "ArgMax?): Landcover needs float probabilities or logits (B, K, H, W); export the model "
                             "without the final ArgMax")
        out = list(outputs[output].shape)
        self.rank = len(out)
        what = {2: "an image-recognition (classification) model: one score vector per image",
                5: "a rank-5 output (a video or volume model?)"}.get(len(out), f"a rank-{len(out)} output")
        if len(out) not in (3, 4):
            raise ModelError(f"the network's output has shape {tuple(out)}, {what}, not a segmentation map: Landcover needs "
                             "(B, K, H, W) class scores or (B, H, W) sigmoid")
        self.classes = 1 if len(out) == 3 else _static(out[1])
        (h, w), (oh, ow) = self.size, (_static(out[-2]), _static(out[-1]))
        self.margin = 0
        if h is not None and w is not None and oh is not None and ow is not None:
            self.margin = self._margin((h, w), (oh, ow), tuple(out))
        self.sigmoid = self.rank == 3 or self.classes == 1

    @staticmethod
    def _margin(size: tuple[int, int], out_size: tuple[int, int], out_shape: tuple[object, ...]) -> int:
        """Border px per side the output lacks (0 when it is the input's size)."""
        if out_size == size:
            return 0
        if 2 * out_size[0] <= size[0] and 2 * out_size[1] <= size[1]:
            raise ModelError(f"the network's output {tuple(out_shape)} is half its {size[0]}×{size[1]} px input or less, a "
                             "downsampling network (stride 2 or more?), not a per-pixel map: export a model whose "
                             "output matches its input (upsample inside the network)")
        if len(out_shape) == 3 and (out_size[0] > size[0] or out_size[1] > size[1] or out_size[0] != out_size[1]):
            raise ModelError(f"the network's output {tuple(out_shape)} is not a (B, H, W) map of its {size[0]}×{size[1]} px "
                             "input, an object detector's output?, not a segmentation model: use a segmentation model")
        dh, dw = size[0] - out_size[0], size[1] - out_size[1]
        if dh > 0 and dh == dw and dh % 2 == 0:
            return dh // 2
        if out_size[0] > size[0] and out_size[1] > size[1]:
            raise ModelError(f"the network turns a {size[0]}×{size[1]} input into a {out_size[0]}×{out_size[1]} output, "
                             "a super-resolution model, not a segmentation model: use a segmentation model")
        raise ModelError(f"the network's output {tuple(out_shape)} is neither the input's {size[0]}×{size[1]} px nor centred "
                         "smaller by the same even number of px on both axes: export a model whose output matches its input")


class OnnxModel:
    """An ONNX segmentation model ready to run.

    ``predict(x)`` takes raw band values ``(B, C, H, W)`` float32 (already band-selected, nodata filled)
    and returns class probabilities ``(B, K, H, W)`` float32. ``provider`` is the execution provider
    the session really uses (``session.get_providers()[0]``). ``output`` chooses which of a
    multi-output network's outputs is read (default 0; a note says so). ``meta`` is the model's
    metadata as the engine must use it: class names for the chosen output (numbered when absent),
    the tile size fixed by a static input, ``padding_px`` covering an output smaller than the input
    and ``overlap_px`` ≥ 2 × ``padding_px``; ``meta.notes`` holds what a user should be told.
    Raises ``ModelError`` for an unreadable model or one that breaks the contract (module docstring).
    """

    def __init__(self, path: str | Path, device: str = "auto", threads: int | None = None, output: int = 0):
        self.path = Path(path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        # onnxruntime's memory pattern pre-plans one block per input shape and keeps it: without it the
        # peak for a 1024 px tile falls from 518 to 350 MB at the same speed (bench/memory_width.py)
        options.enable_mem_pattern = False
        source, relaxed = _model_source(self.path)
        self.session = _session(self.path, source, choose_providers(device), options)
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        try:
            self._open(props, output)
        except ModelError as exc:
            raise ModelError(f"{self.path}: {exc}") from None
        self.provider = self.session.get_providers()[0]
        if device == "cuda" and self.provider != _PROVIDERS["cuda"]:
            raise LandcoverError(f"CUDA execution provider failed to start (session uses {self.provider}): check the CUDA/cuDNN "
                                 "install or use --device cpu")
        self.relaxed = relaxed
        for note in self.meta.notes:  # the engine shows them to the user as warnings
            log.info("%s: %s", self.path.name, note)
        log.info("model %s on %s", self.path.name, self.provider)

    def _open(self, props: dict[str, str], output: int) -> None:
        c = self.contract = _Contract(self.session, props, output)
        if c.rank == 4 and c.classes is None and c.sigmoid is False and "class_names" not in props and "names" not in props:
            c.classes = self._probe_classes()
            c.sigmoid = c.classes == 1
        meta = parse_metadata(props, 1 if c.sigmoid else c.classes, output, c.num_outputs, c.sigmoid)
        if not c.sigmoid and "output" not in props and "schema_version" not in props:
            meta = replace(meta, output="auto")  # another tool's model: read from the values (argmax kept)
        if c.num_outputs > 1:
            meta = with_notes(meta, f"the network has {c.num_outputs} outputs; using output {output} ('{c.output_name}'), "
                                    f"classes {', '.join(meta.class_names)}: choose another with --model-output N")
        if c.sigmoid:
            meta = with_notes(meta, f"one sigmoid channel: '{meta.class_names[1]}' where p ≥ seg_thresh {meta.seg_thresh:g}, "
                                    f"'{meta.class_names[0]}' elsewhere")
        num_bands = c.channels or meta.num_bands
        if num_bands is None:
            raise ModelError("the input band count is neither fixed in the network nor given by 'input_bands': "
                             "add input_bands to the metadata")
        if c.channels is not None and meta.num_bands is not None and meta.num_bands * meta.band_repeat != c.channels:
            raise ModelError(f"metadata describes {meta.num_bands} input bands but the network takes {c.channels}: "
                             "fix 'input_bands' (or the standardisation lists)")
        if meta.band_repeat != 1:
            if c.channels is None or c.channels % meta.band_repeat:
                raise ModelError(f"metadata 'band_repeat' {meta.band_repeat} does not divide the network's "
                                 f"{c.channels} input channels: fix the metadata")
            num_bands = c.channels // meta.band_repeat
        self.num_bands = num_bands
        h, w = c.size
        static = (h, w) if h is not None and w is not None else None
        relaxed = static is not None and meta.size_multiple_px is not None
        self.fixed_size = (None, None) if relaxed else c.size
        self.multiple = meta.size_multiple_px or SIZE_MULTIPLE
        if static is not None and static[0] != static[1] and not relaxed:
            raise ModelError(f"the network's input is {static[0]}×{static[1]} px; Landcover tiles are square: "
                             "export the model with a square (or dynamic) input")
        changes: _TilingChanges = {}
        if static is not None and not relaxed and meta.tile_size_px != static[0]:
            if "tile_size" in props or "tiles_size" in props:
                meta = with_notes(meta, f"the network's input is fixed at {static[0]} px: tiles of {static[0]} px "
                                        f"are used, not the metadata's {meta.tile_size_px}")
            changes["tile_size_px"] = static[0]
        tile = changes.get("tile_size_px", meta.tile_size_px)
        if c.margin:
            changes["padding_px"] = max(meta.padding_px, c.margin)
            meta = with_notes(meta, f"the network's output is {2 * c.margin} px smaller than its input (centred): the "
                                    f"outer {c.margin} px of each tile are given no weight, and those of the raster are "
                                    "copied from the nearest predicted pixel")
        padding = changes.get("padding_px", meta.padding_px)
        if "overlap" not in props and "tiles_overlap" not in props:
            changes["overlap_px"] = max(tile // 8, 2 * padding)
        elif meta.overlap_px < 2 * padding:
            changes["overlap_px"] = 2 * padding
        if changes.get("overlap_px", meta.overlap_px) >= tile:
            raise ModelError(f"the model's padding of {padding} px leaves no usable part of a {tile} px tile: "
                             "export a model whose output covers more of its input")
        if changes:
            meta = replace(meta, **changes)
        self.meta = meta
        self.batch = c.batch
        self.normaliser = Normaliser(meta.value_range, meta.mean, meta.std, self.num_bands)

    def _probe_classes(self) -> int:
        """The class axis of the chosen output, from one small tile (networks that leave it symbolic)."""
        c = self.contract
        size = [s or 2 * SIZE_MULTIPLE for s in c.size]
        x = np.zeros((c.batch or 1, c.channels or 3, *size), np.float32)
        try:
            out = self.session.run([c.output_name], {c.input_name: x})[0]
        except Exception as exc:
            raise ModelError(f"the network fails on a {size[0]}×{size[1]} px tile ({_first_line(exc)}): "
                             "check that it is an image segmentation model") from None
        if out.ndim not in (3, 4):
            raise ModelError(f"the network's output has shape {out.shape}, not a segmentation map")
        return 1 if out.ndim == 3 else out.shape[1]

    @property
    def sha256(self) -> str:
        return sha256(self.path)

    @property
    def notes(self) -> tuple[str, ...]:
        return self.meta.notes

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The (H, W) px the network is run at for a tile of ``height`` × ``width``."""
        fh, fw = self.fixed_size

        def up(n: int) -> int:
            return -(-n // self.multiple) * self.multiple

        return (fh or up(height), fw or up(width))

    def predict(self, x: NDArray[Any], tta: bool = False) -> NDArray[np.float32]:
        """Probabilities ``(B, K, H, W)`` float32 for raw tiles ``x`` ``(B, C, H, W)``.

        ``tta``: test-time augmentation — the mean of the probabilities over the 8 flips and 90°
        rotations of the tile (the dihedral group D4), each mapped back; 8× the inference cost.
        Raises ``ModelError`` when the network's output is not finite, does not sum to 1 (declared
        probabilities) or breaks the contract; ``LandcoverError`` for a wrong band count."""
        if not tta:
            return self._predict(x)
        total = np.zeros((len(x), self.meta.num_classes, *x.shape[2:]), np.float32)
        for k in range(4):
            for flip in (False, True):
                view = np.rot90(x, k, axes=(2, 3))
                view = view[..., ::-1] if flip else view
                p = self._predict(np.ascontiguousarray(view))
                p = p[..., ::-1] if flip else p
                total += np.rot90(p, -k, axes=(2, 3))
        total /= 8
        return total

    def normalise(self, x: NDArray[Any]) -> NDArray[np.float32]:
        """The network's input ``(B, C·band_repeat, H, W)`` float32 for raw tiles ``x`` ``(B, C, H, W)``:
        scaled from the model's ``value_range`` to 0-1, then ``(x - mean) / std`` per band
        (``model.normalise.Normaliser``, the same as training)."""
        out = self.normaliser(x)
        return np.repeat(out, self.meta.band_repeat, axis=1) if self.meta.band_repeat != 1 else out

    def _run(self, x: NDArray[np.float32]) -> NDArray[np.floating[Any]]:
        """The chosen output for network input ``x``, run in batches of the network's batch size."""
        if self.batch and len(x) != self.batch:  # a static batch: split, and pad the last part
            parts: list[NDArray[np.floating[Any]]] = []
            for i in range(0, len(x), self.batch):
                part = x[i:i + self.batch]
                n = len(part)
                if n < self.batch:
                    part = np.concatenate([part, np.zeros((self.batch - n, *part.shape[1:]), part.dtype)])
                parts.append(self._session_run(part)[:n])
            return np.concatenate(parts)
        try:
            return self._session_run(x)
        except ModelError:
            if len(x) == 1:
                raise
        # Declared dynamic, but the graph only runs one tile at a time (e.g. a Reshape to a batch of 1).
        out: NDArray[np.floating[Any]] = np.concatenate([self._session_run(t[None]) for t in x])
        self.batch = 1
        log.warning("%s: the network runs one tile at a time (its batch size is 1 in practice)", self.path.name)
        return out

    def _session_run(self, x: NDArray[np.float32]) -> NDArray[np.floating[Any]]:
        """The chosen output for ``x``: float32, float16 or float64 (the contract's ``FLOAT_TENSORS``)."""
        c = self.contract
        try:
            out: NDArray[np.floating[Any]] = self.session.run([c.output_name], {c.input_name: x}, _QUIET)[0]
        except Exception as exc:
            raise ModelError(f"{self.path}: the network fails on a batch of {x.shape} ({_first_line(exc)}): "
                             "check the model's input size and batch size") from None
        return out

    def _predict(self, x: NDArray[Any]) -> NDArray[np.float32]:
        b, c, h, w = x.shape
        if c != self.num_bands:
            raise LandcoverError(f"model takes {self.num_bands} bands, got {c}")
        x = self.normalise(x)
        ph, pw = self.padded_size(h, w)
        if (ph, pw) != (h, w):
            if ph < h or pw < w:
                raise ModelError(f"tile {h}×{w} px is larger than the network's fixed input {ph}×{pw}: use --tile-size {min(ph, pw)}")
            x = np.pad(x, ((0, 0), (0, 0), (0, ph - h), (0, pw - w)), mode="reflect" if min(h, w) > 1 else "edge")
        out = self._run(x)
        out = self._as_probabilities(self._to_bkhw(out, ph, pw))
        return out[:, :, :h, :w]

    def _to_bkhw(self, out: NDArray[np.floating[Any]], ph: int, pw: int) -> NDArray[np.float32]:
        """The raw output as ``(B, K', ph, pw)`` (K' = 1 for a sigmoid): rank 3 gets its channel axis,
        a centred smaller output is put back in the middle, its border copied from the nearest pixel."""
        if out.ndim == 3:
            out = out[:, None]
        if out.ndim != 4:
            raise ModelError(f"{self.path}: the network's output has shape {out.shape}, not a segmentation map")
        expected = 1 if self.contract.sigmoid else self.meta.num_classes
        if out.shape[1] != expected:
            raise ModelError(f"{self.path}: network outputs {out.shape[1]} classes but metadata names {expected}: "
                             "fix 'class_names' in the model's metadata")
        oh, ow = out.shape[2:]
        if (oh, ow) != (ph, pw):
            m = (ph - oh) // 2
            if not (oh < ph and ph - oh == pw - ow and (ph - oh) % 2 == 0 and m <= self.meta.padding_px):
                raise ModelError(f"{self.path}: a {ph}×{pw} px input gave a {oh}×{ow} px output: set the metadata "
                                 f"'padding' to at least half the difference, or export a model whose output matches its input")
            out = np.pad(out, ((0, 0), (0, 0), (m, m), (m, m)), mode="edge")
        return np.ascontiguousarray(out, dtype=np.float32)

    def _as_probabilities(self, out: NDArray[np.float32]) -> NDArray[np.float32]:
        """Class probabilities from the network's scores, checked: raises ``ModelError`` for
        non-finite values, sigmoid scores outside [0, 1] or declared probabilities not summing to 1."""
        kind = self.meta.output
        if kind == "probabilities" and not self.contract.sigmoid:
            # one pass over the classes: a NaN or infinity anywhere makes its pixel's sum non-finite
            sums = out.sum(axis=1)
            if not np.isfinite(sums).all():
                raise ModelError(NON_FINITE.format(path=self.path))
            if np.abs(sums - 1).max() > SUM_TOLERANCE:
                raise ModelError(f"{self.path}: the network's class probabilities sum to {sums.min():.3g}–{sums.max():.3g}, "
                                 "not 1: set metadata 'output' to 'logits' (or 'sigmoid' for independent per-class scores)")
            return out
        if not np.isfinite(out).all():
            raise ModelError(NON_FINITE.format(path=self.path))
        if self.contract.sigmoid:
            p = out[:, 0]
            if p.min() < -1e-4 or p.max() > 1 + 1e-4:
                raise ModelError(f"{self.path}: a one-channel output must be a sigmoid probability in [0, 1], got values in "
                                 f"[{p.min():.3g}, {p.max():.3g}]: add a Sigmoid to the network's output")
            q = threshold_remap(np.clip(p, 0, 1), self.meta.seg_thresh)
            return np.stack([1 - q, q], axis=1)
        if kind == "logits":
            out = out - out.max(axis=1, keepdims=True)
            np.exp(out, out=out)
            out /= out.sum(axis=1, keepdims=True)
            return out
        # 'sigmoid' scores, or 'auto' (another tool's model that does not say): argmax is all Deepness and GeoDeep take.
        if out.min() < -1e-4 or out.max() > 1 + 1e-4:
            if kind == "sigmoid":
                raise ModelError(f"{self.path}: metadata 'output' is 'sigmoid' but the network gives values in "
                                 f"[{out.min():.3g}, {out.max():.3g}]: set 'output' to 'logits'")
            out = out - out.max(axis=1, keepdims=True)  # logits
            np.exp(out, out=out)
            out /= out.sum(axis=1, keepdims=True)
            return out
        out = np.clip(out, 0, None)
        sums = out.sum(axis=1, keepdims=True)
        zero = sums <= 0
        out /= np.where(zero, 1, sums)
        if zero.any():  # no class scores anything: equal probabilities (argmax: the first class)
            out += zero / out.shape[1]
        return out



def threshold_remap(p: NDArray[np.float32], thresh: float) -> NDArray[np.float32]:
    """A monotone map of sigmoid probabilities ``p`` onto [0, 1] that sends ``thresh`` to just above
    0.5, so that the argmax of ``[1 - q, q]`` is the class exactly where ``p ≥ thresh`` (Deepness' and
    GeoDeep's rule) and blending still averages probabilities. ``thresh`` 0.5 leaves ``p`` as it is
    (apart from ties at 0.5, which go to the class)."""
    eps = np.float32(1e-6)
    if thresh <= 0:
        return np.clip(0.5 + eps + (0.5 - eps) * p, 0, 1).astype(np.float32)
    if thresh >= 1:
        return np.where(p >= 1, np.float32(1), (0.5 - eps) * p).astype(np.float32)
    low = p * (0.5 / thresh)
    high = 0.5 + eps + (p - thresh) * ((0.5 - eps) / (1 - thresh))
    return np.clip(np.where(p >= thresh, high, np.minimum(low, 0.5 - eps)), 0, 1).astype(np.float32)


def read_metadata(path: str | Path, output: int = 0) -> ModelMetadata:
    """Open ``path`` on the CPU and return its metadata as the engine will use it (``OnnxModel.meta``):
    validated against the network's declared shapes.

    Raises ``ModelError`` for a missing file, a file that is not a valid ONNX model, invalid metadata
    or a network that breaks the contract (see the module docstring)."""
    return OnnxModel(path, "cpu", output=output).meta


def compatible_tools(path: str | Path) -> dict[str, str]:
    """Which tools run the model file unchanged: tool → ``"yes"`` or ``"no: reason"``, for Landcover,
    Deepness (0.6.5) and GeoDeep (0.9.13), judged from the declared shapes and metadata as those
    versions read them."""
    import json

    path = Path(path)
    result = {}
    try:
        model = OnnxModel(path, "cpu")
        result["Landcover"] = "yes"
    except LandcoverError as exc:
        return {"Landcover": f"no: {exc}", "Deepness": "not checked", "GeoDeep": "not checked"}
    props = dict(model.session.get_modelmeta().custom_metadata_map)
    session = model.session  # declared shapes as in the file (Landcover may have relaxed its copy)
    raw = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]) if model.relaxed else session
    inp, outs = raw.get_inputs()[0].shape, [o.shape for o in raw.get_outputs()]

    def loads(key: str) -> Any:
        try:
            return json.loads(props[key])
        except (KeyError, json.JSONDecodeError):
            return None

    deepness, geodeep = [], []
    for key in ("model_type", "class_names", "resolution", "tile_size", "tiles_overlap", "seg_thresh", "seg_small_segment",
                "standardization_mean", "standardization_std"):
        if key in props and loads(key) is None:
            deepness.append(f"'{key}' is not JSON")
    if loads("model_type") != "Segmentor":
        geodeep.append("model_type is not \"Segmentor\" (JSON-quoted)")
    names = loads("class_names")
    if isinstance(names, list) and names and not all(isinstance(n, dict) for n in names):
        deepness.append("class_names is a list, not {\"0\": name}")
    if not isinstance(names, dict):
        geodeep.append("class_names is not {\"0\": name} (GeoDeep's GeoJSON output needs it)")
    if not all(isinstance(d, int) for d in inp[1:]):
        if not isinstance(inp[1], int):
            deepness.append("the input's channel axis is symbolic")
        if not isinstance(inp[-1], int):
            geodeep.append("the input's size is symbolic (GeoDeep takes the tile size from it)")
    if model.contract.sigmoid:
        geodeep.append("a one-channel sigmoid output (GeoDeep takes the argmax over the channel axis, so never the class)")
    if (model.num_bands * model.meta.band_repeat) != 3:
        geodeep.append("the network does not take 3 channels (GeoDeep feeds RGB)")
    for shape in outs:
        if len(shape) == 4 and not isinstance(shape[1], int):
            deepness.append("an output's class axis is symbolic")
    if model.meta.value_range != (0.0, 255.0):
        deepness.append("value_range is not [0, 255] (Deepness divides by 255)")
        geodeep.append("value_range is not [0, 255] (GeoDeep divides by 255)")
    if model.meta.mean is not None and (any(model.meta.mean) or any(s != 1 for s in model.meta.std or [1])):
        geodeep.append("GeoDeep ignores standardization_mean/std")
    for key in ("seg_thresh", "seg_small_segment", "resolution", "tiles_overlap"):
        if key in props and not _is_number(props[key]):
            geodeep.append(f"'{key}' is not a number")
    result["Deepness"] = "yes" if not deepness else "no: " + "; ".join(deepness)
    result["GeoDeep"] = "yes" if not geodeep else "no: " + "; ".join(geodeep)
    return result


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def validate_model(path: str | Path, output: int = 0) -> OnnxModel:
    """Open ``path`` on the CPU and run one tile of the model's tile size (at most 128 px, or the
    network's fixed size) of mid-range values, checking that it yields ``(1, K, H, W)`` probabilities
    summing to 1.

    Returns the opened model. Raises ``ModelError`` (or ``LandcoverError``) naming what is wrong, on
    one line."""
    model = OnnxModel(path, "cpu", output=output)
    low, high = model.meta.value_range
    size = model.fixed_size[0] or min(model.meta.tile_size_px, 128)
    x = np.full((1, model.num_bands, size, size), (low + high) / 2, np.float32)
    probs = model.predict(x)
    if probs.shape != (1, model.meta.num_classes, size, size):
        raise ModelError(f"{model.path}: a {size}×{size} tile gave output {probs.shape}, expected "
                         f"(1, {model.meta.num_classes}, {size}, {size}): the network is not a segmentation model")
    if not np.allclose(probs.sum(axis=1), 1, atol=1e-3):
        raise ModelError(f"{model.path}: outputs do not sum to 1 over classes: set metadata 'output' to 'logits'")
    return model
