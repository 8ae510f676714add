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
program computes (same ops on the same values); `export.verify_export` checks it end to end
against eager PyTorch like every other export.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .phases import BATCH_NAMES
from hwsim.scope import SCOPE_PROP, Scope

from .trace import node_scope, set_node_scope

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
    nodes: list[onnx.NodeProto] = []
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
            nodes.append(gather)
        for node in tg.node:
            clone = onnx.NodeProto()
            clone.CopyFrom(node)
            clone.name = prefix + node.name
            del clone.input[:]
            clone.input.extend(_renamed(x, rename, prefix) for x in node.input)
            del clone.output[:]
            for o in node.output:
                if o:
                    rename[o] = prefix + o
                clone.output.append(rename.get(o, o))
            set_node_scope(clone, str(Scope.parse(node_scope(node)).in_task(j)))
            nodes.append(clone)
        per_task_outputs.append([_renamed(o, rename, prefix) for o in task_outputs])

    # meta_reduce: stack the tasks' results along a new leading axis, as torch.stack does.
    outer_inputs = [i.name for i in og.input]
    stacked_names = outer_inputs[len(outer_inputs) - len(task_outputs):]  # losses, grads.<param>...
    for k, stacked in enumerate(stacked_names):
        parts = []
        for j in range(meta_batch):
            part = f"t{j}.stack.{stacked}"
            nodes.append(_scoped(helper.make_node(
                "Unsqueeze", [per_task_outputs[j][k], "meta_batch.axis0"], [part],
                name=f"t{j}.unsqueeze.{stacked}"), "meta_reduce"))
            parts.append(part)
        nodes.append(_scoped(helper.make_node("Concat", parts, [stacked], name=f"stack.{stacked}", axis=0),
                             "meta_reduce"))

    # The outer graph reads the meta-parameters, the outer state and the stacked results.
    outer_keep = set(outer_inputs) | {o.name for o in og.output}
    outer_rename = {i.name: f"outer.{i.name}" for i in og.initializer}
    for init in og.initializer:
        renamed = onnx.TensorProto()
        renamed.CopyFrom(init)
        renamed.name = outer_rename[init.name]
        inits.append(renamed)
    for node in og.node:
        clone = onnx.NodeProto()
        clone.CopyFrom(node)
        clone.name = "outer." + node.name
        del clone.input[:]
        clone.input.extend(x if x in outer_keep or not x else outer_rename.setdefault(x, "outer." + x)
                           for x in node.input)
        del clone.output[:]
        clone.output.extend(o if o in outer_keep or not o else outer_rename.setdefault(o, "outer." + o)
                            for o in node.output)
        nodes.append(clone)

    value_info = {i.name: i for i in list(tg.input) + list(og.input)}
    for name, shape, dtype in batch_inputs:
        value_info[name] = helper.make_tensor_value_info(name, _ONNX_DTYPES[dtype], list(shape))
    graph = helper.make_graph(nodes, "meta_train", [value_info[n] for n in input_names],
                              list(og.output), initializer=inits)
    model = helper.make_model(graph, opset_imports=list(task.opset_import),
                              ir_version=task.ir_version, producer_name=task.producer_name,
                              producer_version=task.producer_version)
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
