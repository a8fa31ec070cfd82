"""Fixtures every test may use, and markers set from what a test needs, so that a run can choose:
``shared_data`` (reads ../shared; skipped with the reason when it is absent), ``qgis`` (runs QGIS:
qgis_process or a QGIS application), ``desktop`` (the real QGIS window under Xvfb), ``slow``."""
from pathlib import Path

import pytest

from tests.fixtures import SHARED, make_model

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    for item in items:
        path = Path(str(item.fspath)).resolve()
        if "shared" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.shared_data)
        if HERE / "qgis_plugin" in path.parents:
            item.add_marker(pytest.mark.qgis)
        if path.name == "test_desktop.py" or "desktop" in path.stem:
            item.add_marker(pytest.mark.desktop)


@pytest.fixture
def model_path(tmp_path):
    return make_model(tmp_path / "dominant.onnx")


@pytest.fixture
def shared():
    if not SHARED.is_dir():
        pytest.skip(f"real data folder {SHARED} is absent (it sits beside the repository on developer and CI machines)")
    return SHARED
