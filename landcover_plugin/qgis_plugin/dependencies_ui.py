"""Landcover's Python dependencies in QGIS: the plugin's packages folder in the QGIS profile (put on
``sys.path`` when the plugin loads, before anything imports onnxruntime), the probe's verdict, the one
message every entry point shows when something required is missing (with its *Install dependencies*
action), and the installer dialog that runs pip with QGIS' own interpreter into that folder.

Nothing here imports onnxruntime, and nothing raises into QGIS: a failure is shown as a line."""
from __future__ import annotations

import time
import traceback
from html import escape
from pathlib import Path

from qgis.core import Qgis, QgsApplication, QgsMessageLog
from qgis.PyQt.QtCore import QObject, Qt, QThread, QUrl, pyqtSignal, pyqtSlot
from qgis.PyQt.QtGui import QDesktopServices, QFont
from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from .. import dependencies as deps
from ..errors import Cancelled, LandcoverError

INSTALL_URL = "landcover:install-dependencies"  # opens the installer from any QGIS text with links (Processing's dialogs)
TAG = "Landcover"


def packages_root() -> Path:
    """``<profile>/landcover/python``: everything the installer writes is below it."""
    return Path(QgsApplication.qgisSettingsDirPath()) / "landcover" / "python"


def private_dir() -> Path:
    """The packages folder for this QGIS' Python (version, platform and machine in its name)."""
    return packages_root() / deps.interpreter_tag()


class _State(QObject):
    """The probe's latest verdict and a signal when it changes (after an install or a removal)."""

    changed = pyqtSignal()

    def __init__(self) -> None:
        super().__init__()
        self.report: deps.Report | None = None


state = _State()


def models_dir() -> Path:
    """``<profile>/landcover/models``: models fetched on first use (those the plugin zip lists but does not hold)."""
    return Path(QgsApplication.qgisSettingsDirPath()) / "landcover" / "models"


def activate_private_packages() -> None:
    """At plugin load: the packages folder goes first on ``sys.path``; fetched models are kept in the
    profile. Never raises."""
    try:
        from ..model.remote import set_cache_dir

        set_cache_dir(models_dir())
        deps.activate(private_dir())
    except Exception:  # noqa: BLE001 (a plugin that cannot load is worse than a missing package)
        QgsMessageLog.logMessage(f"Landcover packages folder not activated: {traceback.format_exc(limit=1)}", TAG, Qgis.Warning)


def report(refresh: bool = False) -> deps.Report:
    """The probe (modules really imported), cached until ``refresh``."""
    if state.report is None or refresh:
        try:
            state.report = deps.probe(private_dir(), deep=True)
        except Exception as exc:  # noqa: BLE001 (probe() does not raise; belt and braces)
            state.report = deps.Report([deps.Found("onnxruntime", "onnxruntime", "required", "runs the models",
                                                   problem=f"could not be checked: {exc}")], None, "?", "?")
    return state.report


def ready() -> bool:
    return report().ready


def missing_names(rep: deps.Report | None = None) -> str:
    rep = rep or report()
    names = [f.dist for f in rep.missing]
    return " and ".join(names) if names else ""


def missing_text(rep: deps.Report | None = None) -> str:
    """The one message, as plain text on one line (Processing's log, qgis_process)."""
    rep = rep or report()
    return (f"Landcover needs {missing_names(rep)} in QGIS' Python ({rep.summary()}). In QGIS: Raster → Landcover → "
            f"Install dependencies… installs it into this QGIS profile only. Without the desktop, run with QGIS' "
            f"Python: {headless_command()}")


def headless_command() -> str:
    """The installer as a command (for qgis_process on a server)."""
    return extras_command("required")


def extras_command(group: str) -> str:
    """The installer as a command for a group of packages (required, training, scale-out)."""
    script = Path(deps.__file__).resolve()
    option = "" if group == "required" else f" --group {group}"
    return f'"{deps.likely_python()}" "{script}" install{option} --target "{private_dir()}"'


def missing_html(rep: deps.Report | None = None, link: bool = False) -> str:
    """The one message as HTML; ``link`` adds the Install link (for QGIS' own dialogs)."""
    rep = rep or report()
    items = "".join(f"<li><b>{escape(f.dist)}</b>: {escape(f.problem or '')}</li>" for f in rep.missing)
    fix = (f"<p><a href='{INSTALL_URL}'>Install dependencies…</a></p>" if link else
           "<p><b>Install dependencies</b> downloads them from the Python package index (about 30 MB) and installs "
           "them with QGIS' own Python into this QGIS profile only — nothing else on the computer changes, "
           "and QGIS does not need to restart.</p>")
    return (f"<p><b>Landcover needs Python packages that QGIS does not have:</b></p><ul>{items}</ul>{fix}"
            f"<p style='color:#666'>Folder: {escape(str(private_dir()))}</p>")


