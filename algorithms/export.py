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

from . import phases, trace
from .backbones import BACKBONES
from .base import ALGORITHMS

# Bump whenever the exported graphs or their metadata change for the same spec and versions;
# it is part of the cache key.
EXPORT_FORMAT_VERSION = "1"
# Verification tolerance: max |onnx - eager| <= RTOL * max(1, max |eager|), per output.
VERIFY_RTOL = 1e-4
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
        _choice("way", self.way, BACKBONES[self.backbone].ways)
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
    model = trace.to_onnx(phase, phases.example_inputs(spec, spec.seed))
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
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    onnx_inputs = [i.name for i in session.get_inputs()]
    if onnx_inputs != list(phase.input_names):
        raise ExportMismatchError(f"graph inputs {onnx_inputs} != expected {list(phase.input_names)}")
    worst: dict[str, float] = {}
    for offset in VERIFY_SEED_OFFSETS:
        args = phases.example_inputs(spec, spec.seed + offset)
        expected = phases.run_eager(phase.fn, args)
        got = session.run(list(phase.output_names),
                          {n: a.numpy() for n, a in zip(phase.input_names, args)})
        for name, e, g in zip(phase.output_names, expected, got):
            e = e.numpy()
            if e.shape != g.shape:
                raise ExportMismatchError(f"{spec.algorithm}/{spec.phase}: output {name!r} has shape "
                                          f"{g.shape} in onnxruntime, {e.shape} in eager torch")
            scale = max(1.0, float(np.abs(e).max(initial=0.0)))
            err = float(np.abs(e - g).max(initial=0.0)) / scale
            if not err <= VERIFY_RTOL:
                raise ExportMismatchError(
                    f"{spec.algorithm}/{spec.phase}: output {name!r} differs from eager torch by "
                    f"{err:.3g} (relative to max(1, max|eager|) = {scale:.3g}) on the input set of "
                    f"seed {spec.seed + offset}; tolerance {VERIFY_RTOL:g}")
            worst[name] = max(worst.get(name, 0.0), err)
    return worst


# ---------------------------------------------------------------- parts


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
