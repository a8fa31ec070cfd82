"""`make package` builds a zip whose plugin folder QGIS loads on its own (no repository around it)."""
import hashlib
import json
import subprocess
import sysconfig
import zipfile

import pytest
import rasterio

from tests.fixtures import REPO, dominant_image, make_raster
from tests.qgis_plugin.conftest import QGIS_PROCESS, qgis_environment


def test_zip_layout(package):
    with zipfile.ZipFile(package) as z:
        names = set(z.namelist())
        metadata = z.read("landcover_plugin/metadata.txt").decode()
        remote = json.loads(z.read("landcover_plugin/models/remote.json"))
    for required in ("landcover_plugin/__init__.py", "landcover_plugin/resources.py", "landcover_plugin/LICENSE",
                     "landcover_plugin/models/flair-rgb.onnx", "landcover_plugin/icons/landcover.svg",
                     "landcover_plugin/sample/flair_sample.tif", "landcover_plugin/dependencies.py"):
        assert required in names
    assert "hasProcessingProvider=yes" in metadata and "name=Landcover" in metadata
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # the official plugin repository (plugins.qgis.org) refuses zips over 25 MB (QGIS-Django's validator)
    assert package.stat().st_size <= 25_000_000
    # no placeholder addresses: only real values, or the field is left out
    assert "example.org" not in metadata and "github.com/landcover/landcover" not in metadata
    # the models that are not in the zip are listed with the SHA-256 of the repository's files
    listed = {m["name"]: m for m in remote["models"]}
    assert set(listed) == {"dubai-rgb", "dubai-grey"} and "landcover_plugin/models/dubai-rgb.onnx" not in names
    for m in listed.values():
        assert m["sha256"] == hashlib.sha256((REPO / "models" / m["file"]).read_bytes()).hexdigest()
        assert (package.parent / "models" / m["file"]).exists()  # dist/models: to upload to MODELS_URL


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


@pytest.mark.skipif(QGIS_PROCESS is None, reason="qgis_process.bin not found: install QGIS (make setup)")
def test_without_onnxruntime_qgis_process_says_what_to_do_in_one_line(package, tmp_path):
    """QGIS' own Python with nothing added (no onnxruntime): the plugin loads, landcover:classify fails with
    the one message naming the installer (for a server: the exact command), never a traceback."""
    plugins = tmp_path / "plugins"
    with zipfile.ZipFile(package) as z:
        z.extractall(plugins)
    env = qgis_environment(tmp_path / "profile")
    env["QGIS_PLUGINPATH"] = str(plugins)
    env.pop("PYTHONPATH")
    subprocess.run([QGIS_PROCESS, "plugins", "enable", "landcover_plugin"], env=env, check=True, capture_output=True)
    scene = make_raster(tmp_path / "scene.tif", dominant_image())
    proc = subprocess.run([QGIS_PROCESS, "run", "landcover:classify", "--", f"INPUT={scene}", f"OUTPUT={tmp_path / 'c.tif'}"],
                          env=env, capture_output=True, text=True, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and not (tmp_path / "c.tif").exists()
    assert "ERROR:\tLandcover needs onnxruntime in QGIS' Python (onnxruntime: not installed)" in out, out
    assert f'/landcover_plugin/dependencies.py" install --target "{tmp_path}/profile/profiles/default/landcover/python/' in out
    assert "Traceback" not in out and "ModuleNotFoundError" not in out, out
    # landcover:change classifies images on the way (onnxruntime imported deep in the engine): same message
    proc = subprocess.run([QGIS_PROCESS, "run", "landcover:change", "--", f"BEFORE={scene}", f"AFTER={scene}",
                           f"OUTPUT={tmp_path / 'change.tif'}"], env=env, capture_output=True, text=True, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Landcover needs onnxruntime in QGIS' Python" in out, out
    assert "Traceback" not in out and "ModuleNotFoundError" not in out, out
