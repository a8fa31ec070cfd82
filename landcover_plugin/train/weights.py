"""Recover a trainable PyTorch network from an ONNX model that ``landcover train`` (or ``finetune``) wrote.

The exporter runs the network in eval mode, so ``torch.onnx.export`` folds every BatchNorm into the
convolution before it: the file holds one ``Conv`` per convolution, with weights ``W·γ/σ`` and bias
``(b − μ)·γ/σ + β``, and the folded ones get generic initialiser names (``onnx::Conv_731``). Recovery:

1. **Which network**: the metadata's ``architecture`` ("unet"/"fpn"), ``encoder``
   ("efficientnet-lite0/1/2") and ``antialias`` keys (written by the exporter since they exist); else
   ``NAME.train.json`` beside the file (today's bundled models: ``models/*.train.json``); else every
   network ``train/network.py`` can build, tried in turn (a wrong one fails at step 3 or 4).
2. **Graph order**: the network is built and run once on a small tile while every convolution call
   is recorded in execution order (``torch.conv2d`` through a ``TorchFunctionMode``, so functional
   convolutions such as BlurPool's count too), with the BatchNorm that takes each one's output.
   The ONNX file's ``Conv`` nodes, in graph order (the exporter's trace order), after the nodes
   Landcover's peer-compatible export puts in front (``landcover_*``: luma and standardisation),
   correspond one to one.
3. **Assignment**: each convolution gets its node's weight and bias; a BatchNorm after it becomes
   the identity (mean 0, variance 1 − ε, γ 1) plus the folded bias as β, so the network's structure
   (and its exporter) stays the same and BatchNorm's γ and β remain trainable. Shapes must match;
   fixed convolutions (BlurPool's buffer) must equal the file's.
4. **Verification**: the recovered network (with the file's input normalisation) and onnxruntime
   give the same probabilities on a random batch (max |difference| ≤ ``TOLERANCE``); otherwise the
   model is refused in one line ("no recoverable weights").

The normalisation the peer-compatible export writes inside the graph (``(x − mean) / std``, the luma
of RGB for a grey model) is read back from its constants, so a re-export reproduces it.
"""
from __future__ import annotations

import inspect
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..errors import LandcoverError, ModelError
from ..model.metadata import ModelMetadata
from ..model.normalise import Normaliser
from . import network

TOLERANCE = 1e-3  # max |probability difference| between the recovered network and the file
FRONT_PREFIX = "landcover_"  # nodes and constants the peer-compatible export puts in front of the network


@dataclass(frozen=True)
class NetworkSpec:
    """What ``train.network.build_network`` needs: architecture, encoder, anti-aliasing."""

    architecture: str
    encoder: str = network.ENCODER_NAME
    antialias: bool = False

    def text(self) -> str:
        return f"{self.architecture} on {self.encoder}" + (" (anti-aliased)" if self.antialias else "")


@dataclass
class Recovered:
    """A network rebuilt from an ONNX file: ``net`` (logits, eval mode), the file's metadata ``meta``,
    the network ``spec``, the bands it reads (``num_bands``, as ``OnnxModel``), its input channels, the
    in-graph standardisation (``mean``/``std`` per channel, or ``None``), ``luma`` (the file takes RGB
    and computes the luma in its graph), the verification's ``max_diff`` and how the network was
    identified (``found_by``)."""

    net: nn.Module
    meta: ModelMetadata
    spec: NetworkSpec
    num_bands: int
    in_channels: int
    mean: np.ndarray | None
    std: np.ndarray | None
    luma: bool
    max_diff: float
    found_by: str

    def __post_init__(self) -> None:
        self.normaliser = Normaliser(self.meta.value_range, self.meta.mean, self.meta.std, self.num_bands)

    def network_input(self, raw: np.ndarray) -> torch.Tensor:
        """Raw band values ``(B, C, H, W)`` (the bands the model reads, as ``OnnxModel.predict`` takes them)
        → the network's input ``(B, in_channels, H, W)`` float32: the metadata's normalisation, then the
        graph's own front end (luma, standardisation)."""
        x = self.normaliser(raw)
        if self.meta.band_repeat != 1:
            x = np.repeat(x, self.meta.band_repeat, axis=1)
        if self.luma:
            x = np.tensordot(np.asarray(LUMA, np.float32), x, axes=([0], [1]))[:, None]
        if self.mean is not None and self.std is not None:
            x = (x - self.mean[None, :, None, None]) / self.std[None, :, None, None]
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def export_metadata(self, **changes) -> ModelMetadata:
        """Metadata for ``train.export.export_onnx`` of this network: the file's, with the in-graph
        standardisation as the network's ``mean``/``std`` (the exporter puts it back in the graph), the
        network spec in ``extra`` (so the written file is recovered directly), and ``changes``."""
        mean = tuple(float(v) for v in self.mean) if self.mean is not None else self.meta.mean
        std = tuple(float(v) for v in self.std) if self.std is not None else self.meta.std
        extra = {**self.meta.extra, "architecture": self.spec.architecture, "encoder": self.spec.encoder}
        if self.spec.antialias:
            extra["antialias"] = "true"
        else:
            extra.pop("antialias", None)
        return replace(self.meta, mean=mean, std=std, band_repeat=1, size_multiple_px=None, notes=(), extra=extra,
                       **changes)


