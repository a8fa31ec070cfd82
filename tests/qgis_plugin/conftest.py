import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

from tests.fixtures import REPO

QGIS_PROCESS = shutil.which("qgis_process.bin")


def qgis_environment(config_dir) -> dict:
    """Environment for a headless QGIS that loads the plugin from this checkout: the repository on
    QGIS_PLUGINPATH, an isolated profile, and this Python's packages on PYTHONPATH."""
    env = dict(os.environ)
    env.update(QT_QPA_PLATFORM="offscreen", QGIS_PLUGINPATH=str(REPO), QGIS_CUSTOM_CONFIG_PATH=str(config_dir),
               PYTHONPATH=os.pathsep.join([str(REPO), sysconfig.get_paths()["purelib"], env.get("PYTHONPATH", "")]),
               XDG_RUNTIME_DIR=str(config_dir))
    return env


@pytest.fixture(scope="session")
def qgis_env(tmp_path_factory):
    if QGIS_PROCESS is None:
        pytest.skip("qgis_process.bin not found: install QGIS (make setup)")
    config = tmp_path_factory.mktemp("qgis-profile")
    env = qgis_environment(config)
    proc = subprocess.run([QGIS_PROCESS, "plugins", "enable", "landcover_plugin"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return env


def run_qgis_process(env, *args, timeout=900):
    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=timeout)


def run_python_in_qgis(env, script, *args, timeout=900):
    return subprocess.run([sys.executable, str(script), *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="session")
def package():
    """The ``make package`` zip."""
    proc = subprocess.run(["make", "package"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return REPO / "dist" / "landcover_plugin.zip"
