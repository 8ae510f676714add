"""From a pure phase function to an ONNX graph whose every node carries its scope.

The route (REFERENCE §6; `torch.autograd.grad` cannot be exported directly):
1. trace the function to an ATen graph with `make_fx` and the core ATen decompositions, while
   `preserve_node_meta` records each node's `scope(...)` annotation in `node.meta["custom"]`;
2. translate that graph node by node with the dynamo ONNX exporter's ATen → ONNX functions
   (`translate`: not through `torch.export`, see why) and fold constants (`simplify`: not the
   exporter's optimizer, see why);
3. copy each annotation onto the ONNX node it became (`hwsim.scope`), found through the
   exporter's `pkg.torch.onnx.fx_node` metadata; nodes without one inherit the scope of a
   consumer, else of a producer; drop the exporter's bulky per-node metadata;
4. fuse the transpose pairs the decompositions leave behind, re-emit constant-filled
   initializers as ConstantOfShape so that all-zero tensors do not bloat the file, and give
   each task its own copy of any node several tasks would share, so that every node belongs
   to exactly one task, as in the traced program.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import warnings
from typing import Iterator, Sequence

import numpy as np
import onnx
import onnxscript.optimizer
import torch
import torch._decomp
import torch.fx.traceback as fx_traceback
from onnx import helper, numpy_helper
from onnxscript import ir
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx
from torch.onnx._internal.exporter import (_constants, _core, _decomp, _fx_passes, _ir_passes,
                                           _registration)

from hwsim.scope import SCOPE_PROP, Scope

from .base import SCOPE_KEY
from .phases import PhaseFunction

common_passes = ir.passes.common

FALLBACK_SCOPE = "other"
_FX_NODE_PROP = "pkg.torch.onnx.fx_node"
_TORCH_PROPS = ("namespace", "class_hierarchy", "stack_trace", "fx_node", "name_scopes")
_FX_NAME_RE = re.compile(r"^%(\S+) :")


def to_onnx(phase: PhaseFunction, args: Sequence[Tensor]) -> onnx.ModelProto:
    gm = trace_aten(phase, args)
    model = translate(gm, phase)
    model_proto = simplify(model)
    attach_scopes(model_proto.graph, _scopes_by_fx_name(gm))
    collapse_transposes(model_proto.graph)
    fold_constant_fills(model_proto.graph)
    split_shared_across_tasks(model_proto.graph)
    return model_proto


def translate(gm: torch.fx.GraphModule, phase: PhaseFunction) -> ir.Model:
    """The ATen graph as ONNX, node by node with the exporter's own ATen → ONNX translations.

    `torch.onnx.export` would first `torch.export` the GraphModule and run its decompositions
    again: both re-trace the whole graph, and they took ~85 % of the export time (cProfile,
    MAML Conv4 k=5: make_fx 5.5 s, torch.export 11 s, decompositions 25 s, translation 4 s).
    The graph is already core ATen and functional here, so the translation alone suffices."""
    _fx_passes.insert_type_promotion_nodes(gm)
    model = ir.Model(ir.Graph([], [], nodes=[], name="main_graph"),
                     ir_version=_constants.ONNX_IR_VERSION, producer_name="hwsim",
                     producer_version=torch.__version__)
    with _quiet_exporter():
        _core._translate_fx_graph(gm.graph, model, graph_like=model.graph, owned_graphs={},
                                  lower="at_conversion", registry=_registry())
    _ir_passes.add_opset_imports(model)
    if len(model.graph.inputs) != len(phase.input_names) or len(model.graph.outputs) != len(phase.output_names):
        raise AssertionError(f"translated graph has {len(model.graph.inputs)} inputs and "
                             f"{len(model.graph.outputs)} outputs; the phase names "
                             f"{len(phase.input_names)} and {len(phase.output_names)}")
    for value, name in zip(model.graph.inputs, phase.input_names):
        value.name = name
    for k, (value, name) in enumerate(zip(model.graph.outputs, phase.output_names)):
        if value.producer() is None or value in model.graph.outputs[:k]:
            # An output that is a graph input or another output: ONNX needs its own value.
            alias = ir.node("Identity", [value], num_outputs=1)
            model.graph.append(alias)
            model.graph.outputs[k] = alias.outputs[0]
            value = alias.outputs[0]
        value.name = name
    return model


@functools.lru_cache(maxsize=1)
def _registry() -> _registration.ONNXRegistry:
    with _quiet_exporter():
        return _registration.ONNXRegistry.from_torchlib()


def simplify(model: ir.Model) -> onnx.ModelProto:
    """Constant folding and clean-up, without the exporter's default optimizer.

    That optimizer (`optimize=True`) also runs onnxscript's pattern rewrites, whose `x + 0 -> x`
    rule matches constants within an absolute tolerance of 1e-8 and so deletes Adam's
    eps = 1e-8 (0 / (0 + eps) then becomes NaN for dead units). It also merges identical
    subexpressions of different tasks. Folding alone is exact."""
    ir.passes.Sequential(common_passes.InlinePass(), common_passes.RemoveUnusedFunctionsPass())(model)
    onnxscript.optimizer.fold_constants(model)
    ir.passes.Sequential(
        common_passes.RemoveUnusedNodesPass(),
        common_passes.LiftConstantsToInitializersPass(lift_all_constants=True, size_limit=0),
        common_passes.DeduplicateInitializersPass(),
        common_passes.OutputFixPass(),
        common_passes.NameFixPass(),
    )(model)
    return ir.serde.serialize_model(model)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter logs that torchvision's ops are not registered and that our nodes have no
    nn.Module stack (they come from functions, not modules): neither concerns these graphs, and
    a CLI user should not see them."""
    logs = [logging.getLogger(f"torch.onnx._internal.exporter.{m}") for m in ("_registration", "_core")]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        for log, level in zip(logs, levels):
            log.setLevel(level)


