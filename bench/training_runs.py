"""A Markdown table of training runs from their run folders (summary.json, config.json): run, model,
architecture, loss, steps, best step, validation mIoU and OA, minutes, command.

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


def row(path: Path) -> str:
    summary_path = path / "summary.json"
    s = json.loads(summary_path.read_text())
    config_path = summary_path.parent / "config.json"
    steps = json.loads(config_path.read_text())["steps"] if config_path.exists() else "?"
    arch = s.get("architecture", TrainConfig.architecture)
    loss = loss_words(s.get("loss", {"ce": 1.0}))
    return (f"| {summary_path.parent.name} | {s['name']} | {arch} | {loss} | {steps} | {s['best_step']} | **{s['val_miou']:.3f}** | "
            f"{s['val_overall_accuracy']:.3f} | {s['train_seconds'] / 60:.0f} | `{s['command']}` |")


def main(paths: list[str]) -> int:
    print("| run | model | architecture | loss | steps | best step | val mIoU | val OA | min | command |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for p in paths:
        print(row(Path(p)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
