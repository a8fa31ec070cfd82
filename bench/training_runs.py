"""A Markdown table of training runs from their run folders (summary.json, config.json): run, model,
architecture and encoder, loss, recipe (augmentation beyond flips and rotations), steps, best step,
validation mIoU and OA, minutes, command.

    .venv/bin/python bench/training_runs.py docs/runs/*
"""
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from landcover_plugin.train.config import TrainConfig  # noqa: E402


def loss_words(loss: dict) -> str:
    names = {"ce": "CE", "dice": "Dice", "focal": "focal"}
    return " + ".join(f"{names[k]}" if v == 1 else f"{v:g}×{names[k]}" for k, v in loss.items() if v)


def recipe_words(config: dict) -> str:
    """The augmentation and sampling keys set in a run's config, shortly: "scale 0.5–2, colour 0.2, …"."""
    parts = []
    if config.get("init_model"):
        parts.append(f"from {Path(config['init_model']).name}")
    if config.get("scale_jitter"):
        parts.append("scale {:g}–{:g}".format(*config["scale_jitter"])
                     + (f" on {config['scale_jitter_fraction']:.0%}" if config.get("scale_jitter_fraction", 1) < 1 else ""))
    if config.get("degrade"):
        parts.append("detail loss {:g}–{:g}".format(*config["degrade"])
                     + (f" on {config['degrade_fraction']:.0%}" if config.get("degrade_fraction", 0.5) < 1 else ""))
    if config.get("crop_sizes"):
        parts.append("crops " + "/".join(map(str, config["crop_sizes"])))
    if config.get("label_fraction", 1) < 1:
        parts.append(f"label_fraction {config['label_fraction']:g}")
    if config.get("crop", 256) != 256:
        parts.append(f"crop {config['crop']}")
    for key, word in (("color_jitter", "colour"), ("haze", "haze"), ("class_balance", "balance"),
                      ("consistency", "consistency")):
        if config.get(key):
            parts.append(f"{word} {config[key]:g}")
    return ", ".join(parts) or "flips, rotations, brightness"


def row(path: Path) -> str:
    summary_path = path / "summary.json"
    s = json.loads(summary_path.read_text())
    config_path = summary_path.parent / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    steps = config.get("steps", "?")
    arch = s.get("architecture", TrainConfig.architecture)
    encoder = s.get("encoder", TrainConfig.encoder).replace("efficientnet-", "")
    loss = loss_words(s.get("loss", {"ce": 1.0}))
    return (f"| {summary_path.parent.name} | {s['name']} | {arch} {encoder} | {loss} | {recipe_words(config)} | {steps} | "
            f"{s['best_step']} | **{s['val_miou']:.3f}** | {s['val_overall_accuracy']:.3f} | {s['train_seconds'] / 60:.0f} | "
            f"`{s['command']}` |")


def main(paths: list[str]) -> int:
    print("| run | model | network | loss | recipe | steps | best step | val mIoU | val OA | min | command |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for p in paths:
        print(row(Path(p)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
