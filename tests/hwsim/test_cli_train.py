"""`hwsim train`: a short run writes its results; resuming reproduces an uninterrupted run;
bad input is one line on stderr, exit code 2, and nothing written or overwritten."""

import json

import pytest


from . import cli_run
from .cli_run import assert_bad_input

SHORT = ["--data", "sinusoid", "--shot", "5", "--query", "5", "--meta-batch", "3",
         "--eval-episodes", "10", "--seed", "2"]


def run_cli(*args, capsys):
    return cli_run.run_cli("train", *args, capsys=capsys)


def test_short_run_writes_results_and_checkpoint(tmp_path, capsys):
    out = tmp_path / "r.json"
    code, stdout, _ = run_cli("--algo", "maml", *SHORT, "--iterations", "8", "--eval-steps", "1,5",
                              "--eval-shot", "4", "--checkpoint-dir", tmp_path / "ck", "--out", out,
                              capsys=capsys)
    assert code == 0, stdout
    assert "mse" in stdout and "±" in stdout
    report = json.loads(out.read_text())
    assert report["iterations"] == 8 and report["run"]["algorithm"] == "maml"
    assert report["test_tasks"] == "sinusoid 4-shot 5-query"
    assert [r["steps"] for r in report["results"]] == [1, 5]
    assert all(r["episodes"] == 10 and r["ci95"] > 0 for r in report["results"])
    assert (tmp_path / "ck" / "checkpoint.pt").is_file()


def test_resumed_cli_run_reports_what_an_uninterrupted_one_does(tmp_path, capsys):
    whole, resumed = tmp_path / "whole.json", tmp_path / "resumed.json"
    assert run_cli("--algo", "fomaml", *SHORT, "--iterations", "6", "--out", whole, capsys=capsys)[0] == 0
    ck = tmp_path / "ck"
    assert run_cli("--algo", "fomaml", *SHORT, "--iterations", "4", "--checkpoint-dir", ck,
                   capsys=capsys)[0] == 0
    assert run_cli("--algo", "fomaml", *SHORT, "--iterations", "6", "--checkpoint-dir", ck,
                   "--resume", "--out", resumed, capsys=capsys)[0] == 0
    a, b = json.loads(whole.read_text()), json.loads(resumed.read_text())
    assert a["results"] == b["results"] and a["final_meta_loss"] == b["final_meta_loss"]


def test_protonet_on_digits_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "p.json"
    code, stdout, _ = run_cli("--algo", "protonet", "--data", "digits", "--way", "5", "--shot", "1",
                              "--query", "2", "--meta-batch", "1", "--iterations", "2",
                              "--eval-episodes", "3", "--out", out, capsys=capsys)
    assert code == 0
    assert "digits/test 5-way 1-shot 2-query" in stdout
    assert json.loads(out.read_text())["results"][0]["metric"] == "accuracy"


@pytest.mark.parametrize("args, fragments", [
    (["--algo", "nope"], ["unknown algorithm 'nope'", "maml"]),
    (["--data", "mnist"], ["unknown data 'mnist'", "digits"]),
    (["--data", "digits", "--way", "6"], ["6-way needs 6 classes", "digits/train has 5"]),
    (["--data", "digits", "--shot", "200"], ["shot + query = 215", "smallest class"]),
    (["--data", "digits", "--eval-shot", "0"], ["shot must be >= 1"]),
    (["--inner-steps", "0"], ["inner-steps must be an integer >= 1"]),
    (["--shot", "0"], ["shot must be an integer >= 1"]),
    (["--algo", "protonet"], ["protonet needs classification tasks"]),
    (["--eval-steps", "1,x"], ["--eval-steps"]),
    (["--resume"], ["--resume needs --checkpoint-dir"]),
    (["--checkpoint-dir", __file__], ["is a file; give a folder"]),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, fragments):
    out = tmp_path / "r.json"
    code, _, err = run_cli(*args, "--iterations", "1", "--out", out, capsys=capsys)
    assert_bad_input(code, err, *fragments)
    assert not out.exists()


def test_missing_omniglot_is_one_line_saying_where_to_put_it(tmp_path, capsys):
    code, _, err = run_cli("--data", "omniglot", "--data-dir", tmp_path / "omni", capsys=capsys)
    assert_bad_input(code, err, "Omniglot not found", "images_background/<alphabet>/<character>/*.png")


def test_corrupt_checkpoint_is_exit_2_and_left_alone(tmp_path, capsys):
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "checkpoint.pt").write_bytes(b"PK\x03\x04 half a zip file")
    out = tmp_path / "r.json"
    out.write_text("previous results\n")
    code, _, err = run_cli("--algo", "maml", *SHORT, "--iterations", "3", "--checkpoint-dir", ck,
                           "--resume", "--out", out, capsys=capsys)
    assert_bad_input(code, err, "checkpoint.pt is corrupt")
    assert (ck / "checkpoint.pt").read_bytes() == b"PK\x03\x04 half a zip file"
    assert out.read_text() == "previous results\n"


def test_existing_checkpoint_without_resume_is_not_overwritten(tmp_path, capsys):
    ck = tmp_path / "ck"
    assert run_cli("--algo", "maml", *SHORT, "--iterations", "2", "--checkpoint-dir", ck,
                   capsys=capsys)[0] == 0
    before = (ck / "checkpoint.pt").read_bytes()
    code, _, err = run_cli("--algo", "maml", *SHORT, "--iterations", "2", "--checkpoint-dir", ck,
                           capsys=capsys)
    assert_bad_input(code, err, "already exists")
    assert (ck / "checkpoint.pt").read_bytes() == before


def test_checkpoint_of_another_run_is_exit_2(tmp_path, capsys):
    ck = tmp_path / "ck"
    assert run_cli("--algo", "maml", *SHORT, "--iterations", "2", "--checkpoint-dir", ck,
                   capsys=capsys)[0] == 0
    code, _, err = run_cli("--algo", "fomaml", *SHORT, "--iterations", "3", "--checkpoint-dir", ck,
                           "--resume", capsys=capsys)
    assert_bad_input(code, err, "different run: algorithm is 'maml' there, 'fomaml' here")
