"""`hwsim report`, `hwsim reprice`, `hwsim compare --accuracy` and the demo's report.html."""

import csv
import json
import re

import pytest

from hwsim.result import SimResult
from tests.hwsim.cli_run import assert_bad_input, run_cli

from .conftest import DATA

RUN_FIGURES = ("energy-phase", "energy-op", "traffic", "memory-timeline", "memory-peak-phase", "roofline",
               "time-per-unit")


@pytest.fixture
def result_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert run_cli("simulate", DATA / "sine_maml.onnx", "--hw", "edge-npu", "--json", out, capsys=capsys)[0] == 0
    return out


def test_report_of_a_run_has_every_figure_and_the_record(result_json, tmp_path, capsys):
    page = tmp_path / "r.html"
    code, out, _ = run_cli("report", result_json, "--html", page, capsys=capsys)
    assert code == 0 and "wrote" in out
    html = page.read_text()
    for fig in RUN_FIGURES:
        assert f'id="{fig}"' in html
    assert "horowitz45" in html or "Horowitz" in html     # the energy table with its sources
    assert "Area" in html and "mm²" in html                 # NPU area like FPGA resources
    assert "<script" not in html and not re.search(r"(src|href)=[\"']?(https?:|//)", html)


def test_report_of_a_result_saved_without_timeline(tmp_path, capsys):
    out = tmp_path / "r.json"
    run_cli("simulate", DATA / "sine_maml.onnx", "--json", out, "--no-timeline", capsys=capsys)
    page = tmp_path / "r.html"
    assert run_cli("report", out, "--html", page, capsys=capsys)[0] == 0
    html = page.read_text()
    assert "saved without its timeline" in html and 'id="memory-timeline"' in html and 'id="roofline"' not in html


def test_report_of_something_else_is_one_line_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text('{"hello": 1}')
    page = tmp_path / "r.html"
    code, _, err = run_cli("report", bad, "--html", page, capsys=capsys)
    assert_bad_input(code, err, "x.json", "not a hwsim result")
    assert not page.exists()
    code, _, err = run_cli("report", tmp_path / "missing", "--html", page, capsys=capsys)
    assert_bad_input(code, err, "no such file")


