"""One design point: its config from the space's parameters, and what it measures.

This is the code a worker runs. It receives the models once (`Models`: the base config and
each model's front end, built once per run in the driver and scattered to the workers) and then
jobs (a point index and its parameter values). A point whose config or lowering is refused
with `BadInput` (a value out of range, a buffer too small for a tile) is *infeasible*, with
the reason; any other exception is a bug and propagates.
"""

from __future__ import annotations

import copy
import gc
import inspect
from dataclasses import dataclass
from typing import Any

from ..config import HardwareConfig, validate_hardware
from ..errors import BadInput
from .cost import area
from .space import Scalar, SpaceError


@dataclass(frozen=True)
class Models:
    """Shipped to every worker once: the base config's data and each model's front end."""

    base: dict[str, Any]
    fronts: tuple[tuple[str, Any], ...]      # (label, compiler.compile.Frontend)


@dataclass(frozen=True)
class Job:
    point: int
    params: dict[str, Scalar]


def evaluate(models: Models, jobs: list[Job]) -> list[dict[str, Any]]:
    """Each job's outcome: `{"point", "status": "ok", "area", "models": {label: metrics}}` or
    `{"point", "status": "infeasible", "reason"}`."""
    from .. import pipeline

    # A point makes and drops many small objects but no cycles worth chasing while it runs;
    # the collector's full passes would walk the models' graphs every time (~10 % of a point).
    gc.disable()
    try:
        return [_one(pipeline, models, job) for job in jobs]
    finally:
        gc.enable()


def evaluate_on_worker(models: Models, jobs: list[Job]) -> list[dict[str, Any]]:
    """`evaluate` on a dask worker: the models it keeps for the whole run are moved out of the
    collector's sight once (gc.freeze), so later collections do not walk them again."""
    global _FROZEN
    if _FROZEN != id(models):
        gc.collect()
        gc.freeze()
        _FROZEN = id(models)
    return evaluate(models, jobs)


_FROZEN: int | None = None


def _one(pipeline, models: Models, job: Job) -> dict[str, Any]:
    try:
        hw, options = configure(models.base, job.params, f"point {job.point}")
        per_model = {label: metrics(pipeline.simulate(front, hw, **options).result)
                     for label, front in models.fronts}
        return {"point": job.point, "status": "ok", "area": area(hw), "models": per_model}
    except BadInput as e:
        return {"point": job.point, "status": "infeasible", "reason": " ".join(str(e).split())}


def configure(base: dict[str, Any], params: dict[str, Scalar], where: str) -> tuple[HardwareConfig, dict]:
    """The validated hardware config of a point and its lowering options."""
    data = copy.deepcopy(base)
    options: dict[str, Any] = {}
    for name, value in params.items():
        ns, _, path = name.partition(".")
        if ns == "compile":
            options[path] = value
            continue
        node = data
        *parents, leaf = path.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    label = ", ".join(f"{k}={v}" for k, v in params.items())
    return validate_hardware(data, f"{where} [{label}]"), options


def check_parameters(base: dict[str, Any], names: list[str], lowering) -> None:
    """Refuse, before any point runs, a `hw.` path the base config does not have and a
    `compile.` option the lowering does not take."""
    accepted = [p.name for p in list(inspect.signature(lowering).parameters.values())[3:]
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for name in names:
        ns, _, path = name.partition(".")
        if ns == "compile":
            if path not in accepted:
                raise SpaceError(f"parameters.{name}: the {base.get('kind')} lowering takes no option "
                                 f"{path!r} (it takes: {', '.join(accepted) or 'none'})")
            continue
        node: Any = base
        *parents, leaf = path.split(".")
        for i, p in enumerate(parents):
            if not isinstance(node, dict) or not isinstance(node.get(p), dict):
                raise SpaceError(f"parameters.{name}: the base config has no section "
                                 f"{'.'.join(parents[:i + 1])!r}")
            node = node[p]
        if leaf not in node:
            raise SpaceError(f"parameters.{name}: the base config has no field {leaf!r} there "
                             f"(fields: {', '.join(sorted(node))})")


def metrics(r) -> dict[str, float]:
    """What a point records per model (`SimResult` -> plain numbers)."""
    util = r.utilization()
    return {
        "cycles": r.cycles,
        "seconds": r.seconds,
        "energy_pj": r.energy_pj,
        "macs": r.macs,
        "dram_bytes": sum(v for k, v in r.traffic().items() if k.startswith("dram.")),
        "peak_onchip_bytes": onchip_peak(r.peak_memory),
        "array_utilization": max((u for k, u in util.items() if k.endswith(".array")), default=0.0),
    }


def onchip_peak(peak: dict[str, int]) -> int:
    """Peak on-chip bytes: every level but DRAM and the per-core pools (`core<i>.<pool>`), which
    the NPU lowering also counts in its whole-chip `sram` level."""
    return sum(v for k, v in peak.items() if k != "dram" and not (k.startswith("core") and "." in k))


__all__ = ["Models", "Job", "evaluate", "evaluate_on_worker", "configure", "check_parameters", "metrics", "onchip_peak"]
