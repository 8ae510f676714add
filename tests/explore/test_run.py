"""Running an exploration in this process: infeasible points, bugs that surface, objectives and
constraints, duplicates, interruption and resumption, samplers' determinism."""

import json

import pytest

from hwsim.explore import explore, load_space, open_store, pareto_front
from hwsim.explore import point as point_mod
from hwsim.explore import run as run_mod
from hwsim.explore.space import SpaceError
from hwsim.explore.store import StoreError

from ..goldens import CONV4_64_MACS
from .conftest import GOOD, MIXED, no_export, space_file, store_bytes


def run(space, tmp_path, store="store", **kw):
    return explore(space, tmp_path, tmp_path / store, workers=1, export=no_export, **kw)


def test_infeasible_points_are_recorded_with_their_reason_and_the_run_goes_on(tmp_path):
    space = load_space(space_file(tmp_path, MIXED))
    s = run(space, tmp_path)
    assert s.complete and s.evaluated == 12
    recs = open_store(tmp_path / "store").records
    bad = [r for r in recs.values() if r.status == "infeasible"]
    assert s.infeasible == len(bad) >= 3
    # every 1 KiB point is infeasible (Conv4's smallest tile needs 2,816 bytes), no 64 KiB one is
    assert {r.point for r in bad} >= {r.point for r in recs.values() if r.params["hw.sram.size_kib"] == 1}
    assert {r.params["hw.sram.size_kib"] for r in bad} <= {1, 4}
    assert all("too small for node" in r.reason and r.objectives is None for r in bad)
    ok = [r for r in recs.values() if r.status == "ok"]
    assert {m["macs"] for r in ok for m in r.models.values()} == {CONV4_64_MACS}
    # area grows with the array and the buffer; the biggest chip is the fastest
    big = next(r for r in ok if r.params == {"hw.array.rows": 32, "hw.sram.size_kib": 512})
    small = next(r for r in ok if r.params == {"hw.array.rows": 8, "hw.sram.size_kib": 64})
    assert big.area > small.area and big.objectives[0] < small.objectives[0]
    # with area as an objective the front holds more than the biggest chip
    assert len(s.front) > 1 and all(r.status == "ok" for r in s.front)


def test_an_invalid_value_is_an_infeasible_point_naming_point_and_field(tmp_path):
    space = load_space(space_file(tmp_path, GOOD.replace("[8, 32]", "[8, -4]")))
    run(space, tmp_path)
    recs = open_store(tmp_path / "store").records
    bad = [r for r in recs.values() if r.status != "ok"]
    assert len(bad) == 2 and all("hw.array.rows=-4" in r.reason and "array.rows" in r.reason for r in bad)


def test_an_exception_that_is_not_bad_input_is_a_bug_and_surfaces(tmp_path, monkeypatch):
    space = load_space(space_file(tmp_path, MIXED))
    calls = []
    real = point_mod.area

    def broken_area(hw):
        calls.append(1)
        if len(calls) == 3:
            raise ZeroDivisionError("a bug in the cost model")
        return real(hw)

    monkeypatch.setattr(point_mod, "area", broken_area)
    with pytest.raises(ZeroDivisionError):
        run(space, tmp_path)
    # what finished before the bug is kept, never marked infeasible
    recs = open_store(tmp_path / "store").records
    assert sum(r.status == "ok" for r in recs.values()) == 2      # the two areas computed before it
    assert all("bug" not in (r.reason or "") for r in recs.values())
    assert len(recs) < 12


def test_unknown_config_path_and_compile_option_are_refused_before_any_point(tmp_path):
    space = load_space(space_file(tmp_path, GOOD.replace("array.rows", "array.height")))
    with pytest.raises(SpaceError, match=r"hw.array.height: the base config has no field 'height'"):
        run(space, tmp_path)
    space = load_space(space_file(tmp_path, GOOD.replace("grid:", "parameters:\n  compile.tiling: [rows]\ngrid:")))
    with pytest.raises(SpaceError, match=r"compile.tiling: the npu lowering takes no option 'tiling' \(it takes: "
                                         r"detail, precision, fusion, halo, recompute\)"):
        run(space, tmp_path)
    assert not (tmp_path / "store").exists()


def test_compiler_knobs_are_explored_with_the_hardware(tmp_path):
    """Co-design: fusion and precision are space parameters like array sizes, searched together
    with the hardware, and each point records which knob values it ran with."""
    body = """base: edge-npu
models:
  - {onnx: conv4.onnx}
parameters:
  hw.sram.size_kib: [64, 512]
  compile.fusion: [none, depth_first]
  compile.precision: [fp32, bf16]
objectives: [latency, dram_traffic]
"""
    summary = run(load_space(space_file(tmp_path, body)), tmp_path)
    recs = open_store(tmp_path / "store").records
    assert len(recs) == 8 and all(r.status == "ok" for r in recs.values())
    traffic = {(r.params["compile.fusion"], r.params["compile.precision"], r.params["hw.sram.size_kib"]):
               r.models["conv4"]["dram_bytes"] for r in recs.values()}
    for kib in (64, 512):   # narrower storage and fusion each move fewer DRAM bytes
        assert traffic[("none", "bf16", kib)] < traffic[("none", "fp32", kib)]
        assert traffic[("depth_first", "fp32", kib)] <= traffic[("none", "fp32", kib)]
    assert summary.front


