"""Hand-built models for the compiler tests: ONNX models (onnx.helper, fixed seeds) and IR
graphs with their workloads (an MLP chain per task), and a small NPU config to lower them on."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from compiler.ir import Graph, Node, Role, Tensor
from compiler.workload import Kind, Workload
from hwsim.config import parse_hardware
from hwsim.scope import Scope

FIXTURES = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "compiler"


def one_node(op: str, inputs: dict[str, tuple], output_shapes: dict[str, tuple] | None = None,
             inits: dict[str, np.ndarray] | None = None, dtype=TensorProto.FLOAT, opset: int = 20,
             **attrs):
    """A model with a single `op` node; `inputs` maps graph inputs to shapes, `inits` are
    initializers given as node inputs after the graph inputs (in dict order)."""
    inits = inits or {}
    names = list(inputs) + list(inits)
    outs = list(output_shapes or {"y": None})
    node = helper.make_node(op, names, outs, name="n0", **attrs)
    return graph_of([node], inputs, outs, inits, dtype=dtype, opset=opset, name=op)


def graph_of(nodes, inputs: dict[str, tuple], outputs: list[str], inits: dict[str, np.ndarray] | None = None,
             dtype=TensorProto.FLOAT, opset: int = 20, name: str = "g"):
    """A model of `nodes`: graph inputs of `dtype` with the given shapes, outputs with types left
    to inference, initializers from numpy arrays (their own dtypes)."""
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(k, dtype, v) for k, v in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in (inits or {}).items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def conv4_hand(batch: int | str = 1, way: int = 5, reshape: bool = False):
    """Conv4-64: 4 x [Conv 3x3 pad 1, BatchNormalization, Relu, MaxPool 2] + Flatten/Reshape + Gemm."""
    rng = np.random.default_rng(0)
    nodes, inits, x, c = [], [], "x", 1
    for i in range(4):
        w = rng.standard_normal((64, c, 3, 3)).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"),
                  numpy_helper.from_array(np.zeros(64, np.float32), f"b{i}")]
        for k, v in (("g", 1.0), ("beta", 0.0), ("mean", 0.0), ("var", 1.0)):
            inits.append(numpy_helper.from_array(np.full(64, v, np.float32), f"{k}{i}"))
        nodes += [
            helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1],
                             kernel_shape=[3, 3]),
            helper.make_node("BatchNormalization", [f"c{i}", f"g{i}", f"beta{i}", f"mean{i}", f"var{i}"],
                             [f"bn{i}"]),
            helper.make_node("Relu", [f"bn{i}"], [f"r{i}"]),
            helper.make_node("MaxPool", [f"r{i}"], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]),
        ]
        x, c = f"p{i}", 64
    if reshape:
        inits.append(numpy_helper.from_array(np.array([-1, 64], np.int64), "flat_shape"))
        nodes.append(helper.make_node("Reshape", [x, "flat_shape"], ["flat"]))
    else:
        nodes.append(helper.make_node("Flatten", [x], ["flat"]))
    inits += [numpy_helper.from_array(rng.standard_normal((way, 64)).astype(np.float32), "fc_w"),
              numpy_helper.from_array(np.zeros(way, np.float32), "fc_b")]
    nodes.append(helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes, "conv4", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


# ---- IR graphs ------------------------------------------------------------------------------------

HW = """kind: npu
name: t
clock_mhz: 1000
cores: {cores}
array: {{rows: 8, cols: 8}}
vector: {{lanes: 8}}
sram: {{size_kib: {kib}, bytes_per_cycle: 64}}
dram: {{type: DDR4, bandwidth_gbps: 8, latency_ns: 20}}
interconnect: {{bytes_per_cycle: 32}}
"""


def hw(kib=64, cores=1):
    """A small NPU (8x8 array, unified SRAM of `kib` KiB, `cores` cores)."""
    return parse_hardware(HW.format(kib=kib, cores=cores))


def mlp_chain(layers=3, m=16, d=32, tasks=1):
    """x -> (MatMul W_i -> Relu) * layers per task; a Sum of task outputs."""
    tensors, nodes, wl, outs = {}, [], {}, []
    def t(name, shape, role=Role.ACTIVATION):
        tensors[name] = Tensor(name, shape, "float32", role)
        return name
    for j in range(tasks):
        x = t(f"x{j}", (m, d), Role.INPUT)
        for i in range(layers):
            w = t(f"w{j}_{i}", (d, d), Role.PARAMETER)
            y = t(f"y{j}_{i}", (m, d))
            nodes.append(Node(f"mm{j}_{i}", "MatMul", (x, w), (y,), scope=Scope("forward", task=j)))
            wl[f"mm{j}_{i}"] = Workload(Kind.MATMUL, macs=m * d * d, bytes_read=4 * (m * d + d * d),
                                        bytes_written=4 * m * d, dims={"b": 1, "m": m, "k": d, "n": d})
            z = t(f"z{j}_{i}", (m, d), Role.OUTPUT if (i == layers - 1 and tasks == 1) else Role.ACTIVATION)
            nodes.append(Node(f"relu{j}_{i}", "Relu", (y,), (z,), scope=Scope("forward", task=j)))
            wl[f"relu{j}_{i}"] = Workload(Kind.ELEMENTWISE, flops=m * d, bytes_read=4 * m * d,
                                          bytes_written=4 * m * d)
            x = z
        outs.append(x)
    if tasks > 1:
        out = t("sum", (m, d), Role.OUTPUT)
        nodes.append(Node("reduce", "Sum", tuple(outs), (out,), scope=Scope("meta_reduce")))
        wl["reduce"] = Workload(Kind.ELEMENTWISE, flops=m * d * (tasks - 1), bytes_read=4 * m * d * tasks,
                                bytes_written=4 * m * d)
        outs = [out]
    return Graph("g", nodes, tensors, [n for n, v in tensors.items() if v.role in (Role.INPUT, Role.PARAMETER)],
                 outs), wl


