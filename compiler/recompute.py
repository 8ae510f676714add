"""Recomputation (checkpointing) of the inner loop: a `Graph -> Graph` transform.

Second-order MAML differentiates through every inner step, so the meta-gradient reads the
activations of every step: the *stash*. Exported as they are, those tensors live from their
inner step to the end of the meta-gradient (`stash_all`). The other policies trade that memory
for recomputation, as gradient checkpointing does (Chen et al., "Training Deep Nets with
Sublinear Memory Cost", 2016):

* `per_step` — keep each inner step's inputs (its fast weights, the results of its update,
  and the batch) and recompute the step's forward, loss and backward values the meta-gradient
  reads, right before it reads them;
* `all` — keep only the meta-parameters and the batch: each step's values are recomputed
  from the meta-parameters, re-running the earlier inner steps (their forward, backward and
  update) first, so step i costs i + 1 steps of recomputation.

The recomputed nodes are copies of the originals (same op, attributes and shapes, renamed
`<node>@rc<i>`, results `<tensor>@rc<i>`; `@rc<i>w` for the copies that rebuild step i's
update results under `all`) in scope part `recompute` of inner step i (the step whose values
they rebuild), so reports show their MACs and time per inner step. Each copy is
placed just before the first node that needs it, so recomputed values live only while the
meta-gradient uses them. Originals whose results only the meta-gradient read become dead and
are removed. What is never recomputed: values that do not depend on any parameter (the batch
and what is computed from data alone), and values one inner step hands to another.

A graph without inner steps or without a meta-gradient is returned unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from hwsim.scope import Scope

from .ir import Graph, Node, Role
from .passes import eliminate_dead_nodes
from .options import RECOMPUTES

# Parts of an inner step whose values per_step recomputes; `all` recomputes updates too.
STEP_PARTS = frozenset({"forward", "loss", "backward"})
INNER_PARTS = frozenset({"forward", "loss", "backward", "update"})
READER_PART = "meta_grad"


def recompute(graph: Graph, policy: str) -> Graph:
    """`graph` with the inner loop's stash recomputed under `policy` (module doc). Raises
    ValueError for an unknown policy (the lowering validates its options before)."""
    if policy not in RECOMPUTES:
        raise ValueError(f"unknown recompute policy {policy!r}; allowed: {', '.join(RECOMPUTES)}")
    if policy == "stash_all":
        return graph
    parts = STEP_PARTS if policy == "per_step" else INNER_PARTS
    producer = {o: n for n in graph.nodes for o in n.outputs if o}
    index = {n.name: k for k, n in enumerate(graph.nodes)}
    learned = _depends_on_parameters(graph)
    steps_reading: dict[str, set] = defaultdict(set)   # tensor -> inner steps (task, step) reading it
    for n in graph.nodes:
        if n.scope.inner_step is not None:
            for i in n.inputs:
                if i:
                    steps_reading[i].add((n.scope.task, n.scope.inner_step))

    def recomputed(name: str, task: int | None, step: int) -> bool:
        """Whether region (task, step) recomputes `name` rather than keep it."""
        p = producer.get(name)
        if p is None or not learned.get(name, False):
            return False
        s = p.scope
        if s.task != task or s.inner_step is None or s.part not in parts:
            return False
        if policy == "per_step":   # only this step's own values, and none another step reads
            return s.inner_step == step and steps_reading[name] <= {(task, step)}
        return s.inner_step <= step   # all: every earlier step too, back to the meta-parameters

    # the stash: values of an inner step the meta-gradient reads, by region (task, step, what).
    # Under `all` the results of a step's update (the next fast weights) form a region of their
    # own: the meta-gradient reads them early, and sharing their recomputation with the step's
    # activations, read late, would keep those alive all along.
    readers: dict[tuple, list[tuple[Node, str]]] = defaultdict(list)
    for n in graph.nodes:
        if n.scope.part != READER_PART:
            continue
        for i in dict.fromkeys(x for x in n.inputs if x):
            p = producer.get(i)
            if p is not None and p.scope.inner_step is not None and p.scope.task == n.scope.task \
                    and recomputed(i, p.scope.task, p.scope.inner_step):
                what = "w" if p.scope.part == "update" else ""
                readers[(p.scope.task, p.scope.inner_step, what)].append((n, i))
    if not readers:
        return graph

    rename: dict[tuple, dict[str, str]] = {}   # region -> original tensor -> copy
    need: dict[tuple[tuple, str], int] = {}     # (region, original node) -> position it is needed at
    region_nodes: dict[tuple, list[Node]] = {}
    for region, uses in readers.items():
        task, step, what = region
        nodes = _region(graph, producer, [t for _, t in uses], lambda t: recomputed(t, task, step))
        region_nodes[region] = nodes
        rename[region] = {o: f"{o}@rc{step}{what}" for n in nodes for o in n.outputs if o}
        for reader, t in uses:
            key = (region, producer[t].name)
            need[key] = min(need.get(key, len(graph.nodes)), index[reader.name])
        for n in reversed(nodes):   # a copy is needed before the copies that read it
            key = (region, n.name)
            for i in n.inputs:
                if i in rename[region]:
                    pkey = (region, producer[i].name)
                    need[pkey] = min(need.get(pkey, len(graph.nodes)), need.get(key, len(graph.nodes)))

    copies_at: dict[int, list[tuple]] = defaultdict(list)
    tensors = dict(graph.tensors)
    for region, nodes in region_nodes.items():
        task, step, what = region
        names = rename[region]
        scope = Scope("recompute", task, step)
        for n in nodes:
            copy = Node(f"{n.name}@rc{step}{what}", n.op_type, tuple(names.get(i, i) for i in n.inputs),
                        tuple(names.get(o, o) for o in n.outputs), n.attrs, scope)
            for o in n.outputs:
                if o:
                    tensors[names[o]] = replace(graph.tensors[o], name=names[o])
            copies_at[need[(region, n.name)]].append((step, what, index[n.name], copy))
    rewired = {}
    for region, uses in readers.items():
        for reader, t in uses:
            rewired.setdefault(reader.name, {})[t] = rename[region][t]
    nodes_out: list[Node] = []
    for k, n in enumerate(graph.nodes):
        for *_, copy in sorted(copies_at.get(k, ()), key=lambda c: c[:3]):
            nodes_out.append(copy)
        if n.name in rewired:
            m = rewired[n.name]
            n = Node(n.name, n.op_type, tuple(m.get(i, i) for i in n.inputs), n.outputs, n.attrs, n.scope)
        nodes_out.append(n)
    out = Graph(graph.name, nodes_out, tensors, list(graph.inputs), list(graph.outputs),
                dict(graph.metadata), dict(graph.constants))
    return eliminate_dead_nodes(out)


def _region(graph: Graph, producer: dict[str, Node], stash: list[str], recomputed) -> list[Node]:
    """The nodes that rebuild `stash` from what is kept, in program order."""
    seen: set[str] = set()
    todo = [producer[t] for t in dict.fromkeys(stash)]
    while todo:
        n = todo.pop()
        if n.name in seen:
            continue
        seen.add(n.name)
        for i in n.inputs:
            if i and recomputed(i):
                todo.append(producer[i])
    return [n for n in graph.nodes if n.name in seen]


def _depends_on_parameters(graph: Graph) -> dict[str, bool]:
    """Per tensor: whether it depends on a parameter (what does not — the batch and what is
    computed from data alone — is kept, never recomputed)."""
    out = {name: t.role is Role.PARAMETER for name, t in graph.tensors.items()}
    for n in graph.nodes:
        dep = any(out.get(i, False) for i in n.inputs if i)
        for o in n.outputs:
            if o:
                out[o] = dep
    return out


__all__ = ["RECOMPUTES", "recompute"]
