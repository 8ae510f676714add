"""Export one phase of a Keras model to ONNX with tf2onnx, with TensorFlow's own outputs.

Runs inside the TensorFlow venv (`.venv-tf`, made by `make tf`) and imports nothing from hwsim,
whose packages that venv does not have. `tensorflow_export.py` starts it as

    .venv-tf/bin/python -P -s keras_worker.py --model MODEL --phase {infer,adapt} --way W --shot K
        --query Q --inner-steps k --inner-lr A --seed S --out DIR

MODEL is a built-in Keras backbone (conv4_<F>_<H>x<W>x<C>, the PyTorch Conv4 family layer for
layer) or `path/to/file.py:build_fn`, a function without arguments that returns a keras.Model.

    infer   <variables>, x[N = way·query, ...]                    -> y[N, way]
    adapt   <trainable variables>, support_x[N = way·shot, ...],
            support_y[N] (int64 class indices)                   -> adapted.<variable> ...
            k steps of SGD on the mean cross-entropy, gradients from tf.GradientTape

Variables are graph inputs named after their Keras paths ('conv1/kernel' -> 'conv1.kernel').
infer runs the model with training=False (BatchNormalization with its moving statistics); adapt
with training=True (batch statistics; the variables that are not trainable are constants).

Writes to DIR:
    model.onnx     the phase as tf2onnx converts it (opset OPSET)
    reference.npz  per input set s (1, 2): 's<s>.in.<name>', 's<s>.out.<name>' (TensorFlow's
                   outputs); for adapt also 's1.native.<name>': the same step with TensorFlow's
                   own gradient kernels (see keras_gradients.py)
    manifest.json  versions, names, model facts, the TensorFlow ops of the traced phase, and the
                   part of the step (and inner step) of each ONNX node that its name tells

Exit codes: 0 done; 2 bad input (one line on stderr, 'error: ...'); 1 anything else.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# Before TensorFlow is imported: its C++ start-up notices are not errors.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402

import keras  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `-P` leaves the script's folder out
from keras_gradients import UnconvertibleGradient, convertible_gradients  # noqa: E402

OPSET = 18             # the highest opset tf2onnx 1.17.0 knows
BN_EPS = 1e-5          # torch.nn.BatchNorm2d's default, as in hwsim's PyTorch Conv4
INPUT_SETS = (1, 2)    # input set s is drawn with seed + s
PERTURBATION = 0.1     # input set 2 moves every trainable variable by this many of its own std
BUILTIN = re.compile(r"^conv4_(32|64)_(28x28x1|84x84x3)$")
PARTS = ("forward", "loss", "backward", "update")
# Node names as tf2onnx keeps them from TensorFlow: '<inner>/<part>/...' for the step's own ops,
# 'gradient_tape/<inner>/<forward or loss op>/...' for the ops the tape added.
_STEP_NAME = re.compile(r"^(gradient_tape(?:_\d+)?/)?inner(\d+)/(" + "|".join(PARTS) + r")/")


class BadInput(Exception):
    """Something about the request or the user's model; reported as one line, exit code 2."""


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        export(args)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except UnconvertibleGradient as e:
        print(f"error: {args.model}: the {args.phase} graph: {e}", file=sys.stderr)
        return 2
    return 0


def export(args: argparse.Namespace) -> None:
    tf.config.experimental.enable_op_determinism()
    model = load_model(args.model, args.seed, args.way)
    phase = phase_of(model, args)
    out = Path(args.out)
    with convertible_gradients():
        fn = phase.trace()
        tf_ops = Counter(op.type for op in fn.get_concrete_function().graph.get_operations())
        onnx_model, _ = tf2onnx.convert.from_function(fn, input_signature=phase.signature(), opset=OPSET)
        sets = {s: input_set(args, s, model, phase) for s in INPUT_SETS}
        reference = {f"s{s}.out.{n}": t.numpy() for s, feed in sets.items()
                     for n, t in zip(phase.outputs, _run(fn, feed))}
    _name_outputs(onnx_model, phase.outputs)
    _name_constants(onnx_model)
    _drop_unused_inputs(onnx_model)
    _check_converted(onnx_model, args)
    if args.phase == "adapt":  # the same step, differentiated by TensorFlow's own kernels
        reference.update({f"s1.native.{n}": t.numpy() for n, t in zip(phase.outputs, _run(phase.trace(), sets[1]))})
    reference.update({f"s{s}.in.{n}": a for s, feed in sets.items() for n, a in feed.items()})

    graph_inputs = [i.name for i in onnx_model.graph.input]
    onnx.save(onnx_model, out / "model.onnx")
    np.savez(out / "reference.npz", **reference)
    manifest = {
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__, "opset": OPSET},
        "model": {"name": model.name, "input_shape": list(phase.example_shape), "classes": phase.classes,
                  "layers": [layer.__class__.__name__ for layer in model.layers]},
        "inputs": graph_inputs,
        "parameter_inputs": [n for n in phase.parameters if n in graph_inputs],
        "outputs": phase.outputs,
        "tf_ops": dict(sorted(tf_ops.items())),
        "scopes": {node.name: scope for node in onnx_model.graph.node
                   if (scope := node_scope(node.name, args.phase)) is not None},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


