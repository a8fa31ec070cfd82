"""The one contract between a host (CLI, Processing, live layer, Dask task) and the engine: progress,
cancellation and messages travel through a ``Feedback`` object.

Hosts subclass it (the CLI draws a tqdm bar, Processing forwards to ``QgsProcessingFeedback``, the
live layer to its ``QgsTask``); the engine calls ``progress``, ``info`` and ``warning`` and polls
``check_cancelled`` between units of work.
"""
from __future__ import annotations

import logging

from .errors import Cancelled

log = logging.getLogger("landcover")


class Feedback:
    """Does nothing but log; override what the host shows."""

    def progress(self, fraction: float) -> None:
        """The share of the work done, 0–1."""

    def is_cancelled(self) -> bool:
        """True once the user asked to stop."""
        return False

    def info(self, message: str) -> None:
        """A note for the log (one line)."""
        log.info(message)

    def warning(self, message: str) -> None:
        """Something the user should know about the result (one line)."""
        log.warning(message)

    def check_cancelled(self) -> None:
        """Raise ``Cancelled`` when ``is_cancelled()``."""
        if self.is_cancelled():
            raise Cancelled("cancelled by the user; no output was written")


class RecordingFeedback(Feedback):
    """Wraps another feedback and keeps every warning (results report them)."""

    def __init__(self, inner: Feedback | None = None):
        self.inner = inner or Feedback()
        self.warnings: list[str] = []

    def progress(self, fraction: float) -> None:
        self.inner.progress(fraction)

    def is_cancelled(self) -> bool:
        return self.inner.is_cancelled()

    def info(self, message: str) -> None:
        self.inner.info(message)

    def warning(self, message: str) -> None:
        self.warnings.append(message)
        self.inner.warning(message)
