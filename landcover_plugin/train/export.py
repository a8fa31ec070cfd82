"""Export a trained network to ONNX with Landcover metadata (schema 1) that Deepness and GeoDeep run
unchanged.

What the other tools need, and what is written for them (``peer_compatible``):

- Deepness and GeoDeep feed ``x / 255`` and GeoDeep ignores ``standardization_mean/std``: the
  standardisation ``(x - mean) / std`` is put inside the graph, and the metadata says mean 0, std 1,
  so every tool (Landcover included) feeds the same ``x / 255``.
- GeoDeep takes the tile size from the input shape, Deepness reads the class count from the output
  shape: the input is declared ``(batch, C, T, T)`` and the output ``(batch, K, T, T)`` with
  ``T`` = the tile size. The graph itself stays size-agnostic; ``size_multiple`` tells Landcover it
  may run it at any multiple of 32 px.
- GeoDeep feeds three channels (RGB): a greyscale (1-band) model gets an RGB input and computes the
  luma (ITU-R BT.601, as Landcover's reader) inside the graph; Landcover feeds its grey band three
  times (``band_repeat`` 3).
- Metadata values are JSON, ``model_type`` is ``"Segmentor"``, ``class_names`` is ``{"0": …}``, and
  both ``tile_size`` and ``tiles_size``, ``tiles_overlap`` (%), ``resolution`` (cm/px),
  ``seg_thresh`` 0 and ``seg_small_segment`` 0 are written beside our own keys
  (``ModelMetadata.to_props``).

``python -m landcover_plugin.train.export IN.onnx OUT.onnx`` rewrites an existing Landcover model
this way without retraining (its outputs are unchanged; see ``tests/model/test_export_peers.py``).
"""
from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import LandcoverError
from ..model.metadata import ModelMetadata, parse_metadata

PEER_SIZE_MULTIPLE = 32  # the networks' total stride: Landcover may run them at any multiple of it
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as engine.reader.LUMA
GREY_NAMES = ("gray", "grey", "panchromatic")
NORMALISED = "landcover_normalised_input"


def is_grey(meta: ModelMetadata) -> bool:
    return meta.input_bands is not None and len(meta.input_bands) == 1 and meta.input_bands[0] in GREY_NAMES


def peer_compatible(model: onnx.ModelProto, meta: ModelMetadata) -> tuple[onnx.ModelProto, ModelMetadata]:
    """``model`` (one input ``(B, C, H, W)`` of standardised bands, one output ``(B, K, H, W)`` of
    probabilities) and its metadata → a model Deepness and GeoDeep run unchanged (module docstring)
    and the metadata to store in it. The network's nodes and weights are not changed; nodes are
    added in front of them. Raises ``LandcoverError`` for a model that does not have that form."""
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise LandcoverError("peer-compatible export needs a network with one input and one output")
    old = inputs[0]
    channels = old.type.tensor_type.shape.dim[1].dim_value
    bands = meta.num_bands or channels
    if channels != bands:
        raise LandcoverError(f"the network takes {channels} channels but the metadata describes {bands} bands")
    if any(n.op_type in ("Sub", "Div") and NORMALISED in n.output for n in graph.node):
        raise LandcoverError("the model already normalises inside its graph (exported by this function)")
    grey = is_grey(meta) and channels == 1
    net_in = 3 if grey else channels
    tile, k = meta.tile_size_px, meta.num_classes
    for node in graph.node:
        node.input[:] = [NORMALISED if name == old.name else name for name in node.input]
    nodes, consts, src = [], [], old.name
    if grey:
        consts.append(numpy_helper.from_array(np.asarray(LUMA, np.float32).reshape(1, 3, 1, 1), "landcover_luma_weights"))
        nodes.append(helper.make_node("Conv", [src, "landcover_luma_weights"], ["landcover_luma"], name="landcover_luma"))
        src = "landcover_luma"
    if meta.mean is not None or meta.std is not None:
        mean = np.asarray(meta.mean or [0.0] * bands, np.float32).reshape(1, bands, 1, 1)
        std = np.asarray(meta.std or [1.0] * bands, np.float32).reshape(1, bands, 1, 1)
        consts += [numpy_helper.from_array(mean, "landcover_mean"), numpy_helper.from_array(std, "landcover_std")]
        nodes += [helper.make_node("Sub", [src, "landcover_mean"], ["landcover_centred"], name="standardise_mean"),
                  helper.make_node("Div", ["landcover_centred", "landcover_std"], [NORMALISED], name="standardise_std")]
    else:
        nodes.append(helper.make_node("Identity", [src], [NORMALISED], name="standardise"))
    new_nodes = nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(consts)
    new_input = helper.make_tensor_value_info(old.name, TensorProto.FLOAT, ["batch", net_in, tile, tile])
    position = list(graph.input).index(old)
    graph.input.remove(old)
    graph.input.insert(position, new_input)
    out = graph.output[0]
    out.type.tensor_type.shape.Clear()
    out.type.tensor_type.shape.dim.add().dim_param = "batch"
    for size in (k, tile, tile):
        out.type.tensor_type.shape.dim.add().dim_value = size
    meta = replace(meta, mean=(0.0,) * bands, std=(1.0,) * bands, band_repeat=3 if grey else 1,
                   size_multiple_px=PEER_SIZE_MULTIPLE, output="probabilities", notes=())
    return model, meta


