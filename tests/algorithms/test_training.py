"""Meta-training and evaluation: checkpoints round-trip and are loaded safely, a resumed run
equals an uninterrupted one bit for bit, corrupt checkpoints are one clear error, the
confidence interval is 1.96·s/√n, and a short run really lowers the meta-loss."""

import io
import math

import pytest
import torch

from algorithms.data import episode_generator
from algorithms.evaluation import Estimate, confidence_interval, evaluate
from algorithms.training import (CHECKPOINT_NAME, CheckpointError, Progress, RunConfig,
                                 TrainingError, load_checkpoint, meta_train, save_checkpoint)

RUN = RunConfig(algorithm="maml", data="sinusoid", shot=5, query=5, meta_batch=3, seed=4)


def sinusoid_run(run=RUN):
    algo = run.build_algorithm()
    train, test = run.task_sources()
    return algo, train, test


def assert_same_state(a, b):
    assert a.iteration == b.iteration
    assert a.losses == b.losses
    for x, y in ((a.params, b.params), (a.outer_state, b.outer_state)):
        assert list(x) == list(y)
        assert all(torch.equal(x[n], y[n]) for n in x)


def test_resumed_run_equals_uninterrupted_run_bit_for_bit(tmp_path):
    algo, train, _ = sinusoid_run()
    whole = meta_train(algo, train, RUN, iterations=7, progress=False)
    meta_train(algo, train, RUN, iterations=4, checkpoint_dir=tmp_path, checkpoint_every=3, progress=False)
    resumed = meta_train(algo, train, RUN, iterations=7, checkpoint_dir=tmp_path, resume=True,
                         progress=False)
    assert_same_state(whole, resumed)
    assert not torch.equal(whole.params["fc1.weight"], algo.init_params(RUN.seed)["fc1.weight"])
    # and the checkpoint left behind is the final state
    assert_same_state(load_checkpoint(tmp_path / CHECKPOINT_NAME, RUN, algo), whole)


def test_checkpoint_round_trip_and_periodic_saving(tmp_path):
    algo, train, _ = sinusoid_run()
    state = meta_train(algo, train, RUN, iterations=5, checkpoint_dir=tmp_path, checkpoint_every=2,
                       progress=False)
    loaded = load_checkpoint(tmp_path / CHECKPOINT_NAME, RUN, algo)
    assert_same_state(state, loaded)
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]  # no temporary files left
    # the file holds only tensors and plain values
    payload = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert payload["format"] == "hwsim-checkpoint" and payload["losses"].dtype == torch.float64


def test_existing_checkpoint_is_not_overwritten_without_resume(tmp_path):
    algo, train, _ = sinusoid_run()
    meta_train(algo, train, RUN, iterations=2, checkpoint_dir=tmp_path, progress=False)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    with pytest.raises(CheckpointError, match="already exists"):
        meta_train(algo, train, RUN, iterations=3, checkpoint_dir=tmp_path, progress=False)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before


def test_resume_checks_the_run_and_the_iteration(tmp_path):
    algo, train, _ = sinusoid_run()
    meta_train(algo, train, RUN, iterations=3, checkpoint_dir=tmp_path, progress=False)
    other = RunConfig(algorithm="maml", data="sinusoid", shot=5, query=5, meta_batch=3, seed=5)
    with pytest.raises(CheckpointError, match="different run: seed is 4 there, 5 here"):
        meta_train(algo, train, other, iterations=4, checkpoint_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="at iteration 3, beyond the 2 iterations"):
        meta_train(algo, train, RUN, iterations=2, checkpoint_dir=tmp_path, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="no checkpoint to resume"):
        meta_train(algo, train, RUN, iterations=2, checkpoint_dir=tmp_path / "empty", resume=True,
                   progress=False)


class CrashingSource:
    """A task source that fails on its n-th batch, like a run killed mid-way."""

    def __init__(self, source, fail_at):
        self.source, self.fail_at, self.calls = source, fail_at, 0
        self.family = source.family

    def sample(self, meta_batch, generator):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt
        return self.source.sample(meta_batch, generator)


