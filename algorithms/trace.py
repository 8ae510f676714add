"""From a pure phase function to an ONNX graph whose every node carries its scope.

The route (REFERENCE §6; `torch.autograd.grad` cannot be exported directly):
1. trace the function to a functional core-ATen graph with fake tensors and translate it to ONNX
   (`torch_onnx.aten_to_onnx`, the one place that touches torch's private exporter API), with
   three decompositions of our own: convolution and max-pool backward as forward ops (ONNX has
   no translation for them) and batch norm as explicit batch statistics;
2. give a float64 graph the exact Python scalars of the code (`exact_scalars`: the
   translations would round them to float32) and fold constants (`simplify`: not the
   exporter's optimizer, see why);
3. copy each `scope(...)` annotation onto the ONNX node it became (`hwsim.scope`), found through
   the exporter's `pkg.torch.onnx.fx_node` metadata; nodes without one inherit the scope of a
   consumer, else of a producer; drop the exporter's bulky per-node metadata;
4. fuse the transpose pairs the decompositions leave behind and re-emit constant-filled
   initializers as ConstantOfShape, so that all-zero tensors do not bloat the file.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
import onnx
import onnxscript.optimizer
import torch
from onnx import helper, numpy_helper
from onnxscript import ir
from torch import Tensor

from hwsim.scope import SCOPE_PROP

from . import torch_onnx
from .base import SCOPE_KEY
from .phases import PhaseFunction

common_passes = ir.passes.common

FALLBACK_SCOPE = "other"


def to_onnx(phase: PhaseFunction, args: Sequence[Tensor], *, route: str | None = None
            ) -> onnx.ModelProto:
    """The phase traced on `args` (their shapes and dtypes, not their values) as an ONNX model
    whose inputs and outputs carry the phase's names and whose nodes carry their scopes."""
    lowered = torch_onnx.aten_to_onnx(phase.fn, args, decompositions=decompositions(),
                                      prepare=make_translatable, route=route)
    _name_values(lowered.model, phase)
    exact_scalars(lowered.model, lowered.graph)
    model_proto = simplify(lowered.model)
    torch_onnx.check_fx_names(model_proto.graph, lowered.graph)
    attach_scopes(model_proto.graph, _scopes_by_fx_name(lowered.graph))
    collapse_transposes(model_proto.graph)
    fold_constant_fills(model_proto.graph)
    return model_proto


def _name_values(model: ir.Model, phase: PhaseFunction) -> None:
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


def exact_scalars(model: ir.Model, fx_graph: torch.fx.Graph) -> None:
    """Give float64 graphs the exact Python scalars the traced code used.

    The ATen → ONNX translations write a Python float argument (Adam's β₂ = 0.999, ε = 1e-8,
    a learning rate) as a float32 Constant followed by a Cast to the tensor's type, so a
    float64 graph would compute with float32's rounding of them. Each such Constant whose
    every reader casts it to float64 gets back the float argument of its FX node that it is
    the float32 rounding of."""
    fx_nodes = {n.name: n for n in fx_graph.nodes}
    for node in model.graph:
        value = node.attributes.get("value") if node.op_type == "Constant" else None
        if value is None or value.value.dtype != ir.DataType.FLOAT:
            continue
        array = value.value.numpy()
        if array.size != 1:
            continue
        readers = [use.node for use in node.outputs[0].uses()]
        if not readers or not all(_casts_to_float64(r) for r in readers):
            continue
        fx_name = torch_onnx.fx_name_of(node.metadata_props)
        fx_node = fx_nodes.get(fx_name) if fx_name is not None else None
        if fx_node is None:
            continue
        rounded = float(array.reshape(()))
        exact = {a for a in (*fx_node.args, *fx_node.kwargs.values())
                 if isinstance(a, float) and float(np.float32(a)) == rounded}
        if len(exact) > 1:
            raise AssertionError(f"{fx_node.format_node()}: several float arguments round to "
                                 f"the constant {rounded!r}; cannot tell which it is")
        if exact:
            node.attributes["value"] = ir.AttrTensor(
                "value", ir.tensor(np.array(exact.pop(), dtype=np.float64)))
            if node.outputs[0].dtype is not None:
                node.outputs[0].dtype = ir.DataType.DOUBLE


def _casts_to_float64(node: ir.Node) -> bool:
    if node.op_type == "Cast":
        return node.attributes["to"].value == ir.DataType.DOUBLE
    if node.op_type == "CastLike":
        return node.inputs[1] is not None and node.inputs[1].dtype == ir.DataType.DOUBLE
    return False


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


