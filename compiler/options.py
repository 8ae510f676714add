"""The NPU lowering's options — the co-design knobs — by name: allowed values and the default.

Kept apart from the lowering so that the command line and exploration can list them without
importing the compiler. The defaults give today's lowering exactly
(tests/compiler/test_codesign_defaults.py); docs/codesign.md explains each.
"""

from __future__ import annotations

DETAILS = ("node", "tiles")                       # streaming in closed form, or tile by tile
PRECISIONS = ("fp32", "bf16", "fp16", "int8")     # compiler.precision
FUSIONS = ("none", "layer", "depth_first")        # compiler.fusion
HALOS = ("cache", "recompute")                    # a fused group's shared rows
RECOMPUTES = ("stash_all", "per_step", "all")     # compiler.recompute

# name -> (allowed values, default); None means "not set" (precision: the graph's own types)
OPTIONS: dict[str, tuple[tuple, object]] = {
    "detail": (DETAILS, "node"),
    "precision": ((None, *PRECISIONS), None),
    "fusion": (FUSIONS, "none"),
    "halo": (HALOS, "cache"),
    "recompute": (RECOMPUTES, "stash_all"),
}