LUMA = (0.299, 0.587, 0.114)


def _text(value: object) -> str:
    """A metadata value as text (the exporter writes extra keys bare; JSON strings are unquoted)."""
    text = str(value)
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    return decoded if isinstance(decoded, str) else text


def _supports(**kwargs: object) -> bool:
    params = inspect.signature(network.build_network).parameters
    return all(name in params for name in kwargs)


def encoders() -> tuple[str, ...]:
    return tuple(getattr(network, "ENCODERS", (network.ENCODER_NAME,)))


def candidates(path: Path, meta: ModelMetadata) -> tuple[list[NetworkSpec], str]:
    """The networks to try for the model file ``path``, and where that list came from."""
    extra = {k: _text(v) for k, v in meta.extra.items()}
    if "architecture" in extra:
        spec = NetworkSpec(extra["architecture"], extra.get("encoder", network.ENCODER_NAME),
                           extra.get("antialias", "false").lower() in ("true", "1", "yes"))
        return [spec], "the model's metadata"
    config = path.with_name(f"{path.stem}.train.json")
    if config.is_file():
        try:
            raw = json.loads(config.read_text())
        except (OSError, ValueError):
            raw = None
        if isinstance(raw, dict):
            spec = NetworkSpec(raw.get("architecture", "unet"), raw.get("encoder", network.ENCODER_NAME),
                               bool(raw.get("antialias", False)))
            return [spec], f"its training config {config.name}"
    found = [NetworkSpec(a, e, aa) for a in network.NETWORKS for e in encoders() for aa in (False, True)
             if (e == network.ENCODER_NAME or _supports(encoder=e)) and (not aa or _supports(antialias=True))]
    return found, "trying every network Landcover trains"


def build(spec: NetworkSpec, num_classes: int, in_channels: int) -> nn.Module:
    """``train.network.build_network`` for ``spec`` (randomly initialised). Raises ``LandcoverError``
    when this version of Landcover cannot build that network."""
    if spec.architecture not in network.NETWORKS:
        raise LandcoverError(f"architecture '{spec.architecture}' is not one Landcover builds ({', '.join(network.NETWORKS)})")
    kwargs: dict[str, object] = {}
    if spec.encoder != network.ENCODER_NAME:
        kwargs["encoder"] = spec.encoder
    if spec.antialias:
        kwargs["antialias"] = True
    if kwargs and not _supports(**kwargs):
        raise LandcoverError(f"the network ({spec.text()}) needs a newer Landcover than this one: update the plugin")
    return network.build_network(spec.architecture, num_classes, in_channels, **kwargs)  # type: ignore[arg-type]


