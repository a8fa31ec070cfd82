"""A representative subset of the fault catalogue (the cases with ``qgis``) through ``qgis_process``:
a failure is the algorithm's one-line message in the log (no traceback), nothing is left behind and
the inputs are unchanged; a success writes the same correct output as the command line."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.qgis_plugin.conftest import qgis_env, run_qgis_process  # noqa: F401 (a fixture)
from tests.reliability.catalogue import CASES
from tests.reliability.runner import check_folder, prepare, snapshot

SUBSET = [c for c in CASES if c.qgis is not None]


def same_raster(vrt: Path, original: str) -> bool:
    """Whether the VRT ``vrt`` describes the same raster as the XML ``original`` (size, bands, georeferencing,
    sources), only re-serialised by GDAL with band statistics added."""
    from osgeo import gdal

    def describe(ds):
        return (ds.RasterXSize, ds.RasterYSize, ds.RasterCount, ds.GetGeoTransform(), sorted(ds.GetFileList()[1:]),
                [ds.GetRasterBand(b + 1).GetMetadata_Dict() for b in range(ds.RasterCount)])

    now = describe(gdal.Open(str(vrt)))
    copy = vrt.with_name("original-copy.vrt")
    copy.write_text(original)
    try:
        was = describe(gdal.Open(str(copy)))
    finally:
        copy.unlink()
    stats = [{k: v for k, v in md.items() if not k.startswith("STATISTICS_")} for md in now[5]]
    return now[:4] == was[:4] and [Path(p).name for p in now[4]] == [Path(p).name for p in was[4]] and stats == was[5]


@pytest.mark.qgis
@pytest.mark.parametrize("case", [pytest.param(c, id=f"{c.group}:{c.id}", marks=[pytest.mark.slow] if c.slow else [])
                                  for c in SUBSET])
def test_case_through_qgis_process(case, tmp_path, qgis_env):  # noqa: F811
    folder = tmp_path / "case"
    prepare(case, folder)
    before = snapshot(folder)
    original = {n: (folder / n).read_text() for n in before if n.endswith(".vrt")}
    proc = run_qgis_process(qgis_env, "run", *[a.format(d=folder) for a in case.qgis], timeout=600)
    text = (proc.stdout + proc.stderr).replace(f"{folder}/", "")  # messages name the case's files as the CLI's do
    report = f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    assert "Traceback" not in text, report
    lines = [line for line in text.splitlines() if re.search(case.message, line)] if case.message else []
    if case.exit == 0:
        assert proc.returncode == 0, report
        assert not case.message or lines, f"no log line matching {case.message!r}\n{report}"
    else:
        assert proc.returncode != 0, report
        assert lines, f"no log line matching {case.message!r}\n{report}"
        assert len(lines[0]) < 600, report  # the message is one line, not a dump
    # QGIS itself, loading the INPUT layer, computes approximate band statistics for its renderer and GDAL keeps
    # them: beside a GeoTIFF in a new ``.aux.xml``, inside a VRT in the file itself. Those are the host's writes,
    # not Landcover's: an input's ``.aux.xml`` may appear, and a VRT input may gain statistics (and nothing else).
    host = tuple(f"{name}.aux.xml" for name in before if name.endswith((".tif", ".vrt")))
    for name in [n for n in before if n.endswith(".vrt")]:
        if snapshot(folder).get(name) != before[name]:
            assert same_raster(folder / name, original[name]), f"{name} was changed beyond band statistics"
            before[name] = snapshot(folder)[name]
    check_folder(case, folder, before, allowed=host)
    if case.check is not None:
        case.check(folder)
