"""ONNX -> IR (static shapes) -> per-op workload -> passes -> lowering onto a target -> Program."""
