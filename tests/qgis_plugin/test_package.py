"""`make package` builds a zip whose plugin folder QGIS loads on its own (no repository around it)."""
import subprocess
import sysconfig
import zipfile

import pytest
import rasterio

from tests.fixtures import dominant_image, make_raster
from tests.qgis_plugin.conftest import QGIS_PROCESS, qgis_environment


def test_zip_layout(package):
    with zipfile.ZipFile(package) as z:
        names = set(z.namelist())
        metadata = z.read("landcover_plugin/metadata.txt").decode()
    for required in ("landcover_plugin/__init__.py", "landcover_plugin/resources.py",
                     "landcover_plugin/models/flair-rgb.onnx", "landcover_plugin/icons/landcover.svg",
                     "landcover_plugin/sample/flair_sample.tif"):
        assert required in names
    assert "hasProcessingProvider=yes" in metadata and "name=Landcover" in metadata
    assert not [n for n in names if "__pycache__" in n]


@pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process.bin not found: install QGIS (make setup)")
def test_unzipped_plugin_loads_in_a_clean_profile(package, tmp_path):
    plugins = tmp_path / "plugins"
    with zipfile.ZipFile(package) as z:
        z.extractall(plugins)
    env = qgis_environment(tmp_path / "profile")
    env["QGIS_PLUGINPATH"] = str(plugins)
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]  # dependencies only: the plugin comes from the zip
    subprocess.run([QGIS_PROCESS, "plugins", "enable", "landcover_plugin"], env=env, check=True, capture_output=True)
    scene = make_raster(tmp_path / "scene.tif", dominant_image())
    out = tmp_path / "classes.tif"
    proc = subprocess.run([QGIS_PROCESS, "run", "landcover:classify", "--", f"INPUT={scene}", f"OUTPUT={out}"],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with rasterio.open(out) as dst:
        assert dst.tags()["LANDCOVER_MODEL"] == "flair-rgb"
