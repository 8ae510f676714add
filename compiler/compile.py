"""The compiler's stages, written out in one place:

    front_end(ONNX)         -> Frontend (IR graph after passes + a workload per node)
    lower(Frontend, config) -> Program

The front end does not depend on the hardware, so design-space exploration and comparisons run
it once per model and `lower` once per configuration. `compile_model` chains both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import onnx

from hwsim.config import HardwareConfig
from hwsim.program import Program

from .frontend import load_graph
from .ir import Graph
from .limits import Limits
from .lowering import LOWERINGS
from .passes import run_pipeline
from .workload import Workload, graph_workloads


@dataclass(frozen=True)
class Frontend:
    """A model after the hardware-independent stages: the IR graph and each node's workload."""

    graph: Graph
    workloads: dict[str, Workload]

    @property
    def macs(self) -> int:
        return sum(w.macs for w in self.workloads.values())


@dataclass(frozen=True)
class Compiled:
    frontend: Frontend
    program: Program

    @property
    def graph(self) -> Graph:
        return self.frontend.graph

    @property
    def workloads(self) -> dict[str, Workload]:
        return self.frontend.workloads

    @property
    def macs(self) -> int:
        return self.frontend.macs


def front_end(source: str | Path | onnx.ModelProto | Graph,
              dims: Mapping[str, int] | None = None, limits: Limits = Limits()) -> Frontend:
    """Load (unless given an IR graph), run the pass pipeline and compute every workload."""
    graph = source if isinstance(source, Graph) else load_graph(source, dims=dict(dims or {}), limits=limits)
    graph = run_pipeline(graph)
    return Frontend(graph, graph_workloads(graph))


def lower(frontend: Frontend, hw: HardwareConfig, **options: object) -> Program:
    """The Program of `frontend` on `hw`, by the lowering registered for its kind."""
    return LOWERINGS.lookup(hw.kind)(frontend.graph, frontend.workloads, hw, **options)


def compile_model(source: str | Path | onnx.ModelProto | Graph, hw: HardwareConfig,
                  dims: Mapping[str, int] | None = None, limits: Limits = Limits(), **options: object) -> Compiled:
    front = front_end(source, dims, limits)
    return Compiled(front, lower(front, hw, **options))
