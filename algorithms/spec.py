"""`PhaseSpec`: which phase of which algorithm to export, validated at the edge.

    spec = PhaseSpec(algorithm="maml", phase="meta_train", backbone="conv4_64_28x28x1",
                     way=5, shot=1, inner_steps=5, meta_batch=25)

A spec is immutable and compared by value. Every field is checked when the spec is made, and a
wrong one is one `SpecError` line naming the field and what is allowed ("shot must be an integer
>= 1; got 0"); no coercion: a bool or a string is not an integer, a string is not a number
(`settings.Settings`). `SpecError` is a ValueError, which the CLI reports as bad input (exit 2).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from pydantic import field_validator, model_validator

from hwsim.errors import BadInput

from .backbones import BACKBONES
from .base import ALGORITHMS
from .settings import Settings

PHASES = ("infer", "adapt", "meta_train")
DTYPES = ("float32", "float64")


class SpecError(BadInput):
    """A PhaseSpec field has a value the exporter does not support."""


# What each field allows, for the messages of type and range errors that pydantic finds.
_ALLOWED = {
    "algorithm": "a registered algorithm name",
    "phase": f"one of {', '.join(PHASES)}",
    "backbone": "a registered backbone name",
    "way": "an integer",
    "shot": "an integer >= 1",
    "query": "an integer >= 1",
    "inner_steps": "an integer >= 1",
    "meta_batch": "an integer >= 1",
    "inner_lr": "a positive finite number",
    "seed": "an integer >= 0",
    "dtype": f"one of {', '.join(DTYPES)}",
}


class PhaseSpec(Settings):
    """One exportable phase: algorithm, phase and the task setting it is traced for."""

    error: ClassVar[type[ValueError]] = SpecError
    allowed: ClassVar[dict[str, str]] = _ALLOWED

    algorithm: str
    phase: str
    backbone: str = "sine_mlp"
    way: int = 1
    shot: int = 10
    query: int = 10
    inner_steps: int = 1
    meta_batch: int = 1
    inner_lr: float = 0.01
    seed: int = 0
    dtype: str = "float32"

    # -- fields one at a time
    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, value: str) -> str:
        return _one_of("algorithm", value, ALGORITHMS.names())

    @field_validator("phase")
    @classmethod
    def _known_phase(cls, value: str) -> str:
        return _one_of("phase", value, PHASES)

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, value: str) -> str:
        return _one_of("backbone", value, BACKBONES.names())

    @field_validator("dtype")
    @classmethod
    def _known_dtype(cls, value: str) -> str:
        return _one_of("dtype", value, DTYPES)

    @field_validator("shot", "query", "inner_steps", "meta_batch")
    @classmethod
    def _at_least_one(cls, value: int, info: Any) -> int:
        if value < 1:
            raise ValueError(f"{info.field_name} must be an integer >= 1; got {value!r}")
        return value

    @field_validator("seed")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"seed must be an integer >= 0; got {value!r}")
        return value

    @field_validator("inner_lr")
    @classmethod
    def _positive_finite(cls, value: float) -> float:
        if not (0 < value < math.inf):
            raise ValueError(f"inner_lr must be a positive finite number; got {value!r}")
        return float(value)  # 1 and 1.0: one spec, one cache key

    # -- fields together
    @model_validator(mode="after")
    def _consistent(self) -> "PhaseSpec":
        backbone = BACKBONES.lookup(self.backbone)
        if not backbone.allows_way(self.way):
            raise ValueError(f"way must be {backbone.allowed_ways()} for backbone {self.backbone}; "
                             f"got {self.way!r}")
        if self.dtype == "float64" and backbone.task_family == "classification":
            raise ValueError(f"dtype must be float32 for backbone {self.backbone}: onnxruntime has "
                             f"no float64 convolution to run the exported graph; got 'float64'")
        if ALGORITHMS.lookup(self.algorithm).needs_classification and \
                backbone.task_family != "classification":
            classifiers = [n for n, b in BACKBONES.items() if b.task_family == "classification"]
            raise ValueError(f"backbone must be a classification backbone for {self.algorithm} "
                             f"({', '.join(classifiers)}); got {self.backbone!r}")
        return self

    # -- use
    @property
    def first_order(self) -> bool:
        return ALGORITHMS.lookup(self.algorithm).first_order

    def __str__(self) -> str:
        return "PhaseSpec(" + ", ".join(f"{k}={v!r}" for k, v in self.fields().items()) + ")"


def _one_of(field: str, value: str, allowed: tuple[str, ...] | list[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(allowed)}; got {value!r}")
    return value
