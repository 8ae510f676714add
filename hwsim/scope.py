"""The scope codec: where a node belongs in a meta-learning step, and its one text format.

The exporter (`algorithms`) writes a scope on every ONNX node as the metadata prop
`hwsim.scope`; the compiler reads it into `Scope`; tasks, transfers and action counts carry
its text; results and reports group by it. This module is the only place that knows the
grammar

    [task<j>/][inner<i>/]<part>

with <part> one of `PARTS`. It imports nothing, so every layer may use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache

# The ONNX node metadata key that carries the scope text.
SCOPE_PROP = "hwsim.scope"

# Parts of a meta-learning step that a node can belong to.
PARTS = (
    "forward",        # inference / support forward pass
    "loss",           # loss of an inner step
    "backward",       # gradient of an inner-step loss
    "update",         # inner-loop (fast-weight) update
    "query",          # query forward pass and loss after adaptation
    "meta_grad",      # gradient of the query loss w.r.t. the meta-parameters
    "meta_reduce",    # reduction of task meta-gradients over the meta-batch
    "outer_update",   # optimizer update of the meta-parameters
    "recompute",      # an inner step's activations recomputed for the meta-gradient (checkpointing)
    "reconfig",       # loading a fabric configuration (charged by the lowering, not a graph node)
    "other",          # anything the exporter could not attribute more precisely
)
# Parts whose results are gradients (the compiler gives them the role GRADIENT).
GRADIENT_PARTS = ("backward", "meta_grad")

_SCOPE_RE = re.compile(r"^(?:task(?P<task>\d+)/)?(?:inner(?P<step>\d+)/)?(?P<part>[a-z_]+)$")


@dataclass(frozen=True, order=True)
class Scope:
    """Where a node belongs in the meta-learning step. `task`/`inner_step` are None when the
    node is shared by all tasks (outer update) or outside the inner loop (query, meta-grad)."""

    part: str = "other"
    task: int | None = None
    inner_step: int | None = None

    def __post_init__(self) -> None:
        if self.part not in PARTS:
            raise ValueError(f"unknown scope part {self.part!r}; allowed: {', '.join(PARTS)}")

    @classmethod
    def parse(cls, text: str) -> "Scope":
        """The scope written as `text`; ValueError naming the grammar if it is malformed."""
        return _parse(text)

    def __str__(self) -> str:
        return self.text

    @cached_property
    def text(self) -> str:
        """The scope written in the grammar (computed once: lowerings ask for it per task)."""
        s = self.part
        if self.inner_step is not None:
            s = f"inner{self.inner_step}/{s}"
        if self.task is not None:
            s = f"task{self.task}/{s}"
        return s

    @property
    def phase_part(self) -> str:
        """Label used for per-phase breakdowns: 'inner1/backward', 'query', 'outer_update'."""
        return self.part if self.inner_step is None else f"inner{self.inner_step}/{self.part}"

    def in_task(self, task: int | None) -> "Scope":
        """The same scope in another task of the meta-batch (None: shared by all tasks)."""
        return Scope(self.part, task, self.inner_step)


@lru_cache(maxsize=4096)
def _parse(text: str) -> Scope:
    m = _SCOPE_RE.match(text.strip())
    if not m or m["part"] not in PARTS:
        raise ValueError(f"malformed scope {text!r}; expected [taskJ/][innerI/]PART with PART in {PARTS}")
    return Scope(part=m["part"],
                 task=int(m["task"]) if m["task"] is not None else None,
                 inner_step=int(m["step"]) if m["step"] is not None else None)


def phase_part(text: str) -> str:
    """'task3/inner1/backward' -> 'inner1/backward' (the per-phase breakdown key)."""
    return _parse(text).phase_part


def task_of(text: str) -> int | None:
    """'task3/inner1/backward' -> 3; None for a scope shared by all tasks."""
    return _parse(text).task
