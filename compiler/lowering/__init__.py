"""Lowering IR graphs onto hardware targets: closed-form unit models and Program builders.

`LOWERINGS` maps a hardware kind (`hw.kind`) to its lowering, `(graph, workloads, hw) ->
Program`; each target family registers its own in its module, imported on first lookup.
"""

from __future__ import annotations

from typing import Callable

from hwsim.errors import BadInput
from hwsim.program import Program
from hwsim.registry import Registry


class LoweringError(BadInput):
    """The graph cannot be mapped onto this hardware (names the node, the resource and by how much)."""


LOWERINGS: Registry[Callable[..., Program]] = Registry(
    "hardware kind (no lowering)", error=LoweringError,
    modules=("compiler.lowering.npu", "compiler.lowering.fabric"))
