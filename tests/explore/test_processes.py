"""The exploration as processes: SIGKILL and resume (counted), no orphaned workers, SIGTERM keeps
what finished, and a real dask.distributed cluster (scheduler + two workers) gives the local
run's store."""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from hwsim.cli import main
from hwsim.explore import explore, load_space
from hwsim.explore.store import JOURNAL

from .conftest import no_export, space_file, store_bytes

BIN = Path(sys.executable).parent
N = 384
# 384 points of a few milliseconds each: long enough to be killed part-way
LONG = """base: edge-npu
models:
  - {onnx: conv4.onnx}
parameters:
  hw.array.rows: {low: 8, high: 64, step: 8}
  hw.array.cols: [16, 32, 64]
  hw.sram.size_kib: {low: 8, high: 1024, factor: 2}
  hw.dram.bandwidth_gbps: [12.8, 25.6]
objectives: [latency, energy, area]
"""


def committed(store: Path) -> int:
    try:
        return (store / JOURNAL).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def start(space: Path, store: Path, *extra) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "hwsim"), "explore", str(space), "--store", str(store), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(cond, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def counts(out: str) -> tuple[int, int, int]:
    m = re.search(r"\((\d+) kept from before, (\d+) simulated, (\d+) duplicates", out)
    assert m, out
    return tuple(int(x) for x in m.groups())


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The space file and the store of an uninterrupted run (in this process)."""
    d = tmp_path_factory.mktemp("reference")
    f = space_file(d, LONG)
    assert load_space(f).n_points() == N
    explore(load_space(f), d, d / "reference", workers=1, export=no_export)
    return f, store_bytes(d / "reference")


def test_sigkill_then_rerun_loses_and_recomputes_nothing(tmp_path, reference):
    f, expected = reference
    store = tmp_path / "killed"
    p = start(f, store, "--workers", "1")
    wait_for(lambda: committed(store) >= 30 or p.poll() is not None, 120, "30 committed points")
    p.kill()
    p.wait()
    kept = committed(store)
    assert 30 <= kept < N, "the run must be killed part-way for this test to mean anything"
    rerun = subprocess.run([str(BIN / "hwsim"), "explore", str(f), "--store", str(store), "--workers", "1"],
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    k, simulated, copied = counts(rerun.stdout)
    assert k == kept and simulated + copied == N - kept and copied == 0
    assert store_bytes(store) == expected


def test_sigkill_of_the_parent_leaves_no_worker_and_the_store_resumes(tmp_path, reference):
    f, expected = reference
    store = tmp_path / "killed"
    p = start(f, store, "--workers", "2", "--force")
    wait_for(lambda: committed(store) >= 20 or p.poll() is not None, 180, "20 committed points")
    workers = psutil.Process(p.pid).children(recursive=True)
    assert len(workers) >= 2, "a local cluster of two worker processes"
    p.kill()
    p.wait()
    gone, alive = psutil.wait_procs(workers, timeout=10)
    for w in alive:            # clean up before failing, so no test leaves processes behind
        w.kill()
    assert not alive, f"orphaned workers: {[w.pid for w in alive]}"
    kept = committed(store)
    assert main(["explore", str(f), "--store", str(store), "--workers", "1"]) == 0
    assert store_bytes(store) == expected and kept < N


def test_sigterm_stops_the_workers_and_keeps_what_finished(tmp_path, reference):
    f, expected = reference
    store = tmp_path / "stopped"
    p = start(f, store, "--workers", "2", "--force")
    wait_for(lambda: committed(store) >= 20 or p.poll() is not None, 180, "20 committed points")
    workers = psutil.Process(p.pid).children(recursive=True)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "interrupted" in err and "rerun the same command" in err
    _, alive = psutil.wait_procs(workers, timeout=10)
    for w in alive:
        w.kill()
    assert not alive
    # closed cleanly: the journal in point order and the tables derived
    points = [json.loads(line)["point"] for line in (store / JOURNAL).read_text().splitlines()]
    assert points == sorted(points) and len(points) >= 20 and (store / "points.csv").is_file()
    assert main(["explore", str(f), "--store", str(store), "--workers", "1"]) == 0
    assert store_bytes(store) == expected


def test_a_dask_cluster_of_a_scheduler_and_two_workers_gives_the_local_result(tmp_path, capsys):
    f = space_file(tmp_path, LONG.replace("{low: 8, high: 1024, factor: 2}", "[8, 64, 512]"))
    explore(load_space(f), tmp_path, tmp_path / "local", workers=1, export=no_export)
    info = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(info)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        wait_for(lambda: info.is_file() and info.stat().st_size > 0, 60, "the scheduler")
        for _ in range(2):
            procs.append(subprocess.Popen([str(BIN / "dask"), "worker", "--scheduler-file", str(info),
                                           "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path))
        address = json.loads(info.read_text())["address"]
        from distributed import Client

        with Client(address, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
        assert main(["explore", str(f), "--store", str(tmp_path / "remote"), "--scheduler", address]) == 0
        assert "simulated" in capsys.readouterr().out
        assert store_bytes(tmp_path / "remote") == store_bytes(tmp_path / "local")
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs[::-1]:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
