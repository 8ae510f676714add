"""MAML / FOMAML meta-gradients against independent computations (float64)."""

import pytest
import torch

from algorithms import ALGORITHMS, make_algorithm, sinusoid
from algorithms.backbones import get_backbone

ALPHA = 0.01


def _setup(name: str, steps: int = 1, tasks: int = 2):
    bb = get_backbone("sine_mlp")
    algo = make_algorithm(name, bb.forward, bb.loss, bb.init_params, inner_steps=steps, inner_lr=ALPHA)
    params = {n: p.double() for n, p in bb.init_params(0).items()}
    batch = sinusoid.sample_batch(tasks, 10, 10, seed=0, dtype=torch.float64)
    return algo, params, batch


def test_registry_has_both_algorithms_with_one_interface():
    assert {"maml", "fomaml"} <= set(ALGORITHMS)
    assert ALGORITHMS.lookup("maml").first_order is False
    assert ALGORITHMS.lookup("fomaml").first_order is True
    with pytest.raises(ValueError, match="unknown algorithm 'mamla'; known: anil"):
        ALGORITHMS.lookup("mamla")


def test_second_and_first_order_meta_gradients_differ():
    _, params, batch = _setup("maml", steps=2)
    g2 = _setup("maml", steps=2)[0].meta_grads(params, batch)[1]
    g1 = _setup("fomaml", steps=2)[0].meta_grads(params, batch)[1]
    diff = max((g2[n] - g1[n]).abs().max().item() for n in params)
    assert diff > 1e-6


def test_fomaml_meta_gradient_is_query_gradient_at_adapted_parameters():
    algo, params, batch = _setup("fomaml", steps=2)
    _, meta = algo.meta_grads(params, batch)
    expected = {n: torch.zeros_like(p) for n, p in params.items()}
    for j in range(batch.meta_batch):
        adapted = {n: p.detach().requires_grad_() for n, p in
                   algo.adapt(params, batch.xs[j], batch.ys[j]).items()}
        loss = algo.loss(algo.forward(adapted, batch.xq[j]), batch.yq[j])
        for n, g in zip(adapted, torch.autograd.grad(loss, list(adapted.values()))):
            expected[n] += g / batch.meta_batch
    for n in params:
        torch.testing.assert_close(meta[n], expected[n], rtol=1e-10, atol=1e-12)


def test_maml_k1_meta_gradient_is_hessian_corrected_query_gradient():
    algo, params, batch = _setup("maml", steps=1, tasks=1)
    _, meta = algo.meta_grads(params, batch)
    xs, ys, xq, yq = (t[0] for t in batch)
    names = list(params)
    theta = [params[n].clone().requires_grad_() for n in names]

    def support_loss(*ps):
        return algo.loss(algo.forward(dict(zip(names, ps)), xs), ys)

    g_s = torch.autograd.grad(support_loss(*theta), theta)
    adapted = [(t - ALPHA * g).detach().requires_grad_() for t, g in zip(theta, g_s)]
    g_q = torch.autograd.grad(algo.loss(algo.forward(dict(zip(names, adapted)), xq), yq), adapted)
    # (I − α ∇²L_s(θ)) ∇L_q(θ′), the Hessian-vector product by torch.autograd.functional.hvp.
    _, hvp = torch.autograd.functional.hvp(support_loss, tuple(params[n] for n in names), g_q)
    for n, gq, hv in zip(names, g_q, hvp):
        torch.testing.assert_close(meta[n], gq - ALPHA * hv, rtol=1e-9, atol=1e-12)


def test_meta_loss_is_mean_query_loss_after_adaptation():
    algo, params, batch = _setup("maml", steps=2)
    losses = []
    for j in range(batch.meta_batch):
        adapted = algo.adapt(params, batch.xs[j], batch.ys[j])
        losses.append(algo.loss(algo.forward(adapted, batch.xq[j]), batch.yq[j]))
    torch.testing.assert_close(algo.meta_loss(params, batch), torch.stack(losses).mean())
    torch.testing.assert_close(algo.meta_grads(params, batch)[0], torch.stack(losses).mean().detach())


def test_meta_step_is_torch_adam_on_the_meta_gradient():
    algo, params, batch = _setup("maml", steps=1)
    state = algo.init_outer_state(params)
    leaves = [p.clone().requires_grad_() for p in params.values()]
    opt = torch.optim.Adam(leaves, lr=1e-3)
    for _ in range(3):  # several steps, so bias correction and moments are exercised
        loss, grads = algo.meta_grads(params, batch)
        loss2, params, state = algo.meta_step(params, state, batch)
        torch.testing.assert_close(loss, loss2)
        for leaf, g in zip(leaves, grads.values()):
            leaf.grad = g.clone()
        opt.step()
    for leaf, p in zip(leaves, params.values()):
        torch.testing.assert_close(p, leaf.detach(), rtol=1e-12, atol=1e-14)
    assert state["adam.step"].item() == 3


def test_adapt_rejects_zero_steps():
    algo, params, batch = _setup("maml")
    with pytest.raises(ValueError, match="steps"):
        algo.adapt(params, batch.xs[0], batch.ys[0], steps=0)
