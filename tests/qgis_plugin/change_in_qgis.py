"""Run inside a QGIS application (headless): landcover:change with the layer post-processor (the change
layer's legend), and as a child of a model-builder model whose later child reads its CHANGED_PERCENT.
Prints a JSON report."""
import json
import sys

from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterRasterLayer,
    QgsRasterLayer,
)

app = QgsApplication([], False)
app.initQgis()
sys.path.insert(0, "/usr/share/qgis/python/plugins")
from processing.core.Processing import Processing  # noqa: E402

Processing.initialize()
import processing  # noqa: E402

import landcover_plugin  # noqa: E402

plugin = landcover_plugin.classFactory(None)
plugin.initProcessing()
before, after, folder = sys.argv[1], sys.argv[2], sys.argv[3]
report = {}

context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
out = f"{folder}/styled_change.tif"
alg = QgsApplication.processingRegistry().createAlgorithmById("landcover:change")
report["outputs"] = sorted(o.name() for o in alg.outputDefinitions())
context.addLayerToLoadOnCompletion(out, QgsProcessingContext.LayerDetails("change", context.project(), "OUTPUT"))
results, ok = alg.run({"BEFORE": before, "AFTER": after, "OUTPUT": out, "MIN_CONFIDENCE": 0}, context, feedback)
assert ok, "change failed"
report["results"] = {k: v for k, v in results.items() if k != "OUTPUT"}
details = context.layerToLoadOnCompletionDetails(out)
report["layer_name"] = details.name
layer = QgsRasterLayer(out, "change")
details.postProcessor().postProcessLayer(layer, context, feedback)
renderer = layer.renderer()
report["renderer"] = renderer.type()
report["legend"] = [[c.value, c.label] for c in renderer.classes()]
del renderer, layer

# model builder: change, then the raster calculator keeps the changed pixels, with the changed % in the log
model = QgsProcessingModelAlgorithm("change model", "tests")
for name in ("before", "after"):
    model.addModelParameter(QgsProcessingParameterRasterLayer(name, name), QgsProcessingModelParameter(name))
child = QgsProcessingModelChildAlgorithm("landcover:change")
child.setChildId("change")
child.addParameterSources("BEFORE", [QgsProcessingModelChildParameterSource.fromModelParameter("before")])
child.addParameterSources("AFTER", [QgsProcessingModelChildParameterSource.fromModelParameter("after")])
output = QgsProcessingModelOutput("change_map", "Change map")
output.setChildId("change")
output.setChildOutputName("OUTPUT")
child.setModelOutputs({"change_map": output})
model.addChildAlgorithm(child)
echo = QgsProcessingModelChildAlgorithm("native:createconstantrasterlayer")
echo.setChildId("constant")
echo.addParameterSources("EXTENT", [QgsProcessingModelChildParameterSource.fromModelParameter("before")])
echo.addParameterSources("TARGET_CRS", [QgsProcessingModelChildParameterSource.fromModelParameter("before")])
echo.addParameterSources("PIXEL_SIZE", [QgsProcessingModelChildParameterSource.fromStaticValue(10)])
echo.addParameterSources("NUMBER", [QgsProcessingModelChildParameterSource.fromChildOutput("change", "CHANGED_PERCENT")])
constant = QgsProcessingModelOutput("changed_percent_raster", "Changed % as a raster")
constant.setChildId("constant")
constant.setChildOutputName("OUTPUT")
echo.setModelOutputs({"changed_percent_raster": constant})
echo.setDependencies([])
model.addChildAlgorithm(echo)
model_results = processing.run(model, {"before": before, "after": after, "change:change_map": f"{folder}/model_change.tif",
                                       "constant:changed_percent_raster": f"{folder}/constant.tif"},
                               context=QgsProcessingContext(), feedback=feedback)
report["model_output"] = model_results["change:change_map"]
layer = QgsRasterLayer(model_results["constant:changed_percent_raster"], "constant")
report["constant_value"] = layer.dataProvider().sample(layer.extent().center(), 1)[0]
del alg, model, child, echo, context, layer
app.exitQgis()
print(json.dumps(report))