def trace_aten(phase: PhaseFunction, args: Sequence[Tensor]) -> torch.fx.GraphModule:
    """The phase as a functional core-ATen graph. Traced with fake tensors: with real ones
    make_fx computes every op and creates a fake-tensor mode per value to describe it, which
    made tracing 6× slower."""
    with fx_traceback.preserve_node_meta():
        gm = make_fx(phase.fn, decomposition_table=decompositions(), tracing_mode="fake")(*args)
    for node in gm.graph.nodes:
        # The ONNX translation of aten.full_like rejects the memory_format keyword (TypeError).
        if node.op == "call_function" and node.target is torch.ops.aten.full_like.default:
            node.kwargs = {k: v for k, v in node.kwargs.items() if k != "memory_format"}
        # Factory ops without a dtype are translated as float; make the traced dtype explicit.
        if (node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload)
                and node.target.overloadpacket.__name__ in ("arange", "full", "empty", "zeros", "ones")
                and node.kwargs.get("dtype") is None and "val" in node.meta):
            node.kwargs = {**node.kwargs, "dtype": node.meta["val"].dtype}
    remove_inplace_ops(gm)
    gm.recompile()
    return gm


# Ops whose result aliases their first argument: mutating their output would mutate the base.
_VIEW_OPS = {"alias", "view", "_unsafe_view", "permute", "expand", "slice", "select", "unsqueeze",
             "squeeze", "transpose", "t", "as_strided", "split", "split_with_sizes", "unbind",
             "diagonal", "narrow", "reshape", "flatten", "unflatten", "view_as", "detach"}


