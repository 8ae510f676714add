"""The bridge to torch's ONNX exporter: the one module of hwsim that touches private torch API.

hwsim needs two things that torch 2.13 offers only privately:
1. the exporter's decomposition table for the ATen ops its translations do not cover
   (`torch.onnx._internal.exporter._decomp`);
2. the translation of an already decomposed, functional ATen graph straight to ONNX
   (`_core._translate_fx_graph`), without `torch.onnx.export` re-tracing it with torch.export
   and decomposing it again — which took ~80 % of the export time (cProfile, MAML Conv4 k=5:
   make_fx 5.5 s, torch.export 11 s, decompositions 25 s, translation 4 s).

Both sit behind one function, `aten_to_onnx`, pinned with torch==2.13.0. The documented
fallback is the public exporter, `torch.onnx.export(graph_module, args, dynamo=True,
optimize=False)` on the same traced graph: the same ATen → ONNX translations, slower. It is
used when the private route is missing or changed (ImportError, AttributeError, TypeError) or
when the environment sets HWSIM_ONNX_ROUTE=public.

Both routes mark each ONNX node with the FX node it was translated from (node metadata
`pkg.torch.onnx.fx_node`, text "%<fx name> : ..."): `fx_node_name` reads it and raises
`ExporterFormatError` when a graph carries none in that format, so that a change of format
fails loudly instead of attributing every node to the scope "other".
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import onnx
import torch
import torch.fx.traceback as fx_traceback
from onnxscript import ir
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx

ROUTES = ("private", "public")
ROUTE_ENV = "HWSIM_ONNX_ROUTE"
FX_NODE_PROP = "pkg.torch.onnx.fx_node"
_FX_NAME_RE = re.compile(r"^%(\S+) :")
# Per-node metadata the exporter writes, dropped from hwsim's graphs (bulky, torch-internal).
TORCH_NODE_PROPS = ("namespace", "class_hierarchy", "stack_trace", "fx_node", "name_scopes")

log = logging.getLogger(__name__)


class ExporterFormatError(RuntimeError):
    """torch's ONNX exporter no longer produces what hwsim reads (private API or node metadata)."""


@dataclass(frozen=True)
class Lowered:
    """An ONNX model and the FX graph it was translated from (whose node names its nodes'
    `pkg.torch.onnx.fx_node` metadata refer to)."""

    model: ir.Model
    graph: torch.fx.Graph
    route: str


def aten_to_onnx(fn: Callable[..., tuple[Tensor, ...]], args: Sequence[Tensor], *,
                 decompositions: dict, prepare: Callable[[torch.fx.GraphModule], None],
                 route: str | None = None) -> Lowered:
    """Trace `fn(*args)` to a functional core-ATen graph with fake tensors (`decompositions`
    over the route's own table; `prepare` edits the traced graph in place) and translate it to
    ONNX. `route`: "private" (default, falls back to "public" with a logged warning when the
    private API is unusable) or "public"; default from the environment variable
    HWSIM_ONNX_ROUTE."""
    route = route or os.environ.get(ROUTE_ENV, "private")
    if route not in ROUTES:
        raise ValueError(f"{ROUTE_ENV} must be one of {', '.join(ROUTES)}; got {route!r}")
    if route == "private":
        try:
            table = dict(_private_table())
        except (ImportError, AttributeError, TypeError) as e:
            log.warning("torch's private ONNX exporter API is not usable (%s: %s); using the "
                        "public exporter", type(e).__name__, e)
            route = "public"
    if route == "public":
        table = dict(torch.export.default_decompositions().items())
    table.update(decompositions)
    gm = _trace(fn, args, table)
    prepare(gm)
    gm.recompile()
    if route == "private":
        try:
            return Lowered(_translate_private(gm), gm.graph, "private")
        except (ImportError, AttributeError, TypeError) as e:
            log.warning("torch's private ONNX translation failed (%s: %s); using the public "
                        "exporter", type(e).__name__, e)
    return _export_public(gm, args)


def fx_node_name(node: onnx.NodeProto) -> str | None:
    """The name of the FX node `node` was translated from, or None (a helper node the
    translation added, e.g. a constant)."""
    for p in node.metadata_props:
        if p.key == FX_NODE_PROP:
            m = _FX_NAME_RE.match(p.value)
            if m is None:
                raise ExporterFormatError(
                    f"node {node.name!r} carries {FX_NODE_PROP} = {p.value[:60]!r}, not "
                    f"'%<name> : ...' as torch 2.13 writes it: the exporter's metadata format "
                    f"changed, so nodes cannot be attributed to their scopes (pin torch==2.13.0)")
            return m.group(1)
    return None


