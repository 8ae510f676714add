"""The compiler's error classes: bad input versus a broken compiler.

* `ModelError` — the file is not a model the compiler can read: malformed, hostile, too large
  for the `Limits` in force, or with a shape that cannot be resolved statically.
* `UnsupportedOpError` — a well-formed model uses an op type (or an attribute combination) that
  has no workload rule. When several op types lack a rule, one error names all of them.
* `InternalError` — an invariant that the compiler itself must keep is broken (a pass left a
  node before its producer, a rule returned another kind than it declared). Input never causes
  it: everything about the input is checked by the frontend and reported as `ModelError`.

The first two are `hwsim.errors.BadInput`s (`ValueError`s), which the CLI reports as one line
and exit code 2 ("bad input"); `InternalError` is not, so the CLI reports it as an internal error, exit code 1.
Messages are one line: which file, node or tensor, what is wrong and what is allowed.
"""

from __future__ import annotations

from typing import Mapping

from hwsim.errors import BadInput


class ModelError(BadInput):
    """The file is not a model the compiler can read (one line: which file / tensor / node, what)."""


class UnsupportedOpError(BadInput):
    """Op types (or an attribute combination) with no workload rule.

    `op_type`/`node` name the first one; `missing` maps every unsupported op type to one node
    that uses it, in graph order."""

    def __init__(self, op_type: str, node: str, detail: str = "", *, where: str = "") -> None:
        self.op_type, self.node = op_type, node
        self.missing: dict[str, str] = {op_type: node}
        msg = f"unsupported op {op_type!r} at node {node!r}"
        if detail:
            msg += f": {detail}"
        super().__init__(f"{where}: {msg}" if where else msg)

    @classmethod
    def for_ops(cls, missing: Mapping[str, str], detail: str, *, where: str = "") -> "UnsupportedOpError":
        """One error naming every op type in `missing` (op type -> one node using it)."""
        items = list(missing.items())
        if len(items) == 1:
            return cls(items[0][0], items[0][1], detail, where=where)
        err = cls(items[0][0], items[0][1], where=where)
        err.missing = dict(items)
        listed = ", ".join(f"{op!r} (node {node!r})" for op, node in items)
        msg = f"{len(items)} unsupported op types: {listed}: {detail}"
        err.args = (f"{where}: {msg}" if where else msg,)
        return err


class InternalError(RuntimeError):
    """The compiler broke one of its own invariants (a bug in hwsim, not in the input)."""
