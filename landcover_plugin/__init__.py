"""Landcover: land-cover classification of rasters with ONNX segmentation models.

The package is a QGIS-free engine plus thin hosts; QGIS loads it as a plugin through ``classFactory``
(imported lazily so the engine never needs ``qgis``).
"""

__version__ = "0.1.0"


def classFactory(iface):  # noqa: N802 (QGIS' name)
    """QGIS plugin entry point. Landcover's packages folder in the QGIS profile goes on ``sys.path``
    first, before anything can import onnxruntime."""
    from .qgis_plugin.dependencies_ui import activate_private_packages

    activate_private_packages()
    from .qgis_plugin.plugin import LandcoverPlugin

    return LandcoverPlugin(iface)