def remove_inplace_ops(gm: torch.fx.GraphModule) -> None:
    """Replace each in-place ATen op (`add_`, `div_`, ...) by its out-of-place form.

    Autograd's gradient accumulation and some decompositions (batch norm backward) mutate
    fresh temporaries in place; the ONNX translation has no in-place ops. Exact when the
    mutated tensor is no view (a view's base would change too) and no graph input: both are
    checked, and later readers of the mutated tensor are pointed at the new value."""
    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or not isinstance(node.target, torch._ops.OpOverload):
            continue
        packet = node.target.overloadpacket.__name__
        if not packet.endswith("_") or packet.endswith("__"):
            continue
        target = node.args[0]
        producer = target.target.overloadpacket.__name__ if (
            target.op == "call_function" and isinstance(target.target, torch._ops.OpOverload)) else None
        if target.op == "placeholder" or producer in _VIEW_OPS or producer is None:
            raise NotImplementedError(f"in-place {node.target} on {target.format_node()}: only fresh, "
                                      "non-view temporaries can be made functional")
        functional = getattr(getattr(torch.ops.aten, packet[:-1]), node.target._overloadname)
        for user in list(target.users):
            if user is not node and order[user] > order[node]:
                user.replace_input_with(target, node)
        node.target = functional


@functools.lru_cache(maxsize=1)
def decompositions() -> dict:
    """The core ATen decompositions (without them the NLL normaliser is exported as 1, so
    cross-entropy gradients come out N× too large; REFERENCE §6) over the exporter's own table
    for ops it cannot translate (e.g. mul.Scalar), plus the two backward ops the ONNX translation
    lacks: convolution_backward and max_pool2d_with_indices_backward."""
    translatable = set(_decomp.get_onnx_implemented_overloads(_registry()))
    table = dict(_decomp.create_onnx_friendly_decomposition_table(translatable))
    table.update(torch._decomp.core_aten_decompositions())
    # Batch norm as explicit batch statistics (ReduceMean, Sub, Mul, ...): the exporter's
    # translation is an inference-mode BatchNormalization fed with batch statistics plus a
    # second, float32-only computation of them (wrong types in float64 graphs).
    for op in (torch.ops.aten.native_batch_norm.default,
               torch.ops.aten._native_batch_norm_legit_functional.default):
        table[op] = torch._decomp.decomposition_table[op]
    table[torch.ops.aten.convolution_backward.default] = _convolution_backward
    table[torch.ops.aten.max_pool2d_with_indices_backward.default] = _max_pool2d_backward
    return table


def _convolution_backward(grad_out: Tensor, x: Tensor, weight: Tensor, bias_sizes: object,
                          stride: list[int], padding: list[int], dilation: list[int],
                          transposed: bool, output_padding: list[int], groups: int,
                          output_mask: list[bool]) -> tuple[Tensor | None, ...]:
    """The gradients of a 2-D convolution as forward convolutions:

    input  ∂x = conv_transpose(∂y, w) with the forward's stride, padding and dilation;
    weight ∂w = a convolution of x (channels as batch) with ∂y (batch as channels) as the
           kernel, so the kernel has the output map's spatial size and the forward's stride
           becomes the dilation; cropped to w's size (a stride that does not divide the input
           leaves extra rows);
    bias   ∂b = Σ ∂y over batch and space."""
    if transposed or groups != 1 or x.dim() != 4:
        return NotImplemented
    grad_x = grad_w = grad_b = None
    if output_mask[0]:
        extra = [x.shape[2 + d] - ((grad_out.shape[2 + d] - 1) * stride[d] - 2 * padding[d]
                                   + dilation[d] * (weight.shape[2 + d] - 1) + 1) for d in range(2)]
        grad_x = torch.ops.aten.convolution.default(
            grad_out, weight, None, stride, padding, dilation, True, extra, 1)
    if output_mask[1]:
        gw = torch.ops.aten.convolution.default(
            x.transpose(0, 1), grad_out.transpose(0, 1), None, dilation, padding, stride, False,
            [0, 0], 1)
        grad_w = gw[:, :, :weight.shape[2], :weight.shape[3]].transpose(0, 1)
    if output_mask[2]:
        grad_b = grad_out.sum((0, 2, 3))
    return grad_x, grad_w, grad_b