def test_crashed_reptile_run_resumes_to_the_same_result(tmp_path):
    """Reptile's ε schedule spans the whole run: a run killed after its checkpoint at step 3 and
    resumed with the same total equals the uninterrupted run; another total is refused."""
    run = RunConfig(algorithm="reptile", data="sinusoid", shot=5, query=5, meta_batch=2,
                    inner_steps=2, seed=1)
    algo, train, _ = sinusoid_run(run)
    whole = meta_train(algo, train, run, iterations=6, progress=False)
    with pytest.raises(KeyboardInterrupt):
        meta_train(algo, CrashingSource(train, fail_at=5), run, iterations=6,
                   checkpoint_dir=tmp_path, checkpoint_every=3, progress=False)
    with pytest.raises(CheckpointError, match="schedule was set for 6 iterations, not 8"):
        meta_train(algo, train, run, iterations=8, checkpoint_dir=tmp_path, resume=True, progress=False)
    resumed = meta_train(algo, train, run, iterations=6, checkpoint_dir=tmp_path, resume=True,
                         progress=False)
    assert_same_state(whole, resumed)


class Payload:  # an arbitrary class: weights_only loading must refuse to build it
    pass


@pytest.mark.parametrize("damage", ["garbage", "truncated", "not_a_dict_of_tensors", "pickled_object",
                                    "losses_mismatch"])
def test_corrupt_checkpoint_is_one_clear_error(tmp_path, damage):
    algo, train, _ = sinusoid_run()
    state = meta_train(algo, train, RUN, iterations=2, checkpoint_dir=tmp_path, progress=False)
    path = tmp_path / CHECKPOINT_NAME
    if damage == "garbage":
        path.write_bytes(b"\x00\x01 not a checkpoint")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "not_a_dict_of_tensors":
        torch.save({"format": "hwsim-checkpoint", "version": 1, "meta": "{}"}, path)
    elif damage == "pickled_object":
        buf = io.BytesIO()
        torch.save({"format": "hwsim-checkpoint", "version": 1, "evil": Payload()}, buf)
        path.write_bytes(buf.getvalue())
    else:
        state.losses.append(1.0)
        save_checkpoint(path, state, RUN)
    with pytest.raises(CheckpointError, match="corrupt") as e:
        load_checkpoint(path, RUN, algo)
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_checkpoint_for_another_backbone_shape_is_rejected(tmp_path):
    algo, train, _ = sinusoid_run()
    state = meta_train(algo, train, RUN, iterations=1, progress=False)
    state.params["fc1.weight"] = torch.zeros(3, 1)
    save_checkpoint(tmp_path / CHECKPOINT_NAME, state, RUN)
    with pytest.raises(CheckpointError, match="parameters do not match"):
        load_checkpoint(tmp_path / CHECKPOINT_NAME, RUN, algo)


def test_confidence_interval_is_1_96_sample_std_over_sqrt_n():
    est = confidence_interval([1.0, 2.0, 3.0, 4.0], "mse")
    s = math.sqrt(((1 - 2.5) ** 2 + (2 - 2.5) ** 2 + (3 - 2.5) ** 2 + (4 - 2.5) ** 2) / 3)
    assert est.mean == 2.5 and est.episodes == 4
    assert est.ci95 == pytest.approx(1.96 * s / 2, rel=1e-12)
    assert confidence_interval([7.0] * 600).ci95 == 0.0
    with pytest.raises(ValueError):
        confidence_interval([1.0])
    assert str(Estimate("accuracy", 61.234, 0.8, 600)) == "61.23 ± 0.80 %"


def test_a_short_run_lowers_the_meta_loss_on_held_out_tasks():
    run = RunConfig(algorithm="maml", data="sinusoid", shot=10, query=10, meta_batch=10, seed=0)
    algo, train, _ = sinusoid_run(run)
    held_out = train.sample(200, episode_generator(99, "held_out", 0))
    before = float(algo.meta_loss(algo.init_params(run.seed), held_out).detach())
    state = meta_train(algo, train, run, iterations=200, progress=False)
    after = float(algo.meta_loss(state.params, held_out).detach())
    assert after < 0.85 * before, (before, after)   # measured: 3.75 -> 2.91


