"""Reading an ONNX file safely: the first stage of `compiler.frontend.load_graph`.

Nothing in the file is trusted. In order, before anything large is allocated:

1. the file is parsed without following external data (a protobuf that does not decode, or
   that has no IR version or no nodes, is not a model);
2. the IR version and the ai.onnx opset must be ones the installed onnx knows, and the opset
   at least `MIN_OPSET`;
3. the node count must be within `Limits.max_nodes`;
4. every initializer must have non-negative dims, a supported element type, at most
   `Limits.max_tensor_elements` elements and exactly the data its dims promise (`check_tensor`,
   which `compiler.structure` applies to tensors in node attributes too); external data must
   be a relative path inside the model's folder (no absolute paths, no `..`, no symlink
   escapes) holding exactly the bytes the tensor needs, and all of it together within
   `Limits.max_total_bytes` — only then is it loaded. External data is read for initializers
   only (exporters keep large constants there); a node attribute with external data is refused.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import onnx
from onnx import TensorProto

from .errors import ModelError
from .limits import Limits

# Opset 7 (ONNX 1.2, 2018) is the oldest the compiler reads: earlier operators used legacy
# broadcasting (`broadcast`/`axis` attributes) and `is_test` training flags. onnx's version
# converter is no way around it: on an opset-5 model it keeps a Reshape `shape` attribute that
# opset 7 no longer has and turns a training Dropout into an inference one, both silently.
MIN_OPSET = 7
_ONNX_DOMAINS = ("", "ai.onnx")

# Element types the compiler reads, with their sizes in bytes, and the TensorProto field that
# holds their values when they are not in raw_data (onnx.proto3, TensorProto comments).
ITEMSIZE = {
    TensorProto.FLOAT: 4, TensorProto.DOUBLE: 8, TensorProto.FLOAT16: 2, TensorProto.BFLOAT16: 2,
    TensorProto.INT64: 8, TensorProto.INT32: 4, TensorProto.INT16: 2, TensorProto.INT8: 1,
    TensorProto.UINT8: 1, TensorProto.BOOL: 1,
}
_TYPED_FIELD = {TensorProto.FLOAT: "float_data", TensorProto.DOUBLE: "double_data",
                TensorProto.INT64: "int64_data"}   # every other supported type: int32_data


def read_model(source: str | Path | onnx.ModelProto, limits: Limits) -> tuple[onnx.ModelProto, str, int]:
    """(model, label for messages, ai.onnx opset) of a path or an in-memory ModelProto."""
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        label, folder = f"model {model.graph.name!r}", None
    else:
        path = Path(source)
        label = f"{path}"
        model, folder = _parse(path, label), path.resolve().parent
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.node:
        raise ModelError(f"{label}: not an ONNX model (no IR version or empty graph)")
    _check_text(model, label)
    opset = check_versions(model, label)
    if len(model.graph.node) > limits.max_nodes:
        raise ModelError(f"{label}: the graph has {len(model.graph.node):,} nodes; "
                         f"{limits.how_to_raise('max_nodes')}")
    external = check_stored_tensors(model, label, limits, folder)
    if external:
        try:
            onnx.external_data_helper.load_external_data_for_model(model, str(folder))
        except Exception as exc:
            raise ModelError(f"{label}: cannot load external data ({_first_line(exc)})") from None
    return model, label, opset


def _parse(path: Path, label: str) -> onnx.ModelProto:
    if not path.is_file():
        raise ModelError(f"{label}: no such file")
    if path.stat().st_size == 0:
        raise ModelError(f"{label}: empty file, not an ONNX model")
    try:
        return onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends
        raise ModelError(f"{label}: not an ONNX model ({type(exc).__name__}: "
                         f"{_first_line(exc) or 'cannot decode'})") from None


def _check_text(model: onnx.ModelProto, label: str) -> None:
    """Names and metadata of the graph must be text: protobuf hands out bytes, not str, for a
    string field that is not UTF-8 (node fields are checked as the nodes are read)."""
    g = model.graph
    fields = (("graph input names", [vi.name for vi in g.input]),
              ("graph output names", [vi.name for vi in g.output]),
              ("initializer names", [t.name for t in g.initializer]),
              ("metadata", [x for p in model.metadata_props for x in (p.key, p.value)]),
              ("opset domains", [o.domain for o in model.opset_import]),
              ("graph name", [g.name]))
    for what, values in fields:
        try:
            "".join(values)
        except TypeError:
            raise ModelError(f"{label}: {what} are not all UTF-8 text") from None


def check_versions(model: onnx.ModelProto, label: str) -> int:
    """The model's ai.onnx opset, after checking it and the IR version against the installed onnx."""
    if model.ir_version > onnx.IR_VERSION:
        raise ModelError(f"{label}: IR version {model.ir_version} is newer than the installed onnx "
                         f"{onnx.__version__} reads (up to {onnx.IR_VERSION})")
    versions = [o.version for o in model.opset_import if o.domain in _ONNX_DOMAINS]
    if not versions:
        raise ModelError(f"{label}: the model imports no ai.onnx opset")
    opset, newest = max(versions), onnx.defs.onnx_opset_version()
    if opset > newest:
        raise ModelError(f"{label}: ai.onnx opset {opset} is newer than the installed onnx "
                         f"{onnx.__version__} knows (opsets {MIN_OPSET}-{newest} are read)")
    if opset < MIN_OPSET:
        raise ModelError(f"{label}: ai.onnx opset {opset} is older than {MIN_OPSET}, the oldest the "
                         f"compiler reads (opsets {MIN_OPSET}-{newest}); re-export the model at a "
                         "newer opset")
    return opset


