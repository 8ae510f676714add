"""Meta-gradients of every algorithm against independent computations (float64, small nets)."""

import higher
import torch

from algorithms import build_algorithm, sinusoid
from algorithms.backbones import parameter_count
from algorithms.reptile import EPSILON

ALPHA = 0.01


def _setup(name: str, steps: int = 1, tasks: int = 1, **hyper):
    algo = build_algorithm(name, "sine_mlp", inner_steps=steps, inner_lr=ALPHA, **hyper)
    params = {n: p.double() for n, p in algo.init_params(0).items()}
    batch = sinusoid.sample_batch(tasks, 5, 5, seed=0, dtype=torch.float64)
    return algo, params, batch


def test_maml_k1_meta_gradient_matches_finite_differences():
    algo, params, batch = _setup("maml")
    _, meta = algo.meta_grads(params, batch)
    gen = torch.Generator().manual_seed(3)
    for name in ("fc1.weight", "fc2.bias", "fc3.weight"):
        for _ in range(3):
            idx = tuple(torch.randint(0, s, (1,), generator=gen).item() for s in params[name].shape)
            h = 1e-6
            plus = {n: p.clone() for n, p in params.items()}
            minus = {n: p.clone() for n, p in params.items()}
            plus[name][idx] += h
            minus[name][idx] -= h
            fd = (algo.meta_loss(plus, batch) - algo.meta_loss(minus, batch)).item() / (2 * h)
            assert abs(meta[name][idx].item() - fd) <= 1e-6 * max(1.0, abs(fd)), (name, idx)


def test_maml_meta_gradient_matches_higher():
    for steps in (1, 3):
        algo, params, batch = _setup("maml", steps=steps, tasks=2)
        _, meta = algo.meta_grads(params, batch)
        net = torch.nn.Sequential(torch.nn.Linear(1, 40), torch.nn.ReLU(), torch.nn.Linear(40, 40),
                                  torch.nn.ReLU(), torch.nn.Linear(40, 1)).double()
        with torch.no_grad():
            for p, v in zip(net.parameters(), params.values()):
                p.copy_(v)
        inner = torch.optim.SGD(net.parameters(), lr=ALPHA)
        total = [torch.zeros_like(p) for p in net.parameters()]
        for j in range(batch.meta_batch):
            with higher.innerloop_ctx(net, inner, copy_initial_weights=False) as (fnet, diffopt):
                for _ in range(steps):
                    diffopt.step(((fnet(batch.xs[j]) - batch.ys[j]) ** 2).mean())
                query = ((fnet(batch.xq[j]) - batch.yq[j]) ** 2).mean()
                for t, g in zip(total, torch.autograd.grad(query, list(net.parameters()))):
                    t += g / batch.meta_batch
        for n, g in zip(params, total):
            torch.testing.assert_close(meta[n], g, rtol=1e-9, atol=1e-12)


def test_reptile_k1_direction_is_the_support_gradient():
    """θ − φ̃ = α ∇L_support(θ) for one SGD step; the outer update moves by ε times its mean."""
    algo, params, batch = _setup("reptile", tasks=2)
    state = algo.set_schedule(algo.init_outer_state(params), 1, 4)
    assert state[EPSILON].item() == 0.75
    _, new, _ = algo.meta_step(params, state, batch)
    expected = {n: torch.zeros_like(p) for n, p in params.items()}
    for j in range(2):
        leaves = {n: p.clone().requires_grad_() for n, p in params.items()}
        loss = algo.loss(algo.forward(leaves, batch.xs[j]), batch.ys[j])
        for n, g in zip(leaves, torch.autograd.grad(loss, list(leaves.values()))):
            expected[n] += ALPHA * g / 2
    for n in params:
        torch.testing.assert_close(params[n] - new[n], 0.75 * expected[n], rtol=1e-10, atol=1e-14)


def test_reptile_with_adam_inner_steps_moves_towards_adapted_weights():
    algo, params, batch = _setup("reptile", steps=3, inner_optimizer="adam")
    adapted = algo.adapt(params, batch.xs[0], batch.ys[0])
    state = algo.set_schedule(algo.init_outer_state(params), 0, 10)  # ε = 1: jump to φ̃
    _, new, _ = algo.meta_step(params, state, batch)
    for n in params:
        torch.testing.assert_close(new[n], adapted[n])


def test_metasgd_with_constant_rates_equals_maml():
    c = 0.03
    maml, params, batch = _setup("maml", tasks=2)
    maml.inner_lr = c
    msgd = build_algorithm("metasgd", "sine_mlp", inner_lr=c)
    mparams = {**params, **{f"lr.{n}": torch.full_like(p, c) for n, p in params.items()}}
    _, g_maml = maml.meta_grads(params, batch)
    _, g_msgd = msgd.meta_grads(mparams, batch)
    for n in params:
        torch.testing.assert_close(g_msgd[n], g_maml[n], rtol=1e-10, atol=1e-13)
    assert all(g_msgd[f"lr.{n}"].abs().max() > 0 for n in params)  # α is meta-learned too


def test_anil_inner_loop_changes_only_the_head_and_reaches_the_body_in_the_outer_loop():
    algo, params, batch = _setup("anil", steps=2)
    adapted = algo.adapt(params, batch.xs[0], batch.ys[0])
    for n in params:
        same = torch.equal(adapted[n].detach(), params[n])
        assert same == (n not in ("fc3.weight", "fc3.bias")), n
    _, meta = algo.meta_grads(params, batch)
    assert meta["fc1.weight"].abs().max() > 0


def test_protonet_prototypes_are_class_means_and_logits_negative_squared_distances():
    algo = build_algorithm("protonet", "conv4_32_28x28x1", way=3)
    params = algo.init_params(0)
    assert "head.weight" not in params
    xs = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    ys = torch.tensor([2, 0, 1, 0, 2, 1])
    adapted = algo.adapt(params, xs, ys)
    z = algo.embed(params, xs)
    torch.testing.assert_close(adapted["prototypes"][0], z[[1, 3]].mean(0))
    logits = algo.infer(adapted, xs[:2])
    zq = algo.embed(params, xs[:2])  # batch statistics of the query batch itself
    torch.testing.assert_close(logits, -torch.cdist(zq, adapted["prototypes"]) ** 2, rtol=1e-4, atol=1e-4)


def test_metalstm_first_step_follows_its_gates_and_meta_learns_lstm_and_init():
    algo, params, batch = _setup("metalstm")
    assert parameter_count({n: p for n, p in params.items() if n.startswith("metalstm.")}) == \
        (80 * 4 + 80 * 20 + 80) + 2 * (22 + 1)
    _, meta = algo.meta_grads(params, batch)
    assert meta["metalstm.input_gate.bias"].abs().item() > 0 and meta["fc1.weight"].abs().max() > 0
    # With the initial biases f ≈ 1 and i ≈ σ(−4.5): θ₁ ≈ θ₀ − i ∇ (small learned rate).
    adapted = algo.adapt(params, batch.xs[0], batch.ys[0])
    leaves = {n: params[n].clone().requires_grad_() for n in algo.learner_names(params)}
    grad = torch.autograd.grad(algo.loss(algo.forward(leaves, batch.xs[0]), batch.ys[0]), leaves["fc3.bias"])[0]
    step = params["fc3.bias"] - adapted["fc3.bias"]
    assert 0 < (step / grad).item() < 0.05
