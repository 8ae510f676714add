"""Shared fixtures of the exploration tests: a Conv4 forward graph and small spaces over it."""

from pathlib import Path

CONV4 = Path(__file__).resolve().parents[1] / "data" / "compiler" / "conv4_infer_torch.onnx"

GOOD = """base: edge-npu
models:
  - {onnx: conv4.onnx}
grid:
  array.rows: [8, 32]
  sram.size_kib: [16, 512]
"""

# 12 points; the 1 and 4 KiB buffers cannot hold one Conv4 tile (infeasible, with the reason)
MIXED = """base: edge-npu
models:
  - {onnx: conv4.onnx}
parameters:
  hw.array.rows: {low: 8, high: 32, factor: 2}
  hw.sram.size_kib: [1, 4, 64, 512]
objectives: [latency, energy, area]
"""


def space_file(tmp_path, body, name="space.yaml"):
    (tmp_path / "conv4.onnx").write_bytes(CONV4.read_bytes())
    f = tmp_path / name
    f.write_text(body)
    return f


def no_export(ref):
    raise AssertionError("no export expected")


def store_bytes(path: Path) -> dict[str, bytes]:
    """Every file of a store by name: what 'the same store, bit for bit' compares."""
    return {p.name: p.read_bytes() for p in sorted(Path(path).iterdir()) if p.is_file()}