def fx_name_of(props: dict[str, str]) -> str | None:
    """`fx_node_name` for the metadata of an `onnxscript.ir` node."""
    text = props.get(FX_NODE_PROP)
    if text is None:
        return None
    m = _FX_NAME_RE.match(text)
    if m is None:
        raise ExporterFormatError(f"{FX_NODE_PROP} = {text[:60]!r} is not '%<name> : ...' as "
                                  f"torch 2.13 writes it (pin torch==2.13.0)")
    return m.group(1)


def check_fx_names(graph: onnx.GraphProto, fx_graph: torch.fx.Graph) -> None:
    """Raise ExporterFormatError unless the translated nodes name FX nodes of `fx_graph`."""
    names = [fx_node_name(n) for n in graph.node]
    found = [n for n in names if n is not None]
    if graph.node and not found:
        raise ExporterFormatError(
            f"no node of the translated graph carries {FX_NODE_PROP}: the exporter's metadata "
            f"format changed, so nodes cannot be attributed to their scopes (pin torch==2.13.0)")
    known = {n.name for n in fx_graph.nodes}
    unknown = sorted(set(found) - known)
    if unknown:
        raise ExporterFormatError(
            f"{len(unknown)} translated nodes name FX nodes the traced graph does not have "
            f"(e.g. {unknown[0]!r}): the exporter's metadata format changed (pin torch==2.13.0)")


# ---------------------------------------------------------------- tracing


def _trace(fn: Callable[..., tuple[Tensor, ...]], args: Sequence[Tensor], table: dict
           ) -> torch.fx.GraphModule:
    """Fake tensors: with real ones make_fx computes every op and creates a fake-tensor mode
    per value to describe it, which made tracing 6× slower. `preserve_node_meta` keeps each
    node's `scope(...)` annotation in node.meta["custom"].

    The default dtype follows the arguments' float type: decompositions turn Python scalars
    into `scalar_tensor`s of the default dtype, so a float64 graph traced under the float32
    default computes with float32 roundings of Adam's β₁, β₂, ε and of every learning rate."""
    floats = {a.dtype for a in args if a.is_floating_point()}
    default = floats.pop() if len(floats) == 1 else torch.get_default_dtype()
    previous = torch.get_default_dtype()
    torch.set_default_dtype(default)
    try:
        with fx_traceback.preserve_node_meta():
            return make_fx(fn, decomposition_table=table, tracing_mode="fake")(*args)
    finally:
        torch.set_default_dtype(previous)


# ---------------------------------------------------------------- private route


@functools.lru_cache(maxsize=1)
def _registry():  # noqa: ANN202 - a private torch type
    from torch.onnx._internal.exporter import _registration
    with _quiet_exporter():
        return _registration.ONNXRegistry.from_torchlib()


@functools.lru_cache(maxsize=1)
def _private_table() -> dict:
    """The exporter's table for ops it cannot translate (e.g. mul.Scalar) under the core ATen
    decompositions (without which the NLL normaliser is exported as 1, so cross-entropy
    gradients come out N× too large; REFERENCE §6)."""
    from torch.onnx._internal.exporter import _decomp
    translatable = set(_decomp.get_onnx_implemented_overloads(_registry()))
    table = dict(_decomp.create_onnx_friendly_decomposition_table(translatable))
    table.update(torch.export.default_decompositions().items())
    return table


def _translate_private(gm: torch.fx.GraphModule) -> ir.Model:
    from torch.onnx._internal.exporter import _constants, _core, _fx_passes, _ir_passes
    _fx_passes.insert_type_promotion_nodes(gm)
    model = ir.Model(ir.Graph([], [], nodes=[], name="main_graph"),
                     ir_version=_constants.ONNX_IR_VERSION, producer_name="hwsim",
                     producer_version=torch.__version__)
    with _quiet_exporter():
        _core._translate_fx_graph(gm.graph, model, graph_like=model.graph, owned_graphs={},
                                  lower="at_conversion", registry=_registry())
    _ir_passes.add_opset_imports(model)
    return model


# ---------------------------------------------------------------- public route


def _export_public(gm: torch.fx.GraphModule, args: Sequence[Tensor]) -> Lowered:
    """`torch.onnx.export` on the traced graph: torch.export re-traces it (keeping each node's
    meta["custom"]), so the node names the ONNX metadata refers to are the exported program's."""
    gm.eval()  # no module state either way; only silences the exporter's training-mode warning
    with _quiet_exporter():
        program = torch.onnx.export(gm, tuple(args), dynamo=True, optimize=False, verbose=False)
    model = program.model
    model.producer_name = "hwsim"
    return Lowered(model, program.exported_program.graph, "public")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter logs that torchvision's ops are not registered and that our nodes have no
    nn.Module stack (they come from functions, not modules): neither concerns these graphs, and
    a CLI user should not see them."""
    names = ("_registration", "_core", "_compat", "_capture_strategies")
    logs = [logging.getLogger(f"torch.onnx._internal.exporter.{m}") for m in names]
    levels = [lg.level for lg in logs]
    for lg in logs:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        for lg, level in zip(logs, levels):
            lg.setLevel(level)
