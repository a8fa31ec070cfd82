"""QGIS host: the plugin object and the Processing provider. Only this subpackage imports qgis."""
