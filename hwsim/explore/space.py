"""The space of an exploration: what varies, what is measured, what must hold, how to search.

A space is a YAML file (read with a safe loader, at most 1 MiB, validated by pydantic):

    base: edge-npu                       # preset name or YAML path; every point starts from it
    models:                              # what runs on every point
      - {name: adapt, algo: maml, phase: adapt, inner_steps: 5}
      - {name: cnn, onnx: models/cnn.onnx}     # any ONNX file (relative to the space file)
    parameters:                          # hw.<dotted config path> or compile.<lowering option>
      hw.array.rows: {low: 8, high: 128, step: 8}          # integer steps
      hw.sram.size_kib: {low: 64, high: 4096, factor: 2}   # log scale: 64, 128, ..., 4096
      hw.dram.bandwidth_gbps: [12.8, 25.6, 51.2]           # choices
      hw.clock_mhz: {low: 500, high: 1500}                 # continuous (samplers only)
    objectives: [latency, energy, area]  # or {metric: latency, model: adapt}
    constraints:
      - {metric: area, max: 20}          # mm^2 (NPU, CGRA); LUT-equivalents (FPGA)
      - {metric: latency, model: adapt, max: 0.002}
    search: {sampler: nsga2, trials: 400, seed: 0}

`grid:` (dotted config paths without the `hw.` prefix, each a list of values) is the format of
the first `hwsim sweep` and still works; its default objectives are latency and energy.

Nothing here enumerates a grid: `Space.grid_size()` multiplies the parameters' counts, so a
100^5 grid is refused before a single point exists, and `Space.grid_point(i)` decodes the i-th
point (mixed radix, the last parameter fastest) on demand.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator,
                      model_validator)

from ..config import parse_yaml, read_config_text
from ..config import ConfigError
from ..errors import BadInput

MAX_POINTS = 10_000
MAX_SPACE_BYTES = 1 << 20

METRICS = ("latency", "energy", "area", "peak_memory", "dram_traffic")
SAMPLERS = ("grid", "random", "tpe", "nsga2")
# Parameter namespaces: `hw.` sets a field of the hardware config by its dotted path; `compile.`
# passes a keyword option to the lowering (`pipeline.simulate(front, hw, **options)`).
NAMESPACES = ("hw", "compile")

Scalar = Union[bool, int, float, str, None]


class SpaceError(BadInput):
    """A space that cannot be run: bad YAML, an unknown field or path, too many points."""


# The first `hwsim sweep` raised this name; kept so callers that catch it keep working.
SweepError = SpaceError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelRef(_Strict):
    """One model every point runs: an exported phase (algo + phase) or an ONNX file."""

    name: str | None = None
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
        if self.name:
            return self.name
        if self.onnx:
            return Path(self.onnx).stem
        return f"{self.algo}/{self.phase}/k{self.inner_steps}/B{self.meta_batch}"


class Choices(_Strict):
    choices: list[Scalar] = Field(min_length=1)

    @property
    def discrete(self) -> bool:
        return True

    def count(self) -> int:
        return len(self.choices)

    def value(self, i: int) -> Scalar:
        return self.choices[i]


class Range(_Strict):
    """`low..high` (inclusive). Discrete with `step` (linear), `factor` (geometric: the log
    scale of a grid) or `num` (that many points, linear or with `log: true` geometric);
    otherwise continuous, which only the samplers (random, tpe, nsga2) can draw from."""

    low: float | int
    high: float | int
    step: float | int | None = Field(None, gt=0)
    factor: float | int | None = Field(None, gt=1)
    num: int | None = Field(None, ge=2, le=MAX_POINTS)
    log: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> "Range":
        for v in (self.low, self.high):
            if isinstance(v, bool) or not math.isfinite(v):
                raise ValueError("low and high must be finite numbers")
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if sum(x is not None for x in (self.step, self.factor, self.num)) > 1:
            raise ValueError("give at most one of step, factor and num")
        if (self.log or self.factor is not None) and self.low <= 0:
            raise ValueError("a log scale needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("log and step exclude each other (use factor for a geometric grid)")
        if self.factor is not None and self.log:
            raise ValueError("factor is already a log scale; drop 'log'")
        return self

    @property
    def integer(self) -> bool:
        """Values are integers when every number that makes them is one (an int range with no
        step has step 1)."""
        parts = [self.low, self.high] + [x for x in (self.step, self.factor) if x is not None]
        return self.num is None and all(isinstance(x, int) for x in parts)

    @property
    def discrete(self) -> bool:
        return self.integer or any(x is not None for x in (self.step, self.factor, self.num))

    def count(self) -> int:
        if self.num is not None:
            return self.num
        if self.factor is not None:
            return int(math.floor(math.log(self.high / self.low) / math.log(self.factor) + 1e-9)) + 1
        step = self.step if self.step is not None else 1
        return int(math.floor((self.high - self.low) / step + 1e-9)) + 1

    def value(self, i: int) -> int | float:
        if self.num is not None:
            f = i / (self.num - 1)
            v = self.low * (self.high / self.low) ** f if self.log else self.low + (self.high - self.low) * f
        elif self.factor is not None:
            v = self.low * self.factor ** i
        else:
            v = self.low + i * (self.step if self.step is not None else 1)
        # Rounded so 0.1 + 2 * 0.1 reads 0.3 in the store and in the config.
        return int(round(v)) if self.integer else round(float(v), 12)


def _domain_kind(v: Any) -> str:
    return "choices" if isinstance(v, (Choices, list)) or (isinstance(v, dict) and "choices" in v) else "range"


# a mapping with 'choices' is a Choices, any other a Range: errors then name the right fields
Domain = Annotated[Union[Annotated[Choices, Tag("choices")], Annotated[Range, Tag("range")]],
                   Discriminator(_domain_kind)]


class Objective(_Strict):
    """A metric to minimise, over one model (`model: NAME`) or summed over all of them
    (peak memory: the largest of them; area belongs to the hardware, not to a model)."""

    metric: Literal["latency", "energy", "area", "peak_memory", "dram_traffic"]
    model: str | None = None

    @property
    def label(self) -> str:
        return self.metric if self.model is None else f"{self.metric}@{self.model}"


class Constraint(Objective):
    """`metric[@model] <= max` (units of the metric: s, pJ, mm^2 or LUT-eq, bytes)."""

    max: float

    @property
    def label(self) -> str:
        return f"{super().label}<={self.max:g}"


class Search(_Strict):
    """How points are chosen. `batch` proposals are drawn from the results of every earlier
    batch, so the result depends on the seed and the batch, never on the number of workers."""

    sampler: Literal["grid", "random", "tpe", "nsga2"] = "grid"
    trials: int | None = Field(None, ge=1, le=MAX_POINTS)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    batch: int | None = Field(None, ge=1, le=1000)
    population: int | None = Field(None, ge=2, le=1000)   # NSGA-II; the batch is one generation

    def batch_size(self) -> int:
        if self.sampler == "nsga2":
            return self.population or self.batch or 20
        return self.batch or {"grid": 64, "random": 64, "tpe": 10}[self.sampler]


class Space(_Strict):
    base: str
    models: list[ModelRef] = Field(min_length=1)
    grid: dict[str, list[Scalar]] = {}
    parameters: dict[str, Domain] = {}
    objectives: list[Objective] = Field(default_factory=lambda: [Objective(metric="latency"),
                                                                 Objective(metric="energy")], min_length=1)
    constraints: list[Constraint] = []
    search: Search = Search()

    @field_validator("parameters", mode="before")
    @classmethod
    def _choices_shorthand(cls, v: Any) -> Any:
        # a YAML list is the choices of a parameter
        if isinstance(v, dict):
            return {k: {"choices": d} if isinstance(d, list) else d for k, d in v.items()}
        return v

    @field_validator("objectives", "constraints", mode="before")
    @classmethod
    def _metric_shorthand(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"metric": o} if isinstance(o, str) else o for o in v]
        return v

    @model_validator(mode="after")
    def _well_formed(self) -> "Space":
        for key, values in self.grid.items():
            if not values:
                raise ValueError(f"grid.{key}: needs at least one value")
            if f"hw.{key}" in self.parameters:
                raise ValueError(f"grid.{key}: also given as parameters.hw.{key}")
        if not self.grid and not self.parameters:
            raise ValueError("give the parameters to explore ('parameters', or the older 'grid')")
        for name in self.parameters:
            ns, _, path = name.partition(".")
            if ns not in NAMESPACES or not path:
                raise ValueError(f"parameters.{name}: name must start with 'hw.' (a config path) "
                                 "or 'compile.' (a lowering option)")
        labels = [m.label for m in self.models]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"models: two models are named {dup[0]!r}; give each a distinct 'name'")
        for where, items in (("objectives", self.objectives), ("constraints", self.constraints)):
            for i, o in enumerate(items):
                if o.model is not None and o.model not in labels:
                    raise ValueError(f"{where}.{i}.model: no model named {o.model!r} "
                                     f"(models: {', '.join(labels)})")
                if o.metric == "area" and o.model is not None:
                    raise ValueError(f"{where}.{i}: area belongs to the hardware, not to a model")
        if self.search.sampler == "grid":
            for name, d in self.domains().items():
                if not d.discrete:
                    raise ValueError(f"parameters.{name}: a continuous range cannot be a grid "
                                     "axis; give step, factor or num (or use a sampler)")
        return self

    # ---- parameters ------------------------------------------------------------------------
    def domains(self) -> dict[str, Domain]:
        """Every parameter by its full name, `grid:` entries as `hw.` choices, in file order."""
        out: dict[str, Domain] = {f"hw.{k}": Choices(choices=v) for k, v in self.grid.items()}
        out.update(self.parameters)
        return out

    def grid_size(self) -> int:
        """Points of the full grid, computed without building one (a continuous axis: 0)."""
        ds = self.domains().values()
        return math.prod(d.count() for d in ds) if all(d.discrete for d in ds) else 0

    def grid_point(self, index: int) -> dict[str, Scalar]:
        """The index-th grid point (mixed radix, the last parameter varies fastest)."""
        out: dict[str, Scalar] = {}
        items = list(self.domains().items())
        for name, d in reversed(items):
            index, digit = divmod(index, d.count())
            out[name] = d.value(digit)
        return {name: out[name] for name, _ in items}

    def n_points(self) -> int:
        """Points this space evaluates: the grid's, or the sampler's trials."""
        if self.search.sampler == "grid":
            size = self.grid_size()
            return min(size, self.search.trials) if self.search.trials else size
        return self.search.trials or 100

    def with_search(self, **changes: Any) -> "Space":
        """This space with search settings overridden (the command line's --sampler, ...)."""
        merged = {**self.search.model_dump(), **{k: v for k, v in changes.items() if v is not None}}
        try:
            search = Search.model_validate(merged)
            return Space.model_validate({**self.model_dump(), "search": search.model_dump()})
        except ValidationError as e:
            raise SpaceError(_first_error(e, "search")) from None

    def identity(self) -> str:
        """What makes two runs the same exploration: everything but the number of trials (a
        rerun may ask for more, and the first points are the same)."""
        data = self.model_dump(mode="json")
        data["search"].pop("trials")
        return json.dumps(data, sort_keys=True, separators=(",", ":"))


def load_space(path: Path) -> Space:
    """Read and validate a space file; refuse it before any work if its points exceed the cap."""
    try:
        text = read_config_text(Path(path), str(path))
        data = parse_yaml(text, str(path))
    except ConfigError as e:
        raise SpaceError(str(e)) from None
    if not isinstance(data, dict):
        raise SpaceError(f"{path}: expected a mapping with 'base', 'models' and 'parameters' (or 'grid')")
    _bounded(data, str(path))
    try:
        space = Space.model_validate(data)
    except ValidationError as e:
        raise SpaceError(f"{path}: {_first_error(e)}") from None
    check_cap(space, str(path))
    return space


# YAML aliases let a 1 MiB file name a structure of billions of nodes (each alias re-counts its
# target): a space has a few hundred.
MAX_SPACE_NODES = 100_000


def _bounded(data: Any, where: str) -> None:
    seen, stack = 0, [data]
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_SPACE_NODES:
            raise SpaceError(f"{where}: more than {MAX_SPACE_NODES:,} values (YAML aliases?); not a space file")
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def check_cap(space: Space, where: str) -> None:
    if space.search.sampler == "grid":
        n = space.grid_size()
        if n > MAX_POINTS and not (space.search.trials and space.search.trials <= MAX_POINTS):
            raise SpaceError(f"{where}: grid has {n:,} points; at most {MAX_POINTS:,} are allowed "
                             "(set search.trials to run the first ones, or use a sampler)")


def _first_error(e: ValidationError, prefix: str = "") -> str:
    err = e.errors()[0]
    loc = [str(p) for p in err["loc"]]
    if len(loc) > 2 and loc[0] == "parameters" and loc[2] in ("choices", "range"):
        del loc[2]        # the union's tag, not a field
    loc = ([prefix] if prefix else []) + loc
    extra = f" (and {len(e.errors()) - 1} more)" if len(e.errors()) > 1 else ""
    return f"{'.'.join(loc) or 'space'}: {err['msg']}{extra}"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


__all__ = ["Space", "ModelRef", "Choices", "Range", "Objective", "Constraint", "Search", "SpaceError",
           "SweepError", "load_space", "check_cap", "MAX_POINTS", "METRICS", "SAMPLERS", "digest"]