@dataclass
class Phase:
    inputs: list[tuple[str, tuple[int, ...], tf.DType]]  # graph inputs in order: name, shape, dtype
    outputs: list[str]
    parameters: list[str]          # the inputs that are model variables
    example_shape: tuple[int, ...]  # one example, without the batch axis
    classes: int
    trace: Callable[[], tf.types.experimental.PolymorphicFunction]  # a fresh tf.function each call

    def signature(self) -> list[tf.TensorSpec]:
        return _signature(self.inputs)


def phase_of(model: keras.Model, args: argparse.Namespace) -> Phase:
    shape, classes = check_model(model, args.model, args.way)
    trainable, frozen = list(model.trainable_variables), list(model.non_trainable_variables)
    names = _variable_names(trainable + frozen, args.model)
    if args.phase == "infer":
        inputs = [(n, tuple(v.shape), v.dtype) for n, v in zip(names, trainable + frozen)]
        inputs.append(("x", (args.way * args.query, *shape), tf.float32))
        signature = _signature(inputs)
        return Phase(inputs, ["y"], names, shape, classes,
                     trace=lambda: _infer_function(model, len(trainable), signature))
    if not trainable:
        raise BadInput(f"{args.model}: the model has no trainable variables to adapt")
    n = args.way * args.shot
    inputs = [(name, tuple(v.shape), v.dtype) for name, v in zip(names, trainable)]
    inputs += [("support_x", (n, *shape), tf.float32), ("support_y", (n,), tf.int64)]
    parameters = names[:len(trainable)]
    frozen_values = [v.value for v in frozen]  # constants of the step
    signature = _signature(inputs)
    return Phase(inputs, [f"adapted.{p}" for p in parameters], parameters, shape, classes,
                 trace=lambda: _adapt_function(model, frozen_values, args.inner_steps, args.inner_lr,
                                               classes, signature))


# ---------------------------------------------------------------- the model


def load_model(source: str, seed: int, way: int) -> keras.Model:
    """The built-in backbone (for `way` classes) or the user's build function, its weights drawn
    from `seed`."""
    keras.utils.set_random_seed(seed)
    m = BUILTIN.match(source)
    if m:
        size, _, channels = (int(v) for v in m.group(2).split("x"))
        return conv4(int(m.group(1)), (size, size, channels), way)
    path, sep, fn_name = source.rpartition(":")
    if not sep or not path or not fn_name.isidentifier():
        raise BadInput(f"model {source!r}: expected a built-in backbone (conv4_<32|64>_<28x28x1|84x84x3>) "
                       "or path/to/file.py:build_fn")
    if not Path(path).is_file():
        raise BadInput(f"model file {path}: no such file")
    module_spec = importlib.util.spec_from_file_location("hwsim_keras_user_model", path)
    if module_spec is None or module_spec.loader is None:
        raise BadInput(f"model file {path}: not a Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(Path(path).resolve().parent))  # the file may import its neighbours
    try:
        module_spec.loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 - whatever the user's file raises is bad input
        raise BadInput(f"model file {path}: importing it raised {_one_line(e)}") from None
    build = getattr(module, fn_name, None)
    if not callable(build):
        raise BadInput(f"model file {path}: has no function {fn_name!r}")
    try:
        model = build()
    except Exception as e:  # noqa: BLE001
        raise BadInput(f"{source}: {fn_name}() raised {_one_line(e)}") from None
    if not isinstance(model, keras.Model):
        raise BadInput(f"{source}: {fn_name}() returned {type(model).__name__}, expected a keras.Model")
    return model


def conv4(filters: int, input_shape: tuple[int, int, int], way: int) -> keras.Model:
    """Conv4 of Vinyals et al. 2016 / Finn et al. 2017, as hwsim's PyTorch backbone of the same
    name: 4 × [conv 3×3 'same' with `filters` filters and a bias, BatchNormalization, ReLU,
    max-pool 2], flattened, a dense head to `way` classes."""
    inputs = keras.Input(input_shape, name="x")
    h = inputs
    for b in range(1, 5):
        h = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{b}")(h)
        h = keras.layers.BatchNormalization(epsilon=BN_EPS, name=f"bn{b}")(h)
        h = keras.layers.ReLU(name=f"relu{b}")(h)
        h = keras.layers.MaxPooling2D(2, name=f"pool{b}")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    return keras.Model(inputs, keras.layers.Dense(way, name="head")(h), name=f"conv4_{filters}")


def check_model(model: keras.Model, source: str, way: int) -> tuple[tuple[int, ...], int]:
    """(shape of one example, number of classes) of a one-input classifier with static shapes."""
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):
        inputs = outputs = None
    if not inputs or not outputs:
        raise BadInput(f"{source}: the model has no known input shape; build it from keras.Input(shape=...)")
    if len(inputs) != 1 or len(outputs) != 1:
        raise BadInput(f"{source}: the model has {len(inputs)} inputs and {len(outputs)} outputs; "
                       "expected one of each")
    shape = tuple(inputs[0].shape[1:])
    if not shape or any(not isinstance(d, int) for d in shape):
        raise BadInput(f"{source}: input shape {tuple(inputs[0].shape)} must be static except the batch axis")
    out = tuple(outputs[0].shape)
    if len(out) != 2 or not isinstance(out[1], int):
        raise BadInput(f"{source}: output shape {out}; expected (batch, classes) logits")
    if out[1] != way:
        raise BadInput(f"{source}: the model outputs {out[1]} classes but way is {way}; pass --way {out[1]}")
    return shape, out[1]


