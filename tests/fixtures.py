"""Generators for small synthetic test fixtures: ONNX models and rasters (nothing is stored)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import rasterio
from onnx import TensorProto, helper, numpy_helper
from rasterio.crs import CRS
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
COLOR_CLASSES = ["red thing", "green thing", "blue thing"]


def make_model(path: Path, bands: int = 3, classes: int = 3, gain: float = 10.0, output: str = "probabilities",
               props: dict | None = None, drop: tuple[str, ...] = (), fixed_bands: bool = True, kernel: int = 1) -> Path:
    """An ONNX model whose class is the brightest of its first ``classes`` input bands: a
    ``kernel``×``kernel`` zero-padded averaging conv with weights ``gain × I`` (then a softmax unless
    ``output='logits'``). Input ``(B, C, H, W)``, dynamic B/H/W. ``props`` override metadata; ``drop``
    removes metadata keys. With ``kernel`` > 1 the output depends on tile borders, like a real CNN's."""
    weight = np.zeros((classes, bands, kernel, kernel), np.float32)
    for k in range(classes):
        weight[k, k % bands] = gain / kernel ** 2
    pad = kernel // 2
    nodes = [helper.make_node("Conv", ["input", "w"], ["logits"], pads=[pad] * 4)]
    out_name = "logits"
    if output == "probabilities":
        nodes.append(helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1))
        out_name = "probabilities"
    graph = helper.make_graph(
        nodes, "dominant-band",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["B", bands if fixed_bands else "C", "H", "W"])],
        [helper.make_tensor_value_info(out_name, TensorProto.FLOAT, ["B", classes, "H", "W"])],
        [numpy_helper.from_array(weight, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {
        "schema_version": "1", "model_type": "segmentation", "name": "dominant-band",
        "class_names": json.dumps([f"class {k}" for k in range(classes)] if classes != 3 else COLOR_CLASSES),
        "class_colors": json.dumps(["#ff0000", "#00ff00", "#0000ff"][:classes] if classes <= 3 else
                                   [f"#{k:02x}{k:02x}{k:02x}" for k in range(classes)]),
        "input_bands": json.dumps(["red", "green", "blue", "nir"][:bands]),
        "value_range": "[0, 255]", "gsd": "0.2", "tile_size": "64", "overlap": "16", "output": output,
    }
    meta.update(props or {})
    for key in drop:
        meta.pop(key, None)
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def make_raster(path: Path, data: np.ndarray, crs: str | None = "EPSG:2154", res: float = 0.2,
                nodata: float | None = None, colorinterp: list[ColorInterp] | None = None, driver: str = "GTiff",
                origin: tuple[float, float] = (700000, 6600000)) -> Path:
    """Write ``data`` ``(C, H, W)`` as a raster; georeferenced at ``origin`` (upper left) unless ``crs`` is None."""
    count, height, width = data.shape
    profile = {"driver": driver, "width": width, "height": height, "count": count, "dtype": data.dtype}
    if crs:
        profile.update(crs=CRS.from_string(crs), transform=from_origin(*origin, res, res))
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if colorinterp:
            dst.colorinterp = colorinterp
    return path


def dominant_image(height: int = 150, width: int = 170, seed: int = 0, scale: float = 1.0, dtype=np.uint8) -> np.ndarray:
    """RGB ``(3, H, W)`` whose brightest band varies in blocks of 10 px; ``scale`` multiplies values."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 3, (height // 10 + 1, width // 10 + 1))
    winner = np.kron(blocks, np.ones((10, 10), int))[:height, :width]
    data = rng.integers(20, 100, (3, height, width)).astype(np.float64)
    for k in range(3):
        data[k][winner == k] += 120
    return (data * scale).astype(dtype)


def expected_classes(data: np.ndarray) -> np.ndarray:
    return data.astype(np.float64).argmax(axis=0).astype(np.uint8)


def write_polygons(path, epsg, features, field="code", kind=None):
    """A GeoPackage of ``features`` (GeoJSON polygon, field value) in EPSG ``epsg`` (lon/lat order for
    geographic CRSs); ``kind`` the OGR field type (integer by default)."""
    from osgeo import ogr, osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("labels", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn(field, kind if kind is not None else ogr.OFTInteger))
    for geometry, value in features:
        feature = ogr.Feature(layer.GetLayerDefn())
        feature.SetField(field, value)
        feature.SetGeometry(ogr.CreateGeometryFromJson(json.dumps(geometry)))
        layer.CreateFeature(feature)
    ds = None
    return path


def box_in(crs, left, bottom, right, top):
    """A rectangle given in EPSG:2154 (the image's CRS) as a GeoJSON polygon in ``crs``."""
    from rasterio.warp import transform_geom

    ring = [(left, bottom), (right, bottom), (right, top), (left, top), (left, bottom)]
    return transform_geom("EPSG:2154", crs, {"type": "Polygon", "coordinates": [ring]})


def make_graph(path: Path, nodes, inputs, outputs, weights: dict | None = None, props: dict | None = None,
               opset: int = 17) -> Path:
    """An ONNX file from ``nodes`` (``helper.make_node``), ``inputs``/``outputs`` as ``(name, shape)``
    (float32), ``weights`` name → array, and metadata ``props``."""
    graph = helper.make_graph(
        nodes, "fixture",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in (weights or {}).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    for key, value in (props or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def make_sigmoid_model(path: Path, rank: int = 4, weight=(1.0, -1.0, 0.0), bias: float = 0.0, props: dict | None = None,
                       size=("H", "W")) -> Path:
    """Deepness' binary form: one sigmoid channel ``(B, 1, H, W)`` (rank 4) or ``(B, H, W)`` (rank 3) of
    ``sigmoid(weight · x + bias)`` over the 3 input bands (x already scaled to [0, 1])."""
    w = np.asarray(weight, np.float32).reshape(1, 3, 1, 1)
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["z"]), helper.make_node("Sigmoid", ["z"], ["p"])]
    out_shape = ["B", 1, *size]
    if rank == 3:
        nodes.append(helper.make_node("Squeeze", ["p", "axis"], ["output"]))
        out_shape = ["B", *size]
    else:
        nodes.append(helper.make_node("Identity", ["p"], ["output"]))
    weights = {"w": w, "b": np.asarray([bias], np.float32)}
    if rank == 3:
        graph_weights = weights
        path = make_graph(path, nodes, [("input", ["B", 3, *size])], [("output", out_shape)], graph_weights, props)
        model = onnx.load(str(path))  # the Squeeze axes are int64
        model.graph.initializer.append(numpy_helper.from_array(np.asarray([1], np.int64), "axis"))
        onnx.save(model, str(path))
        return path
    return make_graph(path, nodes, [("input", ["B", 3, *size])], [("output", out_shape)], weights, props)


def crop(src_path, dst_path, col: int, row: int, width: int, height: int | None = None) -> Path:
    """Copy a window of a real raster to a GeoTIFF (tests never open files in ../shared with QGIS)."""
    from landcover_plugin.engine.reader import copy_window, open_raster
    from landcover_plugin.engine.windows import PixelWindow

    return copy_window(open_raster(src_path), PixelWindow(col, row, width, height or width), dst_path)
