"""Backbones as functional models: `init_params(seed) -> Params` (names in a fixed order, as
`torch.nn` would name them), `embed(params, x)` (the body) and `head(params, h)`, with
`forward = head ∘ embed`. No modules, no hidden state, so every algorithm can differentiate and
trace them as pure functions.

    sine_mlp            1-40-40-1 ReLU MLP of Finn et al. 2017 §5.1 (body fc1, fc2; head fc3)
    conv4_<F>_<H>x<W>x<C>
                        Conv4 of Vinyals et al. 2016 / Finn et al. 2017: 4 × [conv 3×3 pad 1 with F
                        filters, BatchNorm with batch statistics, ReLU, max-pool 2] and a linear
                        head to `way` classes; F ∈ {32, 64}, inputs 28×28×1 (Omniglot-style) or
                        84×84×3 (miniImageNet-style)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from . import sinusoid
from hwsim.registry import Registry

from .base import Loss, Params

Embed = Callable[[Params, Tensor], Tensor]
Head = Callable[[Params, Tensor], Tensor]


@dataclass(frozen=True)
class Backbone:
    name: str
    init: Callable[[int, int], Params]  # (seed, way) -> body and head parameters
    embed: Embed
    head: Head
    head_names: tuple[str, ...]  # the parameters of `head`; all others belong to the body
    loss: Loss                   # loss of the task family the backbone is built for
    task_family: str             # "sinusoid" or "classification": the data its phases export with
    max_way: int                 # regression: 1
    input_shape: tuple[int, ...]  # one example: (1,) for the sine MLP, (C, H, W) for Conv4

    def init_params(self, seed: int, way: int | None = None) -> Params:
        """Parameters for `way` classes (default: 1 for regression, 5 for classification)."""
        return self.init(seed, way if way is not None else (1 if self.max_way == 1 else 5))

    def forward(self, params: Params, x: Tensor) -> Tensor:
        return self.head(params, self.embed(params, x))

    def allows_way(self, way: int) -> bool:
        return self.max_way == 1 and way == 1 or 2 <= way <= self.max_way

    def allowed_ways(self) -> str:
        return "1" if self.max_way == 1 else f"2..{self.max_way}"


# ---------------------------------------------------------------- sine MLP 1-40-40-1

SINE_MLP_WIDTHS = (1, 40, 40, 1)  # Finn et al. 2017, §5.1: two hidden layers of 40, ReLU


def sine_mlp_init(seed: int, way: int = 1, dtype: torch.dtype = torch.float32) -> Params:
    """Parameters of the 1-40-40-1 MLP, initialised like `torch.nn.Linear` (Kaiming-uniform
    weights and uniform biases in ±1/√fan_in) from an explicit seed."""
    gen = torch.Generator().manual_seed(seed)
    params: Params = {}
    for i, (fan_in, fan_out) in enumerate(zip(SINE_MLP_WIDTHS, SINE_MLP_WIDTHS[1:]), start=1):
        bound = 1.0 / math.sqrt(fan_in)
        params[f"fc{i}.weight"] = _uniform((fan_out, fan_in), bound, gen, dtype)
        params[f"fc{i}.bias"] = _uniform((fan_out,), bound, gen, dtype)
    return params


def sine_mlp_embed(params: Params, x: Tensor) -> Tensor:
    h = F.relu(F.linear(x, params["fc1.weight"], params["fc1.bias"]))
    return F.relu(F.linear(h, params["fc2.weight"], params["fc2.bias"]))


def sine_mlp_head(params: Params, h: Tensor) -> Tensor:
    return F.linear(h, params["fc3.weight"], params["fc3.bias"])


def sine_mlp_forward(params: Params, x: Tensor) -> Tensor:
    return sine_mlp_head(params, sine_mlp_embed(params, x))


# ---------------------------------------------------------------- Conv4

CONV4_BLOCKS = 4
BN_EPS = 1e-5  # torch.nn.BatchNorm2d's default


def conv4_init(filters: int, channels: int, size: int, seed: int, way: int,
               dtype: torch.dtype = torch.float32) -> Params:
    """Conv4 parameters: conv weights and biases initialised like `torch.nn.Conv2d`, BatchNorm
    scale 1 and shift 0, head like `torch.nn.Linear` on the flattened last feature map."""
    gen = torch.Generator().manual_seed(seed)
    params: Params = {}
    in_ch = channels
    for b in range(1, CONV4_BLOCKS + 1):
        bound = 1.0 / math.sqrt(in_ch * 9)
        params[f"conv{b}.weight"] = _uniform((filters, in_ch, 3, 3), bound, gen, dtype)
        params[f"conv{b}.bias"] = _uniform((filters,), bound, gen, dtype)
        params[f"bn{b}.weight"] = torch.ones(filters, dtype=dtype)
        params[f"bn{b}.bias"] = torch.zeros(filters, dtype=dtype)
        in_ch = filters
    features = filters * conv4_feature_side(size) ** 2
    bound = 1.0 / math.sqrt(features)
    params["head.weight"] = _uniform((way, features), bound, gen, dtype)
    params["head.bias"] = _uniform((way,), bound, gen, dtype)
    return params


def conv4_feature_side(size: int) -> int:
    for _ in range(CONV4_BLOCKS):
        size //= 2  # max-pool 2, floor as torch does
    return size


def conv4_embed(params: Params, x: Tensor) -> Tensor:
    """x[N, C, H, W] -> features[N, F·h·w]. BatchNorm always normalises with the statistics of
    the batch at hand and keeps no running statistics, as MAML does (Finn et al. 2017, §5.2):
    `nn.BatchNorm2d` would export with inference semantics (REFERENCE §6)."""
    h = x
    for b in range(1, CONV4_BLOCKS + 1):
        h = F.conv2d(h, params[f"conv{b}.weight"], params[f"conv{b}.bias"], padding=1)
        h = F.batch_norm(h, None, None, params[f"bn{b}.weight"], params[f"bn{b}.bias"],
                         training=True, momentum=0.0, eps=BN_EPS)
        h = max_pool2(F.relu(h))
    return h.flatten(1)


def max_pool2(h: Tensor) -> Tensor:
    """The 2×2 max-pool of a Conv4 block (floor mode, as torch.nn.MaxPool2d(2))."""
    return F.max_pool2d(h, 2)


def linear_head(params: Params, h: Tensor) -> Tensor:
    return F.linear(h, params["head.weight"], params["head.bias"])


def cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of logits[N, way] against integer labels[N]. The one-hot targets come
    from comparing the labels with `arange(way)`: `F.one_hot` is data-dependent under fake
    tracing (REFERENCE §6)."""
    classes = torch.arange(logits.shape[-1], device=logits.device)
    targets = (labels.unsqueeze(-1) == classes).to(logits.dtype)
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


