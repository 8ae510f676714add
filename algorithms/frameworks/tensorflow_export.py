"""Keras models as hwsim phases: the hwsim side of the TensorFlow bridge.

    spec  = KerasPhaseSpec("conv4_64_28x28x1", "adapt", way=5, shot=1)
    model = export_keras_phase(spec, cache_dir=".hwsim-cache")      # onnx.ModelProto

TensorFlow pins its own numpy, protobuf and ml_dtypes ranges and weighs 1.6 GB, so it lives in
its own venv, `.venv-tf` at the top of the repository, made by `make tf` (and by `make test`)
from `constraints-tf.txt`. This module runs `keras_worker.py` there as a subprocess (explicit
paths, no shell), which converts the phase with tf2onnx and records TensorFlow's outputs on two
input sets. Here, in hwsim's venv, the graph gets hwsim's metadata and a `hwsim.scope` on every
node, is run in onnxruntime against those outputs, and is cached by a hash of everything that
determines it. See docs/frameworks.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from hwsim.files import write_atomic
from hwsim.scope import SCOPE_PROP, Scope

from ..backbones import BACKBONES
from ..base import ALGORITHMS
from ..export import ExportMismatchError
from ..spec import SpecError

# |onnxruntime - TensorFlow| <= VERIFY_RTOL x max(1, max |TensorFlow|) per output. A fixed float32
# tolerance (the PyTorch exports derive theirs from a float64 master, which a Keras model run in
# TensorFlow's venv does not give): measured errors are 3e-7 (infer) and 3.2e-6 (one SGD step),
# so 1e-4 leaves room for rounding while a wrong op or attribute is far outside it.
VERIFY_RTOL = 1e-4

REPO = Path(__file__).resolve().parents[2]
TF_VENV = REPO / ".venv-tf"                # keep in step with TF_VENV in the Makefile
TF_READY = TF_VENV / ".installed"          # written by `make tf` once pip has finished
TF_CONSTRAINTS = REPO / "constraints-tf.txt"
WORKER = Path(__file__).with_name("keras_worker.py")
WORKER_SOURCES = (WORKER, Path(__file__).with_name("keras_gradients.py"))
# Bump whenever the exported graphs or their metadata change for the same spec and sources;
# it is part of the cache key.
EXPORT_FORMAT_VERSION = "tf1"
PHASES = ("infer", "adapt")
# The algorithms whose adapt phase is the worker's training step: plain SGD on every trainable
# variable with the cross-entropy of the support set (first and second order agree there).
ALGORITHMS_ADAPTING_BY_SGD = ("maml", "fomaml")
# Keras versions of hwsim's PyTorch backbones: the classifiers (the worker builds them).
KERAS_BACKBONES = tuple(sorted(n for n, b in BACKBONES.items() if b.task_family == "classification"))
# The worker imports TensorFlow and traces and converts the graph; a hang must not block CI.
WORKER_TIMEOUT_S = 1800


class FrameworkError(SpecError):
    """A framework export that cannot be done as asked: the framework's venv is missing, the
    user's model file is bad, or the model has an op whose gradient does not convert."""