class _ConvRecorder(TorchFunctionMode):
    """Records every 2-D convolution call: (weight, bias, output)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func in (torch.conv2d, nn.functional.conv2d):
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            self.calls.append((weight, bias, out))
        return out


def conv_order(net: nn.Module, in_channels: int) -> list[tuple[torch.Tensor, torch.Tensor | None, nn.BatchNorm2d | None]]:
    """The convolutions of ``net`` in execution order: (weight, bias, the BatchNorm applied to its output
    or ``None``). Raises ``LandcoverError`` for a BatchNorm that does not follow a convolution."""
    inputs: list[tuple[nn.BatchNorm2d, torch.Tensor]] = []
    hooks = [m.register_forward_pre_hook(lambda m, args: inputs.append((m, args[0])))
             for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    recorder = _ConvRecorder()
    try:
        with torch.no_grad(), recorder:
            net.eval()(torch.zeros(1, in_channels, 64, 64))
    finally:
        for hook in hooks:
            hook.remove()
    bn_of: dict[int, nn.BatchNorm2d] = {}
    outputs = {id(out): i for i, (_, _, out) in enumerate(recorder.calls)}
    for bn, tensor in inputs:
        if id(tensor) not in outputs:
            raise LandcoverError("a BatchNorm of the network does not follow a convolution: its weights cannot be recovered")
        bn_of[outputs[id(tensor)]] = bn
    return [(w, b, bn_of.get(i)) for i, (w, b, _) in enumerate(recorder.calls)]


def _graph(path: Path):
    """(Conv nodes of the network in graph order, constants by name, the front end's constants)."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise ImportError(f"recovering a model's weights needs the Python package 'onnx' ({exc})", name="onnx") from None
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 — onnx raises DecodeError and others for a damaged file
        raise ModelError(f"cannot read {path} as ONNX ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(attr.t)
    convs = [n for n in graph.node if n.op_type == "Conv" and not n.name.startswith(FRONT_PREFIX)]
    return convs, consts


def assign(net: nn.Module, in_channels: int, convs, consts: dict[str, np.ndarray]) -> None:
    """Copy the ONNX Conv nodes' weights into ``net`` (module docstring, step 3). Raises
    ``LandcoverError`` when the convolutions do not correspond."""
    order = conv_order(net, in_channels)
    if len(order) != len(convs):
        raise LandcoverError(f"the network has {len(order)} convolutions, the file {len(convs)}")
    with torch.no_grad():
        for i, ((weight, bias, bn), node) in enumerate(zip(order, convs)):
            w = consts.get(node.input[1])
            b = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            if w is None:
                raise LandcoverError(f"convolution {i}'s weights are computed in the graph, not stored")
            if tuple(weight.shape) != w.shape:
                raise LandcoverError(f"convolution {i} has weights {tuple(weight.shape)} in the network, {w.shape} in the file")
            if not isinstance(weight, nn.Parameter):  # a fixed kernel (BlurPool): must be the file's
                if not np.allclose(weight.numpy(), w, atol=1e-6) or (b is not None and np.abs(b).max() > 1e-6):
                    raise LandcoverError(f"fixed convolution {i} differs from the file's")
                continue
            weight.copy_(torch.from_numpy(np.array(w, np.float32)))
            folded = torch.from_numpy(np.array(b, np.float32)) if b is not None else torch.zeros(weight.shape[0])
            if bn is not None:
                if bias is not None:
                    bias.zero_()
                assert bn.running_mean is not None and bn.running_var is not None  # BatchNorm2d tracks its statistics
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(folded)
            elif bias is not None:
                bias.copy_(folded)
            elif folded.abs().max() > 0:
                raise LandcoverError(f"convolution {i} has a bias in the file but none in the network")


def _front(consts: dict[str, np.ndarray]) -> tuple[np.ndarray | None, np.ndarray | None, bool]:
    mean, std = consts.get(f"{FRONT_PREFIX}mean"), consts.get(f"{FRONT_PREFIX}std")
    luma = f"{FRONT_PREFIX}luma_weights" in consts
    return (None if mean is None else mean.reshape(-1).astype(np.float32),
            None if std is None else std.reshape(-1).astype(np.float32), luma)


def verify(rec: Recovered, model, seed: int = 0) -> float:
    """Max |difference| between the probabilities of ``rec`` and of ``model`` (an ``OnnxModel`` of the same
    file) on a random batch of two 64 px tiles in the model's value range."""
    low, high = model.meta.value_range
    raw = np.random.default_rng(seed).uniform(low, high, (2, int(model.num_bands or 1), 64, 64)).astype(np.float32)
    expected = model.predict(raw)
    with torch.no_grad():
        got = rec.net.eval()(rec.network_input(raw)).softmax(1).numpy()
    if got.shape != expected.shape:
        return float("inf")
    return float(np.abs(got - expected).max())


def recover(path: str | Path) -> Recovered:
    """The trainable network of the model file ``path`` (module docstring). Raises ``LandcoverError``
    in one line when its weights cannot be recovered, ``ImportError`` when PyTorch, onnx or the
    encoder package is missing. PyTorch's global random state is left as it was, so a training run
    that starts from the file draws the same crops and jitter however many networks were tried."""
    from ..model.adapter import OnnxModel

    path = Path(path)
    model = OnnxModel(path, "cpu")
    meta = model.meta
    convs, consts = _graph(path)
    mean, std, luma = _front(consts)
    specs, source = candidates(path, meta)
    reasons = []
    first = convs[0] if convs else None
    first_w = consts.get(first.input[1]) if first is not None and len(first.input) > 1 else None
    num_bands = int(model.num_bands or 0)  # set when the model opens
    in_channels = int(first_w.shape[1]) if first_w is not None and first_w.ndim == 4 else num_bands
    for spec in specs:
        try:
            with torch.random.fork_rng(devices=[]):  # the caller's random stream (a training run's) is left as it was
                torch.manual_seed(0)
                net = build(spec, meta.num_classes, in_channels)
            assign(net, in_channels, convs, consts)
        except LandcoverError as exc:
            reasons.append(f"{spec.text()}: {exc}")
            continue
        rec = Recovered(net.eval(), meta, spec, num_bands, in_channels, mean, std, luma, 0.0, source)
        rec.max_diff = verify(rec, model)
        if rec.max_diff <= TOLERANCE:
            return rec
        reasons.append(f"{spec.text()}: outputs differ by {rec.max_diff:.3g}")
    why = reasons[0] if len(reasons) == 1 else f"none of {len(specs)} networks fits" + (f" ({reasons[0]}; …)" if reasons else "")
    raise LandcoverError(f"model {path.name} has no recoverable weights ({why}, from {source}): fine-tune a model "
                         "that `landcover train` wrote, or retrain it with `landcover train`")
