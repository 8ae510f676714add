"""Where the `hwsim` command writes: only where the user said, only regular files replaced
atomically, devices written in place, unusable output paths refused before any work."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hwsim.config import PRESET_DIR
from hwsim.files import OutputError, check_output, safe_name, write_atomic

from .cli_run import assert_bad_input, run_cli

DATA = Path(__file__).resolve().parents[1] / "data" / "compiler"
CONV4 = DATA / "conv4_infer_torch.onnx"


@pytest.mark.parametrize("name,slug", [("../../etc/evil", "etc_evil"), ("..", "unnamed"), ("a/b\\c", "a_b_c"),
                                       ("edge-npu", "edge-npu"), ("x" * 300, "x" * 100), ("<script>", "script")])
def test_names_that_reach_file_paths_become_one_safe_component(name, slug):
    assert safe_name(name) == slug
    assert "/" not in safe_name(name) and safe_name(name) not in (".", "..")


def test_a_config_name_cannot_write_outside_the_report_folder(tmp_path, capsys):
    evil = tmp_path / "evil.yaml"
    evil.write_text((PRESET_DIR / "edge-npu.yaml").read_text().replace("name: edge-npu", "name: ../../../pwned"))
    report = tmp_path / "deep" / "report"
    code, _, err = run_cli("compare", "--algos", "maml", "--phases", "infer", "--hw", evil,
                           "--report", report, capsys=capsys)
    assert code == 0, err
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert all(p.parts[:2] == ("deep", "report") or p == Path("evil.yaml") for p in written), written
    assert (report / "results" / "maml_infer_pwned.json").is_file()


def test_two_targets_with_one_file_name_are_refused(tmp_path, capsys):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    text = (PRESET_DIR / "edge-npu.yaml").read_text()
    a.write_text(text.replace("name: edge-npu", "name: npu/1"))
    b.write_text(text.replace("name: edge-npu", "name: npu_1"))
    code, _, err = run_cli("compare", "--algos", "maml", "--phases", "infer", "--hw", f"{a},{b}",
                           "--report", tmp_path / "r", capsys=capsys)
    assert_bad_input(code, err, "two targets", "npu_1")
    assert not (tmp_path / "r").exists()


def test_a_device_is_written_in_place_never_replaced(tmp_path, capsys):
    code, _, err = run_cli("simulate", CONV4, "--json", "/dev/null", capsys=capsys)
    assert code == 0, err
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="this system has no /dev/full")
def test_a_full_device_is_an_error_and_stays_a_device(capsys):
    code, _, err = run_cli("simulate", CONV4, "--json", "/dev/full", capsys=capsys)
    assert_bad_input(code, err, "/dev/full", "cannot write")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_output_paths_that_cannot_be_written_are_refused_before_the_work(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    for target, fragment in ((folder, "is a directory"), (a_file / "r.json", "cannot be written")):
        code, out, err = run_cli("simulate", CONV4, "--json", target, capsys=capsys)
        assert_bad_input(code, err, "--json", fragment)
        assert out == ""   # refused before anything was simulated or printed
    code, _, err = run_cli("compare", "--algos", "maml", "--phases", "infer", "--report", a_file, capsys=capsys)
    assert_bad_input(code, err, "--report", "not a directory")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, _, err = run_cli("simulate", CONV4, "--json", ro / "r.json", capsys=capsys)
        assert_bad_input(code, err, "not writable")
    finally:
        ro.chmod(0o700)


def test_the_writer_replaces_regular_files_atomically_and_refuses_directories(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    write_atomic(target, "one")
    write_atomic(target, b"two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]   # no temporary left behind
    with pytest.raises(OutputError, match="is a directory"):
        check_output(tmp_path)


def test_hardware_from_an_endless_stream_is_refused_with_its_bound(capsys):
    code, _, err = run_cli("simulate", CONV4, "--hw", "/dev/zero", capsys=capsys)
    assert_bad_input(code, err, "/dev/zero", "larger than 1024 KiB")


@pytest.mark.parametrize("mutation,fragment", [
    (("rows: 32", "rows: true"), "array.rows"),
    (("size_kib: 512", 'size_kib: "512"'), "sram.size_kib"),
    (("cores: 1", "cores: [1]"), "cores"),
    (("cores: 1", "cores: {n: 1}"), "cores"),
])
def test_config_fields_of_the_wrong_type_are_refused_not_coerced(tmp_path, capsys, mutation, fragment):
    bad = tmp_path / "hw.yaml"
    bad.write_text((PRESET_DIR / "edge-npu.yaml").read_text().replace(*mutation))
    code, _, err = run_cli("simulate", CONV4, "--hw", bad, capsys=capsys)
    assert_bad_input(code, err, "hw.yaml", fragment)


def test_absurdly_nested_config_is_refused(tmp_path, capsys):
    bad = tmp_path / "hw.yaml"
    bad.write_text("kind: npu\nname: " + "[" * 5000 + "]" * 5000 + "\n")
    code, _, err = run_cli("simulate", CONV4, "--hw", bad, capsys=capsys)
    assert_bad_input(code, err, "hw.yaml")


def test_size_limits_are_flags_and_name_themselves_in_the_error(capsys):
    code, _, err = run_cli("simulate", DATA / "conv4_train.onnx", "--max-nodes", "10", capsys=capsys)
    assert_bad_input(code, err, "nodes", "--max-nodes")
    code, _, _ = run_cli("simulate", DATA / "conv4_train.onnx", "--max-nodes", "100000", capsys=capsys)
    assert code == 0


@pytest.mark.parametrize("argv", [["simulate", str(CONV4), "--max-nodes", "x"], ["simulate"], ["nope"],
                                  ["simulate", str(CONV4), "--detail", "cycles"]])
def test_command_line_errors_are_one_line_and_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        run_cli(*argv, capsys=capsys)
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1 and "error:" in err, err
