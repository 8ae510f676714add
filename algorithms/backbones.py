"""Backbones as functional models: `init_params(seed) -> Params` (names in a fixed order, as
`torch.nn` would name them) and `forward(params, x)`. No modules, no hidden state, so every
algorithm can differentiate and trace them as pure functions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from . import sinusoid
from .base import Forward, Loss, Params


@dataclass(frozen=True)
class Backbone:
    name: str
    init_params: Callable[[int], Params]
    forward: Forward
    loss: Loss           # loss of the task family the backbone is built for
    task_family: str     # "sinusoid" — the data its phases are exported with
    ways: tuple[int, ...]  # allowed N-way settings (regression: only 1)


# ---------------------------------------------------------------- sine MLP 1-40-40-1

SINE_MLP_WIDTHS = (1, 40, 40, 1)  # Finn et al. 2017, §5.1: two hidden layers of 40, ReLU


def sine_mlp_init(seed: int, dtype: torch.dtype = torch.float32) -> Params:
    """Parameters of the 1-40-40-1 MLP, initialised like `torch.nn.Linear` (Kaiming-uniform
    weights and uniform biases in ±1/√fan_in) from an explicit seed."""
    gen = torch.Generator().manual_seed(seed)
    params: Params = {}
    for i, (fan_in, fan_out) in enumerate(zip(SINE_MLP_WIDTHS, SINE_MLP_WIDTHS[1:]), start=1):
        bound = 1.0 / math.sqrt(fan_in)
        params[f"fc{i}.weight"] = _uniform((fan_out, fan_in), bound, gen, dtype)
        params[f"fc{i}.bias"] = _uniform((fan_out,), bound, gen, dtype)
    return params


def sine_mlp_forward(params: Params, x: Tensor) -> Tensor:
    h = F.relu(F.linear(x, params["fc1.weight"], params["fc1.bias"]))
    h = F.relu(F.linear(h, params["fc2.weight"], params["fc2.bias"]))
    return F.linear(h, params["fc3.weight"], params["fc3.bias"])


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator, dtype: torch.dtype) -> Tensor:
    return ((torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound).to(dtype)


BACKBONES: dict[str, Backbone] = {
    "sine_mlp": Backbone("sine_mlp", sine_mlp_init, sine_mlp_forward, sinusoid.loss,
                         task_family="sinusoid", ways=(1,)),
}


def get_backbone(name: str) -> Backbone:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; allowed: {', '.join(sorted(BACKBONES))}") from None


def parameter_count(params: Params) -> int:
    return sum(p.numel() for p in params.values())