def _variable_names(variables: list, source: str) -> list[str]:
    names = [v.path.replace("/", ".") for v in variables]
    repeated = sorted(n for n, c in Counter(names).items() if c > 1)
    if repeated:
        raise BadInput(f"{source}: several variables are named {', '.join(repeated)}; give the layers unique names")
    return names


# ---------------------------------------------------------------- the phases


def _signature(inputs) -> list[tf.TensorSpec]:
    return [tf.TensorSpec(shape, dtype, name=name) for name, shape, dtype in inputs]


def _infer_function(model: keras.Model, n_trainable: int, signature):
    @tf.function(input_signature=signature, autograph=False)  # errors surface as raised
    def infer(*flat):
        with tf.name_scope("forward"):
            y, _ = model.stateless_call(list(flat[:n_trainable]), list(flat[n_trainable:-1]),
                                        flat[-1], training=False)
        return y
    return infer


def _adapt_function(model: keras.Model, frozen, steps: int, lr: float, classes: int, signature):
    @tf.function(input_signature=signature, autograph=False)  # errors surface as raised
    def adapt(*flat):
        params, x, y = list(flat[:-2]), flat[-2], flat[-1]
        for i in range(steps):  # unrolled: one block of ops per inner step
            with tf.name_scope(f"inner{i}"):
                with tf.GradientTape() as tape:
                    tape.watch(params)
                    with tf.name_scope("forward"):
                        logits, _ = model.stateless_call(params, frozen, x, training=True)
                    with tf.name_scope("loss"):
                        loss = cross_entropy(logits, y, classes)
                with tf.name_scope("backward"):
                    grads = tape.gradient(loss, params)
                with tf.name_scope("update"):
                    params = [p if g is None else p - lr * g for p, g in zip(params, grads)]
        return params
    return adapt


def cross_entropy(logits, labels, classes: int):
    """Mean cross-entropy of logits[N, classes] against int64 labels[N]. The one-hot targets come
    from comparing the labels with a range: SparseSoftmaxCrossEntropyWithLogits differentiates
    through its second output, which tf2onnx does not convert, and OneHot has no hwsim cost rule."""
    targets = tf.cast(tf.equal(labels[:, None], tf.range(classes, dtype=labels.dtype)), logits.dtype)
    return -tf.reduce_mean(tf.reduce_sum(targets * tf.nn.log_softmax(logits), axis=-1))