@dataclass(frozen=True)
class KerasPhaseSpec:
    """One phase of a Keras model. `model` is a built-in backbone (KERAS_BACKBONES) or
    `path/to/file.py:build_fn`, a function without arguments returning a keras.Model."""

    model: str
    phase: str
    algorithm: str = "maml"
    way: int = 5
    shot: int = 1
    query: int = 1
    inner_steps: int = 1
    inner_lr: float = 0.4  # MAML, Omniglot 5-way (Finn et al. 2017)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.phase not in PHASES:
            raise FrameworkError(f"phase must be one of {', '.join(PHASES)} with TensorFlow (a TensorFlow "
                                 f"meta_train would need gradients of gradient ops); got {self.phase!r}")
        if self.algorithm not in ALGORITHMS_ADAPTING_BY_SGD:
            raise FrameworkError(f"algorithm must be one of {', '.join(ALGORITHMS_ADAPTING_BY_SGD)} with "
                                 f"TensorFlow; got {self.algorithm!r}")
        if self.model_file is None and self.model not in KERAS_BACKBONES:
            raise FrameworkError(f"model {self.model!r}: expected one of {', '.join(KERAS_BACKBONES)} "
                                 "or path/to/file.py:build_fn")
        if self.model_file is not None and not self.model_file.is_file():
            raise FrameworkError(f"model file {self.model_file}: no such file")
        for name in ("way", "shot", "query", "inner_steps"):
            value, least = getattr(self, name), 2 if name == "way" else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise FrameworkError(f"{name} must be an integer >= {least}, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise FrameworkError(f"seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.inner_lr, (int, float)) or not 0 < self.inner_lr < float("inf"):
            raise FrameworkError(f"inner_lr must be a positive finite number, got {self.inner_lr!r}")
        object.__setattr__(self, "inner_lr", float(self.inner_lr))  # 1 and 1.0: one cache key

    @property
    def model_file(self) -> Path | None:
        """The user's model file, None for a built-in backbone."""
        path, sep, fn = self.model.rpartition(":")
        return Path(path) if sep and path and fn.isidentifier() else None

    def hash(self) -> str:
        """sha256 of everything that determines the exported model: the spec, the user's model
        file (not what it imports), the worker's sources and the TensorFlow venv's pins."""
        files = [*WORKER_SOURCES, TF_CONSTRAINTS] + ([self.model_file] if self.model_file else [])
        key = {"spec": dataclasses.asdict(self), "export_format": EXPORT_FORMAT_VERSION,
               "files": {str(f.name): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def export_keras_phase(spec: KerasPhaseSpec, *, cache_dir: str | os.PathLike | None = None,
                       tf_python: str | os.PathLike | None = None) -> onnx.ModelProto:
    """The phase as an ONNX model with hwsim's metadata and scopes, verified in onnxruntime
    against TensorFlow (`convert_keras_phase`). With `cache_dir`, a model exported before for the
    same `spec.hash()` is loaded instead, and a fresh one is stored there."""
    path = Path(cache_dir) / f"keras-{spec.phase}-{spec.hash()[:32]}.onnx" if cache_dir else None
    if path is not None and path.exists():
        return onnx.load(path)
    model = convert_keras_phase(spec, tf_python=tf_python).model
    if path is not None:
        write_atomic(path, model.SerializeToString())
    return model


@dataclass
class KerasExport:
    model: onnx.ModelProto             # with hwsim's metadata and a scope on every node
    reference: dict[str, np.ndarray]   # keras_worker's reference.npz
    manifest: dict                     # keras_worker's manifest.json
    errors: dict[str, float]           # verify_keras_export's worst error per check and output


def convert_keras_phase(spec: KerasPhaseSpec, *, tf_python: str | os.PathLike | None = None) -> KerasExport:
    """Run keras_worker in the TensorFlow venv (`tf_python` replaces its interpreter), describe
    the converted graph for hwsim and verify it; no cache."""
    python = _tf_python(tf_python)
    with tempfile.TemporaryDirectory(prefix="hwsim-keras-") as tmp:
        out = Path(tmp)
        _run_worker(python, spec, out)
        model = onnx.load(out / "model.onnx")
        manifest = json.loads((out / "manifest.json").read_text())
        with np.load(out / "reference.npz") as npz:
            reference = {k: npz[k] for k in npz.files}
    attach_scopes(model, manifest["scopes"], default="forward" if spec.phase == "infer" else "other")
    _describe(model, spec, manifest)
    return KerasExport(model, reference, manifest, verify_keras_export(model, reference))


def verify_keras_export(model: onnx.ModelProto, reference: dict[str, np.ndarray]) -> dict[str, float]:
    """Run `model` in onnxruntime on every input set of `reference` (keras_worker's npz) and
    compare each output with TensorFlow's; for a training step also compare TensorFlow's outputs
    with the convertible gradients against TensorFlow's own gradient kernels. Returns the worst
    error per check and output, |Δ| / max(1, max |TensorFlow|); raises ExportMismatchError past
    VERIFY_RTOL."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in model.graph.output]
    sets = sorted({k.split(".", 1)[0] for k in reference})
    if not sets:
        raise ExportMismatchError("the TensorFlow reference holds no input set")
    worst: dict[str, float] = {}
    for s in sets:
        got = session.run(outputs, {n: reference[f"{s}.in.{n}"] for n in inputs})
        for name, g in zip(outputs, got):
            _compare(worst, f"onnxruntime/{name}", g, reference[f"{s}.out.{name}"], s)
            native = reference.get(f"{s}.native.{name}")
            if native is not None:
                _compare(worst, f"tf_gradients/{name}", reference[f"{s}.out.{name}"], native, s)
    return worst


def attach_scopes(model: onnx.ModelProto, named: dict[str, list], default: str) -> None:
    """Write `hwsim.scope` on every node: the [inner step, part] the worker read from its name,
    else the scope of a consumer (a layout Transpose belongs to the op it feeds), else of a
    producer, else `default`."""
    nodes = list(model.graph.node)
    found: list[str | None] = []
    for n in nodes:
        inner_part = named.get(n.name)
        found.append(None if inner_part is None else str(Scope(inner_part[1], None, inner_part[0])))
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        for name in n.input:
            consumers.setdefault(name, []).append(i)
    changed = True
    while changed:
        changed = False
        for i, n in enumerate(nodes):
            if found[i] is None:
                near = [found[c] for o in n.output for c in consumers.get(o, [])]
                near += [found[producer[x]] for x in n.input if x in producer]
                found[i] = next((s for s in near if s is not None), None)
                changed |= found[i] is not None
    for node, scope in zip(nodes, found):
        del node.metadata_props[:]
        node.metadata_props.add(key=SCOPE_PROP, value=scope or default)


# ---------------------------------------------------------------- parts


def _tf_python(tf_python: str | os.PathLike | None) -> Path:
    if tf_python is not None:
        python = Path(tf_python)
        if not python.is_file():
            raise FrameworkError(f"TensorFlow interpreter {python}: no such file")
        return python
    if not TF_READY.is_file():
        state = "is incomplete" if TF_VENV.exists() else "does not exist"
        raise FrameworkError(f"the TensorFlow venv {TF_VENV} {state}; create it with `make tf` "
                             "(TensorFlow CPU and tf2onnx, about 1.6 GB)")
    return TF_VENV / "bin" / "python"


def _run_worker(python: Path, spec: KerasPhaseSpec, out: Path) -> None:
    model = str(spec.model_file.resolve()) + ":" + spec.model.rpartition(":")[2] if spec.model_file else spec.model
    # -P -s: neither the worker's folder (the worker adds it itself) nor user site-packages go on
    # sys.path. No PYTHON* variable of this process passes (PYTHONPATH could reach hwsim's venv);
    # a fixed hash seed makes tf2onnx name and order its constants the same on every run.
    argv = [str(python), "-P", "-s", str(WORKER), "--model", model, "--phase", spec.phase,
            "--way", str(spec.way), "--shot", str(spec.shot), "--query", str(spec.query),
            "--inner-steps", str(spec.inner_steps), "--inner-lr", repr(spec.inner_lr),
            "--seed", str(spec.seed), "--out", str(out)]
    # TensorFlow's start-up notices are not errors; a GPU, where there is one, stays unused so the
    # references come from the same kernels everywhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(PYTHONHASHSEED="0", TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the TensorFlow export worker did not finish in {WORKER_TIMEOUT_S} s") from None
    if done.returncode == 2:
        lines = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
        raise FrameworkError(lines[-1].removeprefix("error: ") if lines else done.stderr.strip()[-500:])
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"the TensorFlow export worker failed (exit {done.returncode}):\n{tail}")


def _describe(model: onnx.ModelProto, spec: KerasPhaseSpec, manifest: dict) -> None:
    versions = manifest["versions"]
    meta = {
        "algorithm": spec.algorithm,
        "phase": spec.phase,
        "backbone": spec.model if spec.model_file is None else f"keras:{spec.model_file.name}:{spec.model.rpartition(':')[2]}",
        "way": spec.way,
        "shot": spec.shot,
        "query": spec.query,
        "inner_steps": spec.inner_steps,
        "meta_batch": 1,
        "first_order": "true" if ALGORITHMS.lookup(spec.algorithm).first_order else "false",
        "dtype": "float32",
        "inner_lr": repr(spec.inner_lr),
        "seed": spec.seed,
        "spec_hash": spec.hash(),
        "hwsim_export_version": EXPORT_FORMAT_VERSION,
        "parameter_inputs": ",".join(manifest["parameter_inputs"]),
        "optimizer_state_inputs": "",
        "outer_optimizer": "none",  # infer and adapt have no outer step
        "framework": "tensorflow",
        "framework_versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }
    del model.metadata_props[:]
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=str(value))
    model.graph.name = f"keras_{spec.algorithm}_{spec.phase}"
    model.doc_string = f"hwsim export of {spec} through TensorFlow"


def _compare(worst: dict[str, float], key: str, got: np.ndarray, expected: np.ndarray, where: str) -> None:
    if got.shape != expected.shape:
        raise ExportMismatchError(f"{key}: shape {got.shape} against {expected.shape} (input set {where})")
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    err = float(np.abs(got.astype(np.float64) - expected).max(initial=0.0)) / scale
    if not err <= VERIFY_RTOL:  # also catches NaN
        raise ExportMismatchError(f"{key}: differs by {err:.3g} relative to max(1, max|TensorFlow|) = "
                                  f"{scale:.3g} on input set {where}; tolerance {VERIFY_RTOL:g}")
    worst[key] = max(worst.get(key, 0.0), err)