class MissingPanel(QWidget):
    """The message with its *Install dependencies…* button (in the dock and the dialogs)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("LandcoverMissingDependencies")
        self.label = QLabel(missing_html())
        self.label.setObjectName("missing_message")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.RichText)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.button = QPushButton("Install dependencies…")
        self.button.setObjectName("install_dependencies")
        self.button.clicked.connect(lambda: open_installer(self.window()))
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        row = QHBoxLayout()
        row.addWidget(self.button)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(1)
        state.changed.connect(self.refresh)

    def refresh(self):
        self.label.setText(missing_html() if not ready() else "<p><b>Dependencies installed.</b></p>")
        self.button.setVisible(not ready())


class MissingDialog(QDialog):
    """What *Models…* and *Classify land cover…* open while something required is missing."""

    def __init__(self, parent, title: str):
        super().__init__(parent)
        self.setObjectName("LandcoverMissingDialog")
        self.setWindowTitle(f"Landcover — {title}")
        self.panel = MissingPanel(self)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.panel)
        layout.addWidget(buttons)
        self.resize(560, 300)
        self.panel.button.clicked.connect(self.accept)


class _Feedback:
    """The installer's feedback, from its thread to the dialog (Qt queues the signals)."""

    def __init__(self, thread: InstallThread):
        self.thread = thread

    def progress(self, fraction: float) -> None:
        self.thread.progressed.emit(fraction)

    def is_cancelled(self) -> bool:
        return self.thread.cancel_requested

    def info(self, message: str) -> None:
        self.thread.line.emit(message)

    def warning(self, message: str) -> None:
        self.thread.line.emit(f"Warning: {message}")


class InstallThread(QThread):
    """Runs ``dependencies.install`` off the UI thread."""

    line = pyqtSignal(str)
    progressed = pyqtSignal(float)
    finished_with = pyqtSignal(object)  # InstallResult, or the exception

    def __init__(self, target: Path, requirements: list[str] | None, gpus: list[str]):
        super().__init__()
        self.target, self.requirements, self.gpus = target, requirements, gpus
        self.cancel_requested = False

    def run(self):
        try:
            result = deps.install(self.target, self.requirements, _Feedback(self), gpus=self.gpus)
        except (LandcoverError, Cancelled) as exc:
            result = exc
        except Exception as exc:  # noqa: BLE001 (shown in the dialog, never raised into QGIS)
            result = LandcoverError(f"the installer failed: {type(exc).__name__}: {exc}")
            self.line.emit(traceback.format_exc())
        self.finished_with.emit(result)


