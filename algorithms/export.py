"""Export of one phase of one algorithm to ONNX, verified against eager PyTorch and cached.

    spec  = PhaseSpec("maml", "meta_train", inner_steps=5, meta_batch=25)
    model = export_phase(spec, cache_dir=".hwsim-cache")      # onnx.ModelProto
    save_phase(spec, "out/maml.onnx")

Every node carries the metadata prop `hwsim.scope` ("task3/inner1/backward", "meta_reduce",
"outer_update", ...; see `compiler.ir.Scope`), and the model carries the spec, the outer
optimizer and which graph inputs are meta-parameters and optimizer state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxscript
import torch
import torch.nn.functional as F

from . import meta_batch, phases, trace
from .backbones import BACKBONES, overriding_max_pool
from .base import ALGORITHMS

# Bump whenever the exported graphs or their metadata change for the same spec and versions;
# it is part of the cache key.
EXPORT_FORMAT_VERSION = "2"
# Verification tolerance: |onnx - eager| <= RTOL * max(1, max |eager|) per output, widened
# elementwise to SENSITIVITY × |eager float32 - eager float64| for float32 phases: where float32
# itself cannot resolve a value (second-order MAML through 5 Conv4 steps amplifies rounding to
# ~1e-5 in the loss and ~3e-4 in the meta-gradient on some inputs), onnxruntime cannot either.
# An export bug (a wrong normaliser, a dropped term) is far outside both.
# Max-pooling is a discontinuity the elementwise allowance cannot cover: in a window whose two
# largest inputs differ by less than float32's rounding of them (seen: 1.73229063 vs 1.73229068
# in float64, with eager float32 off by 4e-7) eager torch and onnxruntime, whose convolutions round
# differently, may pick different maxima, and the gradient then flows through a different pixel
# (~1e-2 relative in the early conv gradients with 75 query images). Verification therefore
# reads onnxruntime's max-pool choices, checks that each one differing from eager's is such a
# window (float64 gap between the two choices <= VERIFY_SENSITIVITY × the float32 rounding of
# that pool's input), and compares onnxruntime with eager torch making the same choices.
VERIFY_RTOL = 1e-4
VERIFY_SENSITIVITY = 4.0
# Adam divides the meta-gradient by its own root mean square: where that is below this floor
# (10 × Adam's eps) the update direction is set by rounding noise, not by the graph — e.g. the
# conv biases before a batch-statistics BatchNorm, whose gradient is exactly 0 in real
# arithmetic and ~1e-9 in float32, so eager and onnxruntime may step them by ±lr. Those
# parameter elements are checked through the moments (new.adam.m/v) instead.
ADAM_NOISE_FLOOR = 1e-7
# ... or below this fraction of the largest such root over all parameters (float32 sums of
# thousands of terms leave ~1e-6 relative noise in a gradient that is exactly 0 in real arithmetic).
ADAM_NOISE_RELATIVE = 1e-4
# Seeds of the two verification input sets, as offsets from the spec's seed.
VERIFY_SEED_OFFSETS = (1, 2)


class SpecError(ValueError):
    """A PhaseSpec field has a value the exporter does not support."""


class ExportMismatchError(AssertionError):
    """The exported graph does not compute what eager PyTorch computes."""


@dataclass(frozen=True)
class PhaseSpec:
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

    def __post_init__(self) -> None:
        _choice("algorithm", self.algorithm, sorted(ALGORITHMS))
        _choice("phase", self.phase, phases.PHASES)
        _choice("backbone", self.backbone, sorted(BACKBONES))
        _choice("dtype", self.dtype, sorted(phases.DTYPES))
        backbone = BACKBONES[self.backbone]
        if not isinstance(self.way, int) or isinstance(self.way, bool) or not backbone.allows_way(self.way):
            raise SpecError(f"way must be {backbone.allowed_ways()} for backbone {self.backbone}; "
                            f"got {self.way!r}")
        if self.dtype == "float64" and backbone.task_family == "classification":
            raise SpecError(f"dtype must be float32 for backbone {self.backbone}: onnxruntime has no "
                            f"float64 convolution to verify the export against; got 'float64'")
        if ALGORITHMS[self.algorithm].needs_classification and backbone.task_family != "classification":
            classifiers = sorted(n for n, b in BACKBONES.items() if b.task_family == "classification")
            raise SpecError(f"backbone must be a classification backbone for {self.algorithm} "
                            f"({', '.join(classifiers)}); got {self.backbone!r}")
        for name in ("shot", "query", "inner_steps", "meta_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SpecError(f"{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise SpecError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.inner_lr, (int, float)) or not 0 < self.inner_lr < float("inf"):
            raise SpecError(f"inner_lr must be a positive finite number, got {self.inner_lr!r}")
        object.__setattr__(self, "inner_lr", float(self.inner_lr))  # 1 and 1.0: one cache key

    @property
    def first_order(self) -> bool:
        return ALGORITHMS[self.algorithm].first_order

    def hash(self) -> str:
        """sha256 of everything that determines the exported model."""
        key = {
            "spec": dataclasses.asdict(self),
            "export_format": EXPORT_FORMAT_VERSION,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxscript": onnxscript.__version__,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def export_phase(spec: PhaseSpec, *, cache_dir: str | os.PathLike | None = None,
                 verify: bool = True) -> onnx.ModelProto:
    """The phase as an ONNX model. A fresh export is verified in onnxruntime against eager
    PyTorch (unless `verify=False`); with `cache_dir`, a model exported before for the same
    `spec.hash()` is loaded instead, and a fresh one is stored there."""
    path = Path(cache_dir) / f"{spec.algorithm}-{spec.phase}-{spec.hash()[:32]}.onnx" if cache_dir else None
    if path is not None and path.exists():
        return onnx.load(path)
    phase = phases.phase_function(spec)
    args = phases.example_inputs(spec, spec.seed)
    if spec.phase == "meta_train":
        model = _export_meta_train(spec, phase, args)
    else:
        model = trace.to_onnx(phase, args)
    _describe(model, spec, phase)
    if verify:
        verify_export(model, spec)
    if path is not None:
        _write_atomically(path, model.SerializeToString())
    return model


def save_phase(spec: PhaseSpec, path: str | os.PathLike, **kwargs: object) -> onnx.ModelProto:
    """`export_phase(spec, **kwargs)` written to `path` (atomically)."""
    model = export_phase(spec, **kwargs)  # type: ignore[arg-type]
    _write_atomically(Path(path), model.SerializeToString())
    return model


def verify_export(model: onnx.ModelProto, spec: PhaseSpec) -> dict[str, float]:
    """Run `model` in onnxruntime on two input sets (seeds spec.seed+1, spec.seed+2) and compare
    every output with the eager phase function. Returns the worst relative error per output;
    raises ExportMismatchError naming the output when one exceeds the tolerance."""
    import onnxruntime as ort

    phase = phases.phase_function(spec)
    probed, pools = _with_max_pool_outputs(model)
    session = ort.InferenceSession(probed.SerializeToString(), providers=["CPUExecutionProvider"])
    onnx_inputs = [i.name for i in session.get_inputs()]
    if onnx_inputs != list(phase.input_names):
        raise ExportMismatchError(f"graph inputs {onnx_inputs} != expected {list(phase.input_names)}")
    worst: dict[str, float] = {}
    b2 = phases.algorithm_for(spec).outer.betas[1]
    for offset in VERIFY_SEED_OFFSETS:
        args = phases.example_inputs(spec, spec.seed + offset)
        feeds = {n: a.numpy() for n, a in zip(phase.input_names, args)}
        results = session.run(list(phase.output_names) + [n for pair in pools for n in pair],
                              {i: feeds[i] for i in onnx_inputs})
        got = results[:len(phase.output_names)]
        probe = _PoolProbe(spec, offset, list(zip(results[len(phase.output_names)::2],
                                                  results[len(phase.output_names) + 1::2])))
        del results
        with overriding_max_pool(probe.narrow):
            expected = phases.run_eager(phase.fn, args)
        probe.drop_onnxruntime_outputs()
        wide = expected  # float64 phases: no float32 rounding to allow for
        if any(a.dtype == torch.float32 for a in args):
            with overriding_max_pool(probe.wide):
                wide = phases.run_eager(phase.fn, [a.double() if a.dtype == torch.float32 else a for a in args])
        choices = probe.choices()
        if choices is not None:  # eager torch making onnxruntime's (rounding-level) choices
            expected = _run_eager_with_pool_choices(phase.fn, args, choices)
        sensitivity = {n: np.abs(e.double().numpy() - w.numpy())
                       for n, e, w in zip(phase.output_names, expected, wide)
                       if e.is_floating_point() and e.dtype == torch.float32}
        noise = _adam_noise_masks(phase, expected, b2)
        for name, e, g in zip(phase.output_names, expected, got):
            e = e.numpy()
            if e.shape != g.shape:
                raise ExportMismatchError(f"{spec.algorithm}/{spec.phase}: output {name!r} has shape "
                                          f"{g.shape} in onnxruntime, {e.shape} in eager torch")
            if np.any(np.isnan(g) & ~np.isnan(e)):
                raise ExportMismatchError(f"{spec.algorithm}/{spec.phase}: output {name!r} is NaN in "
                                          f"onnxruntime where eager torch is not (seed {spec.seed + offset})")
            scale = max(1.0, float(np.abs(e).max(initial=0.0)))
            diff = np.abs(e - g)
            if name in noise:
                diff = np.where(noise[name], 0.0, diff)
            if name in sensitivity:
                diff = np.maximum(0.0, diff - VERIFY_SENSITIVITY * sensitivity[name])
            err = float(diff.max(initial=0.0)) / scale
            if not err <= VERIFY_RTOL:
                raise ExportMismatchError(
                    f"{spec.algorithm}/{spec.phase}: output {name!r} differs from eager torch by "
                    f"{err:.3g} beyond float32's own rounding (relative to max(1, max|eager|) = {scale:.3g}) on the input set of "
                    f"seed {spec.seed + offset}; tolerance {VERIFY_RTOL:g}")
            worst[name] = max(worst.get(name, 0.0), err)
        del probe, got, expected, wide, choices  # before the next input set's are computed
    return worst


# ---------------------------------------------------------------- parts


def _with_max_pool_outputs(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[tuple[str, str]]]:
    """A copy of `model` that also outputs (pooled values, raw indices) of every 2×2 MaxPool
    with indices (the translation of max_pool2d_with_indices; its 1×1 helper pools excluded)."""
    probed = onnx.ModelProto()
    probed.CopyFrom(model)
    pools = []
    for node in probed.graph.node:
        kernel = next((list(a.ints) for a in node.attribute if a.name == "kernel_shape"), None)
        if node.op_type == "MaxPool" and len(node.output) == 2 and node.output[1] and kernel == [2, 2]:
            pools.append((node.output[0], node.output[1]))
    for values, indices in pools:
        probed.graph.output.add(name=values)
        probed.graph.output.add(name=indices)
    return probed, pools


class _PoolProbe:
    """Onnxruntime's max-pool choices for the eager max-pool calls of one input set.

    `narrow` and `wide` replace the max-pool in the float32 and float64 eager runs (same calls
    in the same order). A float32 call is matched with the onnxruntime MaxPool with indices of
    equal output shape whose output is closest to its own (none: a forward-only pool, e.g. in
    infer, whose value does not depend on the choice); where that MaxPool chose another element
    than eager's first maximum, the float64 call checks that the two chosen elements differ by at
    most VERIFY_SENSITIVITY × max |float32 − float64| over the pool's input (what float32
    cannot resolve), else raises ExportMismatchError."""

    def __init__(self, spec: PhaseSpec, offset: int, ort_pools: list[tuple[np.ndarray, np.ndarray]]):
        self.where = f"{spec.algorithm}/{spec.phase}, input set of seed {spec.seed + offset}"
        self.ort_pools = [(torch.from_numpy(values), raw) for values, raw in ort_pools]
        # Per call: [float32 input (until the float64 call), and where onnxruntime chose
        # otherwise, eager's and onnxruntime's indices (else None, None)].
        self.calls: list[list] = []
        self.wide_calls = 0

    def narrow(self, h: torch.Tensor) -> torch.Tensor:
        y, first = F.max_pool2d(h.detach(), 2, return_indices=True)
        same = [(float((v - y).abs().max()), raw) for v, raw in self.ort_pools if v.shape == y.shape]
        if not same:  # a forward-only pool (e.g. infer): its value is its window's maximum
            self.calls.append([None, None, None])  # whichever element it comes from
            return F.max_pool2d(h, 2)
        raw = min(same, key=lambda t: t[0])[1]
        n, c, H, W = h.shape
        # ONNX MaxPool indices run over the whole N×C×H×W tensor; torch's over one H×W plane.
        ort = torch.from_numpy(raw) - torch.arange(n * c).view(n, c, 1, 1) * (H * W)
        differs = bool((ort != first).any())
        self.calls.append([h.detach(), first if differs else None, ort if differs else None])
        return F.max_pool2d(h, 2)

    def drop_onnxruntime_outputs(self) -> None:
        """Free onnxruntime's pool outputs once the float32 run has matched them."""
        self.ort_pools = []

    def wide(self, h: torch.Tensor) -> torch.Tensor:
        if self.wide_calls >= len(self.calls):
            raise AssertionError("the float64 eager run pools more often than the float32 one")
        call = self.calls[self.wide_calls]
        self.wide_calls += 1
        x, first, ort = call
        call[0] = None  # the float32 input is needed no longer
        if ort is not None:
            x64 = h.detach()
            rounding = VERIFY_SENSITIVITY * float((x.double() - x64).abs().max())
            flat = x64.flatten(2)
            gap = (flat.gather(2, first.flatten(2)) - flat.gather(2, ort.flatten(2))).abs()
            beyond = (ort != first).flatten(2) & (gap > rounding)
            if bool(beyond.any()):
                raise ExportMismatchError(
                    f"{self.where}: onnxruntime's max-pool (eager call {self.wide_calls - 1}) chooses "
                    f"{int(beyond.sum())} maxima differing from eager torch's by up to "
                    f"{float(gap[beyond].max()):.3g} in float64, beyond float32's rounding {rounding:.3g}")
        return F.max_pool2d(h, 2)

    def choices(self) -> list[torch.Tensor | None] | None:
        """Per call, onnxruntime's choice (max_pool2d indices) or None where it is eager's;
        None if it is eager's in every call."""
        if self.wide_calls != len(self.calls):
            raise AssertionError("the float64 eager run pools less often than the float32 one")
        if all(ort is None for _, _, ort in self.calls):
            return None
        return [ort for _, _, ort in self.calls]