def _comparison_folder(folder, simulated):
    (folder / "results").mkdir(parents=True)
    rows = []
    for stem, algo in (("sine_maml", "maml"), ("sine_fomaml", "fomaml")):
        for hw in ("edge-npu", "zcu102-like"):
            r = simulated(stem, hw)
            (folder / "results" / f"{algo}_meta_train_{hw}.json").write_text(r.to_json(timeline=False))
            rows.append({"algorithm": algo, "phase": "meta_train", "target": hw})
    with (folder / "totals.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["algorithm", "phase", "target"])
        w.writeheader()
        w.writerows(rows)


def test_report_of_a_comparison_folder(tmp_path, capsys, simulated):
    folder = tmp_path / "cmp"
    _comparison_folder(folder, simulated)
    page = tmp_path / "c.html"
    assert run_cli("report", folder, "--html", page, capsys=capsys)[0] == 0
    html = page.read_text()
    assert "Algorithms × targets" in html and "zcu102-like" in html and "vs maml" in html
    assert html.index(">maml<") < html.index(">fomaml<")          # the order of totals.csv
    assert 'id="runs-memory"' in html and "Fabric configurations" in html


def test_report_of_a_sweep_store_escapes_names(tmp_path, capsys):
    store = tmp_path / "s"
    store.mkdir()
    text = "point,model,seconds,energy_pj\n0,<script>x</script>,1e-6,5e6\n1,<script>x</script>,2e-6,4e6\n"
    (store / "points.csv").write_text(text)
    (store / "pareto.csv").write_text(text)
    page = tmp_path / "s.html"
    assert run_cli("report", store, "--html", page, capsys=capsys)[0] == 0
    html = page.read_text()
    assert "<script>x" not in html and "&lt;script&gt;x" in html and 'id="sweep-scatter"' in html


def test_reprice_with_another_table_and_node(result_json, tmp_path, capsys):
    out = tmp_path / "r7.json"
    code, stdout, _ = run_cli("reprice", result_json, "--energy-table", "eyeriss", "--node-nm", "7",
                              "--json", out, capsys=capsys)
    assert code == 0 and "not re-simulated" in stdout and "mm²" in stdout
    before = SimResult.from_json(result_json.read_text())
    after = SimResult.from_json(out.read_text())
    assert after.cycles == before.cycles and after.actions == before.actions
    assert after.energy_pj != before.energy_pj
    assert after.hardware["technology"]["node_nm"] == 7
    assert "eyeriss" in after.prices["mac.float32"].source.lower() or "Eyeriss" in after.prices["mac.float32"].source


@pytest.mark.parametrize("args, fragments", [
    (("--energy-table", "nope"), ("nope", "horowitz45")),
    (("--energy-table", "fpga45"), ("fpga45", "no price")),
    (("--energy-table", "horowitz45", "--node-nm", "2"), ("--node-nm",)),
])
def test_reprice_bad_input(result_json, tmp_path, capsys, args, fragments):
    out = tmp_path / "o.json"
    code, _, err = run_cli("reprice", result_json, *args, "--json", out, capsys=capsys)
    assert_bad_input(code, err, *fragments)
    assert not out.exists()


def test_reprice_needs_a_config_when_the_result_has_none(result_json, capsys):
    d = json.loads(result_json.read_text())
    d.pop("hardware")
    result_json.write_text(json.dumps(d))
    code, _, err = run_cli("reprice", result_json, "--energy-table", "eyeriss", capsys=capsys)
    assert_bad_input(code, err, "--hw")
    assert run_cli("reprice", result_json, "--energy-table", "eyeriss", "--hw", "edge-npu", capsys=capsys)[0] == 0


def _train_json(path, **run):
    setting = {"algorithm": "maml", "data": "sinusoid", "backbone": "sine_mlp", "way": 1, "shot": 10, "query": 10,
               "inner_steps": 1, "inner_lr": 0.01, "meta_batch": 2, "seed": 0, **run}
    path.write_text(json.dumps({"run": setting, "iterations": 100, "results": [
        {"steps": 1, "metric": "mse", "mean": 0.7, "ci95": 0.05, "episodes": 600},
        {"steps": 5, "metric": "mse", "mean": 0.4, "ci95": 0.04, "episodes": 600}]}))
    return path


def test_compare_accuracy_refuses_a_mismatch_before_exporting(tmp_path, capsys):
    train = _train_json(tmp_path / "t.json", way=5, backbone="conv4_32_28x28x1")
    out = tmp_path / "cmp"
    code, _, err = run_cli("compare", "--algos", "maml", "--phases", "adapt,meta_train", "--meta-batch", "2",
                           "--accuracy", train, "--report", out, capsys=capsys)
    assert_bad_input(code, err, "t.json", "--way 5", "--backbone conv4_32_28x28x1")
    assert not out.exists()
    code, _, err = run_cli("compare", "--algos", "maml", "--phases", "adapt", "--accuracy", train,
                           "--report", out, capsys=capsys)
    assert_bad_input(code, err, "--accuracy", "meta_train")


def test_compare_accuracy_joins_train_results_with_cost(tmp_path, capsys, monkeypatch, export_cache):
    monkeypatch.setenv("HWSIM_CACHE", str(export_cache))
    train = _train_json(tmp_path / "maml_run.json")
    out = tmp_path / "cmp"
    code, _, _ = run_cli("compare", "--algos", "maml", "--phases", "adapt,meta_train", "--meta-batch", "2",
                         "--hw", "edge-npu,zcu102-like", "--accuracy", train, "--report", out, capsys=capsys)
    assert code == 0
    acc = json.loads((out / "accuracy.json").read_text())
    assert acc["metric"] == "mse" and len(acc["points"]) == 2
    p = acc["points"][0]
    assert p["mean"] == 0.7 and p["steps"] == 1 and p["meta_train_energy_j"] > p["adapt_energy_j"] > 0
    assert p["pareto_meta_train"] and p["pareto_adapt"]       # alone on its target
    assert "Accuracy beside cost" in (out / "report.md").read_text()
    page = tmp_path / "c.html"
    assert run_cli("report", out, "--html", page, capsys=capsys)[0] == 0
    assert 'id="accuracy-cost"' in page.read_text()


def test_demo_writes_report_html(tmp_path, capsys, monkeypatch, export_cache):
    monkeypatch.setenv("HWSIM_CACHE", str(export_cache))
    out = tmp_path / "demo"
    code, stdout, _ = run_cli("demo", "--out", out, "--meta-batch", "2", capsys=capsys)
    assert code == 0 and "report.html" in stdout
    html = (out / "report.html").read_text()
    for fig in ("runs-energy", "runs-latency-energy", "runs-memory", "runs-memory-timelines"):
        assert f'id="{fig}"' in html
    assert "fomaml" in html and "MAML vs FOMAML" in html
