"""The meta_train graph of a meta-batch of B tasks, assembled from ONE task's exported graph.

A meta-training step is B copies of the same per-task computation (inner loop, query loss,
meta-gradient) followed by their mean and the outer update (see `base.Algorithm`). Tracing and
translating all B copies made export time grow with B; instead the task is exported once
(`phases.task_phase`), the reduction and outer update once (`phases.outer_phase`), and this
module writes the meta_train graph:

    task j's inputs     Gather(support_x, j) ...                      scope task<j>/<first use>
    task j's work       the task graph's nodes, values renamed t<j>.  scope task<j>/<scope>
    meta_reduce         Unsqueeze + Concat of the tasks' losses and meta-gradients
    outer graph         mean over tasks, outer update                 meta_reduce, outer_update

so export time no longer depends on B. The result computes exactly what the traced B-task
program computes (same ops on the same values).

`split` is the inverse, written independently of `assemble` so that it can check any graph: it
proves that a meta_train graph is B exact copies of one task (same ops, attributes and scopes,
same wiring, each reading its own task's batch slice), their stacking in task order and an
outer part, and returns task 0 and the outer part as graphs of their own. Verification checks
those two numerically; with the copies proven, its cost no longer grows with B either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hwsim.scope import SCOPE_PROP, Scope

from .phases import BATCH_NAMES
from .trace import node_scope

_ONNX_DTYPES = {"float32": onnx.TensorProto.FLOAT, "float64": onnx.TensorProto.DOUBLE,
                "int64": onnx.TensorProto.INT64}


def assemble(task: onnx.ModelProto, outer: onnx.ModelProto, meta_batch: int,
             batch_inputs: Sequence[tuple[str, tuple[int, ...], str]],
             input_names: Sequence[str]) -> onnx.ModelProto:
    """The meta_train model for `meta_batch` tasks.

    task        graph: params..., support_x, support_y, query_x, query_y (one task) -> loss, grad...
    outer       graph: params..., state..., losses, grads.<param>... -> meta_train outputs
    batch_inputs  (name, shape with the meta-batch axis, dtype name) of the four batch inputs
    input_names   the meta_train inputs in order (params, state, batch)."""
    tg, og = task.graph, outer.graph
    task_inputs = [i.name for i in tg.input]
    pnames = [n for n in task_inputs if n not in BATCH_NAMES]
    task_outputs = [o.name for o in tg.output]  # loss, grad.<param>...
    inits: list[onnx.TensorProto] = []

    # Constants of the task graph are shared by all copies (initializers belong to no node).
    task_consts = {i.name: f"task.{i.name}" for i in tg.initializer}
    for init in tg.initializer:
        renamed = onnx.TensorProto()
        renamed.CopyFrom(init)
        renamed.name = task_consts[init.name]
        inits.append(renamed)
    inits.append(numpy_helper.from_array(np.array([0], dtype=np.int64), "meta_batch.axis0"))

    first_use = _first_use_scopes(tg)
    # Each task node once: its bytes without name, inputs, outputs and scope (every copy starts
    # from them), and its scope. 25 tasks of a 6,000-node Conv4 task are 150,000 nodes: copying
    # NodeProtos one by one took seconds.
    templates = []
    for node in tg.node:
        bare = onnx.NodeProto()
        bare.CopyFrom(node)
        for field in ("name", "input", "output", "metadata_props"):
            bare.ClearField(field)
        templates.append((bare.SerializeToString(), node, Scope.parse(node_scope(node))))
    model = helper.make_model(onnx.GraphProto(name="meta_train"), opset_imports=list(task.opset_import),
                              ir_version=task.ir_version, producer_name=task.producer_name,
                              producer_version=task.producer_version)
    graph = model.graph  # filled in place: make_model would copy a finished graph
    per_task_outputs: list[list[str]] = []
    for j in range(meta_batch):
        prefix = f"t{j}."
        index = f"meta_batch.index{j}"
        inits.append(numpy_helper.from_array(np.array(j, dtype=np.int64), index))
        rename = {n: n for n in pnames}
        rename.update(task_consts)
        for name in BATCH_NAMES:
            if name not in first_use:
                continue  # the algorithm does not read it (e.g. Reptile's query set)
            rename[name] = f"{prefix}{name}"
            gather = helper.make_node("Gather", [name, index], [rename[name]], name=f"{prefix}select_{name}", axis=0)
            gather.metadata_props.add(key=SCOPE_PROP, value=str(Scope.parse(first_use[name]).in_task(j)))
            graph.node.append(gather)
        for bare, node, scope in templates:
            clone = graph.node.add()
            clone.MergeFromString(bare)
            clone.name = prefix + node.name
            clone.input.extend(_renamed(x, rename, prefix) for x in node.input)
            for o in node.output:
                if o:
                    rename[o] = prefix + o
                clone.output.append(rename.get(o, o))
            clone.metadata_props.add(key=SCOPE_PROP, value=str(scope.in_task(j)))
        per_task_outputs.append([_renamed(o, rename, prefix) for o in task_outputs])

    # meta_reduce: stack the tasks' results along a new leading axis, as torch.stack does.
    outer_inputs = [i.name for i in og.input]
    stacked_names = outer_inputs[len(outer_inputs) - len(task_outputs):]  # losses, grads.<param>...
    for k, stacked in enumerate(stacked_names):
        parts = []
        for j in range(meta_batch):
            part = f"t{j}.stack.{stacked}"
            graph.node.append(_scoped(helper.make_node(
                "Unsqueeze", [per_task_outputs[j][k], "meta_batch.axis0"], [part],
                name=f"t{j}.unsqueeze.{stacked}"), "meta_reduce"))
            parts.append(part)
        graph.node.append(_scoped(helper.make_node("Concat", parts, [stacked], name=f"stack.{stacked}",
                                                   axis=0), "meta_reduce"))

    # The outer graph reads the meta-parameters, the outer state and the stacked results.
    outer_keep = set(outer_inputs) | {o.name for o in og.output}
    outer_rename = {i.name: f"outer.{i.name}" for i in og.initializer}
    for init in og.initializer:
        renamed = onnx.TensorProto()
        renamed.CopyFrom(init)
        renamed.name = outer_rename[init.name]
        inits.append(renamed)
    for node in og.node:
        clone = graph.node.add()
        clone.CopyFrom(node)
        clone.name = "outer." + node.name
        del clone.input[:]
        clone.input.extend(x if x in outer_keep or not x else outer_rename.setdefault(x, "outer." + x)
                           for x in node.input)
        del clone.output[:]
        clone.output.extend(o if o in outer_keep or not o else outer_rename.setdefault(o, "outer." + o)
                            for o in node.output)

    value_info = {i.name: i for i in list(tg.input) + list(og.input)}
    for name, shape, dtype in batch_inputs:
        value_info[name] = helper.make_tensor_value_info(name, _ONNX_DTYPES[dtype], list(shape))
    graph.input.extend(value_info[n] for n in input_names)
    graph.output.extend(og.output)
    graph.initializer.extend(inits)
    return model


def _renamed(name: str, rename: dict[str, str], prefix: str) -> str:
    if not name:
        return name
    return rename.get(name, prefix + name)


def _scoped(node: onnx.NodeProto, scope: str) -> onnx.NodeProto:
    node.metadata_props.add(key=SCOPE_PROP, value=scope)
    return node


def _first_use_scopes(graph: onnx.GraphProto) -> dict[str, str]:
    """Scope of the first node reading each batch input: selecting a task's support set belongs
    to its first inner step, selecting its query set to the query pass."""
    out: dict[str, str] = {}
    for node in graph.node:
        for name in node.input:
            if name in BATCH_NAMES and name not in out:
                out[name] = node_scope(node)
    return out


# ---------------------------------------------------------------- the inverse: split and check


class NotAssembled(AssertionError):
    """A meta_train graph that is not B identical task copies, their stacking and an outer part."""


@dataclass(frozen=True)
class Parts:
    """A meta_train graph cut into its parts.

    task   task 0 as a graph: params..., support_x, support_y, query_x, query_y (each with a
           meta-batch axis of 1) -> its results in the order of `stacked` (loss, grad.<param>...)
    outer  params..., state..., the stacked names -> the meta_train outputs
    """

    task: onnx.ModelProto
    outer: onnx.ModelProto
    meta_batch: int
    stacked: tuple[str, ...]


def split(model: onnx.ModelProto, stacked: Sequence[str]) -> Parts:
    """Check that `model` is an assembled meta_train graph whose tasks' results are stacked
    into the values `stacked` (e.g. "losses", "grads.<param>"), and cut it into its parts.
    Raises NotAssembled naming the first node that breaks the structure."""
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    shared_names = {i.name for i in g.input} | set(inits)
    tasks: dict[int, list[tuple[onnx.NodeProto, Scope]]] = {}
    common: list[onnx.NodeProto] = []
    for node in g.node:
        scope = Scope.parse(node_scope(node))
        if scope.task is None:
            common.append(node)
        else:
            tasks.setdefault(scope.task, []).append((node, scope))
    meta_batch = len(tasks)
    if sorted(tasks) != list(range(meta_batch)) or meta_batch == 0:
        raise NotAssembled(f"the graph's tasks are {sorted(tasks)}, not 0..B-1")
    sizes = {j: len(nodes) for j, nodes in tasks.items()}
    if len(set(sizes.values())) != 1:
        raise NotAssembled(f"tasks have different node counts: {sizes}")

    copies = [_copy_map(tasks[0], tasks[j], j, shared_names, inits) for j in range(meta_batch)]
    producer = {o: n for n in g.node for o in n.output if o}

    # Stacking: stacked[k] = Concat(axis 0) of Unsqueeze(axis 0) of task j's k-th result, j = 0..B-1.
    stacking: set[int] = set()
    results: list[str] = []
    for name in stacked:
        concat = producer.get(name)
        if concat is None or concat.op_type != "Concat" or _attr(concat, "axis") != 0 \
                or len(concat.input) != meta_batch:
            raise NotAssembled(f"{name!r} is not a Concat along axis 0 of {meta_batch} task results")
        stacking.add(id(concat))
        first = None
        for j, part in enumerate(concat.input):
            unsqueeze = producer.get(part)
            if unsqueeze is None or unsqueeze.op_type != "Unsqueeze" or \
                    _int_values(inits.get(unsqueeze.input[1])) != [0]:
                raise NotAssembled(f"input {j} of the Concat making {name!r} is not an Unsqueeze at axis 0")
            stacking.add(id(unsqueeze))
            if j == 0:
                first = unsqueeze.input[0]
                if first not in copies[0]:
                    raise NotAssembled(f"the first part of {name!r} is not a result of task 0")
            elif copies[j].get(first) != unsqueeze.input[0]:
                raise NotAssembled(f"part {j} of {name!r} is not task {j}'s copy of task 0's {first!r}")
        results.append(first)

    outer_nodes = [n for n in common if id(n) not in stacking]
    for node in outer_nodes:
        if any(x in BATCH_NAMES for x in node.input):
            raise NotAssembled(f"node {node.name!r} outside the tasks reads a batch input")
    task_values = {v for copy in copies for v in copy.values()}
    for node in outer_nodes:
        if any(x in task_values for x in node.input):
            raise NotAssembled(f"outer node {node.name!r} reads a task's value directly, not its stacking")
    float_type = g.input[0].type.tensor_type.elem_type
    batch = {i.name: i for i in g.input if i.name in BATCH_NAMES}
    task_reads = {x for n, _ in tasks[0] for x in n.input}
    outer_reads = {x for n in outer_nodes for x in n.input}
    task_inputs = [_one_task(i) if i.name in batch else i for i in g.input
                   if i.name not in stacked and i.name in task_reads]
    task_graph = _sub_model(model, [n for n, _ in tasks[0]], task_inputs,
                            [helper.make_tensor_value_info(r, float_type, None) for r in results], inits)
    outer_inputs = [i for i in g.input if i.name not in batch and i.name in outer_reads]
    outer_inputs += [helper.make_tensor_value_info(n, float_type, None) for n in stacked]
    outer_graph = _sub_model(model, outer_nodes, outer_inputs, list(g.output), inits)
    return Parts(task_graph, outer_graph, meta_batch, tuple(stacked))


def _copy_map(first: list[tuple[onnx.NodeProto, Scope]], other: list[tuple[onnx.NodeProto, Scope]],
              j: int, shared: set[str], inits: dict[str, onnx.TensorProto]) -> dict[str, str]:
    """Task 0's value names -> task j's, checking node by node that task j is task 0's copy."""
    mapping: dict[str, str] = {}
    for k, ((n0, s0), (nj, sj)) in enumerate(zip(first, other)):
        def differ(what: str) -> NotAssembled:
            return NotAssembled(f"task {j} node {k} ({nj.name}, {nj.op_type}) is not a copy of "
                                f"task 0's ({n0.name}, {n0.op_type}): {what}")
        if n0.op_type != nj.op_type or n0.domain != nj.domain:
            raise differ("another op")
        if n0.attribute != nj.attribute:
            raise differ("other attributes")
        if sj.task != j or sj.part != s0.part or sj.inner_step != s0.inner_step:
            raise differ(f"scope {sj} for {s0}")
        inputs0, inputs_j = n0.input, nj.input
        if len(inputs0) != len(inputs_j) or len(n0.output) != len(nj.output):
            raise differ("another number of inputs or outputs")
        for position, (x0, xj) in enumerate(zip(inputs0, inputs_j)):
            mapped = mapping.get(x0)
            if mapped is not None:
                if mapped != xj:
                    raise differ(f"input {position} is {xj!r}, not task {j}'s copy of {x0!r}")
            elif x0 in shared:
                if x0 in BATCH_NAMES and (n0.op_type != "Gather" or position != 0
                                          or _attr(n0, "axis") not in (0, None)):
                    raise differ(f"it reads the batch input {x0!r} other than by selecting its task")
                if position == 1 and n0.op_type == "Gather" and inputs0[0] in BATCH_NAMES:
                    if _int_values(inits.get(x0)) != [0] or _int_values(inits.get(xj)) != [j]:
                        raise differ(f"it selects {inputs_j[0]!r} at {_int_values(inits.get(xj))}, "
                                     f"not at task {j}")
                elif xj != x0:
                    raise differ(f"input {position} is {xj!r} where task 0 reads {x0!r}")
            elif x0 or xj:
                raise differ(f"input {position} ({x0!r}) is neither task 0's own value nor shared")
        for x0, xj in zip(n0.output, nj.output):
            if x0:
                mapping[x0] = xj
    return mapping


def _one_task(value: onnx.ValueInfoProto) -> onnx.ValueInfoProto:
    """A batch input's type with a meta-batch axis of 1."""
    out = onnx.ValueInfoProto()
    out.CopyFrom(value)
    out.type.tensor_type.shape.dim[0].ClearField("dim_param")
    out.type.tensor_type.shape.dim[0].dim_value = 1
    return out


def _sub_model(model: onnx.ModelProto, nodes: list[onnx.NodeProto], inputs: list, outputs: list,
               inits: dict[str, onnx.TensorProto]) -> onnx.ModelProto:
    read = {x for n in nodes for x in n.input}
    graph = helper.make_graph(nodes, model.graph.name, inputs, outputs,
                              initializer=[t for name, t in inits.items() if name in read])
    return helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version,
                             producer_name=model.producer_name, producer_version=model.producer_version)


def _attr(node: onnx.NodeProto, name: str) -> object:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return None


def _int_values(tensor: onnx.TensorProto | None) -> list[int] | None:
    if tensor is None or tensor.data_type != onnx.TensorProto.INT64:
        return None
    return [int(v) for v in numpy_helper.to_array(tensor).reshape(-1)]
