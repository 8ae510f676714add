"""Recurrent layers: LSTM, GRU, RNN (ONNX operator spec, opset 7 and later). Kind MATMUL.

Each time step of each direction multiplies the step's input X_t [batch, input_size] by the
input weights W^T and the previous hidden state H_{t-1} [batch, hidden] by the recurrence
weights R^T, for every gate at once. Those gate GEMMs are the MACs:

    MACs = directions · seq_length · batch · (input_size + hidden_size) · gates · hidden_size

with gates = 4 for LSTM (i, o, f, c), 3 for GRU (z, r, h), 1 for RNN — the equations of the
ONNX operator spec (onnx/docs/Operators.md, "LSTM", "GRU", "RNN"):

    LSTM  it = f(Xt·Wiᵀ + Ht-1·Riᵀ + Pi⊙Ct-1 + Wbi + Rbi)      GRU  zt = f(Xt·Wzᵀ + Ht-1·Rzᵀ + Wbz + Rbz)
          ft = f(Xt·Wfᵀ + Ht-1·Rfᵀ + Pf⊙Ct-1 + Wbf + Rbf)           rt = f(Xt·Wrᵀ + Ht-1·Rrᵀ + Wbr + Rbr)
          ct = g(Xt·Wcᵀ + Ht-1·Rcᵀ + Wbc + Rbc)                     ht = g(Xt·Whᵀ + (rt⊙Ht-1)·Rhᵀ + Rbh + Wbh)
          Ct = ft⊙Ct-1 + it⊙ct                                      Ht = (1 − zt)⊙ht + zt⊙Ht-1
          ot = f(Xt·Woᵀ + Ht-1·Roᵀ + Po⊙Ct + Wbo + Rbo)       RNN  Ht = f(Xt·Wiᵀ + Ht-1·Riᵀ + Wbi + Rbi)
          Ht = ot⊙h(Ct)

Flops per step, direction and batch row (H = hidden_size), counted from those equations:
* adding the X and H products of every gate: gates·H; biases (input B given): 2·gates·H;
* LSTM peepholes (input P given): 3H multiplies + 3H adds; cell update 3H; output ⊙ H;
* GRU reset ⊙ H; output (1 − z), two ⊙ and an add: 4H;
* each activation (LSTM f, f, g, f, h; GRU f, f, g; RNN f) costs what the elementwise op of
  that name costs (`compiler.ops.elementwise`, e.g. Sigmoid 4 flops + 1 transcendental),
  Affine 2 and ScaledTanh Tanh + 2;
* `clip` adds a min and a max per gate pre-activation: 2·gates·H.
`sequence_lens` is a run-time input: every sequence is costed at the full seq_length (an upper
bound, the cost when all sequences are full). dims: b = directions·seq_length (the sequential
GEMMs), m = batch, k = input_size + hidden_size, n = gates·hidden_size, plus seq, directions,
hidden, input, gates and transcendental.
"""

from __future__ import annotations

from ..errors import UnsupportedOpError
from ..ir import Graph, Node
from ..workload import Kind, Workload, rule
from .elementwise import OPS_PER_ELEMENT
from .operands import has_input, shape, workload

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
# Default activations of the ONNX spec: LSTM f=Sigmoid, g=Tanh, h=Tanh (f used by 3 gates);
# GRU f=Sigmoid, g=Tanh (f used by 2 gates); RNN f=Tanh. Listed per application.
DEFAULT_ACTIVATIONS = {"LSTM": ("Sigmoid", "Sigmoid", "Tanh", "Sigmoid", "Tanh"),
                       "GRU": ("Sigmoid", "Sigmoid", "Tanh"), "RNN": ("Tanh",)}
# Which of the node's `activations` (per direction) each application uses: LSTM lists f, g, h.
_APPLIED = {"LSTM": (0, 0, 1, 0, 2), "GRU": (0, 0, 1), "RNN": (0,)}
# The activation functions the ONNX spec allows; those that are elementwise ops of their own cost
# what that op costs, Affine (α·x + β: multiply, add) and ScaledTanh (α·tanh(β·x)) are extra.
ACTIVATIONS = ("Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh",
               "HardSigmoid", "Elu", "Softsign", "Softplus")