def _max_pool2d_backward(grad_out: Tensor, x: Tensor, kernel_size: list[int], stride: list[int],
                         padding: list[int], dilation: list[int], ceil_mode: bool,
                         indices: Tensor) -> Tensor:
    """Each output gradient goes to the input element its window's maximum came from
    (`indices` index a plane of x): a ScatterElements with add over the flattened planes."""
    n, c = x.shape[0], x.shape[1]
    flat = grad_out.new_zeros(n, c, x.shape[2] * x.shape[3])
    flat = flat.scatter_add(2, indices.reshape(n, c, -1), grad_out.reshape(n, c, -1))
    return flat.reshape(x.shape)


def _scopes_by_fx_name(gm: torch.fx.GraphModule) -> dict[str, str]:
    return {n.name: n.meta["custom"][SCOPE_KEY] for n in gm.graph.nodes
            if SCOPE_KEY in (n.meta.get("custom") or {})}


def attach_scopes(graph: onnx.GraphProto, scopes: dict[str, str]) -> None:
    """Write `hwsim.scope` on every node and drop the exporter's per-node torch metadata."""
    found: list[str | None] = []
    for node in graph.node:
        props = {p.key: p.value for p in node.metadata_props}
        m = _FX_NAME_RE.match(props.get(_FX_NODE_PROP, ""))
        found.append(scopes.get(m.group(1)) if m else None)

    producer = {o: i for i, n in enumerate(graph.node) for o in n.output if o}
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(graph.node):
        for name in n.input:
            if name:
                consumers.setdefault(name, []).append(i)
    # Unattributed nodes take a consumer's scope (a constant belongs to where it is used),
    # else a producer's; repeat until nothing changes, then fall back to "other".
    changed = True
    while changed:
        changed = False
        for i, n in enumerate(graph.node):
            if found[i] is not None:
                continue
            near = [found[c] for o in n.output for c in consumers.get(o, [])]
            near += [found[producer[x]] for x in n.input if x in producer]
            near = [s for s in near if s is not None]
            if near:
                found[i] = near[0]
                changed = True

    for node, s in zip(graph.node, found):
        keep = [(p.key, p.value) for p in node.metadata_props
                if not p.key.startswith("pkg.torch.") and p.key not in _TORCH_PROPS]
        del node.metadata_props[:]
        for key, value in keep + [(SCOPE_PROP, s or FALLBACK_SCOPE)]:
            node.metadata_props.add(key=key, value=value)


def collapse_transposes(graph: onnx.GraphProto) -> None:
    """Fuse each Transpose of a Transpose into one (or none when they cancel out).

    ATen's decompositions transpose a weight for the forward product and transpose it back for
    the backward one; the exporter's optimizer would have folded these pairs, and a cost model
    must not charge data movement for them. Exact: only permutations are composed."""
    producer: dict[str, onnx.NodeProto] = {}
    replace: dict[str, str] = {}
    outputs = {o.name for o in graph.output}
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in replace:
                node.input[k] = replace[name]
        inner = producer.get(node.input[0]) if node.op_type == "Transpose" else None
        if inner is not None and inner.op_type == "Transpose":
            p_inner, p_outer = _perm(inner), _perm(node)
            if p_inner is not None and p_outer is not None:
                composed = [p_inner[k] for k in p_outer]
                if composed == sorted(composed) and node.output[0] not in outputs:
                    replace[node.output[0]] = inner.input[0]
                else:
                    node.input[0] = inner.input[0]
                    _set_perm(node, composed)
        for o in node.output:
            producer[o] = node
    _remove_dead_nodes(graph)


def _perm(node: onnx.NodeProto) -> list[int] | None:
    for a in node.attribute:
        if a.name == "perm":
            return list(a.ints)
    return None  # default: reverse the axes, which needs the rank; leave such nodes alone


def _set_perm(node: onnx.NodeProto, perm: list[int]) -> None:
    for a in node.attribute:
        if a.name == "perm":
            del a.ints[:]
            a.ints.extend(perm)


