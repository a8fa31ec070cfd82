"""Model manager: the bundled and added ONNX models, their metadata, classes and colours; add an ONNX
file (validated before it is kept), validate, remove an added one; download a bundled model that the
plugin package lists but does not hold (fetched and SHA-256-checked into the profile). Added models
persist in the QGIS profile (``settings.added_models``)."""
from __future__ import annotations

from html import escape
from pathlib import Path

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QDialog, QDialogButtonBox, QFileDialog, QHBoxLayout, QListWidget, QPushButton, QTextBrowser, QVBoxLayout

from ..errors import LandcoverError
from ..model.adapter import OnnxModel, compatible_tools, validate_model
from ..model.metadata import gsd_text
from ..model.remote import RemoteModel, fetch, remote_models
from . import settings

NOT_DOWNLOADED = " (not downloaded)"


def remote_html(model: RemoteModel) -> str:
    """A listed model that is not here yet: what downloading it means."""
    where = (f"Downloaded from <tt>{escape(model.url)}</tt> on first use (or now, with <b>Download</b>)"
             if model.url else "No download URL is configured (LANDCOVER_MODELS_URL): add the file with Add ONNX…")
    return (f"<h3>{escape(model.name)}</h3><p>A bundled model that is not inside the plugin package (the QGIS plugin "
            f"repository takes 25 MB).</p><table><tr><td><b>Size</b></td><td>{model.size / 1e6:.1f} MB</td></tr>"
            f"<tr><td><b>SHA-256</b></td><td><tt>{model.sha256}</tt></td></tr></table><p>{where}; the file is checked "
            "against this SHA-256 and kept in the QGIS profile.</p>")


def model_html(name: str, path: Path) -> str:
    """The model's metadata as HTML: description, bands, value range, GSD, tiling, classes in colour."""
    try:
        model = OnnxModel(path, "cpu")
        tools = compatible_tools(path)
    except LandcoverError as exc:
        return f"<h3>{escape(name)}</h3><p style='color:#b00'>{escape(str(exc))}</p>"
    m = model.meta
    rows = "".join(f"<tr><td>{v}</td><td style='background:{c}'>&nbsp;&nbsp;&nbsp;&nbsp;</td><td>{escape(n)}</td></tr>"
                   for v, c, n in zip(m.class_values, m.class_colors, m.class_names))
    facts = [("Bands", ", ".join(m.input_bands or []) or f"{model.num_bands} (unnamed)"),
             ("Value range", f"{m.value_range[0]:g}–{m.value_range[1]:g}"), ("GSD", gsd_text(m.gsd_m)),
             ("Tile / overlap", f"{m.tile_size_px} / {m.overlap_px} px"), ("Licence", m.license or "not stated"),
             ("Attribution", m.attribution or "none"),
             ("Runs in", "; ".join(f"{tool} {verdict}" for tool, verdict in tools.items())), ("File", str(path))]
    table = "".join(f"<tr><td><b>{k}</b></td><td>{escape(str(v))}</td></tr>" for k, v in facts)
    notes = "".join(f"<p style='color:#a60'>{escape(n)}</p>" for n in m.notes)
    return (f"<h3>{escape(m.name or name)} {escape(m.version or '')}</h3><p>{escape(m.description or '')}</p>{notes}"
            f"<table>{table}</table><h4>{m.num_classes} classes</h4><table cellpadding='2'>{rows}</table>")


