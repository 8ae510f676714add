"""Design-space exploration: sweep hardware parameters over exported phases, keep the Pareto set.

A space is a YAML file (read with a safe loader, validated by pydantic):

    base: edge-npu                 # preset name or YAML path; every point starts from it
    models:                        # what runs on every point
      - {algo: maml, phase: meta_train, inner_steps: 1, meta_batch: 25}
      - {onnx: models/cnn.onnx}    # or any ONNX file (relative to the space file)
    grid:                          # dotted config paths -> values; the points are their product
      array.rows: [16, 32, 64]
      sram.size_kib: [128, 512]

Each model is exported (cached) and loaded once; each point's config is validated like any
config, so an impossible combination names its point and field. Points run in a local process
pool; results are deterministic whatever the number of workers (rows are sorted by point).
"""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .config import load_hardware, parse_hardware
from .errors import BadInput

MAX_POINTS = 10_000


class SweepError(BadInput):
    """A sweep space that cannot be run (bad YAML, unknown field, empty grid, too many points)."""


class ModelRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    algo: str | None = None
    phase: str | None = None
    backbone: str = "sine_mlp"
    way: int = 1
    shot: int = 10
    query: int = 10
    inner_steps: int = 1
    inner_lr: float = 0.01
    meta_batch: int = 1
    seed: int = 0
    onnx: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "ModelRef":
        if (self.onnx is None) == (self.algo is None or self.phase is None):
            raise ValueError("give either 'onnx: PATH' or both 'algo' and 'phase'")
        return self

    @property
    def label(self) -> str:
        if self.onnx:
            return Path(self.onnx).stem
        return f"{self.algo}/{self.phase}/k{self.inner_steps}/B{self.meta_batch}"


class Space(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    base: str
    models: list[ModelRef] = Field(min_length=1)
    grid: dict[str, list[Any]] = Field(min_length=1)

    @model_validator(mode="after")
    def _non_empty(self) -> "Space":
        for key, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{key}: needs at least one value")
        return self

    def points(self) -> list[dict[str, Any]]:
        keys = sorted(self.grid)
        return [dict(zip(keys, combo)) for combo in itertools.product(*(self.grid[k] for k in keys))]


def load_space(path: Path) -> Space:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise SweepError(f"{path}: cannot read ({e.__class__.__name__})") from None
    except yaml.YAMLError:
        raise SweepError(f"{path}: not valid YAML") from None
    if not isinstance(data, dict):
        raise SweepError(f"{path}: expected a mapping with 'base', 'models' and 'grid'")
    try:
        space = Space.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise SweepError(f"{path}: {loc}: {err['msg']}") from None
    n = len(space.points())
    if n > MAX_POINTS:
        raise SweepError(f"{path}: grid has {n:,} points; at most {MAX_POINTS:,} are allowed")
    return space


def point_config(base: dict[str, Any], point: dict[str, Any], where: str):
    """The base config with the point's dotted paths set, validated as a whole."""
    data = json.loads(json.dumps(base))
    for path, value in point.items():
        node = data
        *parents, leaf = path.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                raise SweepError(f"{where}: grid.{path}: the base config has no section {p!r}")
            node = node[p]
        if leaf not in node and parents:
            raise SweepError(f"{where}: grid.{path}: the base config has no field {leaf!r} there")
        node[leaf] = value
    label = ", ".join(f"{k}={v}" for k, v in point.items())
    return parse_hardware(yaml.safe_dump(data), f"{where} point [{label}]")


@dataclass(frozen=True)
class _Job:
    index: int
    point: dict[str, Any]
    hw_yaml: str
    models: tuple[tuple[str, Any], ...]   # (label, pipeline front end: hardware-independent, done once)


def _run_job(job: _Job) -> list[dict[str, Any]]:
    from . import pipeline

    hw = parse_hardware(job.hw_yaml)
    rows = []
    for label, front in job.models:
        r = pipeline.simulate(front, hw).result
        util = r.utilization()
        rows.append({"point": job.index, **job.point, "model": label, "cycles": r.cycles,
                     "seconds": r.seconds, "energy_pj": r.energy_pj, "macs": r.macs,
                     "dram_bytes": sum(v for k, v in r.traffic().items() if k.startswith("dram.")),
                     "peak_sram_bytes": r.peak_memory.get("sram", 0),
                     "array_utilization": max((u for k, u in util.items() if k.endswith(".array")), default=0.0)})
    return rows


def model_spec(ref: ModelRef):
    """The PhaseSpec a space's model entry names."""
    from algorithms.export import PhaseSpec

    return PhaseSpec(algorithm=ref.algo, phase=ref.phase, backbone=ref.backbone, way=ref.way,
                     shot=ref.shot, query=ref.query, inner_steps=ref.inner_steps,
                     meta_batch=ref.meta_batch, inner_lr=ref.inner_lr, seed=ref.seed)


def run_sweep(space: Space, space_dir: Path, *, workers: int, export=None) -> list[dict[str, Any]]:
    """All points × models, sorted by point then model. Each model is exported (`export(ModelRef)
    -> ModelProto`, by default the cached exporter) and run through the front end once; points
    only lower and simulate it."""
    from . import pipeline

    base = load_hardware(space.base if not space.base.endswith((".yaml", ".yml"))
                         else space_dir / space.base)
    base_data = json.loads(base.model_dump_json())
    models = []
    for i, ref in enumerate(space.models):
        if ref.onnx:
            path = space_dir / ref.onnx
            if not path.is_file():
                raise SweepError(f"models.{i}.onnx: no such file {str(path)!r}")
            models.append((ref.label, pipeline.prepare(path)))
        else:
            onnx_model = export(ref) if export is not None else pipeline.export(model_spec(ref))
            models.append((ref.label, pipeline.prepare(onnx_model)))
    jobs = [_Job(i, p, yaml.safe_dump(json.loads(point_config(base_data, p, "space").model_dump_json())),
                 tuple(models))
            for i, p in enumerate(space.points())]
    if workers <= 1:
        results = [_run_job(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(_run_job, jobs))
    return [row for rows in results for row in rows]


def pareto(rows: list[dict[str, Any]], x: str = "seconds", y: str = "energy_pj") -> list[dict[str, Any]]:
    """Rows not dominated in (x, y) by another row of the same model (both minimised)."""
    out = []
    for model in sorted({r["model"] for r in rows}):
        pts = sorted((r for r in rows if r["model"] == model), key=lambda r: (r[x], r[y], r["point"]))
        best = float("inf")
        for r in pts:
            if r[y] < best:
                out.append(r)
                best = r[y]
    return out


__all__ = ["Space", "ModelRef", "SweepError", "load_space", "run_sweep", "pareto", "point_config"]