def check_stored_tensors(model: onnx.ModelProto, label: str, limits: Limits,
                         folder: Path | None) -> bool:
    """Check every initializer (see the module docstring); True if some have external data.
    Tensors in node attributes are checked by `check_tensor` as the nodes are read."""
    if model.graph.sparse_initializer:
        raise ModelError(f"{label}: sparse initializers are not supported "
                         f"({model.graph.sparse_initializer[0].values.name!r})")
    external_bytes = 0
    external = False
    for t in model.graph.initializer:
        where = f"initializer {t.name!r}"
        need = check_tensor(t, where, label, limits)
        if t.data_location == TensorProto.EXTERNAL:
            if folder is None:
                raise ModelError(f"{label}: {where} has external data but the model was given in "
                                 "memory; pass the file path instead")
            external_bytes += _check_external(t, where, need, label, folder)
            external = True
            if external_bytes > limits.max_total_bytes:
                raise ModelError(f"{label}: external data of {external_bytes:,} bytes; "
                                 f"{limits.how_to_raise('max_total_bytes')}")
    return external


def check_tensor(t: TensorProto, where: str, label: str, limits: Limits) -> int:
    """Element type, dims, size limit and, for data stored in the file, its length; returns the
    bytes the tensor's dims need."""
    if t.data_type not in ITEMSIZE:
        kind = (TensorProto.DataType.Name(t.data_type) if t.data_type in TensorProto.DataType.values()
                else t.data_type)
        raise ModelError(f"{label}: {where} has element type {kind}; the compiler reads "
                         f"{', '.join(TensorProto.DataType.Name(k).lower() for k in ITEMSIZE)}")
    dims = list(t.dims)
    if any(d < 0 for d in dims):
        raise ModelError(f"{label}: {where} has dims {dims}; dimensions must not be negative")
    numel = math.prod(dims)
    if numel > limits.max_tensor_elements:
        raise ModelError(f"{label}: {where} has {numel:,} elements (dims {dims}); "
                         f"{limits.how_to_raise('max_tensor_elements')}")
    need = numel * ITEMSIZE[t.data_type]
    if t.data_location == TensorProto.EXTERNAL:
        return need
    if t.raw_data:
        have, unit, want = len(t.raw_data), "bytes", need
    else:
        have, unit, want = len(getattr(t, _TYPED_FIELD.get(t.data_type, "int32_data"))), "values", numel
    if have != want:
        raise ModelError(f"{label}: {where} has {have:,} {unit} of data but its dims {dims} "
                         f"need {want:,}")
    return need


def _check_external(t: TensorProto, where: str, need: int, label: str, folder: Path) -> int:
    """Check one tensor's external data reference; returns the bytes it will load."""
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    if not location:
        raise ModelError(f"{label}: {where} has external data without a location")
    if os.path.isabs(location) or location.startswith(("/", "\\")) or ":" in location:
        raise ModelError(f"{label}: {where}: external data location {location!r} must be a relative path")
    target = (folder / location).resolve()  # follows symlinks
    if not target.is_relative_to(folder):
        raise ModelError(f"{label}: {where}: external data location {location!r} leaves the model's folder")
    if not target.is_file():
        raise ModelError(f"{label}: {where}: external data file {location!r} is missing")
    size = target.stat().st_size
    try:
        offset = int(info.get("offset", "0"))
        length = int(info["length"]) if "length" in info else size - offset
    except ValueError:
        raise ModelError(f"{label}: {where}: external data offset/length must be integers "
                         f"({info.get('offset')!r}, {info.get('length')!r})") from None
    if offset < 0 or length < 0 or offset + length > size:
        raise ModelError(f"{label}: {where}: external data bytes {offset:,}..{offset + length:,} lie "
                         f"outside {location!r} ({size:,} bytes)")
    if length != need:
        raise ModelError(f"{label}: {where}: external data has {length:,} bytes but its dims "
                         f"{list(t.dims)} need {need:,}")
    return length


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else ""
