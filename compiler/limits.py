"""`Limits`: how large a model the frontend accepts, checked before anything is allocated.

A few hundred bytes of ONNX can declare a tensor of billions of elements (a ConstantOfShape fed
by a constant shape, an initializer whose dims promise data it does not carry, external data
of any length). The frontend therefore checks sizes from shapes alone, before it reads
external data, materialises a constant or builds the IR:

* `max_nodes` — nodes in the graph (checked right after parsing);
* `max_tensor_elements` — elements of any one tensor: initializers and graph inputs as
  declared, every other tensor as soon as its shape is resolved;
* `max_total_bytes` — bytes of all tensors of the graph together (what the simulated model
  would hold if nothing were ever freed), external data included.

The defaults are far above the meta-training graphs hwsim exports (the 24,272-node MAML
Conv4 meta-batch-4 graph has 4.9 GB of tensors, its largest 3.8 M elements) and far below what
would exhaust a workstation when materialised. Raise them with
`load_graph(path, limits=Limits(max_total_bytes=...))` or the CLI flags in `Limits.FLAGS`.
Values the frontend keeps (shapes, axes, small constants) are never larger than
`MAX_CONSTANT_ELEMENTS` regardless of these limits.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, fields
from typing import ClassVar, Mapping

# Constant values up to this many elements are computed and kept (shapes, axes, pads, scalars);
# larger constants are known by shape only, so nothing large is ever materialised.
MAX_CONSTANT_ELEMENTS = 4096


@dataclass(frozen=True)
class Limits:
    max_nodes: int = 1_000_000
    max_tensor_elements: int = 2**31
    max_total_bytes: int = 2**40

    # The command-line flag that sets each limit (wired by the CLI; named in error messages).
    FLAGS: ClassVar[Mapping[str, str]] = {
        "max_nodes": "--max-nodes",
        "max_tensor_elements": "--max-tensor-elements",
        "max_total_bytes": "--max-total-bytes",
    }

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v <= 0:
                raise ValueError(f"Limits.{f.name} must be a positive integer, not {v!r}")

    def how_to_raise(self, name: str) -> str:
        """'the limit is N (Limits.name, CLI --flag)' for error messages."""
        return f"the limit is {getattr(self, name):,} (raise it with Limits.{name} or {self.FLAGS[name]})"