def make_translatable(gm: torch.fx.GraphModule) -> None:
    """Edits the traced graph needs before its ONNX translation."""
    for node in gm.graph.nodes:
        # The ONNX translation of aten.full_like rejects the memory_format keyword (TypeError).
        if node.op == "call_function" and node.target is torch.ops.aten.full_like.default:
            node.kwargs = {k: v for k, v in node.kwargs.items() if k != "memory_format"}
        # Factory ops without a dtype are translated as float; make the traced dtype explicit.
        if (node.op == "call_function" and _packet(node) in ("arange", "full", "empty", "zeros", "ones")
                and node.kwargs.get("dtype") is None and "val" in node.meta):
            node.kwargs = {**node.kwargs, "dtype": node.meta["val"].dtype}
    remove_inplace_ops(gm)


def _packet(node: torch.fx.Node) -> str | None:
    """The ATen op name of a call ("add_" for aten.add_.Tensor), None for anything else."""
    packet = getattr(node.target, "overloadpacket", None)
    return packet.__name__ if packet is not None else None


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
        packet = _packet(node) if node.op == "call_function" else None
        if packet is None or not packet.endswith("_") or packet.endswith("__"):
            continue
        target = node.args[0]
        producer = _packet(target) if target.op == "call_function" else None
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
    """Our decompositions, laid over the exporter's (see `torch_onnx`): batch norm with batch
    statistics as explicit ReduceMean, Sub, Mul, ... (the exporter's translation is an
    inference-mode BatchNormalization plus a second, float32-only computation of the statistics:
    wrong types in float64 graphs), and the two backward ops the ONNX translation lacks,
    convolution_backward and max_pool2d_with_indices_backward."""
    return {
        torch.ops.aten.native_batch_norm.default: _batch_norm,
        torch.ops.aten.convolution_backward.default: _convolution_backward,
        torch.ops.aten.max_pool2d_with_indices_backward.default: _max_pool2d_backward,
    }


def _batch_norm(x: Tensor, weight: Tensor | None, bias: Tensor | None, running_mean: Tensor | None,
                running_var: Tensor | None, training: bool, momentum: float, eps: float
                ) -> tuple[Tensor, Tensor, Tensor] | object:
    """Training-mode batch norm without running statistics (what MAML's Conv4 uses): normalise
    each channel by the mean and biased variance over batch and space. Returns (y, mean, 1/std)
    per channel, as aten.native_batch_norm does, for its backward."""
    if not training or running_mean is not None or running_var is not None:
        return NotImplemented
    dims = [0, *range(2, x.dim())]
    mean = x.mean(dims, keepdim=True)
    centred = x - mean
    rstd = torch.rsqrt((centred * centred).mean(dims, keepdim=True) + eps)
    y = centred * rstd
    channel = [1, -1] + [1] * (x.dim() - 2)
    if weight is not None:
        y = y * weight.reshape(channel)
    if bias is not None:
        y = y + bias.reshape(channel)
    return y, mean.reshape(-1), rstd.reshape(-1)


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


def _scopes_by_fx_name(graph: torch.fx.Graph) -> dict[str, str]:
    return {n.name: n.meta["custom"][SCOPE_KEY] for n in graph.nodes
            if SCOPE_KEY in (n.meta.get("custom") or {})}


def attach_scopes(graph: onnx.GraphProto, scopes: dict[str, str]) -> None:
    """Write `hwsim.scope` on every node and drop the exporter's per-node torch metadata."""
    found: list[str | None] = []
    for node in graph.node:
        fx_name = torch_onnx.fx_node_name(node)
        found.append(scopes.get(fx_name) if fx_name is not None else None)

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
                if not p.key.startswith("pkg.torch.") and p.key not in torch_onnx.TORCH_NODE_PROPS]
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


def _copy(node: onnx.NodeProto) -> onnx.NodeProto:
    clone = onnx.NodeProto()
    clone.CopyFrom(node)
    return clone


def node_scope(node: onnx.NodeProto) -> str:
    """The scope text an ONNX node carries (`hwsim.scope.SCOPE_PROP`)."""
    props = node.metadata_props
    if len(props) == 1 and props[0].key == SCOPE_PROP:  # hwsim's own nodes: the common case
        return props[0].value
    return next((p.value for p in props if p.key == SCOPE_PROP), FALLBACK_SCOPE)


def set_node_scope(node: onnx.NodeProto, scope: str) -> None:
    for p in node.metadata_props:
        if p.key == SCOPE_PROP:
            p.value = scope
            return
    node.metadata_props.add(key=SCOPE_PROP, value=scope)