def input_set(args: argparse.Namespace, s: int, model: keras.Model, phase: Phase) -> dict[str, np.ndarray]:
    """Input set `s`, drawn from seed + s: the model's own variables (set 1) or each trainable one
    moved by PERTURBATION × its standard deviation (set 2, so no value is special, e.g.
    BatchNormalization's zero shifts), random inputs, balanced labels in random order."""
    rng = np.random.default_rng(args.seed + s)
    values = {v.path.replace("/", "."): np.asarray(v.numpy()) for v in model.variables}
    trainable = {v.path.replace("/", ".") for v in model.trainable_variables}
    feed = {}
    for name, shape, _ in phase.inputs:
        if name in values:
            v = values[name]
            if s > 1 and name in trainable:
                spread = float(v.std()) or 1.0
                v = (v + PERTURBATION * spread * rng.standard_normal(v.shape)).astype(v.dtype)
            feed[name] = v
        elif name == "support_y":
            feed[name] = rng.permutation(np.arange(shape[0]) % phase.classes).astype(np.int64)
        else:
            feed[name] = rng.standard_normal(shape).astype(np.float32)
    return feed


def _run(fn, feed: dict[str, np.ndarray]) -> list[tf.Tensor]:
    out = fn(*(tf.constant(a) for a in feed.values()))
    return list(out) if isinstance(out, (list, tuple)) else [out]


# ---------------------------------------------------------------- the converted graph


def node_scope(name: str, phase: str) -> list | None:
    """[inner step or None, part] that an ONNX node's name tells, None if it tells nothing
    (tf2onnx names the nodes it adds, e.g. layout Transposes, by a counter)."""
    if phase == "infer":
        return [None, "forward"] if name.startswith("forward/") else None
    m = _STEP_NAME.match(name)
    if m is None:
        return None
    return [int(m.group(2)), "backward" if m.group(1) else m.group(3)]


def _name_outputs(model: onnx.ModelProto, names: list[str]) -> None:
    """tf2onnx names outputs after TensorFlow tensors ('Identity_3:0'); use the phase's names."""
    rename = {o.name: n for o, n in zip(model.graph.output, names)}
    for node in model.graph.node:
        node.output[:] = [rename.get(o, o) for o in node.output]
        node.input[:] = [rename.get(i, i) for i in node.input]
    for o in model.graph.output:
        o.name = rename[o.name]


def _name_constants(model: onnx.ModelProto) -> None:
    """Name each initializer after its first use ('<node>:in<k>') and order them by it. tf2onnx
    merges equal constants and keeps the name of whichever its (id-ordered) sets yield first, so
    its names differ from run to run; the graph's nodes and their order do not. Graphs with
    subgraphs (control flow), whose bodies may use the names too, are left as they are."""
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for node in model.graph.node for a in node.attribute):
        return
    first_use: dict[str, tuple[int, str]] = {}
    for position, node in enumerate(model.graph.node):
        for k, name in enumerate(node.input):
            first_use.setdefault(name, (position, f"{node.name}:in{k}"))
    inits = list(model.graph.initializer)
    rename = {i.name: first_use[i.name][1] for i in inits if i.name in first_use}
    for node in model.graph.node:
        node.input[:] = [rename.get(i, i) for i in node.input]
    ordered = [_copy(i) for i in sorted(inits, key=lambda i: first_use.get(i.name, (len(model.graph.node),))[0])]
    for init in ordered:
        init.name = rename.get(init.name, init.name)
    del model.graph.initializer[:]
    model.graph.initializer.extend(ordered)


def _drop_unused_inputs(model: onnx.ModelProto) -> None:
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    kept = [_copy(i) for i in model.graph.input if i.name in used]
    del model.graph.input[:]
    model.graph.input.extend(kept)


def _copy(message):
    """A detached copy: the elements of a repeated field are not to outlive its clearing."""
    clone = type(message)()
    clone.CopyFrom(message)
    return clone


def _check_converted(model: onnx.ModelProto, args: argparse.Namespace) -> None:
    """tf2onnx leaves an op it cannot map in the graph under its TensorFlow name."""
    left = Counter(n.op_type for n in model.graph.node if not onnx.defs.has(n.op_type, n.domain))
    if left:
        ops = ", ".join(f"{op} ×{c}" for op, c in sorted(left.items()))
        raise BadInput(f"{args.model}: tf2onnx {tf2onnx.__version__} cannot convert these TensorFlow ops "
                       f"of the {args.phase} graph: {ops}")
    onnx.checker.check_model(model)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--phase", required=True, choices=("infer", "adapt"))
    p.add_argument("--way", type=int, required=True)
    p.add_argument("--shot", type=int, required=True)
    p.add_argument("--query", type=int, required=True)
    p.add_argument("--inner-steps", type=int, required=True)
    p.add_argument("--inner-lr", type=float, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True)
    return p


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
