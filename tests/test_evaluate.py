import json

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from landcover_plugin.cli import main
from landcover_plugin.codes import parse_codes, parse_mapping
from landcover_plugin.errors import LandcoverError
from landcover_plugin.evaluate import EvaluateParams, evaluate

CLASSES = {1: "built", 2: "water", 5: "trees"}


def write(path, data, crs="EPSG:2154", res=1.0, origin=(700000, 6600000), tags=None, nodata=None):
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype="uint8",
                       crs=CRS.from_string(crs), transform=from_origin(*origin, res, res), nodata=nodata) as dst:
        dst.write(data.astype(np.uint8), 1)
        if tags:
            dst.update_tags(**tags)
    return path


@pytest.fixture
def pair(tmp_path):
    pred = np.array([[1, 1, 2, 2], [5, 5, 5, 255], [1, 2, 5, 1]])
    ref = np.array([[1, 1, 2, 9], [5, 19, 0, 5], [13, 2, 5, 0]])  # 13 and 19 map to 5; 0 is ignored
    p = write(tmp_path / "pred.tif", pred, tags={"LANDCOVER_CLASSES": json.dumps(CLASSES)}, nodata=255)
    r = write(tmp_path / "ref.tif", ref)
    return p, r


def test_hand_computed_with_mapping_ignore_and_nodata(pair):
    result = evaluate(EvaluateParams(*pair, mapping={**parse_mapping("13-19:5"), 9: 2}, ignore=(0,)))
    # Scored (ref, pred): (1,1)(1,1)(2,2)(2,2)(5,5)(5,5)  (5 vs nodata → unclassified)  (5,1)(2,2)(5,5)
    assert result.classes == ["built", "water", "trees"]
    assert result.confusion == [[2, 0, 0], [0, 3, 0], [1, 0, 3]]
    assert result.unclassified_pixels == 1 and result.scored_pixels == 9
    assert result.overall_accuracy == pytest.approx(8 / 9)
    p_e = (2 * 3 + 3 * 3 + 4 * 3) / 81
    assert result.kappa == pytest.approx((8 / 9 - p_e) / (1 - p_e))
    assert result.iou == pytest.approx([2 / 3, 1, 3 / 4])


def test_unmapped_reference_codes_fail_loudly(pair):
    with pytest.raises(LandcoverError, match=r"reference values \[0, 9, 13, 19\] are neither"):
        evaluate(EvaluateParams(*pair))


def test_reference_on_another_grid_is_warped_with_nearest(tmp_path):
    pred = np.repeat(np.repeat(np.array([[1, 2], [5, 1]]), 10, 0), 10, 1)
    p = write(tmp_path / "p.tif", pred, tags={"LANDCOVER_CLASSES": json.dumps(CLASSES)})
    r = write(tmp_path / "r.tif", np.array([[1, 2], [5, 1]]), res=10.0)  # same area at 10 m
    result = evaluate(EvaluateParams(p, r))
    assert result.overall_accuracy == 1.0 and result.scored_pixels == 400


def test_cli_writes_json_and_report(pair, tmp_path, capsys):
    code = main(["evaluate", str(pair[0]), str(pair[1]), "--map", "13-19:5,9:2", "--ignore", "0",
                 "--json", str(tmp_path / "r.json"), "--report", str(tmp_path / "r.md")])
    assert code == 0
    assert "kappa" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["confusion"][2] == [1, 0, 3]
    report = (tmp_path / "r.md").read_text()
    assert "Cohen's kappa" in report and "| trees | 5 | 4 |" in report and (tmp_path / "r.png").stat().st_size > 1000
    assert main(["evaluate", str(pair[0]), str(tmp_path / "missing.tif")]) == 2


def test_code_parsing():
    assert parse_codes("0, 255") == (0, 255) and parse_codes(None) == ()
    assert parse_mapping("13-15:13,0:5") == {13: 13, 14: 13, 15: 13, 0: 5}
    with pytest.raises(LandcoverError, match="comma-separated integers"):
        parse_codes("0,x")
    with pytest.raises(LandcoverError, match="CODE:VALUE"):
        parse_mapping("13-19")
