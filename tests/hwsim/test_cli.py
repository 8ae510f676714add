"""The `hwsim` command: bad input is one clear line, exit code 2, no traceback, nothing written."""

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper


from tests.goldens import CONV4_64_MACS

from .cli_run import assert_bad_input, run_cli

DATA = Path(__file__).resolve().parents[1] / "data" / "compiler"
CONV4 = DATA / "conv4_infer_torch.onnx"




def test_simulate_prints_summary_and_writes_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    code, stdout, _ = run_cli("simulate", CONV4, "--hw", "edge-npu", "--json", out, capsys=capsys)
    assert code == 0
    assert f"{CONV4_64_MACS:,}" in stdout
    d = json.loads(out.read_text())
    assert d["summary"]["macs"] == CONV4_64_MACS
    assert d["summary"]["cycles"] > 0 and d["timeline"]


def test_not_onnx(tmp_path, capsys):
    bad = tmp_path / "model.onnx"
    bad.write_text("this is not a protobuf")
    out = tmp_path / "r.json"
    code, _, err = run_cli("simulate", bad, "--json", out, capsys=capsys)
    assert_bad_input(code, err, "model.onnx")
    assert not out.exists()


def test_missing_file(tmp_path, capsys):
    code, _, err = run_cli("simulate", tmp_path / "nope.onnx", capsys=capsys)
    assert_bad_input(code, err, "nope.onnx", "no such file")


def test_unsupported_op_names_op_and_node(tmp_path, capsys):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    node = helper.make_node("Bernoulli", ["x"], ["y"], name="the_coin")   # random: no workload rule
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]), opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    out = tmp_path / "r.json"
    code, _, err = run_cli("simulate", path, "--json", out, capsys=capsys)
    assert_bad_input(code, err, "Bernoulli", "the_coin")
    assert not out.exists()


def test_unknown_preset_lists_known(tmp_path, capsys):
    code, _, err = run_cli("simulate", CONV4, "--hw", "tpu-v99", capsys=capsys)
    assert_bad_input(code, err, "tpu-v99", "edge-npu")


@pytest.mark.parametrize("yaml_text, fragment", [
    ("kind: npu\nname: x\nclock_mhz: 100\narray: {rows: 8, cols: 8}\nvector: {lanes: 4}\n"
     "sram: {size_kib: 64, bytes_per_cycle: 8}\ndram: {type: DDR4, bandwidth_gbps: 1, latency_ns: 1}\nflux: 3\n",
     "flux"),
    ("kind: npu\nname: x\nclock_mhz: -5\narray: {rows: 8, cols: 8}\nvector: {lanes: 4}\n"
     "sram: {size_kib: 64, bytes_per_cycle: 8}\ndram: {type: DDR4, bandwidth_gbps: 1, latency_ns: 1}\n",
     "clock_mhz"),
])
def test_yaml_with_invalid_or_unknown_field(tmp_path, capsys, yaml_text, fragment):
    hw = tmp_path / "hw.yaml"
    hw.write_text(yaml_text)
    out = tmp_path / "r.json"
    code, _, err = run_cli("simulate", CONV4, "--hw", hw, "--json", out, capsys=capsys)
    assert_bad_input(code, err, "hw.yaml", fragment)
    assert not out.exists()


def test_bad_dim_value(capsys):
    code, _, err = run_cli("simulate", CONV4, "--dim", "batch=zero", capsys=capsys)
    assert_bad_input(code, err, "--dim")


def test_console_script_exit_code_is_2_on_bad_input(tmp_path):
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"\x00\x01garbage")
    proc = subprocess.run([sys.executable, "-m", "hwsim.cli", "simulate", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_trace_is_valid_perfetto_json(tmp_path, capsys):
    trace = tmp_path / "t.json"
    code, _, _ = run_cli("simulate", CONV4, "--trace", trace, capsys=capsys)
    assert code == 0
    events = json.loads(trace.read_text())["traceEvents"]
    slices = [e for e in events if e["ph"] == "X"]
    assert slices and all(e["dur"] > 0 for e in slices)
    assert {e["args"]["op"] for e in slices} >= {"Conv", "dma"}


def test_compare_writes_phase_by_phase_report(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HWSIM_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "cmp"
    code, stdout, _ = run_cli("compare", "--algos", "maml,fomaml", "--phases", "adapt,meta_train",
                              "--inner-steps", "2", "--meta-batch", "2", "--report", out, capsys=capsys)
    assert code == 0
    import pandas as pd
    df = pd.read_csv(out / "comparison.csv")
    assert set(df["algorithm"]) == {"maml", "fomaml"}
    mt = df[df["phase"] == "meta_train"].groupby("algorithm")["macs"].sum()
    assert mt["maml"] > mt["fomaml"]          # second-order terms cost MACs
    assert "inner1/backward" in set(df["phase_part"])
    assert "fomaml / maml" in (out / "report.md").read_text()


def test_compare_rejects_unknown_algorithm_before_exporting(tmp_path, capsys):
    out = tmp_path / "cmp"
    code, _, err = run_cli("compare", "--algos", "maml,magic", "--report", out, capsys=capsys)
    assert_bad_input(code, err, "magic")
    assert not out.exists()


def test_compare_npu_and_fabric_side_by_side(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HWSIM_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "cmp"
    code, _, _ = run_cli("compare", "--algos", "maml", "--phases", "adapt", "--inner-steps", "2",
                         "--hw", "edge-npu,zcu102-like,cgra-8x8", "--report", out, capsys=capsys)
    assert code == 0
    import pandas as pd
    tot = pd.read_csv(out / "totals.csv")
    assert list(tot["target"]) == ["edge-npu", "zcu102-like", "cgra-8x8"]
    assert tot["macs"].nunique() == 1                  # same graph on every target
    assert (tot.loc[tot["target"] == "zcu102-like", "energy_reconfig_pj"] > 0).all()
    assert "zcu102-like / edge-npu" in (out / "report.md").read_text()
