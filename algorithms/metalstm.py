"""The LSTM meta-learner of Ravi & Larochelle (2017), as pure functions of the parameters.

The learner's parameters θ are the cell state of a coordinate-wise LSTM: every coordinate of θ
is one row of a batch, all rows share the meta-learner's weights. Two layers, hidden size 20:

1. a standard LSTM cell whose input is the preprocessed gradient and loss of the current inner
   step, (log|x|/p, sign x) or (−1, eᵖx) with p = 10 (Andrychowicz et al. 2016, appendix A);
2. the meta-learner cell, whose cell state is θ itself:
       i_t = σ(W_I [h_t, θ_{t−1}, i_{t−1}] + b_I)     (learning rate per coordinate)
       f_t = σ(W_F [h_t, θ_{t−1}, f_{t−1}] + b_F)     (forgetting / shrinkage)
       θ_t = f_t ⊙ θ_{t−1} − i_t ⊙ ∇_t
   where h_t is layer 1's hidden state, which carries [∇_t, L_t] of the paper's equations.

Meta-parameters: the learner's initial θ_0 and the LSTM's weights ("metalstm.*"). As in the
paper, the gradient and loss fed to the meta-learner are treated as constants (no second
derivatives); the meta-gradient flows through the cell-state recursion. The cells are written
with matrix products, sigmoid and tanh: the exported graphs contain no ONNX LSTM operator.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Algorithm, Params, TaskBatch, register, scope

PREFIX = "metalstm."
HIDDEN = 20            # Ravi & Larochelle 2017, §4
PREPROCESS_P = 10.0    # Andrychowicz et al. 2016, appendix A
INPUTS = 4             # preprocessed gradient (2) and loss (2)
# Initial gate biases: forget gate near 1, input gate small (Ravi & Larochelle 2017, §3.3:
# "initialize the forget gate bias to large values and the input gate bias to small ones").
FORGET_BIAS = (4.0, 6.0)
INPUT_BIAS = (-5.0, -4.0)
WEIGHT_RANGE = 0.01


@register
class MetaLSTM(Algorithm):
    name = "metalstm"
    first_order = True  # gradients and losses enter the meta-learner as constants

    def init_params(self, seed: int) -> Params:
        theta = super().init_params(seed)
        dtype = next(iter(theta.values())).dtype
        gen = torch.Generator().manual_seed(seed + 7919)  # independent of the learner's draw

        def uniform(shape: tuple[int, ...], low: float, high: float) -> Tensor:
            return (low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)).to(dtype)

        w = WEIGHT_RANGE
        lstm = {
            "l1.weight_ih": uniform((4 * HIDDEN, INPUTS), -w, w),
            "l1.weight_hh": uniform((4 * HIDDEN, HIDDEN), -w, w),
            "l1.bias": uniform((4 * HIDDEN,), -w, w),
            "input_gate.weight": uniform((HIDDEN + 2, 1), -w, w),
            "input_gate.bias": uniform((1,), *INPUT_BIAS),
            "forget_gate.weight": uniform((HIDDEN + 2, 1), -w, w),
            "forget_gate.bias": uniform((1,), *FORGET_BIAS),
        }
        return {**theta, **{PREFIX + n: t for n, t in lstm.items()}}

    def learner_names(self, params: Params) -> tuple[str, ...]:
        return tuple(n for n in params if not n.startswith(PREFIX))

    def adapt(self, params: Params, xs: Tensor, ys: Tensor, steps: int | None = None,
              lr: float | None = None) -> Params:
        """k steps of the learned optimizer on the support set; differentiable w.r.t. θ_0 and
        the LSTM's weights when they require grad."""
        steps = self.inner_steps if steps is None else steps
        if steps < 1:
            raise ValueError(f"inner steps must be >= 1, got {steps}")
        names = self.learner_names(params)
        shapes = [params[n].shape for n in names]
        sizes = [params[n].numel() for n in names]
        with scope("inner0", "update"):
            theta = torch.cat([params[n].reshape(-1) for n in names])       # [n], the cell state
            h = theta.new_zeros(theta.shape[0], HIDDEN)
            c = theta.new_zeros(theta.shape[0], HIDDEN)
            i_gate = theta.new_zeros(theta.shape[0])
            f_gate = theta.new_zeros(theta.shape[0])
        for t in range(steps):
            with torch.enable_grad():
                # The learner sees a copy of the cell state: ∇ and L are constants for the
                # meta-learner (Ravi & Larochelle 2017, §3.2).
                with scope(f"inner{t}", "forward"):
                    leaves = {n: p.detach().reshape(s).requires_grad_(True)
                              for n, p, s in zip(names, theta.detach().split(sizes), shapes)}
                    prediction = self.forward(leaves, xs)
                with scope(f"inner{t}", "loss"):
                    loss = self.loss(prediction, ys)
                with scope(f"inner{t}", "backward"):
                    grads = torch.autograd.grad(loss, list(leaves.values()))
            with scope(f"inner{t}", "update"):
                grad = torch.cat([g.reshape(-1) for g in grads])
                x = torch.cat([preprocess(grad), preprocess(loss.detach()).expand(grad.shape[0], 2)], 1)
                h, c = lstm_cell(params, x, h, c)
                i_gate = torch.sigmoid(torch.cat([h, theta[:, None], i_gate[:, None]], 1)
                                       @ params[PREFIX + "input_gate.weight"]
                                       + params[PREFIX + "input_gate.bias"])[:, 0]
                f_gate = torch.sigmoid(torch.cat([h, theta[:, None], f_gate[:, None]], 1)
                                       @ params[PREFIX + "forget_gate.weight"]
                                       + params[PREFIX + "forget_gate.bias"])[:, 0]
                theta = f_gate * theta - i_gate * grad
        with scope(f"inner{steps - 1}", "update"):
            adapted = {n: p.reshape(s) for n, p, s in zip(names, theta.split(sizes), shapes)}
        return {**params, **adapted}

    def task_query_loss(self, params: Params, task: TaskBatch) -> Tensor:
        adapted = self.adapt(params, task.xs, task.ys)
        with scope("query"):
            return self.loss(self.forward(adapted, task.xq), task.yq)


def lstm_cell(params: Params, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """One standard LSTM cell (gate order i, f, g, o as torch.nn.LSTMCell) on rows x[n, 4]."""
    gates = (x @ params[PREFIX + "l1.weight_ih"].T + h @ params[PREFIX + "l1.weight_hh"].T
             + params[PREFIX + "l1.bias"])
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def preprocess(x: Tensor) -> Tensor:
    """(log|x|/p, sign x) where |x| ≥ e^−p, else (−1, eᵖ x): [..] -> [.., 2]. The clamp keeps
    log away from 0 on the branch that `where` discards, so no inf ever appears."""
    p = PREPROCESS_P
    big = x.abs() >= math.exp(-p)
    first = torch.where(big, torch.log(x.abs().clamp(min=math.exp(-p))) / p, torch.full_like(x, -1.0))
    second = torch.where(big, torch.sign(x), math.exp(p) * x)
    return torch.stack([first, second], -1).reshape(-1, 2) if x.dim() else torch.stack([first, second])[None]
