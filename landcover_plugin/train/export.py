"""Export a trained network to ONNX with Landcover metadata (schema 1)."""
from __future__ import annotations

import os
from pathlib import Path

import onnx
import torch

from ..model.metadata import ModelMetadata


class _WithSoftmax(torch.nn.Module):
    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.softmax(self.net(x), dim=1)


def export_onnx(net: torch.nn.Module, meta: ModelMetadata, path: str | Path, in_channels: int, opset: int = 17) -> None:
    """Write ``net`` (logits ``(B, K, H, W)``) as ONNX with a softmax, so the file outputs probabilities
    ``(B, K, H, W)`` float32 for input ``(B, C, H, W)`` float32 with dynamic B, H and W, and store
    ``meta.to_props()`` in ``metadata_props``. Written to a temporary name, renamed when complete."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    wrapper = _WithSoftmax(net).eval()  # eval: BatchNorm must export its running statistics
    dummy = torch.zeros(1, in_channels, meta.tile_size, meta.tile_size)
    axes = {0: "batch", 2: "height", 3: "width"}
    try:
        torch.onnx.export(wrapper, dummy, str(tmp), input_names=["input"], output_names=["probabilities"],
                          dynamic_axes={"input": axes, "probabilities": axes}, opset_version=opset, dynamo=False)
        model = onnx.load(str(tmp))
        for key, value in meta.to_props().items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
