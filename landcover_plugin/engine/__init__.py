"""The QGIS-free classification engine: window grid → reader → model adapter → blender → writer."""
