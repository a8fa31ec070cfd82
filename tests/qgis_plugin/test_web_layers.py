"""Web layers through ``landcover:classify`` (``qgis_process``): an XYZ layer of gdal2tiles tiles on disk and
a real WMS served by QGIS Server on 127.0.0.1. Each is read through QGIS on a grid at the model's GSD and
must agree with classifying the same imagery as a file on the same grid; failures give one line."""
import json

import numpy as np
import pytest
from osgeo import gdal

from tests.fixtures import crop, make_model
from tests.qgis_plugin.conftest import run_qgis_process
from tests.web import GDAL2TILES, MAPSERVER, MapServer, TileServer, xyz_tiles, xyz_uri

pytestmark = [pytest.mark.qgis, pytest.mark.shared_data]


@pytest.fixture(scope="module")
def imagery(tmp_path_factory):
    """A 1024 px crop of FLAIR zone Z3 (0.2 m, Lambert-93) and its XYZ tiles (zoom 15–19)."""
    from tests.fixtures import SHARED

    if not SHARED.is_dir():
        pytest.skip(f"real data folder {SHARED} is absent")
    if GDAL2TILES is None:
        pytest.skip("gdal2tiles.py not found (python3-gdal): make setup")
    work = tmp_path_factory.mktemp("web")
    ortho = crop(SHARED / "flair/zones/Z3_image.vrt", work / "ortho.tif", 0, 0, 1024)
    mercator = xyz_tiles(ortho, work / "tiles")
    return ortho, work / "tiles", mercator


def grid_of(path):
    ds = gdal.Open(str(path))
    return ds.RasterXSize, ds.RasterYSize, ds.GetGeoTransform(), ds.GetProjection()


def classes(path):
    ds = gdal.Open(str(path))  # kept referenced while its band is read (osgeo's bands do not hold it)
    return ds.GetRasterBand(1).ReadAsArray()


