"""Fixture makers for the fault catalogue: bad rasters (corrupt tiles, truncated files, VRTs whose source
moved, values outside a model's range, rasters of absurd size), broken or hostile ONNX models, and
training inputs (configs, checkpoints). Every maker writes into a folder and returns nothing; nothing
is stored in the repository."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from osgeo import gdal, osr

from tests.fixtures import dominant_image, make_graph, make_model

ORIGIN = (700000.0, 6600000.0)
RES = 0.2
H, W = 150, 170  # the default scene: small, odd-sized, several windows of the 64 px test models
BASE_PROPS = {"schema_version": "1", "model_type": "segmentation", "value_range": "[0, 255]", "gsd": "0.2",
              "tile_size": "64", "overlap": "16", "output": "probabilities", "name": "fixture"}
THREE = json.dumps(["red thing", "green thing", "blue thing"])


def scene_data(height: int = H, width: int = W, dtype=np.uint8, scale: float = 1.0, offset: float = 0.0) -> np.ndarray:
    data = dominant_image(height, width).astype(np.float64) * scale + offset
    return data.astype(dtype)


def write_tif(path: Path, data: np.ndarray, nodata: float | None = None, georef: bool = True, block: int = 64,
              compress: str = "DEFLATE", tiled: bool = True, res: float = RES, color: bool = True) -> Path:
    """A (tiled, compressed) GeoTIFF written with GDAL; RGB colour interpretation for 3 bands."""
    count, height, width = data.shape
    dtype = gdal.NumericTypeCodeToGDALTypeCode(data.dtype) if hasattr(gdal, "NumericTypeCodeToGDALTypeCode") else None
    if dtype is None:
        from osgeo import gdal_array

        dtype = gdal_array.NumericTypeCodeToGDALTypeCode(data.dtype)
    options = [f"COMPRESS={compress}"]
    if tiled:
        options += ["TILED=YES", f"BLOCKXSIZE={block}", f"BLOCKYSIZE={block}"]
    ds = gdal.GetDriverByName("GTiff").Create(str(path), width, height, count, dtype, options)
    if georef:
        ds.SetGeoTransform((ORIGIN[0], res, 0.0, ORIGIN[1], 0.0, -res))
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(2154)
        ds.SetProjection(srs.ExportToWkt())
    for b in range(count):
        band = ds.GetRasterBand(b + 1)
        band.WriteArray(data[b])
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if color and count == 3:
            band.SetColorInterpretation((gdal.GCI_RedBand, gdal.GCI_GreenBand, gdal.GCI_BlueBand)[b])
    ds = None
    return path


def scene(folder: Path, name: str = "in.tif", **kw) -> Path:
    return write_tif(folder / name, scene_data(), **kw)


def corrupt_block(path: Path, bx: int = 1, by: int = 1) -> None:
    """Overwrite the compressed bytes of block (bx, by) with garbage: GDAL cannot decode that tile."""
    ds = gdal.Open(str(path))
    band = ds.GetRasterBand(1)
    offset = int(band.GetMetadataItem(f"BLOCK_OFFSET_{bx}_{by}", "TIFF"))
    size = int(band.GetMetadataItem(f"BLOCK_SIZE_{bx}_{by}", "TIFF"))
    band = ds = None
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(bytes([0xFF, 0x13, 0x37]) * (size // 3) + b"\xff" * (size % 3))


def corrupt_scene(folder: Path, name: str = "in.tif", res: float = RES) -> None:
    path = write_tif(folder / name, scene_data(), res=res)
    corrupt_block(path)


def truncated_scene(folder: Path) -> None:
    path = write_tif(folder / "in.tif", scene_data(300, 300), compress="NONE", tiled=False)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])


def moved_source_vrt(folder: Path) -> None:
    src = write_tif(folder / "src.tif", scene_data())
    gdal.BuildVRT(str(folder / "in.vrt"), [str(src)]).FlushCache()
    src.rename(folder / "moved.tif")


def huge_vrt(folder: Path, size: int = 1_000_000) -> None:
    """A VRT claiming ``size`` × ``size`` px (one small real source in its corner)."""
    src = write_tif(folder / "src.tif", scene_data())
    bands = "".join(f"""
  <VRTRasterBand dataType="Byte" band="{b}">
    <ColorInterp>{('Red', 'Green', 'Blue')[b - 1]}</ColorInterp>
    <SimpleSource><SourceFilename relativeToVRT="1">src.tif</SourceFilename><SourceBand>{b}</SourceBand>
      <SrcRect xOff="0" yOff="0" xSize="{W}" ySize="{H}"/><DstRect xOff="0" yOff="0" xSize="{W}" ySize="{H}"/>
    </SimpleSource>
  </VRTRasterBand>""" for b in (1, 2, 3))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(2154)
    (folder / "in.vrt").write_text(f"""<VRTDataset rasterXSize="{size}" rasterYSize="{size}">
  <SRS>{srs.ExportToWkt().replace('"', '&quot;')}</SRS>
  <GeoTransform>{ORIGIN[0]}, {RES}, 0, {ORIGIN[1]}, 0, -{RES}</GeoTransform>{bands}
