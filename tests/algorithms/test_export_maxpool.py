"""Max-pool windows whose maximum float32 cannot resolve (two inputs within rounding of each
other) may be won by different elements in eager torch and onnxruntime; the gradient then flows
through a different pixel. Verification must accept exactly those choices, and no others."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from algorithms import phases
from algorithms.backbones import max_pool2, overriding_max_pool
from algorithms.export import (ExportMismatchError, PhaseSpec, _PoolProbe, _run_eager_with_pool_choices,
                               _with_max_pool_outputs, export_phase, verify_export)

# With torch 2.13 / onnxruntime 1.32 on x86-64, the input set of seed 4 (3 + 1) of this spec has
# a window in which onnxruntime picks a maximum other than eager torch's: before the fix,
# verify_export failed with 'new.conv2.weight' 1.3e-4 beyond tolerance (benchmarks/
# export_times.md had the same failure for ANIL, ProtoNets, Meta-SGD and Meta-LSTM on Conv4-64).
NEAR_TIE_SPEC = PhaseSpec("protonet", "meta_train", backbone="conv4_32_28x28x1", way=5, shot=1,
                          query=15, inner_steps=1, meta_batch=4, seed=3)


def _ort_choices(model, spec, offset):
    phase = phases.phase_function(spec)
    args = phases.example_inputs(spec, spec.seed + offset)
    probed, pools = _with_max_pool_outputs(model)
    session = ort.InferenceSession(probed.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run([n for pair in pools for n in pair], {n: a.numpy() for n, a in zip(phase.input_names, args)})
    probe = _PoolProbe(spec, offset, list(zip(out[::2], out[1::2])))
    with overriding_max_pool(probe.narrow):
        phases.run_eager(phase.fn, args)
    with overriding_max_pool(probe.wide):
        phases.run_eager(phase.fn, [a.double() if a.dtype == torch.float32 else a for a in args])
    return probe.choices()


def test_onnxruntime_choosing_another_near_tied_maximum_verifies():
    model = export_phase(NEAR_TIE_SPEC, verify=False)
    # The triggering property is present (else this test would check nothing): onnxruntime
    # chooses differently from eager torch somewhere, at float32 rounding level (else raises).
    assert any(_ort_choices(model, NEAR_TIE_SPEC, off) is not None for off in (1, 2))
    errors = verify_export(model, NEAR_TIE_SPEC)
    assert max(errors.values()) <= 1e-5  # eager making the same choices agrees to float32 noise


def _window_input(gap: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One 2×2 window [[1, 0.5], [1 + gap, 0]] in float32 and float64 (as if gap were exact)."""
    x64 = torch.tensor([[[[1.0, 0.5], [1.0 + gap, 0.0]]]], dtype=torch.float64)
    return x64.float(), x64


def _choices(x32: torch.Tensor, x64: torch.Tensor, ort_plane_index: int):
    """_PoolProbe on one pool call whose onnxruntime MaxPool chose `ort_plane_index`."""
    values = x32.flatten()[ort_plane_index].reshape(1, 1, 1, 1).numpy()
    probe = _PoolProbe(NEAR_TIE_SPEC, 1, [(values, np.array([[[[ort_plane_index]]]], dtype=np.int64))])
    probe.narrow(x32)
    probe.wide(x64)
    return probe.choices()


def test_a_near_tied_choice_is_taken_and_a_real_difference_rejected():
    # float32 rounding of this "pool input" is ~1e-7 (|x32 - x64|); a gap of 3e-8 is below it.
    x32, x64 = _window_input(3e-8)
    x32 = x32 + torch.tensor([1e-7, 0, 0, 0]).view(1, 1, 2, 2)  # rounding noise
    assert F.max_pool2d(x32, 2, return_indices=True)[1].item() == 0      # eager: top-left
    assert _choices(x32, x64, 0) is None                                 # the same choice
    choices = _choices(x32, x64, 2)
    assert choices is not None and choices[0].item() == 2               # onnxruntime's: bottom-left
    # The same choice, when the float64 values differ by far more than the rounding: an export bug.
    y32, y64 = _window_input(1e-2)
    with pytest.raises(ExportMismatchError, match="max-pool"):
        _choices(y32, y64, 0)
    # A plainly smaller element (0.5) is never acceptable either.
    with pytest.raises(ExportMismatchError, match="max-pool"):
        _choices(x32, x64, 1)


def test_eager_with_given_choices_routes_value_and_gradient_through_them():
    x = torch.tensor([[[[1.0, 0.5, 2.0, 3.0], [1.0, 0.0, 3.0, 1.0]]]], requires_grad=True)
    choices = [torch.tensor([[[[4, 6]]]])]  # the tied 1.0 at (1, 0) and the tied 3.0 at (1, 2)

    def fn(t):
        y = max_pool2(t)
        return y, torch.autograd.grad((y * torch.tensor([[[[10.0, 20.0]]]])).sum(), t)[0]
    y, g = _run_eager_with_pool_choices(fn, [x], choices)
    assert y.flatten().tolist() == [1.0, 3.0]
    expected = torch.zeros_like(x).flatten()
    expected[4], expected[6] = 10.0, 20.0
    assert torch.equal(g.flatten(), expected)
    # Outside the override the plain max-pool (first maximum) is used, as in traced graphs.
    y0, g0 = fn(x)
    assert torch.equal(y0, F.max_pool2d(x, 2))
    assert g0.flatten()[0] == 10.0 and g0.flatten()[3] == 20.0
    with overriding_max_pool(lambda t: t[..., ::2, ::2]):
        assert max_pool2(x).flatten().tolist() == [1.0, 2.0]
