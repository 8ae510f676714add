"""The store: damaged, foreign or locked stores are one-line errors naming the file; a torn last
line (what a kill mid-write leaves) is dropped; reports read partial stores."""

import fcntl
import json
import os

import onnx
import pytest

from hwsim.cli import main
from hwsim.explore import explore, load_space, open_store
from hwsim.explore.store import JOURNAL, MANIFEST, StoreError

from ..hwsim.cli_run import assert_bad_input, run_cli
from .conftest import GOOD, MIXED, no_export, space_file, store_bytes


def run(space, tmp_path, store="store"):
    return explore(space, tmp_path, tmp_path / store, workers=1, export=no_export)


@pytest.fixture
def done(tmp_path):
    space = load_space(space_file(tmp_path, MIXED))
    run(space, tmp_path)
    return space, tmp_path / "store"


def test_a_torn_last_line_is_dropped_and_its_point_rerun(done, tmp_path):
    space, store = done
    before = store_bytes(store)
    lines = (store / JOURNAL).read_bytes().splitlines(keepends=True)
    (store / JOURNAL).write_bytes(b"".join(lines[:-1]) + lines[-1][:25])      # killed mid-write
    assert len(open_store(store).records) == len(lines) - 1
    s = run(space, tmp_path)
    assert s.kept == len(lines) - 1 and s.evaluated == 1
    assert store_bytes(store) == before


@pytest.mark.parametrize("damage, fragment", [
    (lambda b: b.replace(b"\n", b"\n{oops\n", 1), "line 2: damaged"),
    (lambda b: b[:40] + b"\n" + b[40:], "line 1: damaged"),
    (lambda b: b"\x00" * 10 + b"\n" + b, "line 1: damaged"),
    (lambda b: b + b.split(b"\n")[0] + b"\n", "repeated"),
])
def test_a_damaged_journal_is_a_clean_error_naming_the_file(done, tmp_path, capsys, damage, fragment):
    space, store = done
    (store / JOURNAL).write_bytes(damage((store / JOURNAL).read_bytes()))
    with pytest.raises(StoreError, match=fragment) as e:
        run(space, tmp_path)
    assert str(store / JOURNAL) in str(e.value)
    code, _, err = run_cli("report", store, "--html", tmp_path / "r.html", capsys=capsys)
    assert_bad_input(code, err, str(store / JOURNAL), fragment)
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("text", [b"", b"{", b"[1, 2]", b'{"format": "other"}', b"\xff\xfe"])
def test_a_damaged_or_foreign_manifest_is_a_clean_error(done, tmp_path, text):
    space, store = done
    (store / MANIFEST).write_bytes(text)
    with pytest.raises(StoreError, match=str(store / MANIFEST)):
        run(space, tmp_path)
    with pytest.raises(StoreError, match=str(store / MANIFEST)):
        open_store(store)


def test_another_space_into_the_same_store_is_refused_and_nothing_is_touched(done, tmp_path):
    space, store = done
    before = store_bytes(store)
    other = load_space(space_file(tmp_path, MIXED.replace("[1, 4, 64, 512]", "[64, 512]"), "other.yaml"))
    with pytest.raises(StoreError, match="written by another space"):
        run(other, tmp_path)
    assert store_bytes(store) == before
    # another base config is another exploration too
    with pytest.raises(StoreError, match="another base config|another space"):
        run(load_space(space_file(tmp_path, MIXED.replace("edge-npu", "server-npu"), "o2.yaml")), tmp_path)
    # and another model file under the same name
    model = onnx.load(tmp_path / "conv4.onnx")
    model.doc_string = "edited"
    onnx.save(model, tmp_path / "conv4.onnx")
    with pytest.raises(StoreError, match="other models"):
        run(space, tmp_path)


def test_a_folder_that_is_not_a_store_is_refused(tmp_path):
    space = load_space(space_file(tmp_path, GOOD))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(StoreError, match="not an exploration store"):
        run(space, tmp_path, "notes")
    assert os.listdir(tmp_path / "notes") == ["todo.txt"]
    with pytest.raises(StoreError, match="not an exploration store"):
        open_store(tmp_path / "notes")


def test_a_store_being_written_is_locked(done, tmp_path):
    space, store = done
    fd = os.open(store, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(StoreError, match="another `hwsim explore` is writing"):
            run(space, tmp_path)
    finally:
        os.close(fd)


def test_report_reads_a_partial_store(done, tmp_path, capsys):
    space, store = done
    lines = (store / JOURNAL).read_bytes().splitlines(keepends=True)
    (store / JOURNAL).write_bytes(b"".join(lines[5:9]))          # four points, out of order
    for f in ("points.csv", "pareto.csv"):
        (store / f).unlink()
    assert main(["report", str(store), "--html", str(tmp_path / "r.html")]) == 0
    text = (tmp_path / "r.html").read_text()
    assert "4 points in the store" in text and "<svg" in text
    for line in lines[5:9]:
        rec = json.loads(line)
        if rec["status"] == "ok":
            assert f"<td>{rec['point']}</td>" in text