def _run_eager_with_pool_choices(fn, args: list[torch.Tensor], choices: list[torch.Tensor | None]
                                 ) -> list[torch.Tensor]:
    """The eager outputs with the k-th max-pool call taking the maxima at `choices[k]` (plane
    indices as max_pool2d returns them; None: the plain max-pool): value and gradient both come
    from the chosen element."""
    calls = iter(choices)

    def pool(h: torch.Tensor) -> torch.Tensor:
        chosen = next(calls)
        if chosen is None:
            return F.max_pool2d(h, 2)
        return h.flatten(2).gather(2, chosen.flatten(2)).view(chosen.shape)
    with overriding_max_pool(pool):
        return phases.run_eager(fn, args)


def _adam_noise_masks(phase: phases.PhaseFunction, expected: list[torch.Tensor], b2: float
                      ) -> dict[str, np.ndarray]:
    """For each Adam-updated parameter output, the elements whose bias-corrected second moment
    is below ADAM_NOISE_FLOOR² (see there)."""
    out = dict(zip(phase.output_names, expected))
    if "new.adam.step" not in out:
        return {}
    step = float(out["new.adam.step"])
    roots = {name: np.sqrt(out[f"new.adam.v.{name}"].double().numpy() / (1 - b2 ** step))
             for name in phase.parameter_inputs if f"new.adam.v.{name}" in out}
    largest = max((float(r.max(initial=0.0)) for r in roots.values()), default=0.0)
    floor = max(ADAM_NOISE_FLOOR, ADAM_NOISE_RELATIVE * largest)
    return {f"new.{name}": r < floor for name, r in roots.items()}