def _remove_dead_nodes(graph: onnx.GraphProto) -> None:
    used = {o.name for o in graph.output}
    alive = []
    for node in reversed(graph.node):
        if any(o in used for o in node.output if o):
            alive.append(_copy(node))
            used.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(alive))
    names = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in names]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def fold_constant_fills(graph: onnx.GraphProto) -> None:
    """Replace each floating-point initializer whose elements are all equal (typically zeros
    the optimizer folded) by a ConstantOfShape node, so the file stores one value instead of
    the tensor. Integer initializers (shapes, axes, indices) stay literal for the compiler."""
    consumers_scope: dict[str, str] = {}
    for n in graph.node:
        for name in n.input:
            consumers_scope.setdefault(name, node_scope(n))
    keep, new_nodes = [], []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.size < 2 or arr.dtype.kind != "f" or not np.all(arr == arr.flat[0]):
            keep.append(init)
            continue
        shape_name = f"{init.name}__shape"
        keep.append(numpy_helper.from_array(np.array(arr.shape, dtype=np.int64), shape_name))
        node = helper.make_node(
            "ConstantOfShape", [shape_name], [init.name], name=f"{init.name}__fill",
            value=numpy_helper.from_array(arr.reshape(-1)[:1].copy()))
        node.metadata_props.add(key=SCOPE_PROP, value=consumers_scope.get(init.name, FALLBACK_SCOPE))
        new_nodes.append(node)
    if not new_nodes:
        return
    del graph.initializer[:]
    graph.initializer.extend(keep)
    old = list(graph.node)
    del graph.node[:]
    graph.node.extend(new_nodes + old)


def split_shared_across_tasks(graph: onnx.GraphProto) -> None:
    """Give each task its own copy of a node whose consumers belong to several tasks.

    Walks the nodes in reverse topological order, so a chain of shared nodes is split from its
    end back to the graph inputs; a copy keeps the node's inner step and part and takes the
    consuming task's index, and is named `<name>__task<j>` (outputs `<output>__task<j>`)."""
    nodes = [_copy(n) for n in graph.node]
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in nodes:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    result: list[onnx.NodeProto] = []  # built back to front
    for node in reversed(nodes):
        own = Scope.parse(node_scope(node))
        clones = []
        if own.task is not None:
            by_task: dict[int, list[onnx.NodeProto]] = {}
            for o in node.output:
                for c in consumers.get(o, []):
                    other = Scope.parse(node_scope(c)).task
                    if other is not None and other != own.task:
                        users = by_task.setdefault(other, [])
                        if all(u is not c for u in users):
                            users.append(c)
            for task in sorted(by_task):
                clone = _copy(node)
                clone.name = f"{node.name}__task{task}"
                rename = {o: f"{o}__task{task}" for o in node.output if o}
                del clone.output[:]
                clone.output.extend(rename.get(o, o) for o in node.output)
                set_node_scope(clone, str(own.in_task(task)))
                for c in by_task[task]:
                    for k, name in enumerate(c.input):
                        if name in rename:
                            consumers[name] = [u for u in consumers[name] if u is not c]
                            c.input[k] = rename[name]
                            consumers.setdefault(rename[name], []).append(c)
                for name in clone.input:
                    consumers.setdefault(name, []).append(clone)
                clones.append(clone)
        result.extend(reversed(clones))
        result.append(node)
    del graph.node[:]
    graph.node.extend(reversed(result))


def _copy(node: onnx.NodeProto) -> onnx.NodeProto:
    clone = onnx.NodeProto()
    clone.CopyFrom(node)
    return clone


def node_scope(node: onnx.NodeProto) -> str:
    """The scope text an ONNX node carries (`hwsim.scope.SCOPE_PROP`)."""
    return next((p.value for p in node.metadata_props if p.key == SCOPE_PROP), FALLBACK_SCOPE)


def set_node_scope(node: onnx.NodeProto, scope: str) -> None:
    for p in node.metadata_props:
        if p.key == SCOPE_PROP:
            p.value = scope
            return
    node.metadata_props.add(key=SCOPE_PROP, value=scope)
