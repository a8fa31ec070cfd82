"""Just enough of the ONNX protobuf wire format to read ``metadata_props`` and to declare a network's
spatial input/output dimensions dynamic, without the ``onnx`` package (QGIS' Python often lacks it).

Field numbers (onnx.proto): ModelProto.graph 7, ModelProto.metadata_props 14 (key 1, value 2);
GraphProto.input 11, GraphProto.output 12; ValueInfoProto.type 2; TypeProto.tensor_type 1;
TypeProto.Tensor.shape 2; TensorShapeProto.dim 1; Dimension.dim_value 1, Dimension.dim_param 2.
Raises ``ValueError`` for bytes that are not a well-formed protobuf message.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 70:
            raise ValueError("varint too long")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int, bytes]]:
    """``(field number, wire type, value, the field's raw bytes)``; value is an int for varints, the
    payload bytes for length-delimited fields and the raw 4/8 bytes for fixed-width ones."""
    pos = 0
    while pos < len(buf):
        start = pos
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        value: bytes | int
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated field")
            value, pos = buf[pos:pos + length], pos + length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = buf[pos:pos + size], pos + size
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value, buf[start:pos]


def _delimited(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def metadata_props(model: bytes) -> dict[str, str]:
    """An ONNX file's ``metadata_props`` as a dict."""
    props = {}
    for number, wire, value, _ in fields(model):
        if number == 14 and wire == 2 and isinstance(value, bytes):
            entry = {n: v for n, w, v, _ in fields(value) if w == 2 and isinstance(v, bytes)}
            props[entry.get(1, b"").decode("utf-8")] = entry.get(2, b"").decode("utf-8")
    return props


def file_metadata_props(path: str | Path) -> dict[str, str]:
    """``metadata_props`` of an ONNX file, read without loading the graph (its bytes are skipped)."""
    props = {}
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(0)

        def varint() -> int:
            value = shift = 0
            while True:
                byte = fh.read(1)
                if not byte:
                    raise ValueError("truncated varint")
                value |= (byte[0] & 0x7F) << shift
                if not byte[0] & 0x80:
                    return value
                shift += 7
                if shift > 70:
                    raise ValueError("varint too long")

        while fh.tell() < size:
            tag = varint()
            number, wire = tag >> 3, tag & 7
            if wire == 0:
                varint()
            elif wire == 2:
                length = varint()
                if fh.tell() + length > size:
                    raise ValueError("truncated field")
                if number == 14:
                    props.update(metadata_props(_delimited(14, fh.read(length))))
                else:
                    fh.seek(length, 1)
            elif wire in (1, 5):
                fh.seek(8 if wire == 1 else 4, 1)
            else:
                raise ValueError(f"unsupported wire type {wire}")
    return props


def _free_dims(value_info: bytes, axes: tuple[int, ...], names: tuple[str, ...]) -> bytes:
    """A ValueInfoProto with the dimensions at ``axes`` of its tensor shape made symbolic."""

    def shape(buf: bytes) -> bytes:
        dims = [raw for n, _, _, raw in fields(buf) if n == 1]
        if len(dims) <= max(axes):
            return buf
        for axis, name in zip(axes, names):
            dims[axis] = _delimited(1, _delimited(2, name.encode()))
        return b"".join(dims) + b"".join(raw for n, _, _, raw in fields(buf) if n != 1)

    def rewrite(buf: bytes, path: tuple[int, ...]) -> bytes:
        out = bytearray()
        for number, wire, value, raw in fields(buf):
            if wire == 2 and isinstance(value, bytes) and number == path[0]:
                out += _delimited(number, shape(value) if len(path) == 1 else rewrite(value, path[1:]))
            else:
                out += raw
        return bytes(out)

    return rewrite(value_info, (2, 1, 2))  # type → tensor_type → shape


def free_spatial_dims(model: bytes) -> bytes:
    """The model with the height and width of its rank-4 inputs and outputs (axes 2 and 3) declared
    symbolic (``height``, ``width``), everything else byte for byte as it was."""
    out = bytearray()
    for number, wire, value, raw in fields(model):
        if number == 7 and wire == 2 and isinstance(value, bytes):
            graph = bytearray()
            for n, w, v, r in fields(value):
                if n in (11, 12) and w == 2 and isinstance(v, bytes):  # an input or output ValueInfoProto
                    graph += _delimited(n, _free_dims(v, (2, 3), ("height", "width")))
                else:
                    graph += r
            out += _delimited(7, bytes(graph))
        else:
            out += raw
    return bytes(out)
