"""What the desktop scripts share (they run inside QGIS through ``qgis --code``, which gives a script no
``__file__``: their tests put this folder in ``LANDCOVER_TESTS``): a step runner on Qt timers, so QGIS'
event loop runs between a user's actions as it does between clicks, and the way out of QGIS."""
from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from qgis.core import QgsProject
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QDialog
from qgis.utils import iface


@dataclass
class Wait:
    """A step that waits until ``condition()`` is true: polled every 100 ms for at most ``seconds``,
    calling ``retry`` (if any) every 5 s meanwhile, as a user pans again when nothing shows."""

    condition: Callable[[], Any]
    name: str
    seconds: float = 120
    retry: Optional[Callable[[], Any]] = None


def run(steps: Iterator[Union[int, Wait]], report: dict, finish: Callable[[], None], *,
        each: Callable[[], None] = lambda: None,
        waited: Callable[[Wait, float], None] = lambda wait, seconds: None,
        stuck: Callable[[Wait], str] = lambda wait: f"'{wait.name}' did not happen within {wait.seconds} s") -> None:
    """Runs ``steps`` (a generator yielding milliseconds to wait, or a ``Wait``) on Qt timers. ``each``
    runs after every step and every poll (save the report, note dialogs); ``waited(wait, seconds)``
    records a wait that ended. A step or condition that raises, or a wait past its time (``stuck``
    says why), goes to ``report["error"]``; then, as at the end, ``finish()``."""

    def fail(why: str) -> None:
        report["error"] = why
        finish()

    def step() -> None:
        try:
            wait = next(steps)
        except StopIteration:
            return finish()
        except Exception:  # noqa: BLE001 (reported, then QGIS quits)
            return fail(traceback.format_exc())
        each()
        if not isinstance(wait, Wait):
            return QTimer.singleShot(int(wait), step)
        started = time.perf_counter()
        last_try = [started]

        def poll() -> None:
            each()
            if wait.retry and time.perf_counter() - last_try[0] > 5:
                last_try[0] = time.perf_counter()
                wait.retry()
            try:
                done = wait.condition()
            except Exception:  # noqa: BLE001
                return fail(traceback.format_exc())
            if done:
                waited(wait, time.perf_counter() - started)
                return step()
            if time.perf_counter() - started > wait.seconds:
                return fail(stuck(wait))
            QTimer.singleShot(100, poll)

        QTimer.singleShot(100, poll)

    QTimer.singleShot(0, step)


def quit_qgis(after_ms: int = 300, close_dialogs: bool = False) -> None:
    """Closes the visible dialogs (``close_dialogs``), clears the project so that QGIS asks nothing, and
    quits through the File menu's Exit after ``after_ms``."""
    if close_dialogs:
        for dialog in QApplication.topLevelWidgets():
            if isinstance(dialog, QDialog) and dialog.isVisible():
                dialog.close()
    QgsProject.instance().clear()
    QgsProject.instance().setDirty(False)
    QTimer.singleShot(after_ms, iface.actionExit().trigger)