def _export_meta_train(spec: PhaseSpec, phase: phases.PhaseFunction, args: list[torch.Tensor]
                       ) -> onnx.ModelProto:
    """Trace one task and the outer step once each, then instantiate the task B times
    (`meta_batch.assemble`): export time independent of the meta-batch size."""
    P, S = len(phase.parameter_inputs), len(phase.optimizer_state_inputs)
    params, state, batch = args[:P], args[P:P + S], args[P + S:]
    task = phases.task_phase(spec)
    task_model = trace.to_onnx(task, [*params, *(t[0] for t in batch)])
    outer = phases.outer_phase(spec)
    losses = torch.zeros(spec.meta_batch, dtype=params[0].dtype)
    grads = [torch.zeros(spec.meta_batch, *p.shape, dtype=p.dtype) for p in params]
    outer_model = trace.to_onnx(outer, [*params, *state, losses, *grads])
    batch_inputs = [(n, tuple(t.shape), str(t.dtype).removeprefix("torch."))
                    for n, t in zip(phases.BATCH_NAMES, batch)]
    return meta_batch.assemble(task_model, outer_model, spec.meta_batch, batch_inputs,
                               phase.input_names)


def _choice(field: str, value: object, allowed: tuple | list) -> None:
    if value not in allowed:
        raise SpecError(f"{field} must be one of {', '.join(map(str, allowed))}; got {value!r}")


def _describe(model: onnx.ModelProto, spec: PhaseSpec, phase: phases.PhaseFunction) -> None:
    algo = phases.algorithm_for(spec)
    meta = {
        "algorithm": spec.algorithm,
        "phase": spec.phase,
        "backbone": spec.backbone,
        "way": spec.way,
        "shot": spec.shot,
        "query": spec.query,
        "inner_steps": spec.inner_steps,
        "meta_batch": spec.meta_batch,
        "first_order": "true" if spec.first_order else "false",
        "dtype": spec.dtype,
        "inner_lr": repr(float(spec.inner_lr)),
        "outer_optimizer": algo.outer.describe(),
        "seed": spec.seed,
        "spec_hash": spec.hash(),
        "hwsim_export_version": EXPORT_FORMAT_VERSION,
        "parameter_inputs": ",".join(phase.parameter_inputs),
        "optimizer_state_inputs": ",".join(phase.optimizer_state_inputs),
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=str(value))
    model.graph.name = f"{spec.algorithm}_{spec.phase}"
    model.doc_string = f"hwsim export of {spec}"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
