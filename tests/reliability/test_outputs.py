"""The pieces the catalogue relies on, one by one: stale temporaries, atomic outputs on a file error,
one-line messages for file errors, the memory check of a tile, strips bounded in width."""
from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest

from landcover_plugin.errors import LandcoverError
from landcover_plugin.outputs import AtomicOutputs, check_output_path, os_error_text, remove_stale, sidecars, size_text


def test_stale_temporaries_are_those_of_gone_or_younger_processes(tmp_path):
    dead = tmp_path / ".a.tif.part4194303"
    dead.write_text("x")
    live = tmp_path / ".b.tif.part1"  # PID 1 exists and started before this file was written
    live.write_text("x")
    reused = tmp_path / ".c.tif.part1"  # written before PID 1 (the current one) started: its writer is gone
    reused.write_text("x")
    boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
    os.utime(reused, (boot - 3600, boot - 3600))
    mine = tmp_path / f".d.tif.part{os.getpid()}"
    mine.write_text("x")
    other = tmp_path / ".e.tif.partial"
    other.write_text("someone else's")
    removed = remove_stale(tmp_path)
    assert sorted(p.name for p in removed) == [".a.tif.part4194303", ".c.tif.part1"]
    assert live.exists() and mine.exists() and other.exists()


def test_a_file_error_while_writing_becomes_one_line_and_removes_the_temporaries(tmp_path):
    with pytest.raises(LandcoverError, match="the disk may be full"):
        with AtomicOutputs() as out:
            tmp = out.add(tmp_path / "o.tif")
            tmp.write_text("partial")
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert list(tmp_path.iterdir()) == []


def test_commit_renames_nothing_when_a_sidecar_target_is_a_folder(tmp_path):
    (tmp_path / "o.qml").mkdir()
    with pytest.raises(LandcoverError, match="is an existing folder"):
        with AtomicOutputs() as out:
            out.add(tmp_path / "o.tif").write_text("raster")
            out.add(tmp_path / "o.qml").write_text("style")
            out.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.qml"]


def test_output_checks_cover_sidecars_and_inputs(tmp_path):
    (tmp_path / "o.tif.aux.xml").mkdir()
    with pytest.raises(LandcoverError, match="written beside the output"):
        check_output_path(tmp_path / "o.tif", "output", (".tif",), (), sidecars(tmp_path / "o.tif"))
    src = tmp_path / "in.qml"
    src.write_text("an input that happens to be named like a sidecar")
    with pytest.raises(LandcoverError, match="is an input"):
        check_output_path(tmp_path / "in.tif", "output", (".tif",), (src,), sidecars(tmp_path / "in.tif"))


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "disk may be full"), (errno.EFBIG, "disk may be full"),
                                         (errno.EACCES, "a folder you can write to"), (errno.ENOENT, "check the path"),
                                         (errno.EIO, "file error")])
def test_os_errors_are_one_line(code, words):
    text = os_error_text(OSError(code, os.strerror(code), "/x/y.tif"))
    assert words in text and "\n" not in text and "/x/y.tif" in text


def test_size_text():
    assert size_text(2.5e11) == "250 GB" and size_text(57400) == "57.4 kB" and size_text(12) == "12 bytes"


def test_wide_rasters_go_in_column_strips_bounded_by_the_budget(tmp_path, model_path, monkeypatch):
    """The blender's buffer is at most the budget wide whatever the raster's width."""
    from landcover_plugin.engine import classify as mod
    from tests.fixtures import dominant_image, expected_classes, make_raster

    monkeypatch.setattr(mod, "BLEND_BUDGET_MB", 1)  # 1 MiB: strips of 1 MiB / (4 × 4 planes × 64 rows) = 1024 px
    widths = []
    real = mod.RowAccumulator

    class Spy(real):
        def __init__(self, width, *a, **kw):
            widths.append(width)
            super().__init__(width, *a, **kw)

    monkeypatch.setattr(mod, "RowAccumulator", Spy)
    data = dominant_image(70, 5000)
    src = make_raster(tmp_path / "wide.tif", data)
    mod.classify(mod.ClassifyParams(src, tmp_path / "o.tif", model_path))
    assert len(widths) >= 5 and max(widths) <= 1024 + 2 * 64
    from osgeo import gdal

    np.testing.assert_array_equal(gdal.Open(str(tmp_path / "o.tif")).ReadAsArray(), expected_classes(data))


def test_a_tile_that_cannot_fit_in_memory_is_refused_before_any_work(tmp_path, model_path):
    from landcover_plugin.engine import classify as mod
    from tests.fixtures import dominant_image, make_raster

    src = make_raster(tmp_path / "in.tif", dominant_image(40, 40))
    mod.classify(mod.ClassifyParams(src, tmp_path / "ok.tif", model_path, tile_size_px=100_000, overlap_px=0))  # clipped
    started = time.time()
    with pytest.raises(LandcoverError, match="more than half of this machine's"):
        mod.check_tile_memory(mod.Tiling(200_000, 0), _Big(), mod.OnnxModel(model_path, "cpu"), 4)
    assert time.time() - started < 5


class _Big:
    width = height = 1_000_000
