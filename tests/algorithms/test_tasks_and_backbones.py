import math

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from algorithms import sinusoid
from algorithms.backbones import BACKBONES, get_backbone, parameter_count


def test_sine_mlp_has_1761_parameters_in_torch_order():
    params = get_backbone("sine_mlp").init_params(0)
    assert parameter_count(params) == 1761
    assert list(params) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight", "fc3.bias"]
    assert params["fc2.weight"].shape == (40, 40)


def test_sine_mlp_forward_matches_torch_nn():
    bb = get_backbone("sine_mlp")
    params = bb.init_params(3)
    net = torch.nn.Sequential(torch.nn.Linear(1, 40), torch.nn.ReLU(), torch.nn.Linear(40, 40),
                              torch.nn.ReLU(), torch.nn.Linear(40, 1))
    net.load_state_dict({k.replace("fc1", "0").replace("fc2", "2").replace("fc3", "4"): v
                         for k, v in params.items()})
    x = torch.linspace(-5, 5, 7).unsqueeze(1)
    torch.testing.assert_close(bb.forward(params, x), net(x))


def test_init_is_deterministic_per_seed():
    bb = get_backbone("sine_mlp")
    a, b, c = bb.init_params(1), bb.init_params(1), bb.init_params(2)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not torch.equal(a["fc2.weight"], c["fc2.weight"])


def test_sampler_same_seed_same_tasks_bit_for_bit():
    a = sinusoid.sample_batch(4, 10, 15, seed=7)
    b = sinusoid.sample_batch(4, 10, 15, generator=torch.Generator().manual_seed(7))
    c = sinusoid.sample_batch(4, 10, 15, seed=8)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.xs, c.xs)


def test_sampler_shapes_and_ranges():
    batch = sinusoid.sample_batch(3, 5, 7, seed=0, dtype=torch.float64)
    assert batch.xs.shape == (3, 5, 1) and batch.ys.shape == (3, 5, 1)
    assert batch.xq.shape == (3, 7, 1) and batch.yq.shape == (3, 7, 1)
    assert batch.xs.dtype == torch.float64
    x = torch.cat([batch.xs, batch.xq], 1)
    y = torch.cat([batch.ys, batch.yq], 1)
    assert x.min() >= -5 and x.max() <= 5
    assert y.abs().max() <= 5
    # Each task is A·sin(x + φ): recover A and φ from two points and check the rest.
    for j in range(3):
        xs, ys = x[j, :, 0], y[j, :, 0]
        m = torch.stack([torch.sin(xs), torch.cos(xs)], 1)
        coef = torch.linalg.lstsq(m, ys.unsqueeze(1)).solution[:, 0]  # A cos φ, A sin φ
        torch.testing.assert_close(m @ coef, ys)
        amplitude = coef.norm().item()
        phase = math.atan2(coef[1].item(), coef[0].item())
        assert 0.1 <= amplitude <= 5 and 0 <= phase <= math.pi


def test_conv4_64_parameters_and_macs_match_the_golden_counts(conv4_golden):
    """tests/data/algorithms/conv4_64_28x28x1.json, counted by hand there; here by the
    initialiser and by torch's own FLOP counter (2 FLOPs per MAC)."""
    bb = get_backbone(conv4_golden["backbone"])
    params = bb.init_params(0, way=conv4_golden["way"])
    body = {n: p for n, p in params.items() if n not in bb.head_names}
    assert parameter_count(body) == conv4_golden["parameters"]["body"]
    assert parameter_count(params) == conv4_golden["parameters"]["with_head"]
    with FlopCounterMode(display=False) as counter:
        bb.forward(params, torch.zeros(1, *conv4_golden["input"]))
    per_op = {str(op): flops // 2 for op, flops in counter.get_flop_counts()["Global"].items()}
    layers = conv4_golden["macs_per_layer"]
    assert per_op == {"aten.convolution": sum(v for k, v in layers.items() if k.startswith("conv")),
                      "aten.addmm": layers["head"]}
    assert counter.get_total_flops() // 2 == conv4_golden["macs_per_sample"] == sum(layers.values())


def test_conv4_head_reads_the_flattened_last_feature_map():
    assert get_backbone("conv4_32_84x84x3").init_params(0, way=5)["head.weight"].shape == (5, 32 * 5 * 5)


def test_an_unknown_backbone_is_one_error_listing_the_known_ones():
    with pytest.raises(ValueError, match="unknown backbone 'conv9'; known: conv4_32_28x28x1"):
        get_backbone("conv9")
    assert "sine_mlp" in BACKBONES and len(BACKBONES) == 5
