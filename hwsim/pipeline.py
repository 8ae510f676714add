"""The one way from a model to a priced result; the CLI, exploration, benchmarks and tests call it.

    model = prepare(spec_or_onnx)         # export (a PhaseSpec) or read (ONNX), then the
                                          # hardware-independent front end: once per model
    run   = simulate(model, hw)           # lower onto `hw`, run the engine, price the counts
    run.result                            # SimResult

`prepare` imports the exporter (and torch) only when it is given a `PhaseSpec`, so simulating
an ONNX file never pays for it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Union

import onnx

from compiler.compile import Frontend, front_end, lower
from compiler.ir import Graph
from compiler.limits import Limits

from .config import HardwareConfig
from .energy import energy_table
from .collector import paused_gc
from .engine import simulate as run_program
from .program import Program
from .result import SimResult

if TYPE_CHECKING:
    from algorithms.spec import PhaseSpec

CACHE_ENV = "HWSIM_CACHE"

Source = Union["PhaseSpec", onnx.ModelProto, str, Path, Graph]


def default_cache_dir() -> Path:
    """Where exported phases are cached: $HWSIM_CACHE, else .hwsim-cache in the working folder."""
    return Path(os.environ.get(CACHE_ENV, ".hwsim-cache"))


@dataclass(frozen=True)
class Run:
    """One model on one hardware configuration: the lowered Program and its priced result."""

    model: Frontend
    hw: HardwareConfig
    program: Program
    result: SimResult


def export(spec: "PhaseSpec", *, cache_dir: str | Path | None = None, use_cache: bool = True) -> onnx.ModelProto:
    """The ONNX model of an exported phase (verified, cached under `cache_dir`)."""
    from algorithms.export import export_phase

    return export_phase(spec, cache_dir=(cache_dir or default_cache_dir()) if use_cache else None)


def prepare(source: Source, *, dims: Mapping[str, int] | None = None,
            cache_dir: str | Path | None = None, limits: Limits = Limits()) -> Frontend:
    """The hardware-independent front end of a model: a PhaseSpec is exported first; an ONNX
    model (path or ModelProto) or an IR graph is read as it is, within `limits`."""
    if not isinstance(source, (onnx.ModelProto, str, Path, Graph)):
        source = export(source, cache_dir=cache_dir)
    with paused_gc():   # the front end allocates ~10^6 short-lived objects and no cycles to collect
        return front_end(source, dims, limits)


def simulate(model: Frontend | Source, hw: HardwareConfig, **options: object) -> Run:
    """Lower `model` onto `hw`, run the engine and price the action counts with `hw`'s table.
    `options` go to the lowering (e.g. `detail="tiles"` for the NPU's tile-level reference)."""
    front = model if isinstance(model, Frontend) else prepare(model)
    with paused_gc():   # as in the engine: many short-lived objects, no cycles to collect
        program = lower(front, hw, **options)
        result = run_program(program, static_power_mw=hw.technology.static_power_mw,
                             energy_table=energy_table(hw))
    # the configuration travels with the result: a saved result can be re-priced and reported
    # on its own (roofs, capacities, area), with no access to the YAML it came from
    result.hardware = hw.model_dump(mode="json")
    return Run(front, hw, program, result)
