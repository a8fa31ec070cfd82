"""Dask scale-out: parts on a LocalCluster assemble to exactly the single-process output; resume."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio

pytest.importorskip("distributed")

from landcover_plugin.engine.classify import ClassifyParams, classify  # noqa: E402
from landcover_plugin.scale_out import classify_dask, plan_parts  # noqa: E402
from tests.fixtures import REPO, dominant_image, make_model, make_raster  # noqa: E402


@pytest.mark.parametrize("bad", ["local[0]", "local", "spark://x", "tcp://"])
def test_a_bad_scheduler_is_refused_before_anything_is_written(tmp_path, bad):
    from landcover_plugin.errors import LandcoverError

    src = make_raster(tmp_path / "in.tif", dominant_image(20, 20))
    with pytest.raises(LandcoverError, match="scheduler must be"):
        classify_dask(ClassifyParams(src, tmp_path / "o.tif", make_model(tmp_path / "m.onnx")), bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "m.onnx"]


def test_a_file_that_is_not_a_raster_gives_one_line(tmp_path, capsys):
    from landcover_plugin.cli import main

    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    assert main(["classify", str(text), str(tmp_path / "o.tif"), "--scheduler", "local[1]"]) == 2
    assert "is not a raster GDAL can read" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tif"]


def test_plan_parts():
    assert plan_parts(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert plan_parts(3, 2048) == [(0, 3)]


@pytest.mark.parametrize("suffix", [".tif", ".vrt"])
def test_local_cluster_output_is_identical_to_a_single_process_run(tmp_path, suffix):
    model = make_model(tmp_path / "k5.onnx", kernel=5)
    src = make_raster(tmp_path / "in.tif", dominant_image(300, 140))
    single = classify(ClassifyParams(src, tmp_path / "single.tif", model))
    out = tmp_path / f"dask{suffix}"
    summary = classify_dask(ClassifyParams(src, out, model), "local[2]", part_rows=70)
    assert summary.parts == 5 and summary.skipped == 0
    with rasterio.open(single.output) as a, rasterio.open(out) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
        assert (b.crs, b.transform, b.shape) == (a.crs, a.transform, a.shape)
        assert b.colormap(1)[2][:3] == (0, 0, 255) and b.nodata == 255
        assert b.tags()["LANDCOVER_SCHEDULER"] == "local[2]"
    assert out.with_suffix(".qml").exists()
    if suffix == ".tif":
        with rasterio.open(out) as b:
            assert b.overviews(1)  # a COG with overviews
        assert not (tmp_path / "dask.tif.parts").exists()


def test_parts_of_a_run_with_other_arguments_are_not_reused(tmp_path):
    from landcover_plugin.errors import LandcoverError

    model = make_model(tmp_path / "m.onnx")
    src = make_raster(tmp_path / "in.tif", dominant_image(120, 80))
    out = tmp_path / "o.vrt"  # a VRT output keeps its parts folder
    classify_dask(ClassifyParams(src, out, model), "local[1]", part_rows=60)
    with pytest.raises(LandcoverError, match="holds parts of a run with other arguments"):
        classify_dask(ClassifyParams(src, out, model, tile_size_px=32), "local[1]", part_rows=60)
    again = classify_dask(ClassifyParams(src, out, model), "local[1]", part_rows=60)
    assert again.skipped == 2


def test_a_vrt_output_never_replaces_a_vrt_input(tmp_path):
    from landcover_plugin.errors import LandcoverError

    vrt = tmp_path / "scene.vrt"
    src = make_raster(tmp_path / "in.tif", dominant_image(50, 50))
    from osgeo import gdal

    gdal.BuildVRT(str(vrt), [str(src)]).FlushCache()
    before = vrt.read_bytes()
    with pytest.raises(LandcoverError, match="is an input"):
        classify_dask(ClassifyParams(vrt, vrt, make_model(tmp_path / "m.onnx")), "local[1]")
    assert vrt.read_bytes() == before


def test_a_killed_run_resumes_and_skips_finished_parts(tmp_path, shared):
    """Kill the CLI (and its Dask workers) once two parts exist; the rerun skips them and the result
    equals a single-process run."""
    src = REPO / "landcover_plugin" / "sample" / "flair_sample.tif"
    out = tmp_path / "resumed.tif"
    cmd = [sys.executable, "-m", "landcover_plugin", "classify", str(src), str(out), "--scheduler", "local[1]",
           "--part-rows", "128", "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    parts = tmp_path / "resumed.tif.parts"
    deadline = time.time() + 300
    while len(list(parts.glob("part_*.tif"))) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in parts.glob("part_*.tif"))
    assert 2 <= len(done) < 8 and not out.exists()
    rerun = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"Resuming: {len(done)} of 8 parts already finished" in rerun.stdout
    assert f"({len(done)} skipped as already finished)" in rerun.stdout
    single = classify(ClassifyParams(src, tmp_path / "single.tif", device="cpu"))
    with rasterio.open(single.output) as a, rasterio.open(out) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))