def classify_file_on_grid(source, like, folder, qgis_env):
    """``source`` warped (bilinear) onto the grid of the raster ``like``, classified as a file."""
    width, height, gt, wkt = grid_of(like)
    same = folder / "same_grid.tif"
    gdal.Warp(str(same), str(source), options=gdal.WarpOptions(
        dstSRS=wkt, outputBounds=(gt[0], gt[3] + height * gt[5], gt[0] + width * gt[1], gt[3]), width=width,
        height=height, resampleAlg="bilinear"))
    out = folder / "file_classes.tif"
    proc = run_qgis_process(qgis_env, "run", "landcover:classify", "--", f"INPUT={same}", f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def check_styled(out, crs_code):
    ds = gdal.Open(str(out))
    assert crs_code in ds.GetProjection() or ds.GetSpatialRef().GetAuthorityCode(None) == crs_code.split(":")[1]
    band = ds.GetRasterBand(1)
    band.GetMetadata()  # GDAL 3.6 reads the PAM sidecar lazily
    assert band.GetCategoryNames()[1] == "building" and band.GetNoDataValue() == 255
    assert ds.GetMetadataItem("LANDCOVER_RESAMPLING_FACTOR") == "1"  # the grid is at the model's GSD already
    assert out.with_suffix(".qml").exists()


def test_qgis_process_classifies_an_xyz_layer_like_the_same_imagery_as_a_file(qgis_env, imagery, tmp_path):
    _, tiles, mercator = imagery
    uri = xyz_uri(f"file://{tiles}/{{z}}/{{x}}/{{y}}.png")
    out = tmp_path / "xyz.tif"
    g = gdal.Open(str(mercator)).GetGeoTransform()
    extent = f"{g[0] + 20},{g[0] + 200},{g[3] - 250},{g[3] - 20} [EPSG:3857]"  # xmin,xmax,ymin,ymax
    proc = run_qgis_process(qgis_env, "run", "landcover:classify", "--json", "--", f"INPUT=wms://{uri}",
                            f"EXTENT={extent}", f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["results"]["OUTPUT"] == str(out)
    assert "rendered RGB" in proc.stdout + proc.stderr  # the log says how the web layer's pixels are used
    check_styled(out, "EPSG:3857")
    width, height, gt, _ = grid_of(out)
    assert gt[1] == pytest.approx(0.2 / 0.7243, rel=0.01)  # 0.2 ground m at 43.6° N in Web Mercator metres
    assert gt[0] <= g[0] + 20 < gt[0] + gt[1] and gt[3] - gt[1] < g[3] - 20 <= gt[3]  # the extent, covered
    assert gt[0] + (width - 1) * gt[1] < g[0] + 200 <= gt[0] + width * gt[1]
    assert gt[3] - height * gt[1] <= g[3] - 250 < gt[3] - (height - 1) * gt[1]
    agreement = (classes(out) == classes(classify_file_on_grid(mercator, out, tmp_path, qgis_env))).mean()
    assert agreement >= 0.98, agreement


@pytest.mark.skipif(MAPSERVER is None, reason="qgis_mapserver not found (qgis-server-bin, qgis-server-wms): make setup")
def test_qgis_process_classifies_a_wms_layer_like_the_imagery_it_serves(qgis_env, imagery, tmp_path):
    ortho, _, _ = imagery
    (tmp_path / "server").mkdir(mode=0o700)
    with MapServer(ortho, tmp_path / "server") as server:
        out = tmp_path / "wms.tif"
        x0, y1 = 776809.6, 6276424.0  # the crop's upper left corner; its grid is 0.2 m
        extent = f"{x0},{x0 + 204.8},{y1 - 204.8},{y1} [EPSG:2154]"
        proc = run_qgis_process(qgis_env, "run", "landcover:classify", "--", f"INPUT=wms://{server.uri}",
                                f"EXTENT={extent}", f"OUTPUT={out}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        width, height, gt, wkt = grid_of(out)
        served = server.get_map(tmp_path / "served.tif", width, height, gt, wkt)  # the same imagery, one request
    check_styled(out, "EPSG:2154")
    # 0.2 ground metres: Lambert-93's scale factor there makes that 0.20007 map metres, 0.2 to 3 digits
    assert (gt[0], gt[3]) == pytest.approx((x0, y1)) and gt[1] == 0.2 and width == height == 1024
    file_out = tmp_path / "file.tif"
    run = run_qgis_process(qgis_env, "run", "landcover:classify", "--", f"INPUT={served}", f"OUTPUT={file_out}")
    assert run.returncode == 0, run.stdout + run.stderr
    agreement = (classes(out) == classes(file_out)).mean()
    assert agreement >= 0.98, agreement


def test_two_extents_of_a_web_layer_share_its_pixels_and_classes(qgis_env, imagery, tmp_path):
    """A re-run over another extent of the same web layer (shifted by 21.3 / 37.9 Web Mercator metres)
    lies on the same pixel lattice: whole-pixel offset, and the same classes more than one window
    inside both extents (the windows sit on that lattice too)."""
    _, tiles, mercator = imagery
    uri = f"wms://{xyz_uri(f'file://{tiles}/{{z}}/{{x}}/{{y}}.png')}"
    g = gdal.Open(str(mercator)).GetGeoTransform()
    maps = []
    for name, dx, dy in (("a", 10.0, 10.0), ("b", 31.3, 47.9)):
        out = tmp_path / f"{name}.tif"
        extent = f"{g[0] + dx},{g[0] + dx + 230},{g[3] - dy - 230},{g[3] - dy} [EPSG:3857]"
        proc = run_qgis_process(qgis_env, "run", "landcover:classify", "--", f"INPUT={uri}", f"EXTENT={extent}",
                                "TILE_SIZE=256", "OVERLAP=64", f"OUTPUT={out}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        maps.append((classes(out), grid_of(out)[2]))
    (a, ga), (b, gb) = maps
    assert ga[1] == gb[1] and ga[5] == gb[5] == -ga[1]
    col, row = (gb[0] - ga[0]) / ga[1], (ga[3] - gb[3]) / ga[1]
    assert col == pytest.approx(round(col), abs=1e-6) and row == pytest.approx(round(row), abs=1e-6)
    col, row = round(col), round(row)
    assert (col, row) == (round(21.3 / ga[1]), round(37.9 / ga[1]))
    window = 256  # more than one window inside both extents
    top, bottom = row + window, min(a.shape[0], row + b.shape[0]) - window
    left, right = col + window, min(a.shape[1], col + b.shape[1]) - window
    assert bottom - top > 100 and right - left > 100
    inside_a = a[top:bottom, left:right]
    inside_b = b[top - row:bottom - row, left - col:right - col]
    assert (inside_a != 255).all() and (inside_a == inside_b).all(), (inside_a != inside_b).mean()


def one_line_failure(proc, out, *needles):
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Traceback" not in text, text
    errors = {line.strip() for line in text.splitlines() if line.startswith("ERROR:")}
    assert len(errors) == 1 and all(n in next(iter(errors)) for n in needles), text
    assert not out.exists() and not [p for p in out.parent.iterdir() if ".part" in p.name]


def test_a_service_that_fails_gives_one_line_and_no_output(qgis_env, imagery, tmp_path):
    _, tiles, mercator = imagery
    g = gdal.Open(str(mercator)).GetGeoTransform()
    extent = f"{g[0] + 20},{g[0] + 200},{g[3] - 250},{g[3] - 20} [EPSG:3857]"
    with TileServer(tiles) as server:
        server.down.write_text("503 for every request")
        out = tmp_path / "down.tif"
        proc = run_qgis_process(qgis_env, "run", "landcover:classify", "--", f"INPUT=wms://{xyz_uri(server.url)}",
                                f"EXTENT={extent}", f"OUTPUT={out}")
        server.down.unlink()
    one_line_failure(proc, out, "could not deliver", "HTTP 503", "check the service")


def test_web_layer_refusals_are_one_line(qgis_env, imagery, tmp_path):
    _, tiles, mercator = imagery
    uri = f"wms://{xyz_uri(f'file://{tiles}/{{z}}/{{x}}/{{y}}.png')}"
    out = tmp_path / "o.tif"
    # no EXTENT: the layer's extent is the whole world, billions of pixels at 0.2 m
    proc = run_qgis_process(qgis_env, "run", "landcover:classify", "--", f"INPUT={uri}", f"OUTPUT={out}")
    one_line_failure(proc, out, "gigapixels", "give a smaller extent")
    # a model that needs four bands: the web layer delivers rendered RGB
    four = make_model(tmp_path / "four.onnx", bands=4)
    g = gdal.Open(str(mercator)).GetGeoTransform()
    extent = f"{g[0] + 20},{g[0] + 100},{g[3] - 100},{g[3] - 20} [EPSG:3857]"
    proc = run_qgis_process(qgis_env, "run", "landcover:classify", "--", f"INPUT={uri}", f"MODEL={four}",
                            f"EXTENT={extent}", f"OUTPUT={out}")
    one_line_failure(proc, out, "3 image band(s) but the model needs 4")
    # a layer that does not load
    proc = run_qgis_process(qgis_env, "run", "landcover:classify", "--", "INPUT=wms://type=xyz&url=",
                            f"OUTPUT={out}")
    assert proc.returncode != 0 and "Traceback" not in proc.stdout + proc.stderr and not out.exists()


def test_pixels_a_service_does_not_have_are_nodata_and_reported(qgis_env, imagery, tmp_path):
    """Tiles outside the service's coverage (404) are transparent: nodata, with the share in the log."""
    _, tiles, mercator = imagery
    g = gdal.Open(str(mercator)).GetGeoTransform()
    width = gdal.Open(str(mercator)).RasterXSize * g[1]
    extent = f"{g[0] + width - 60},{g[0] + width + 60},{g[3] - 100},{g[3] - 20} [EPSG:3857]"  # half beyond the tiles
    with TileServer(tiles) as server:
        out = tmp_path / "edge.tif"
        proc = run_qgis_process(qgis_env, "run", "landcover:classify", "--", f"INPUT=wms://{xyz_uri(server.url)}",
                                f"EXTENT={extent}", f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "came back transparent" in proc.stdout
    found = classes(out)
    assert 0.3 < (found == 255).mean() < 0.7 and (found[:, :5] != 255).all() and (found[:, -5:] == 255).all()
    assert np.isin(found[found != 255], list(range(1, 14))).all()