</VRTDataset>
""")
    assert src.exists()


def wide_vrt(folder: Path, width: int = 40_000, height: int = 64) -> None:
    """A VRT repeating one small real raster across ``width`` × ``height`` px."""
    tile = write_tif(folder / "src.tif", scene_data(height, 400))
    sources = []
    for x in range(0, width, 400):
        w = min(400, width - x)
        sources.append((x, w))
    bands = []
    for b in (1, 2, 3):
        items = "".join(f'<SimpleSource><SourceFilename relativeToVRT="1">{tile.name}</SourceFilename><SourceBand>{b}</SourceBand>'
                        f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{height}"/><DstRect xOff="{x}" yOff="0" xSize="{w}" '
                        f'ySize="{height}"/></SimpleSource>' for x, w in sources)
        bands.append(f'<VRTRasterBand dataType="Byte" band="{b}"><ColorInterp>{("Red", "Green", "Blue")[b - 1]}</ColorInterp>'
                     f'{items}</VRTRasterBand>')
    (folder / "in.vrt").write_text(f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">'
                                   f'<GeoTransform>{ORIGIN[0]}, {RES}, 0, {ORIGIN[1]}, 0, -{RES}</GeoTransform>'
                                   + "".join(bands) + "</VRTDataset>")


# ----------------------------------------------------------------------------------------------- models

def dominant_model(folder: Path, name: str = "m.onnx", **kw) -> Path:
    """The test suite's model: class = the brightest of the three bands (tile 64, overlap 16)."""
    return make_model(folder / name, **kw)


def props(**changes) -> dict:
    out = {**BASE_PROPS, "class_names": THREE}
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def nan_model(folder: Path) -> None:
    """Outputs 0/0 = NaN everywhere."""
    make_graph(folder / "m.onnx", [helper.make_node("Mul", ["input", "zero"], ["z"]),
                                   helper.make_node("Div", ["z", "z"], ["output"])],
               [("input", ["B", 3, "H", "W"])], [("output", ["B", 3, "H", "W"])], {"zero": np.zeros(1)}, props())


def partly_nan_model(folder: Path) -> None:
    """log(x - 0.5) of the normalised input: NaN where a band is darker than mid-grey, finite elsewhere."""
    make_graph(folder / "m.onnx", [helper.make_node("Sub", ["input", "half"], ["c"]),
                                   helper.make_node("Log", ["c"], ["l"]),
                                   helper.make_node("Softmax", ["l"], ["output"], axis=1)],
               [("input", ["B", 3, "H", "W"])], [("output", ["B", 3, "H", "W"])], {"half": np.full(1, 0.5)}, props())


def inf_model(folder: Path) -> None:
    """x / 0: infinity (and NaN where x is 0)."""
    make_graph(folder / "m.onnx", [helper.make_node("Div", ["input", "zero"], ["output"])],
               [("input", ["B", 3, "H", "W"])], [("output", ["B", 3, "H", "W"])], {"zero": np.zeros(1)}, props())


def unnormalised_model(folder: Path) -> None:
    """Declares probabilities but returns the normalised bands themselves (in [0, 1], not summing to 1)."""
    make_graph(folder / "m.onnx", [helper.make_node("Identity", ["input"], ["output"])],
               [("input", ["B", 3, "H", "W"])], [("output", ["B", 3, "H", "W"])], None, props())