class ModelManager(QDialog):
    """Lists models; ``changed`` callbacks run after an add or remove."""

    def __init__(self, parent=None, changed=None):
        super().__init__(parent)
        self.setWindowTitle("Landcover models")
        self.resize(760, 520)
        self.changed = changed
        self.list = QListWidget()
        self.info = QTextBrowser()
        self.list.currentTextChanged.connect(self.show_model)
        buttons = QHBoxLayout()
        for label, slot in (("Add ONNX…", self.add), ("Save as…", self.save_as_dialog), ("Validate", self.validate),
                            ("Remove", self.remove), ("Download", self.download)):
            button = QPushButton(label)
            button.clicked.connect(slot)
            buttons.addWidget(button)
            if label == "Download":
                self.download_button = button
        buttons.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.Close)
        close.rejected.connect(self.reject)
        buttons.addWidget(close)
        panes = QHBoxLayout()
        panes.addWidget(self.list, 1)
        panes.addWidget(self.info, 3)
        layout = QVBoxLayout(self)
        layout.addLayout(panes)
        layout.addLayout(buttons)
        self.fill()

    def fill(self, select: str | None = None):
        self.models = settings.all_models()
        self.remote = {name + NOT_DOWNLOADED: model for name, model in remote_models().items() if name not in self.models}
        self.list.clear()
        self.list.addItems(list(self.models) + list(self.remote))
        items = self.list.findItems(select, Qt.MatchExactly) if select else []
        self.list.setCurrentRow(self.list.row(items[0]) if items else 0)

    def show_model(self, name: str):
        self.download_button.setEnabled(name in self.remote)
        if name in self.models:
            self.info.setHtml(model_html(name, self.models[name]))
        elif name in self.remote:
            self.info.setHtml(remote_html(self.remote[name]))

    def download(self):
        """Fetch the selected listed model (progress in a dialog; Cancel is not offered: 15 MB)."""
        from qgis.PyQt.QtWidgets import QApplication, QProgressDialog

        item = self.list.currentItem()
        model = self.remote.get(item.text()) if item else None
        if model is None:
            return
        progress = QProgressDialog(f"Downloading {model.name} ({model.size / 1e6:.1f} MB)…", None, 0, 100, self)
        progress.setWindowModality(Qt.WindowModal)
        progress.show()

        def step(fraction: float):
            progress.setValue(int(100 * fraction))
            QApplication.processEvents()

        try:
            fetch(model, step)
        except LandcoverError as exc:
            self.info.setHtml(f"<p style='color:#b00'>Not downloaded: {escape(str(exc))}</p>" + remote_html(model))
            return
        finally:
            progress.close()
        self.fill(model.name)
        if self.changed:
            self.changed()

    def add_path(self, path: str) -> str:
        """Validate ``path`` and add it; returns its name. Raises ``LandcoverError`` when invalid."""
        validate_model(path)
        added = settings.added_models()
        name = Path(path).stem
        added[name] = str(Path(path).resolve())
        settings.set_added_models(added)
        return name

    def add(self):
        path, _ = QFileDialog.getOpenFileName(self, "Add an ONNX model", "", "ONNX models (*.onnx)")
        if not path:
            return
        try:
            name = self.add_path(path)
        except LandcoverError as exc:
            self.info.setHtml(f"<p style='color:#b00'>Not added: {escape(str(exc))}</p>")
            return
        self.fill(name)
        if self.changed:
            self.changed()

    def save_as(self, name: str, path: str) -> str:
        """Copy model ``name`` (and its model card) to ``path`` and list it under the file's name; an adapted
        model from the dock's Improve model (kept in the profile) is then listed only under the new name.
        Returns the new name. Raises ``LandcoverError`` when the copy fails."""
        import shutil

        source, target = Path(self.models[name]), Path(path).with_suffix(".onnx")
        try:
            if source.resolve() != target.resolve():
                shutil.copyfile(source, target)
                if source.with_suffix(".md").exists():
                    shutil.copyfile(source.with_suffix(".md"), target.with_suffix(".md"))
        except OSError as exc:
            raise LandcoverError(f"could not save {name} as {target}: {exc.strerror or exc}") from None
        added = settings.added_models()
        key = name.removesuffix(" (added)")
        if key in added and Path(added[key]).parent.name == "adapted" and Path(added[key]).parent.parent.name == "landcover":
            del added[key]
        added[target.stem] = str(target.resolve())
        settings.set_added_models(added)
        return target.stem

    def save_as_dialog(self):
        item = self.list.currentItem()
        if item is None or item.text() not in self.models:
            return
        name = item.text()
        path, _ = QFileDialog.getSaveFileName(self, f"Save {name} as", str(Path.home() / f"{name}.onnx"), "ONNX models (*.onnx)")
        if not path:
            return
        try:
            new = self.save_as(name, path)
        except LandcoverError as exc:
            self.info.setHtml(f"<p style='color:#b00'>Not saved: {escape(str(exc))}</p>")
            return
        self.fill(new)
        if self.changed:
            self.changed()

    def validate(self):
        name = self.list.currentItem().text() if self.list.currentItem() else None
        if name is None or name not in self.models:
            return
        try:
            model = validate_model(self.models[name])
            verdict = (f"<p style='color:#070'><b>Valid</b>: one {min(model.meta.tile_size_px, 128)} px tile ran on "
                       f"{model.provider} and gave probabilities for {model.meta.num_classes} classes.</p>")
        except LandcoverError as exc:
            verdict = f"<p style='color:#b00'><b>Invalid</b>: {escape(str(exc))}</p>"
        self.info.setHtml(verdict + model_html(name, self.models[name]))

    def remove(self):
        item = self.list.currentItem()
        added = settings.added_models()
        key = item.text().removesuffix(" (added)") if item else None
        if key not in added:
            self.info.setHtml("<p>Bundled models cannot be removed; only models you added.</p>")
            return
        del added[key]
        settings.set_added_models(added)
        self.fill()
        if self.changed:
            self.changed()
