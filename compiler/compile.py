"""The compiler's stages, written out in one place: ONNX -> IR -> passes -> workloads -> Program."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import onnx

from hwsim.program import Program

from .frontend import load_graph
from .ir import Graph
from .lowering.fabric import lower_cgra, lower_fpga
from .lowering.npu import lower_npu
from .passes import run_pipeline
from .workload import Workload, graph_workloads


@dataclass
class Compiled:
    graph: Graph
    workloads: dict[str, Workload]
    program: Program

    @property
    def macs(self) -> int:
        return sum(w.macs for w in self.workloads.values())


# Lowering per hardware kind (`hw.kind`): graph, workloads, config -> Program.
LOWERINGS: dict[str, Callable[[Graph, dict[str, Workload], Any], Program]] = {
    "npu": lower_npu, "fpga": lower_fpga, "cgra": lower_cgra,
}


def compile_graph(graph: Graph, hw: Any) -> Compiled:
    if hw.kind not in LOWERINGS:
        raise ValueError(f"no lowering for hardware kind {hw.kind!r}; known: {', '.join(LOWERINGS)}")
    graph = run_pipeline(graph)
    workloads = graph_workloads(graph)
    return Compiled(graph, workloads, LOWERINGS[hw.kind](graph, workloads, hw))


def compile_model(source: str | Path | onnx.ModelProto, hw: Any,
                  dims: Mapping[str, int] | None = None) -> Compiled:
    return compile_graph(load_graph(source, dims=dict(dims or {})), hw)