def sigmoid_model(folder: Path, squeeze: bool = False, activation: bool = True) -> None:
    """One sigmoid channel: sigmoid(40·(red − green)) of the normalised input, i.e. the class where red ≥ green.
    ``squeeze``: a (B, H, W) output; ``activation`` False: raw scores (not a probability)."""
    nodes = [helper.make_node("Conv", ["input", "w"], ["s"])]
    last = "s"
    if activation:
        nodes.append(helper.make_node("Sigmoid", ["s"], ["p"]))
        last = "p"
    if squeeze:
        nodes.append(helper.make_node("Squeeze", [last, "axis"], ["output"]))
        shape = ["B", "H", "W"]
    else:
        nodes.append(helper.make_node("Identity", [last], ["output"]))
        shape = ["B", 1, "H", "W"]
    weights = {"w": np.array([40.0, -40.0, 0.0]).reshape(1, 3, 1, 1)}
    path = make_graph(folder / "m.onnx", nodes, [("input", ["B", 3, "H", "W"])], [("output", shape)], weights,
                      props(class_names=json.dumps(["red over green"]), output=None))
    if squeeze:
        import onnx

        m = onnx.load(str(path))
        m.graph.initializer.append(numpy_helper.from_array(np.array([1], np.int64), "axis"))
        onnx.save(m, str(path))


def sigmoid_expected(data: np.ndarray) -> np.ndarray:
    r, g = data[0].astype(int), data[1].astype(int)
    return (r >= g).astype(np.uint8)


def two_input_model(folder: Path) -> None:
    make_graph(folder / "m.onnx", [helper.make_node("Add", ["input", "other"], ["s"]),
                                   helper.make_node("Softmax", ["s"], ["output"], axis=1)],
               [("input", ["B", 3, "H", "W"]), ("other", ["B", 3, "H", "W"])], [("output", ["B", 3, "H", "W"])],
               None, props())


def rank5_model(folder: Path) -> None:
    path = make_graph(folder / "m.onnx", [helper.make_node("Softmax", ["input"], ["p"], axis=1),
                                          helper.make_node("Unsqueeze", ["p", "axis"], ["output"])],
                      [("input", ["B", 3, "H", "W"])], [("output", ["B", 1, 3, "H", "W"])], None, props())
    _add_int64(path, "axis", [1])


def rank2_model(folder: Path) -> None:
    make_graph(folder / "m.onnx", [helper.make_node("ReduceMean", ["input"], ["m"], axes=[2, 3], keepdims=0),
                                   helper.make_node("Softmax", ["m"], ["output"], axis=1)],
               [("input", ["B", 3, "H", "W"])], [("output", ["B", 3])], None, props(), opset=13)


def rank3_input_model(folder: Path) -> None:
    make_graph(folder / "m.onnx", [helper.make_node("Softmax", ["input"], ["output"], axis=0)],
               [("input", [3, "H", "W"])], [("output", [3, "H", "W"])], None, props())


def downsampling_model(folder: Path, static: bool) -> None:
    """Output half the input's size (a stride-2 pooling): static shapes are refused at load, dynamic
    ones on the first batch."""
    size = [64, 64] if static else ["H", "W"]
    out = [32, 32] if static else ["h", "w"]
    make_graph(folder / "m.onnx", [helper.make_node("MaxPool", ["input"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
                                   helper.make_node("Softmax", ["p"], ["output"], axis=1)],
               [("input", ["B", 3, *size])], [("output", ["B", 3, *out])], None, props())


def odd_output_model(folder: Path) -> None:
    """Static 64 px input, 63 px output: neither the input's size nor centred smaller."""
    make_graph(folder / "m.onnx", [helper.make_node("Conv", ["input", "w"], ["c"]),
                                   helper.make_node("Softmax", ["c"], ["output"], axis=1)],
               [("input", ["B", 3, 64, 64])], [("output", ["B", 3, 63, 63])],
               {"w": np.eye(3).reshape(3, 3, 1, 1).repeat(2, 2).repeat(2, 3) / 4}, props())


def class_axis_model(folder: Path, static: bool) -> None:
    """A network with 4 output channels whose metadata names 3 classes."""
    w = np.zeros((4, 3, 1, 1))
    for k in range(4):
        w[k, k % 3] = 10
    make_graph(folder / "m.onnx", [helper.make_node("Conv", ["input", "w"], ["c"]),
                                   helper.make_node("Softmax", ["c"], ["output"], axis=1)],
               [("input", ["B", 3, "H", "W"])], [("output", ["B", 4 if static else "K", "H", "W"])], {"w": w}, props())


def argmax_model(folder: Path) -> None:
    """Outputs class indices (int64 ArgMax), not class scores."""
    graph = helper.make_graph([helper.make_node("ArgMax", ["input"], ["output"], axis=1, keepdims=1)], "argmax",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["B", 3, "H", "W"])],
                              [helper.make_tensor_value_info("output", TensorProto.INT64, ["B", 1, "H", "W"])])
    _save(graph, folder / "m.onnx", props())


