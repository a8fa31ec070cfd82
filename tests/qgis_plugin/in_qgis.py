"""Run inside a QGIS application (headless): load the plugin as QGIS does, run landcover:classify
with a layer post-processor, and run it as a child of a model-builder model. Prints a JSON report."""
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
source, folder = sys.argv[1], sys.argv[2]
report = {"provider_algorithms": [a.id() for a in plugin.provider.algorithms()]}

context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
out = f"{folder}/styled.tif"
alg = QgsApplication.processingRegistry().createAlgorithmById("landcover:classify")
params = {"INPUT": source, "OUTPUT": out}
context.addLayerToLoadOnCompletion(out, QgsProcessingContext.LayerDetails("classes", context.project(), "OUTPUT"))
results, ok = alg.run(params, context, feedback)
assert ok, "classify failed"
details = context.layerToLoadOnCompletionDetails(out)
layer = QgsRasterLayer(out, "classes")
details.postProcessor().postProcessLayer(layer, context, feedback)
renderer = layer.renderer()
report["renderer"] = renderer.type()
report["legend"] = [[c.label, c.color.name()] for c in renderer.classes()]
del renderer, layer

model = QgsProcessingModelAlgorithm("land cover model", "tests")
model.addModelParameter(QgsProcessingParameterRasterLayer("scene", "Scene"), QgsProcessingModelParameter("scene"))
child = QgsProcessingModelChildAlgorithm("landcover:classify")
child.setChildId("classify")
child.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("scene")])
output = QgsProcessingModelOutput("classes", "Classes")
output.setChildId("classify")
output.setChildOutputName("OUTPUT")
child.setModelOutputs({"classes": output})
model.addChildAlgorithm(child)
model_results = processing.run(model, {"scene": source, "classify:classes": f"{folder}/model.tif"},
                               context=QgsProcessingContext(), feedback=feedback)
report["model_output"] = model_results["classify:classes"]
del alg, model, child, context
app.exitQgis()
print(json.dumps(report))
