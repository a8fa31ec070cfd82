import pytest

from tests.fixtures import SHARED, make_model


@pytest.fixture
def model_path(tmp_path):
    return make_model(tmp_path / "dominant.onnx")


@pytest.fixture
def shared():
    if not SHARED.is_dir():
        pytest.skip(f"real data folder {SHARED} is absent (it sits beside the repository on developer and CI machines)")
    return SHARED