def uint8_input_model(folder: Path) -> None:
    """Takes uint8 pixels (casts inside): Landcover feeds float32."""
    graph = helper.make_graph([helper.make_node("Cast", ["input"], ["f"], to=TensorProto.FLOAT),
                               helper.make_node("Softmax", ["f"], ["output"], axis=1)], "u8",
                              [helper.make_tensor_value_info("input", TensorProto.UINT8, ["B", 3, "H", "W"])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["B", 3, "H", "W"])])
    _save(graph, folder / "m.onnx", props())


def failing_model(folder: Path) -> None:
    """Declared dynamic, but reshapes to a fixed 1×3×32×32: every 64 px tile fails inside onnxruntime."""
    path = make_graph(folder / "m.onnx", [helper.make_node("Reshape", ["input", "shape"], ["r"]),
                                          helper.make_node("Softmax", ["r"], ["output"], axis=1)],
                      [("input", ["B", 3, "H", "W"])], [("output", ["B", 3, "H", "W"])], None, props())
    _add_int64(path, "shape", [1, 3, 32, 32])


def fixed_size_model(folder: Path) -> None:
    """A static 64 px input (no size_multiple): tiles larger than 64 px cannot be run."""
    make_model(folder / "m.onnx")
    import onnx

    m = onnx.load(str(folder / "m.onnx"))
    for value in (m.graph.input[0], m.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        dims[2].dim_value = dims[3].dim_value = 64
    onnx.save(m, str(folder / "m.onnx"))


def _save(graph, path: Path, metadata: dict) -> None:
    import onnx

    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def _add_int64(path: Path, name: str, values: list[int]) -> None:
    import onnx

    m = onnx.load(str(path))
    m.graph.initializer.append(numpy_helper.from_array(np.array(values, np.int64), name))
    onnx.save(m, str(path))


# -------------------------------------------------------------------------------------- training inputs

def train_config(folder: Path, **changes) -> dict:
    """A small valid training config over ``img.tif`` / ``lab.tif`` (written too) in ``folder``."""
    data = scene_data(128, 128)
    write_tif(folder / "img.tif", data)
    labels = (data.argmax(axis=0) + 1).astype(np.uint8)[None]
    write_tif(folder / "lab.tif", labels, color=False)
    config = {"name": "tiny", "pairs": [["img.tif", "lab.tif"]],
              "classes": [{"name": "red", "color": "#ff0000", "codes": [1]},
                          {"name": "green", "color": "#00ff00", "codes": [2]},
                          {"name": "blue", "color": "#0000ff", "codes": [3]}],
              "crop": 64, "batch_size": 2, "steps": 1, "eval_every": 1, "tile_size": 64, "overlap": 16}
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    return config


class Payload:
    """Unpickling this runs ``os.system``: the hostile "checkpoint" must never be executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def malicious_checkpoint(folder: Path) -> None:
    train_config(folder)
    (folder / "best.pt").write_bytes(pickle.dumps(Payload(folder / "PWNED"), protocol=2))


def torch_checkpoint(folder: Path, what: str) -> None:
    """``what``: "valid" (the config's network), "list" (a list, not a state dict), "fpn" (another
    architecture's state dict)."""
    import torch

    from landcover_plugin.train.network import build_network

    train_config(folder)
    if what == "list":
        torch.save([1, 2, 3], folder / "best.pt")
        return
    arch = "fpn" if what == "fpn" else "unet"
    torch.manual_seed(0)
    net = build_network(arch, 3, 3)
    torch.save(net.state_dict(), folder / "best.pt")
