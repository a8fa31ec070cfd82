"""The Diagnostics dialog: what Landcover can run on here (dependencies and what is missing, versions,
devices, execution providers, models) as selectable text for bug reports, with the actions that fix
the dependencies: install, repair (reinstall into a fresh folder), remove. Works with no dependency
installed at all."""
from __future__ import annotations

from pathlib import Path

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QFont, QGuiApplication
from qgis.PyQt.QtWidgets import QDialog, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout

from . import dependencies_ui
from .settings import added_models


def diagnostics_report() -> str:
    """The Diagnostics text (never raises: a failure becomes a line)."""
    from .. import dependencies as deps

    try:
        from ..diagnostics import diagnostics, diagnostics_text

        added = {name: Path(path) for name, path in added_models().items()}
        return diagnostics_text(diagnostics(added, dependencies_ui.private_dir()),
                                fix="Install dependencies… below (or Raster → Landcover → Install dependencies…)")
    except Exception as exc:  # noqa: BLE001 (Diagnostics must show something whatever is broken)
        report = deps.probe(dependencies_ui.private_dir())
        return "\n".join([f"Diagnostics failed: {type(exc).__name__}: {exc}", *deps.probe_lines(report)])


class DiagnosticsDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("LandcoverDiagnostics")
        self.setWindowTitle("Landcover diagnostics")
        self.resize(900, 560)
        self.heading = QLabel()
        self.heading.setObjectName("diagnostics_heading")
        self.heading.setWordWrap(True)
        self.heading.setTextFormat(Qt.RichText)
        self.view = QPlainTextEdit()
        self.view.setObjectName("diagnostics_text")
        self.view.setReadOnly(True)
        self.view.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.view.setFont(QFont("Monospace", 9))
        self.note = QLabel()
        self.note.setObjectName("diagnostics_note")
        self.note.setWordWrap(True)
        self.install = QPushButton("Install dependencies…")
        self.install.setObjectName("install_dependencies")
        self.install.clicked.connect(lambda: dependencies_ui.open_installer(self, repair=dependencies_ui.ready()))
        self.remove = QPushButton("Remove installed packages")
        self.remove.setObjectName("remove_packages")
        self.remove.clicked.connect(lambda: self.note.setText(dependencies_ui.remove_packages(self)))
        copy = QPushButton("Copy")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text()))
        close = QPushButton("Close")
        close.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        for button in (self.install, self.remove, copy):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        self.refresh()

    def showEvent(self, event):  # noqa: N802 (Qt's name): follows installs and removals while shown
        dependencies_ui.state.changed.connect(self.refresh)
        super().showEvent(event)

    def hideEvent(self, event):  # noqa: N802
        dependencies_ui.state.changed.disconnect(self.refresh)
        super().hideEvent(event)

    def refresh(self):
        dependencies_ui.report(refresh=True)
        ready = dependencies_ui.ready()
        self.heading.setText("<b>Landcover can run here.</b>" if ready else dependencies_ui.missing_html())
        self.install.setText("Repair dependencies…" if ready else "Install dependencies…")
        self.install.setVisible(ready is False or dependencies_ui.private_dir().exists())
        self.remove.setEnabled(dependencies_ui.private_dir().exists())
        self.view.setPlainText(diagnostics_report())

    def text(self) -> str:
        """The report (for bug reports and tests)."""
        return self.view.toPlainText()