class InstallDialog(QDialog):
    """Says what will be installed where, runs pip (progress, pip's log, Cancel), then says whether
    Landcover is ready without a restart. ``repair`` reinstalls into a fresh folder."""

    def __init__(self, parent=None, repair: bool = False):
        super().__init__(parent)
        self.setObjectName("LandcoverInstallDialog")
        self.setWindowTitle("Landcover — install dependencies" if not repair else "Landcover — repair dependencies")
        self.resize(820, 560)
        self.thread: InstallThread | None = None
        self.busy = False  # from Install until the result is shown (the thread ends before its result arrives)
        self.result = None
        self.started_at = 0.0
        rep = report()
        gpus = deps.nvidia_gpus()
        self.gpus = gpus
        self.requirements = deps.requirements_for("required", gpus)
        numpy = rep.get("numpy")
        intro = QLabel(
            f"<p>Installs <b>{escape(', '.join(self.requirements))}</b> and what it needs with QGIS' own Python, "
            f"into this QGIS profile only:<br><tt>{escape(str(private_dir()))}</tt></p>"
            f"<p>numpy stays QGIS' own ({escape(numpy.version if numpy and numpy.version else '?')}: a constraint keeps pip "
            "from changing it); nothing outside the folder above is written. About 30 MB is downloaded from the "
            "Python package index (pip's settings apply: proxy, index).</p>"
            + (f"<p>NVIDIA GPU found ({escape(gpus[0])}): the GPU build is tried first, the CPU one if it does not "
               "import.</p>" if self.requirements != deps.requirements_for("cpu") else ""))
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.RichText)
        intro.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.status = QLabel("Ready to install." if not repair else "Ready to reinstall.")
        self.status.setObjectName("install_status")
        self.status.setWordWrap(True)
        self.log = QPlainTextEdit()
        self.log.setObjectName("install_log")
        self.log.setReadOnly(True)
        self.log.setFont(QFont("Monospace", 8))
        self.log.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.install_button = QPushButton("Install" if not repair else "Reinstall")
        self.install_button.setObjectName("install")
        self.install_button.setDefault(True)
        self.install_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        self.close_button.setObjectName("close")
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.install_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addWidget(self.log, 1)
        layout.addLayout(buttons)

    def running(self) -> bool:
        """True from Install until the dialog shows the result: pip's thread ends a moment before its
        queued result reaches the dialog, so the thread's own state would say done too early."""
        return self.busy

    def start(self):
        if self.running():
            return
        self.log.clear()
        self.bar.setValue(0)
        self.busy = True
        self.status.setText("Installing… (pip's log below)")
        self.install_button.setEnabled(False)
        self.close_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.started_at = time.perf_counter()
        self.thread = InstallThread(private_dir(), None, self.gpus)
        self.thread.line.connect(self.add_line)
        self.thread.progressed.connect(lambda f: self.bar.setValue(int(1000 * f)))
        self.thread.finished_with.connect(self.done_installing)
        self.thread.start()

    def add_line(self, text: str):
        self.log.appendPlainText(text)

    def cancel(self):
        if self.running():
            self.thread.cancel_requested = True
            self.status.setText("Cancelling: stopping pip…")
            self.cancel_button.setEnabled(False)

    def done_installing(self, result):
        try:
            self.show_result(result)
        finally:
            self.busy = False

    def show_result(self, result):
        self.result = result
        self.thread.wait()
        seconds = time.perf_counter() - self.started_at
        self.cancel_button.setEnabled(False)
        self.close_button.setEnabled(True)
        self.install_button.setEnabled(True)
        if isinstance(result, Cancelled):
            self.bar.setValue(0)
            self.status.setText("Cancelled: nothing was changed.")
            self.install_button.setText("Install")
            return
        if isinstance(result, Exception):
            self.bar.setValue(0)
            self.status.setText(f"<span style='color:#b00'>Not installed: {escape(str(result))}</span>")
            self.add_line(f"Not installed: {result}")
            self.install_button.setText("Try again")
            return
        deps.activate(result.target)
        rep = report(refresh=True)
        installed = ", ".join(f"{k} {v}" for k, v in sorted(result.installed.items()))
        if result.restart_needed or not rep.ready:
            self.status.setText(f"<b>Installed {escape(installed)} in {seconds:.0f} s.</b> "
                                f"<span style='color:#a60'>Restart QGIS to use {'them' if rep.ready else 'it'}"
                                f"{'' if rep.ready else ': ' + escape(rep.summary())}.</span>")
        else:
            self.status.setText(f"<b>Installed {escape(installed)} in {seconds:.0f} s. Landcover is ready — no restart "
                                "needed.</b>")
        self.add_line(f"Done in {seconds:.1f} s: {installed} in {result.target}")
        self.install_button.setVisible(False)
        QgsMessageLog.logMessage(f"Dependencies installed in {seconds:.1f} s: {installed} ({result.target})", TAG, Qgis.Info)
        state.changed.emit()

    def reject(self):
        if self.running():
            self.cancel()
            return
        super().reject()

    def closeEvent(self, event):  # noqa: N802 (Qt's name)
        if self.running():
            self.cancel()
            event.ignore()
            return
        super().closeEvent(event)


_dialogs: list[InstallDialog] = []


def open_installer(parent=None, repair: bool = False) -> InstallDialog:
    """Show the installer (one at a time)."""
    for dialog in _dialogs:
        if dialog.isVisible():
            dialog.raise_()
            dialog.activateWindow()
            return dialog
    _dialogs.clear()
    dialog = InstallDialog(parent, repair)
    dialog.setAttribute(Qt.WA_DeleteOnClose, False)
    _dialogs.append(dialog)
    dialog.show()
    return dialog


def remove_packages(parent=None) -> str:
    """Delete the packages folder after asking; returns what happened (one line)."""
    folder = private_dir()
    if not folder.exists():
        return "Nothing to remove: Landcover has installed no packages in this profile."
    if QMessageBox.question(parent, "Landcover — remove packages",
                            f"Delete Landcover's packages folder?\n{folder}") != QMessageBox.Yes:
        return "Not removed."
    loaded = deps.remove(folder)
    report(refresh=True)
    state.changed.emit()
    return (f"Removed {folder}." + (" QGIS keeps the loaded onnxruntime until it restarts." if loaded else ""))


class UrlHandler(QObject):
    """Opens the installer for ``landcover:install-dependencies`` links (Processing's message dialog
    opens links with QDesktopServices)."""

    @pyqtSlot(QUrl)
    def handle(self, url: QUrl):
        if url.toString() == INSTALL_URL:
            from qgis.utils import iface

            open_installer(iface.mainWindow() if iface else None)


_handler = UrlHandler()


def register_url_handler() -> None:
    QDesktopServices.setUrlHandler("landcover", _handler, "handle")


def unregister_url_handler() -> None:
    QDesktopServices.unsetUrlHandler("landcover")
