"""Export of one phase of one algorithm to ONNX, verified against eager PyTorch and cached.

    spec  = PhaseSpec(algorithm="maml", phase="meta_train", inner_steps=5, meta_batch=25)
    model = export_phase(spec, cache_dir=".hwsim-cache")      # onnx.ModelProto
    save_phase(spec, "out/maml.onnx")

The phase is traced once in float64 (`phase_graph.trace_phase`; see `precision` for why), the
float64 graph is verified (`verification`), and a float32 spec gets its float32 copy. Every node
carries the metadata prop `hwsim.scope` ("task3/inner1/backward", "meta_reduce",
"outer_update", ...; see `hwsim.scope.Scope`), and the model carries the spec, the outer
optimizer and which graph inputs are meta-parameters and optimizer state.
"""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path

import onnx

from . import phases, precision
from hwsim.files import write_atomic

from .export_cache import EXPORT_FORMAT_VERSION, ExportCache, entry_key
from .phase_graph import trace_phase
from .spec import PhaseSpec
from .verification import ExportMismatchError, VerificationReport, verify_export, verify_master

__all__ = ["EXPORT_FORMAT_VERSION", "ExportMismatchError", "VerificationReport", "export_phase", "save_phase",
           "trace_phase", "verify_export"]

log = logging.getLogger(__name__)


def export_phase(spec: PhaseSpec, *, cache_dir: str | os.PathLike | None = None,
                 verify: bool = True) -> onnx.ModelProto:
    """The phase as an ONNX model in the spec's dtype. A fresh export is verified (unless
    `verify=False`; `verification`) and its summary logged at INFO; with `cache_dir`, a model
    exported before for the same spec, versions and sources is loaded instead (a damaged entry
    is reported and rebuilt), and a fresh one is stored there."""
    cache = ExportCache(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cached = cache.load(spec)
        if cached is not None:
            return cached
    master = trace_phase(spec)
    gc.collect()  # the traced FX graphs and fake tensors, before verification's large arrays
    summary = None
    if verify:
        report = verify_master(master, spec)
        summary = report.summary()
        log.info("%s", summary)
    model = precision.narrow(master) if spec.dtype == "float32" else master
    del master
    describe(model, spec)
    if cache is not None:
        cache.store(spec, model, summary)
    return model


def save_phase(spec: PhaseSpec, path: str | os.PathLike, **kwargs: object) -> onnx.ModelProto:
    """`export_phase(spec, **kwargs)` written to `path` (atomically)."""
    model = export_phase(spec, **kwargs)  # type: ignore[arg-type]
    write_atomic(Path(path), model.SerializeToString())
    return model


def describe(model: onnx.ModelProto, spec: PhaseSpec) -> None:
    """Write the spec and what the compiler needs to know about the inputs as model metadata."""
    algo = phases.algorithm_for(spec)
    phase = phases.phase_function(spec)
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
        "spec_hash": entry_key(spec),
        "hwsim_export_version": EXPORT_FORMAT_VERSION,
        "parameter_inputs": ",".join(phase.parameter_inputs),
        "optimizer_state_inputs": ",".join(phase.optimizer_state_inputs),
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=str(value))
    model.graph.name = f"{spec.algorithm}_{spec.phase}"
    model.doc_string = f"hwsim export of {spec}"
