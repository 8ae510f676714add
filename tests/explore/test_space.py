"""Design-space exploration: space validation, determinism across workers, Pareto, HTML report."""

import csv
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from hwsim.cli import main
from hwsim.config import ConfigError
from hwsim.dse import SweepError, load_space, pareto, run_sweep

CONV4 = Path(__file__).resolve().parents[1] / "data" / "compiler" / "conv4_infer_torch.onnx"


def space_file(tmp_path, body):
    (tmp_path / "conv4.onnx").write_bytes(CONV4.read_bytes())
    f = tmp_path / "space.yaml"
    f.write_text(body)
    return f


GOOD = """base: edge-npu
models:
  - {onnx: conv4.onnx}
grid:
  array.rows: [8, 32]
  sram.size_kib: [16, 512]
"""


def no_export(ref):
    raise AssertionError("no export expected")


def test_points_are_the_grid_product_and_results_do_not_depend_on_workers(tmp_path):
    f = space_file(tmp_path, GOOD)
    space = load_space(f)
    assert len(space.points()) == 4
    one = run_sweep(space, tmp_path, workers=1, export=no_export)
    two = run_sweep(space, tmp_path, workers=2, export=no_export)
    assert one == two
    assert {r["macs"] for r in one} == {9_815_360}
    big = [r for r in one if r["array.rows"] == 32 and r["sram.size_kib"] == 512][0]
    small = [r for r in one if r["array.rows"] == 8 and r["sram.size_kib"] == 16][0]
    assert big["cycles"] < small["cycles"]


@pytest.mark.parametrize("body, fragment", [
    (GOOD + "extra: 1\n", "extra"),
    (GOOD.replace("[8, 32]", "[]"), "array.rows"),
    (GOOD.replace("  - {onnx: conv4.onnx}\n", "  - {algo: maml}\n"), "algo"),
    ("- 1\n", "mapping"),
    ("base: [\n", "not valid YAML"),
])
def test_bad_spaces_are_one_line_errors(tmp_path, body, fragment):
    with pytest.raises(SweepError) as e:
        load_space(space_file(tmp_path, body))
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_point_with_invalid_value_names_point_and_field(tmp_path):
    space = load_space(space_file(tmp_path, GOOD.replace("[8, 32]", "[8, -4]")))
    with pytest.raises(ConfigError, match=r"array.rows=-4.*array.rows"):
        run_sweep(space, tmp_path, workers=1, export=no_export)


def test_unknown_config_path(tmp_path):
    space = load_space(space_file(tmp_path, GOOD.replace("array.rows", "array.height")))
    with pytest.raises(SweepError, match="array.height"):
        run_sweep(space, tmp_path, workers=1, export=no_export)


@given(st.lists(st.tuples(st.floats(0.1, 10), st.floats(0.1, 10)), min_size=1, max_size=30))
def test_pareto_front_is_exactly_the_non_dominated_points(pts):
    rows = [{"point": i, "model": "m", "seconds": x, "energy_pj": y} for i, (x, y) in enumerate(pts)]
    front = pareto(rows)
    ids = {r["point"] for r in front}
    for r in rows:
        dominated = any(o["seconds"] <= r["seconds"] and o["energy_pj"] <= r["energy_pj"]
                        and (o["seconds"], o["energy_pj"]) != (r["seconds"], r["energy_pj"]) for o in rows)
        if dominated:
            assert r["point"] not in ids
    assert all(not any(o["seconds"] < r["seconds"] and o["energy_pj"] < r["energy_pj"] for o in rows)
               for r in front)


def test_cli_sweep_and_html_report_escape_names(tmp_path, capsys):
    (tmp_path / "<script>evil.onnx").write_bytes(CONV4.read_bytes())
    f = tmp_path / "space.yaml"
    f.write_text(GOOD.replace("conv4.onnx", "'<script>evil.onnx'"))
    store, page = tmp_path / "store", tmp_path / "r.html"
    assert main(["sweep", str(f), "--store", str(store)]) == 0
    rows = list(csv.DictReader((store / "points.csv").open()))
    assert len(rows) == 4
    assert main(["report", str(store), "--html", str(page)]) == 0
    text = page.read_text()
    assert "<script>" not in text and "&lt;script&gt;evil" in text
    assert "<svg" in text


def test_cli_report_on_a_folder_that_is_not_a_store(tmp_path, capsys):
    code = main(["report", str(tmp_path), "--html", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert code == 2 and "not a sweep store" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r.html").exists()


def test_missing_model_file_is_a_clear_error(tmp_path):
    space = load_space(space_file(tmp_path, GOOD.replace("conv4.onnx", "nope.onnx")))
    with pytest.raises(SweepError, match="models.0.onnx.*nope.onnx"):
        run_sweep(space, tmp_path, workers=1, export=no_export)