def test_pretrained_baseline_learns_the_mean_task():
    run = RunConfig(algorithm="pretrained", data="sinusoid", shot=10, query=10, meta_batch=10)
    algo, train, test = sinusoid_run(run)
    state = meta_train(algo, train, run, iterations=150, progress=False)
    assert sum(state.losses[-20:]) < sum(state.losses[:20])
    result = evaluate(algo, state.params, test, episodes=20, steps=(1, 5))
    assert set(result) == {1, 5} and all(r.metric == "mse" for r in result.values())


def test_evaluation_is_deterministic_and_reports_per_step_count():
    algo, _, test = sinusoid_run()
    params = algo.init_params(0)
    a = evaluate(algo, params, test, episodes=30, seed=3, steps=(1, 10))
    b = evaluate(algo, params, test, episodes=30, seed=3, steps=(1, 10))
    c = evaluate(algo, params, test, episodes=30, seed=4, steps=(1, 10))
    assert a == b and a != c and a[1].episodes == 30
    assert a[10].mean != a[1].mean


def test_classification_evaluation_reports_accuracy_on_digits():
    run = RunConfig(algorithm="fomaml", data="digits", way=5, shot=1, query=2, meta_batch=1,
                    inner_lr=0.4)
    algo, _, test = sinusoid_run(run)
    result = evaluate(algo, algo.init_params(0), test, episodes=4, steps=(1,))
    est = result[1]
    assert est.metric == "accuracy" and 0.0 <= est.mean <= 100.0
    assert (est.mean * 4) % 10 == 0  # each of the 4 episodes scores a multiple of 10 % (10 queries)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(algorithm="nope", data="sinusoid"), "unknown algorithm 'nope'"),
    (dict(algorithm="maml", data="mnist"), "unknown data 'mnist'"),
    (dict(algorithm="maml", data="sinusoid", inner_steps=0), "inner-steps must be an integer >= 1"),
    (dict(algorithm="maml", data="digits", shot=0, way=5), "shot must be an integer >= 1"),
    (dict(algorithm="maml", data="digits", way=5, backbone="sine_mlp"), "built for sinusoid"),
    (dict(algorithm="maml", data="sinusoid", inner_lr=-1.0), "inner-lr must be a positive"),
    (dict(algorithm="maml", data="sinusoid", meta_batch=True), "meta-batch must be an integer"),
    (dict(algorithm="maml", data="sinusoid", shot="5"), "shot must be an integer"),
    (dict(algorithm="maml", data="sinusoid", inner_lr="0.1"), "inner-lr must be a positive finite number"),
    (dict(algorithm="maml", data="sinusoid", rotations="yes"), "rotations must be true or false"),
    (dict(algorithm="maml", data="sinusoid", epochs=3), "unknown setting 'epochs'"),
    (dict(algorithm="protonet", data="sinusoid"), "needs classification tasks"),
    (dict(algorithm="maml", data="digits", way=1), "allows way 2..64"),
])
def test_bad_run_settings_are_training_errors(kwargs, fragment):
    with pytest.raises(TrainingError, match=fragment):
        RunConfig(**kwargs)


def test_progress_prints_every_tenth_when_not_a_terminal():
    out = io.StringIO()
    bar = Progress(20, "meta-train x", stream=out)
    for _ in range(20):
        bar.update(loss=1.5)
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1].startswith("meta-train x |") and "20/20" in lines[-1]
    assert "loss=1.5" in lines[-1]


def test_run_config_fills_the_backbone_of_the_data_and_round_trips_through_json():
    run = RunConfig(algorithm="protonet", data="digits", way=5)
    assert run.backbone == "conv4_32_28x28x1" and run.inner_lr == 0.01
    assert RunConfig(**run.to_json()) == run
    assert RunConfig(algorithm="maml", data="sinusoid", inner_lr=1).inner_lr == 1.0
