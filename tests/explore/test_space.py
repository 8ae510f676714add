"""The space format: parameters (choices, steps, log scales, continuous), the older `grid:` form,
objectives and constraints, one-line errors, and the cap checked before any point exists."""

import itertools
import time
from pathlib import Path

import pytest

from hwsim.explore import SpaceError, load_space
from hwsim.explore.space import Range

from .conftest import GOOD, space_file


def test_older_grid_format_is_the_product_in_file_order(tmp_path):
    space = load_space(space_file(tmp_path, GOOD))
    assert space.grid_size() == 4 and space.n_points() == 4
    assert [space.grid_point(i) for i in range(4)] == [
        {"hw.array.rows": r, "hw.sram.size_kib": s} for r, s in itertools.product([8, 32], [16, 512])]
    assert [o.label for o in space.objectives] == ["latency", "energy"]   # the older sweep's pair


def test_grid_point_decodes_the_mixed_radix_product(tmp_path):
    body = GOOD.replace("grid:\n  array.rows: [8, 32]\n  sram.size_kib: [16, 512]\n", """parameters:
  hw.array.rows: {low: 8, high: 32, step: 8}
  hw.sram.size_kib: {low: 64, high: 1024, factor: 2}
  hw.dram.bandwidth_gbps: [12.8, 25.6]
""")
    space = load_space(space_file(tmp_path, body))
    axes = [[8, 16, 24, 32], [64, 128, 256, 512, 1024], [12.8, 25.6]]
    expected = list(itertools.product(*axes))
    assert space.grid_size() == len(expected) == 40
    for i, combo in enumerate(expected):
        assert tuple(space.grid_point(i).values()) == combo


@pytest.mark.parametrize("spec, values", [
    (dict(low=0.1, high=0.5, step=0.1), [0.1, 0.2, 0.3, 0.4, 0.5]),
    (dict(low=3, high=10, step=3), [3, 6, 9]),
    (dict(low=1, high=4), [1, 2, 3, 4]),                        # an int range steps by 1
    (dict(low=1, high=100, num=3, log=True), [1.0, 10.0, 100.0]),
    (dict(low=0, high=1, num=5), [0.0, 0.25, 0.5, 0.75, 1.0]),
    (dict(low=16, high=100, factor=2), [16, 32, 64]),
])
def test_discrete_ranges(spec, values):
    r = Range(**spec)
    assert r.discrete and [r.value(i) for i in range(r.count())] == values
    assert all(type(v) is type(values[0]) for v in values)


def test_continuous_range_is_for_samplers_only(tmp_path):
    body = GOOD.replace("sram.size_kib: [16, 512]", "array.cols: [8]").replace(
        "grid:", "parameters:\n  hw.clock_mhz: {low: 500.0, high: 1500.0}\ngrid:")
    with pytest.raises(SpaceError, match=r"hw.clock_mhz: a continuous range cannot be a grid axis"):
        load_space(space_file(tmp_path, body))
    space = load_space(space_file(tmp_path, body + "search: {sampler: random, trials: 5}\n"))
    assert space.n_points() == 5 and space.grid_size() == 0


def test_a_huge_grid_is_refused_before_anything_is_built(tmp_path):
    axes = "\n".join(f"  hw.{k}: {{low: 1, high: 100}}" for k in
                     ("array.rows", "array.cols", "sram.banks", "vector.lanes", "cores"))
    body = GOOD.split("grid:")[0] + "parameters:\n" + axes + "\n"
    t = time.process_time()
    with pytest.raises(SpaceError, match=r"10,000,000,000 points; at most 10,000"):
        load_space(space_file(tmp_path, body))
    assert time.process_time() - t < 5        # a list of 10^10 points would not fit in memory at all
    # the first points of the same grid may be run
    space = load_space(space_file(tmp_path, body + "search: {trials: 3}\n"))
    assert space.n_points() == 3 and space.grid_point(2)["hw.cores"] == 3


@pytest.mark.parametrize("body, fragment", [
    (GOOD + "extra: 1\n", "extra"),
    (GOOD.replace("[8, 32]", "[]"), "array.rows"),
    (GOOD.replace("  - {onnx: conv4.onnx}\n", "  - {algo: maml}\n"), "algo"),
    ("- 1\n", "mapping"),
    ("base: [\n", "not valid YAML"),
    (GOOD.replace("grid:", "parameters:\n  array.banks: [1]\ngrid:"), "must start with 'hw.'"),
    (GOOD.replace("grid:", "parameters:\n  hw.array.cols: {low: 4, high: 2}\ngrid:"), "below high"),
    (GOOD.replace("grid:", "parameters:\n  hw.array.cols: {low: 0, high: 8, factor: 2}\ngrid:"), "low > 0"),
    (GOOD + "objectives: [latency, speed]\n", "objectives.1.metric"),
    (GOOD + "objectives: [{metric: latency, model: adapt}]\n", "no model named 'adapt'"),
    (GOOD + "constraints: [{metric: area, model: conv4, max: 3}]\n", "area belongs to the hardware"),
    (GOOD + "search: {sampler: annealing}\n", "search.sampler"),
    (GOOD.replace("  - {onnx: conv4.onnx}\n", "  - {onnx: conv4.onnx}\n  - {onnx: conv4.onnx}\n"),
     "two models are named 'conv4'"),
])
def test_bad_spaces_are_one_line_errors(tmp_path, body, fragment):
    with pytest.raises(SpaceError) as e:
        load_space(space_file(tmp_path, body))
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_space_file_is_read_with_a_bound(tmp_path):
    f = space_file(tmp_path, GOOD + "#" * (2 << 20) + "\n")
    with pytest.raises(SpaceError, match="larger than 1024 KiB"):
        load_space(f)
    with pytest.raises(SpaceError, match="is a directory"):
        load_space(tmp_path)


def test_unsafe_yaml_tags_are_refused(tmp_path):
    f = space_file(tmp_path, "base: !!python/object/apply:os.system ['echo hacked']\n" + GOOD.split("\n", 1)[1])
    with pytest.raises(SpaceError, match="not valid YAML"):
        load_space(f)


def test_identity_ignores_trials_but_not_the_rest(tmp_path):
    space = load_space(space_file(tmp_path, GOOD + "search: {sampler: tpe, trials: 10}\n"))
    assert space.identity() == space.with_search(trials=50).identity()
    assert space.identity() != space.with_search(seed=1).identity()
    assert space.identity() != space.with_search(batch=3).identity()
    with pytest.raises(SpaceError, match="search.trials"):
        space.with_search(trials=0)




def test_the_readme_and_docs_spaces_are_valid(tmp_path):
    root = Path(__file__).resolve().parents[2]
    for doc in ("README.md", "docs/explore.md"):
        text = (root / doc).read_text()
        blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
        assert blocks, doc
        for i, block in enumerate(blocks):
            f = tmp_path / f"{i}.yaml"
            f.write_text(block)
            space = load_space(f)
            assert space.models and space.domains()


def test_a_yaml_alias_bomb_is_refused(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    f = space_file(tmp_path, "\n".join(lines) + "\n" + GOOD)
    t = time.process_time()
    with pytest.raises(SpaceError, match="more than 100,000 values"):
        load_space(f)
    assert time.process_time() - t < 5