_CONV4_RE = re.compile(r"^conv4_(32|64)_(28x28x1|84x84x3)$")


def _conv4(name: str) -> Backbone:
    m = _CONV4_RE.match(name)
    assert m is not None, name
    filters = int(m.group(1))
    size, _, channels = (int(v) for v in m.group(2).split("x"))
    return Backbone(
        name, lambda seed, way=5: conv4_init(filters, channels, size, seed, way),
        conv4_embed, linear_head, ("head.weight", "head.bias"), cross_entropy,
        task_family="classification", max_way=64, input_shape=(channels, size, size))


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator, dtype: torch.dtype) -> Tensor:
    return ((torch.rand(shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound).to(dtype)


# The backbones by name.
BACKBONES: Registry[Backbone] = Registry("backbone", error=ValueError)
BACKBONES.add("sine_mlp", Backbone("sine_mlp", sine_mlp_init, sine_mlp_embed, sine_mlp_head,
                                   ("fc3.weight", "fc3.bias"), sinusoid.loss,
                                   task_family="sinusoid", max_way=1, input_shape=(1,)))
for _name in (f"conv4_{f}_{s}" for f in (64, 32) for s in ("28x28x1", "84x84x3")):
    BACKBONES.add(_name, _conv4(_name))


def get_backbone(name: str) -> Backbone:
    return BACKBONES.lookup(name)


def parameter_count(params: Params) -> int:
    return sum(p.numel() for p in params.values())
