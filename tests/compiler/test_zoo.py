"""Model-zoo graphs (tests/data/zoo, written from their papers and exported by torch at opsets
7-21): every graph compiles through load_graph + passes + graph_workloads, and its MACs equal
the count PyTorch's forward hooks made at export time, exactly. How each count compares with the
published figure is in tests/data/zoo/golden.csv and README.md."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from compiler.frontend import load_graph
from compiler.ir import Role
from compiler.passes import run_pipeline
from compiler.workload import graph_workloads

ZOO = Path(__file__).resolve().parents[1] / "data" / "zoo"
ROWS = list(csv.DictReader(open(ZOO / "golden.csv")))


@pytest.mark.parametrize("row", ROWS, ids=[r["model"] for r in ROWS])
def test_zoo_macs_equal_the_independent_count(row):
    graph = load_graph(ZOO / row["file"])
    assert graph.opset == int(row["opset"])
    loads = graph_workloads(run_pipeline(graph))
    assert sum(w.macs for w in loads.values()) == int(row["counted_macs"])
    # weights arrive as graph inputs listed in `parameter_inputs`: all are parameters
    weights = graph.metadata["parameter_inputs"].split(",")
    assert weights and all(graph.tensor(w).role is Role.PARAMETER for w in weights)
    assert [n for n in graph.inputs if graph.tensor(n).role is Role.INPUT] == ["input"]


def test_the_zoo_spans_old_and_new_opsets_and_every_model_asked_for():
    assert {int(r["opset"]) for r in ROWS} >= {7, 8, 9, 10, 11, 13, 20, 21}
    assert {r["model"] for r in ROWS} >= {"resnet50", "vgg19", "alexnet", "googlenet", "inception_v3",
                                         "squeezenet1_0", "densenet121", "shufflenet_g3", "zfnet512"}


def test_old_dropout_and_lrn_come_through_the_exporter():
    ops = {r["model"]: load_graph(ZOO / r["file"]).op_types() for r in ROWS if int(r["opset"]) < 12}
    assert all("Dropout" in o for m, o in ops.items() if m != "recurrent_tagger")
    assert "LRN" in ops["alexnet"] and "LRN" in ops["googlenet"]