_EXTRA_ACTIVATIONS = {"Affine": (2, 0), "ScaledTanh": (6, 1)}


def _formula(op: str) -> str:
    return (f"MACs = dirs·seq·batch·(input+hidden)·{GATES[op]}·hidden (gate GEMMs, ONNX spec "
            "equations); gate adds, biases, activations as flops")


@rule("LSTM", kind=Kind.MATMUL, formula=_formula)
def lstm(graph: Graph, node: Node) -> Workload:
    return _recurrent(graph, node)


@rule("GRU", kind=Kind.MATMUL, formula=_formula)
def gru(graph: Graph, node: Node) -> Workload:
    return _recurrent(graph, node)


@rule("RNN", kind=Kind.MATMUL, formula=_formula)
def rnn(graph: Graph, node: Node) -> Workload:
    return _recurrent(graph, node)


def _recurrent(graph: Graph, node: Node) -> Workload:
    op = node.op_type
    gates = GATES[op]
    x, w = shape(graph, node.inputs[0]), shape(graph, node.inputs[1])
    if len(x) != 3 or len(w) != 3:
        raise UnsupportedOpError(op, node.name, f"X {x} and W {w} must be rank 3")
    seq, batch = (x[1], x[0]) if int(node.attr("layout", 0)) == 1 else (x[0], x[1])
    dirs, input_size = w[0], x[2]
    hidden = int(node.attr("hidden_size", w[1] // gates))
    if w[1] != gates * hidden or w[2] != input_size:
        raise UnsupportedOpError(op, node.name, f"W {w} does not match {gates} gates of hidden size "
                                 f"{hidden} over input size {input_size}")
    # flops per hidden unit of one step of one direction, activations apart
    fixed = gates                                  # summing the X and H products
    if has_input(node, 3):
        fixed += 2 * gates                         # Wb and Rb
    if node.attr("clip") is not None:
        fixed += 2 * gates                         # min and max per pre-activation
    if op == "LSTM":
        fixed += 4 + (6 if has_input(node, 7) else 0)  # Ct, Ht (+ peepholes: 3 mul, 3 add)
    elif op == "GRU":
        fixed += 5                                 # reset ⊙; (1 − z)⊙h + z⊙H
    act_flops, act_trans = _activation_costs(node, dirs)
    rows = seq * batch * hidden
    macs = dirs * seq * batch * (input_size + hidden) * gates * hidden
    dims = {"b": dirs * seq, "m": batch, "k": input_size + hidden, "n": gates * hidden,
            "seq": seq, "directions": dirs, "hidden": hidden, "input": input_size, "gates": gates,
            "transcendental": rows * act_trans}
    return workload(graph, node, Kind.MATMUL, macs=macs, flops=rows * (dirs * fixed + act_flops),
                    dims=dims)


def _activation_costs(node: Node, dirs: int) -> tuple[int, int]:
    """(flops, transcendentals) per hidden unit of one step, summed over every activation
    applied in every direction."""
    op = node.op_type
    distinct = max(_APPLIED[op]) + 1               # LSTM f, g, h; GRU f, g; RNN f
    given = node.attr("activations")
    if given:
        names = [a.decode() if isinstance(a, bytes) else str(a) for a in given]
        if len(names) != distinct * dirs:
            raise UnsupportedOpError(op, node.name, f"{len(names)} activations for {dirs} direction(s); "
                                     f"the ONNX spec expects {distinct} per direction")
        per_dir = [names[d * distinct:(d + 1) * distinct] for d in range(dirs)]
        applied = [[fns[i] for i in _APPLIED[op]] for fns in per_dir]
    else:
        applied = [list(DEFAULT_ACTIVATIONS[op])] * dirs
    flops = trans = 0
    for fns in applied:
        for fn in fns:
            if fn not in ACTIVATIONS:
                raise UnsupportedOpError(op, node.name, f"activation {fn!r}; the ONNX spec allows "
                                         f"{', '.join(ACTIVATIONS)}")
            cost = OPS_PER_ELEMENT.get(fn) or _EXTRA_ACTIVATIONS[fn]
            flops += cost[0]
            trans += cost[1]
    return flops, trans
