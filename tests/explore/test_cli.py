"""`hwsim explore` / `hwsim sweep` and `hwsim report` on the command line."""

import csv

from hwsim.cli import main

from ..hwsim.cli_run import assert_bad_input, run_cli
from ..goldens import CONV4_64_MACS
from .conftest import CONV4, GOOD, MIXED, space_file, store_bytes


def test_sweep_is_explore_and_the_html_report_escapes_names(tmp_path, capsys):
    (tmp_path / "<script>evil.onnx").write_bytes(CONV4.read_bytes())
    f = tmp_path / "space.yaml"
    f.write_text(GOOD.replace("conv4.onnx", "'<script>evil.onnx'"))
    store, page = tmp_path / "store", tmp_path / "r.html"
    code, out, _ = run_cli("sweep", f, "--store", store, "--workers", 1, capsys=capsys)
    assert code == 0 and "4 of 4 points" in out and "4 simulated" in out
    rows = list(csv.DictReader((store / "points.csv").open()))
    assert len(rows) == 4 and {r["macs"] for r in rows} == {f"{float(CONV4_64_MACS)}"}
    assert main(["report", str(store), "--html", str(page)]) == 0
    text = page.read_text()
    assert "<script>" not in text and "&lt;script&gt;evil" in text and "<svg" in text


def test_explore_with_command_line_search_and_resume(tmp_path, capsys):
    f = space_file(tmp_path, MIXED)
    args = ("explore", f, "--store", tmp_path / "s", "--workers", 1, "--sampler", "nsga2", "--trials", 16,
            "--batch", 8, "--seed", 5)
    code, out, err = run_cli(*args, capsys=capsys)
    assert code == 0 and "16 of 16 points" in out and err == ""
    before = store_bytes(tmp_path / "s")
    code, out, _ = run_cli(*args, capsys=capsys)
    assert code == 0 and "16 kept from before, 0 simulated" in out
    assert store_bytes(tmp_path / "s") == before
    pareto = list(csv.DictReader((tmp_path / "s" / "pareto.csv").open()))
    assert pareto and {"objective:latency", "objective:energy", "objective:area"} <= set(pareto[0])


def test_bad_input_on_the_command_line_is_one_line(tmp_path, capsys):
    f = space_file(tmp_path, GOOD)
    code, _, err = run_cli("explore", tmp_path / "nope.yaml", "--store", tmp_path / "s", capsys=capsys)
    assert_bad_input(code, err, "nope.yaml", "no such file")
    code, _, err = run_cli("explore", f, "--store", tmp_path / "s", "--workers", 0, capsys=capsys)
    assert_bad_input(code, err, "--workers 0")
    code, _, err = run_cli("explore", f, "--store", tmp_path / "s", "--trials", 0, capsys=capsys)
    assert_bad_input(code, err, "search.trials")
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli("explore", f, "--store", tmp_path / "file", capsys=capsys)
    assert_bad_input(code, err, "exists and is not a directory")
    code, _, err = run_cli("explore", f, "--store", tmp_path / "s", "--workers", 1, "--scheduler", "tcp://127.0.0.1:9",
                           capsys=capsys)
    assert_bad_input(code, err, "--scheduler tcp://127.0.0.1:9", "cannot connect")
    assert not (tmp_path / "s").exists()


def test_another_space_into_a_store_exits_2(tmp_path, capsys):
    f = space_file(tmp_path, GOOD)
    assert main(["explore", str(f), "--store", str(tmp_path / "s"), "--workers", "1"]) == 0
    capsys.readouterr()
    g = space_file(tmp_path, GOOD.replace("[8, 32]", "[8, 16]"), "g.yaml")
    code, _, err = run_cli("explore", g, "--store", tmp_path / "s", "--workers", "1", capsys=capsys)
    assert_bad_input(code, err, "store.json", "written by another space")


def test_workers_beyond_the_cpus_are_capped_unless_forced():
    from hwsim.explore.cluster import cpu_count, worker_count

    n = cpu_count()
    assert worker_count(None, force=False) == (n, None)
    capped, note = worker_count(n + 3, force=False)
    assert capped == n and "capped" in note and "--force" in note
    assert worker_count(n + 3, force=True) == (n + 3, None)


def test_report_on_a_folder_that_is_not_a_store(tmp_path, capsys):
    code, _, err = run_cli("report", tmp_path, "--html", tmp_path / "r.html", capsys=capsys)
    assert_bad_input(code, err, "not an exploration store")
    assert not (tmp_path / "r.html").exists()
