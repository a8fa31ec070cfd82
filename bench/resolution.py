"""Accuracy at other pixel sizes: the flair-rgb validation blocks resampled to 0.1 m (cubic) and 0.4 m
(average; labels by mode), classified with the defaults (resampled to the model's 0.2 m and back) and
with resampling off (the model sees the pixels as they are), against the native 0.2 m figure.

    .venv/bin/python bench/resolution.py [--json out/resolution.json]
"""
import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.evaluate_flair import score  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "models" / "flair-rgb.train.json"))
    ap.add_argument("--model", default=str(REPO / "models" / "flair-rgb.onnx"))
    ap.add_argument("--json", default=str(REPO / "out" / "resolution.json"))
    args = ap.parse_args()
    rows = []
    for pixel_size, gsd in ((None, "auto"), (0.1, "auto"), (0.1, "off"), (0.4, "auto"), (0.4, "off")):
        s = score(args.config, args.model, pixel_size, gsd, verbose=False)
        rows.append({"pixel_size_m": pixel_size or 0.2, "gsd": gsd, "miou": s["miou"],
                     "overall_accuracy": s["overall_accuracy"], "seconds": s["seconds"], "megapixels": s["megapixels"]})
        r = rows[-1]
        print(f"{r['pixel_size_m']:>5} m  --gsd {gsd:<4}  mIoU {r['miou']:.4f}  OA {r['overall_accuracy']:.4f}  "
              f"classify {r['seconds']:6.1f} s for {r['megapixels']:5.1f} MP", flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
