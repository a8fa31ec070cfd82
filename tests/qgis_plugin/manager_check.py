"""Run inside a headless QGIS application: the model manager's Add ONNX… (``ModelManager.add_path``) and
its model page (``model_html``) on every ONNX file in a folder. Prints a JSON report: file → "added" or
the one-line refusal, and whether the page shows an error."""
import json
import sys
from pathlib import Path

from qgis.core import QgsApplication

app = QgsApplication([], True)
app.initQgis()

from landcover_plugin.errors import LandcoverError  # noqa: E402
from landcover_plugin.qgis_plugin import settings  # noqa: E402
from landcover_plugin.qgis_plugin.models_dialog import ModelManager, model_html  # noqa: E402

report = {}
manager = ModelManager()
for path in sorted(Path(sys.argv[1]).glob("*.onnx")):
    try:
        manager.add_path(str(path))
        verdict = "added"
    except LandcoverError as exc:
        verdict = f"refused: {exc}"
    report[path.name] = {"verdict": verdict, "page_error": "color:#b00" in model_html(path.stem, path)}
settings.set_added_models({})
print(json.dumps(report))