def _store(model: onnx.ModelProto, meta: ModelMetadata, path: Path) -> None:
    del model.metadata_props[:]
    for key, value in meta.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        onnx.save(model, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def upgrade_model(source: str | Path, target: str | Path) -> ModelMetadata:
    """Rewrite a Landcover model file (schema 1, standardisation outside the graph) as a
    peer-compatible one (``peer_compatible``), written to a temporary name and renamed. Returns the
    new metadata. Raises ``LandcoverError`` for a model that cannot be rewritten."""
    model = onnx.load(str(source))
    meta = parse_metadata({p.key: p.value for p in model.metadata_props})
    model, meta = peer_compatible(model, meta)
    _store(model, meta, Path(target))
    return meta


def set_tiling(source: str | Path, target: str | Path, tile_px: int, overlap_px: int) -> ModelMetadata:
    """Rewrite a peer-compatible model's default tiling (metadata and the declared input/output size the
    peers read it from); the graph and its weights are unchanged. Written to a temporary name and
    renamed. Raises ``LandcoverError`` for a tiling the metadata refuses."""
    model = onnx.load(str(source))
    meta = parse_metadata({p.key: p.value for p in model.metadata_props})
    meta = parse_metadata(replace(meta, tile_size_px=tile_px, overlap_px=overlap_px).to_props())  # validated
    for value in (*[i for i in model.graph.input if i.name not in {t.name for t in model.graph.initializer}],
                  *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for axis in (2, 3):
            if dims[axis].HasField("dim_value"):
                dims[axis].dim_value = tile_px
    _store(model, meta, Path(target))
    return meta


def export_onnx(net, meta: ModelMetadata, path: str | Path, in_channels: int, opset: int = 17) -> None:
    """Write ``net`` (logits ``(B, K, H, W)``) as ONNX with a softmax, so the file outputs probabilities
    ``(B, K, H, W)`` float32, made peer-compatible (``peer_compatible``: normalisation and, for a grey
    model, luma inside; input declared ``(batch, C, T, T)``, output ``(batch, K, T, T)``; Landcover
    runs it at any multiple of 32 px), with ``meta`` completed accordingly in ``metadata_props``.
    Written to a temporary name, renamed when complete."""
    import torch

    class WithSoftmax(torch.nn.Module):
        """The network followed by a softmax over the class axis, written out as ReduceMax, Sub, Exp,
        ReduceSum and Div: onnxruntime's CPU ``Softmax`` over axis 1 of ``(B, K, H, W)`` transposes the
        tensor and cost as much as the whole EfficientNet-Lite0 network (a 512 px batch of 4: 0.66 s
        with ``Softmax``, 0.33 s with these element-wise ops, which run on all intra-op threads)."""

        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.net = inner

        def forward(self, x):
            logits = self.net(x)
            e = torch.exp(logits - logits.amax(dim=1, keepdim=True))
            return e / e.sum(dim=1, keepdim=True)

    path = Path(path)
    tmp = path.with_name(f".{path.name}.torch.tmp")
    wrapper = WithSoftmax(net).eval()  # eval: BatchNorm must export its running statistics
    dummy = torch.zeros(1, in_channels, meta.tile_size_px, meta.tile_size_px)
    axes = {0: "batch", 2: "height", 3: "width"}
    try:
        torch.onnx.export(wrapper, (dummy,), str(tmp), input_names=["input"], output_names=["probabilities"],
                          dynamic_axes={"input": axes, "probabilities": axes}, opset_version=opset, dynamo=False)
        model, meta = peer_compatible(onnx.load(str(tmp)), meta)
        _store(model, meta, path)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    tiling = None
    if len(args) == 4 and args[0] == "--tiling":
        tile_px, overlap_px = (int(v) for v in args[1].split("/"))
        tiling, args = (tile_px, overlap_px), args[2:]
    if len(args) != 2:
        print("usage: python -m landcover_plugin.train.export [--tiling TILE/OVERLAP] IN.onnx OUT.onnx", file=sys.stderr)
        return 2
    try:
        meta = set_tiling(args[0], args[1], *tiling) if tiling else upgrade_model(*args)
    except LandcoverError as exc:
        print(f"landcover: error: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {args[1]} ({meta.name}, {meta.num_classes} classes, runs in Landcover, Deepness and GeoDeep)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