def test_missing_model_file_is_a_clear_error(tmp_path):
    space = load_space(space_file(tmp_path, GOOD.replace("conv4.onnx", "nope.onnx")))
    with pytest.raises(SpaceError, match="models.0.onnx.*nope.onnx"):
        run(space, tmp_path)


def test_objectives_per_model_and_constraints(tmp_path):
    body = MIXED.replace("  - {onnx: conv4.onnx}\n", "  - {name: a, onnx: conv4.onnx}\n  - {name: b, onnx: conv4.onnx}\n")
    body = body.replace("objectives: [latency, energy, area]",
                        "objectives: [{metric: latency, model: a}, energy, peak_memory, dram_traffic]\n"
                        "constraints: [{metric: area, max: 15}]")
    run(load_space(space_file(tmp_path, body)), tmp_path)
    recs = [r for r in open_store(tmp_path / "store").records.values() if r.status == "ok"]
    for r in recs:
        a, b = r.models["a"], r.models["b"]
        assert r.objectives == [a["seconds"], a["energy_pj"] + b["energy_pj"],
                                max(a["peak_onchip_bytes"], b["peak_onchip_bytes"]),
                                a["dram_bytes"] + b["dram_bytes"]]
        assert r.violations == [r.area - 15] and r.feasible == (r.area <= 15)
    assert any(not r.feasible for r in recs) and any(r.feasible for r in recs)
    assert all(r.feasible for r in pareto_front(recs))


def test_an_interrupted_run_resumes_without_recomputing_and_ends_as_an_uninterrupted_one(tmp_path, monkeypatch):
    space = load_space(space_file(tmp_path, MIXED))
    run(space, tmp_path, "whole")
    real = run_mod._Runner._collect
    seen = []

    def collect_then_interrupt(self):
        real(self)
        seen.append(1)
        if len(seen) == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(run_mod._Runner, "_collect", collect_then_interrupt)
    first = run(space, tmp_path, "cut")
    assert first.interrupted and not first.complete and first.evaluated == 5
    assert len(open_store(tmp_path / "cut").records) == 5      # a partial store reads
    monkeypatch.setattr(run_mod._Runner, "_collect", real)
    second = run(space, tmp_path, "cut")
    assert second.complete and second.kept == 5 and second.evaluated == 7
    assert store_bytes(tmp_path / "cut") == store_bytes(tmp_path / "whole")
    third = run(space, tmp_path, "cut")
    assert third.evaluated == 0 and third.kept == 12


@pytest.mark.parametrize("sampler", ["random", "tpe", "nsga2"])
def test_samplers_resume_mid_batch_to_the_same_store(tmp_path, monkeypatch, sampler):
    space = load_space(space_file(tmp_path, MIXED.replace(
        "objectives", f"search: {{sampler: {sampler}, trials: 24, batch: 8, seed: 3}}\nobjectives")))
    whole = run(space, tmp_path, "whole")
    assert whole.complete and whole.evaluated + whole.reused == 24
    recs = open_store(tmp_path / "whole").records
    assert all(r.trial and r.trial["params"] for r in recs.values())
    real = run_mod._Runner._collect
    seen = []

    def collect_then_interrupt(self):
        real(self)
        seen.append(1)
        if len(seen) == 6:
            raise KeyboardInterrupt

    monkeypatch.setattr(run_mod._Runner, "_collect", collect_then_interrupt)
    cut = run(space, tmp_path, "cut")
    assert cut.interrupted
    monkeypatch.setattr(run_mod._Runner, "_collect", real)
    again = run(space, tmp_path, "cut")
    assert again.complete
    # nothing simulated twice: every distinct configuration is simulated once over both runs
    distinct = len({json.dumps(r.params, sort_keys=True) for r in recs.values()})
    assert cut.evaluated + again.evaluated == distinct == whole.evaluated
    assert store_bytes(tmp_path / "cut") == store_bytes(tmp_path / "whole")
    # another seed is another exploration: refused in the same store, different in a new one
    with pytest.raises(StoreError, match="another exploration|another space"):
        run(space.with_search(seed=4), tmp_path, "cut")
    other = run(space.with_search(seed=4), tmp_path, "other")
    assert other.complete
    assert [r.params for r in open_store(tmp_path / "other").records.values()] != [r.params for r in recs.values()]


def test_more_trials_extend_a_store_with_the_same_first_points(tmp_path):
    space = load_space(space_file(tmp_path, MIXED.replace(
        "objectives", "search: {sampler: nsga2, trials: 12, population: 6}\nobjectives")))
    run(space, tmp_path, "short")
    run(space.with_search(trials=20), tmp_path, "short")
    run(space.with_search(trials=20), tmp_path, "long")
    assert store_bytes(tmp_path / "short")["journal.jsonl"] == store_bytes(tmp_path / "long")["journal.jsonl"]


def test_duplicates_are_copied_not_simulated(tmp_path):
    body = GOOD.replace("[8, 32]", "[8, 8, 32]")
    s = run(load_space(space_file(tmp_path, body)), tmp_path)
    assert s.evaluated == 4 and s.reused == 2
    recs = open_store(tmp_path / "store").records
    assert recs[2].same_as == 0 and recs[2].models == recs[0].models
    assert all(r.same_as is None for r in pareto_front(recs.values()))
