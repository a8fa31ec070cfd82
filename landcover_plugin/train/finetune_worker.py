"""``finetune`` in a process of its own, for hosts whose UI shares Python's interpreter lock (QGIS): importing
PyTorch and training would otherwise hold it for seconds at a time. The host starts

    PYTHON -m landcover_plugin.train.finetune_worker PARAMS.json

(``PARAMS.json``: the ``FinetuneParams`` fields) and reads one JSON object per line on stdout:
``{"progress": 0.42}``, ``{"info": "…"}``, ``{"warning": "…"}``, then ``{"result": {…}}`` (exit 0),
``{"error": "…"}`` (a ``LandcoverError`` or a missing package; exit 2) or ``{"cancelled": true}``
(SIGTERM or Ctrl-C; nothing written; exit 130). Terminating the process is how a host cancels.
"""
from __future__ import annotations

import json
import signal
import sys
from dataclasses import asdict
from pathlib import Path

from ..errors import Cancelled, LandcoverError
from ..feedback import Feedback


class LineFeedback(Feedback):
    """Progress and messages as JSON lines on stdout (progress at most every 0.5 %)."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.last = -1.0

    def send(self, **item) -> None:
        self.out.write(json.dumps(item) + "\n")
        self.out.flush()

    def progress(self, fraction: float) -> None:
        if fraction - self.last >= 0.005 or fraction >= 1:
            self.last = fraction
            self.send(progress=round(fraction, 4))

    def info(self, message: str) -> None:
        self.send(info=message)

    def warning(self, message: str) -> None:
        self.send(warning=message)


def _terminate(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    feedback = LineFeedback()
    signal.signal(signal.SIGTERM, _terminate)
    try:
        from .finetune import FinetuneParams, finetune

        raw = json.loads(Path(args[0]).read_text())
        if raw.get("bands") is not None:
            raw["bands"] = tuple(raw["bands"])
        result = finetune(FinetuneParams(**raw), feedback)
    except (KeyboardInterrupt, Cancelled):
        feedback.send(cancelled=True)
        return 130
    except LandcoverError as exc:
        feedback.send(error=str(exc))
        return 2
    except ImportError as exc:
        feedback.send(error=f"missing package: {exc.name}", missing=exc.name)
        return 2
    feedback.send(result=asdict(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
