"""The compiler's intermediate representation: a static-shape dataflow graph.

An IR `Graph` is what every compiler pass reads and returns. It is built from ONNX by
`compiler.frontend.load_graph` and is deliberately small:

* `Tensor` — a named value with a static shape, an element type and a role
  (input / parameter / activation / gradient / constant / output).
* `Node` — one operator: ONNX op type, attributes, input and output tensor names, and the
  `Scope` it came from (task, inner step, part of the meta-learning step).
* `Graph` — tensors by name, nodes in topological order, graph inputs/outputs, and the
  exported phase's metadata (algorithm, phase, way, shot, inner_steps, ...).

A dimension that cannot be resolved to an integer is an error, never a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable, Iterator, Mapping

from hwsim.scope import Scope


class Role(str, Enum):
    INPUT = "input"
    PARAMETER = "parameter"
    ACTIVATION = "activation"
    GRADIENT = "gradient"
    CONSTANT = "constant"
    OUTPUT = "output"


# Bytes per element of the ONNX element types the compiler accepts.
DTYPE_BYTES: Mapping[str, int] = {
    "float64": 8, "float32": 4, "float16": 2, "bfloat16": 2,
    "int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1, "bool": 1,
}


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    role: Role

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * DTYPE_BYTES[self.dtype]

    @classmethod
    def make(cls, name: str, shape: tuple[int, ...], dtype: str, role: Role) -> "Tensor":
        """`Tensor(...)` for the frontend's bulk reading: the same object, built without the
        frozen dataclass's one `object.__setattr__` call per field (a large graph has tens of
        thousands of tensors)."""
        t = _new(cls)
        t.__dict__.update(name=name, shape=shape, dtype=dtype, role=role)
        return t


@dataclass(frozen=True)
class Node:
    name: str
    op_type: str
    inputs: tuple[str, ...]    # "" for an omitted optional input, as in ONNX
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    scope: Scope = Scope()

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    @classmethod
    def make(cls, name: str, op_type: str, inputs: tuple[str, ...], outputs: tuple[str, ...],
             attrs: Mapping[str, Any], scope: Scope) -> "Node":
        """`Node(...)` for the frontend's bulk reading (see `Tensor.make`)."""
        n = _new(cls)
        n.__dict__.update(name=name, op_type=op_type, inputs=inputs, outputs=outputs, attrs=attrs,
                          scope=scope)
        return n


_new = object.__new__


@dataclass
class Graph:
    name: str
    nodes: list[Node]
    tensors: dict[str, Tensor]
    inputs: list[str]
    outputs: list[str]
    metadata: dict[str, str] = field(default_factory=dict)
    # Values of small constant tensors (shapes, axes, scalars) that rules may need.
    constants: dict[str, Any] = field(default_factory=dict)
    # Where the graph came from (the model file, or "model 'name'"): the prefix of error messages.
    source: str = ""
    # The model's ai.onnx opset: rules read attributes whose defaults changed between opsets
    # (Softmax's axis before 13). 0: unknown, newest semantics.
    opset: int = 0

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def tensor(self, name: str) -> Tensor:
        try:
            return self.tensors[name]
        except KeyError:
            raise KeyError(f"graph {self.name!r} has no tensor {name!r}") from None

    def in_tensors(self, node: Node) -> list[Tensor]:
        return [self.tensors[n] for n in node.inputs if n]

    def out_tensors(self, node: Node) -> list[Tensor]:
        return [self.tensors[n] for n in node.outputs if n]

    def producers(self) -> dict[str, Node]:
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self) -> dict[str, list[Node]]:
        out: dict[str, list[Node]] = {}
        for n in self.nodes:
            for i in n.inputs:
                if i:
                    out.setdefault(i, []).append(n)
        return out

    def op_types(self) -> set[str]:
        return {n.op_type for n in self.nodes}

    def with_nodes(self, nodes: Iterable[Node]) -> "Graph":
        """A copy with another node list (passes are Graph -> Graph and never mutate)."""
        return Graph(self.name, list(nodes), dict(self.tensors), list(self.inputs),
                     list(self.outputs), dict(self.metadata), dict(self.constants), self.source,
                     self.opset)
