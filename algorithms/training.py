"""Meta-training any registered algorithm: a seeded loop over `meta_step`, periodic checkpoints
that are written atomically and loaded safely, and resumption that reproduces an uninterrupted
run bit for bit.

    run = RunConfig(algorithm="maml", data="sinusoid", shot=10, query=10)
    algo = run.build_algorithm()
    train_tasks, test_tasks = run.task_sources()
    result = meta_train(algo, train_tasks, run, iterations=1000, checkpoint_dir="ckpt")

Reproducibility. The parameters come from `algo.init_params(run.seed)`; batch t of meta-training
from its own generator seeded by (run.seed, "train", t) (`algorithms.data.episode_seed`). So the
state after t iterations is a function of the run and t alone, and a run resumed from a
checkpoint at t draws exactly the batches the uninterrupted run would have drawn.

Checkpoints. `checkpoint.pt` in the checkpoint folder holds only tensors, strings and ints:
{"format", "version", "meta" (JSON: the run and the iteration), "params", "outer_state",
"losses"}. It is written to a temporary file and renamed over the old one, so a crash leaves the
previous checkpoint intact, and read with `torch.load(weights_only=True)`, which never
unpickles code. Anything unreadable or inconsistent is one `CheckpointError`.
"""

from __future__ import annotations

import functools
import io
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

import torch
from pydantic import field_validator, model_validator
from torch import Tensor

from hwsim.errors import BadInput
from hwsim.files import write_atomic

from .backbones import BACKBONES, get_backbone
from .base import ALGORITHMS, Algorithm, Params, TaskBatch
from .data import DATASETS, TaskSource, episode_generator, task_sources
from .maml import MAML
from .phases import build_algorithm
from .settings import Settings

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = "hwsim-checkpoint"
CHECKPOINT_VERSION = 1

# Backbone used when a run names none: the paper's MLP for the sinusoid, the cheaper Conv4
# (32 filters, Ravi & Larochelle's learner) for 28×28×1 images.
DEFAULT_BACKBONES = {"sinusoid": "sine_mlp", "digits": "conv4_32_28x28x1",
                     "omniglot": "conv4_64_28x28x1"}


class TrainingError(BadInput):
    """A training run that cannot be started as asked (bad setting, unusable checkpoint)."""


class CheckpointError(TrainingError):
    """A checkpoint that is missing, corrupt, or written for a different run."""


# ---------------------------------------------------------------- the run


class RunConfig(Settings):
    """Everything that determines the meta-trained parameters (but not how long to train).
    Validated when made (`settings.Settings`): a bad setting is one `TrainingError` line naming
    it as the CLI does (`inner-steps must be an integer >= 1; got 0`)."""

    error: ClassVar[type[ValueError]] = TrainingError
    allowed: ClassVar[dict[str, str]] = {
        "algorithm": "an algorithm name", "data": "a dataset name", "backbone": "a backbone name",
        **{n: "an integer >= 1" for n in ("way", "shot", "query", "inner_steps", "meta_batch",
                                          "image_size")},
        "inner_lr": "a positive finite number", "seed": "an integer >= 0", "rotations": "true or false",
    }

    algorithm: str
    data: str
    backbone: str = ""        # "" -> DEFAULT_BACKBONES[data]
    way: int = 1
    shot: int = 1
    query: int = 15
    inner_steps: int = 1
    inner_lr: float = 0.01
    meta_batch: int = 4
    seed: int = 0
    image_size: int = 28
    rotations: bool = False

    @classmethod
    def field_label(cls, field: str) -> str:
        return field.replace("_", "-")  # as the CLI options are named

    @field_validator("algorithm")
    @classmethod
    def _known_algorithm(cls, value: str) -> str:
        algos = ALGORITHMS.names() + sorted(BASELINES)
        if value not in algos:
            raise ValueError(f"unknown algorithm {value!r}; allowed: {', '.join(algos)}")
        return value

    @field_validator("data")
    @classmethod
    def _known_data(cls, value: str) -> str:
        if value not in DATASETS:
            raise ValueError(f"unknown data {value!r}; allowed: {', '.join(DATASETS)}")
        return value

    @field_validator("way", "shot", "query", "inner_steps", "meta_batch", "image_size")
    @classmethod
    def _at_least_one(cls, value: int, info: Any) -> int:
        if value < 1:
            raise ValueError(f"{cls.field_label(info.field_name)} must be an integer >= 1; got {value!r}")
        return value

    @field_validator("seed")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"seed must be an integer >= 0; got {value!r}")
        return value

    @field_validator("inner_lr")
    @classmethod
    def _positive_finite(cls, value: float) -> float:
        if not 0 < value < math.inf:
            raise ValueError(f"inner-lr must be a positive finite number; got {value!r}")
        return float(value)

    @model_validator(mode="before")
    @classmethod
    def _default_backbone(cls, values: Any) -> Any:
        if isinstance(values, dict) and not values.get("backbone") and values.get("data") in DEFAULT_BACKBONES:
            values = {**values, "backbone": DEFAULT_BACKBONES[values["data"]]}
        return values

    @model_validator(mode="after")
    def _consistent(self) -> "RunConfig":
        if self.backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {self.backbone!r}; allowed: {', '.join(BACKBONES.names())}")
        bb = get_backbone(self.backbone)
        family = "sinusoid" if self.data == "sinusoid" else "classification"
        if bb.task_family != family:
            raise ValueError(f"backbone {self.backbone} is built for {bb.task_family} tasks, not {self.data}")
        if self.data == "sinusoid" and self.algorithm in ALGORITHMS \
                and ALGORITHMS.lookup(self.algorithm).needs_classification:
            raise ValueError(f"{self.algorithm} needs classification tasks (digits or omniglot), "
                             f"not {self.data}")
        if not bb.allows_way(self.way):
            raise ValueError(f"backbone {self.backbone} allows way {bb.allowed_ways()}; got {self.way}")
        return self

    def to_json(self) -> dict[str, Any]:
        return self.fields()

    def build_algorithm(self) -> Algorithm:
        hyper = {"inner_steps": self.inner_steps, "inner_lr": self.inner_lr}
        if self.algorithm in BASELINES:
            bb = get_backbone(self.backbone)
            return BASELINES[self.algorithm](bb.forward, bb.loss,
                                             functools.partial(bb.init_params, way=self.way), **hyper)
        return build_algorithm(self.algorithm, self.backbone, way=self.way, **hyper)

    def task_sources(self, data_dir: str | Path | None = None, *, eval_shot: int | None = None,
                     eval_query: int | None = None) -> tuple[TaskSource, TaskSource]:
        return task_sources(self.data, way=self.way, shot=self.shot, query=self.query,
                            eval_shot=eval_shot, eval_query=eval_query, data_dir=data_dir,
                            image_size=self.image_size, rotations=self.rotations)


class Pretrained(MAML):
    """The "pretrained" baseline of Finn et al. 2017 (§5.1): one network trained on the tasks
    jointly — plain regression on every point of every task, no inner loop — then fine-tuned at
    test time with the same SGD steps as MAML (`adapt` is MAML's). Not a meta-learner, so it is
    not in the algorithm registry and is never exported."""

    name = "pretrained"
    first_order = True

    def task_query_loss(self, params: Params, task: TaskBatch) -> Tensor:
        x = torch.cat([task.xs, task.xq])
        y = torch.cat([task.ys, task.yq])
        return self.loss(self.forward(params, x), y)


BASELINES: dict[str, type[Algorithm]] = {"pretrained": Pretrained}


# ---------------------------------------------------------------- the loop


@dataclass
class TrainState:
    params: Params
    outer_state: Params
    iteration: int = 0                          # meta-steps taken
    losses: list[float] = field(default_factory=list)  # meta-loss of each step taken
    total_iterations: int = 0                   # the length of the run (sets schedules)


def meta_train(algo: Algorithm, source: TaskSource, run: RunConfig, *, iterations: int,
               checkpoint_dir: str | Path | None = None, checkpoint_every: int = 500,
               resume: bool = False, progress: bool | IO[str] = True) -> TrainState:
    """Meta-train `algo` on batches of `run.meta_batch` tasks from `source` until `iterations`
    meta-steps have been taken, checkpointing every `checkpoint_every` steps and at the end.

    With `resume`, continue from the checkpoint in `checkpoint_dir` (which must exist and belong
    to `run`); `iterations` may then be larger than the run it was saved from, except for an
    algorithm with a schedule over the whole run (Reptile's ε), which must resume with the same
    total. Without `resume`, a checkpoint already in `checkpoint_dir` is an error rather than
    something to overwrite."""
    if iterations < 0:
        raise TrainingError(f"iterations must be >= 0, got {iterations}")
    if checkpoint_every < 1:
        raise TrainingError(f"checkpoint interval must be >= 1, got {checkpoint_every}")
    path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    if resume:
        if path is None:
            raise CheckpointError("resuming needs a checkpoint folder")
        state = load_checkpoint(path, run, algo)
        if state.iteration > iterations:
            raise CheckpointError(f"{path} is at iteration {state.iteration}, beyond the "
                                  f"{iterations} iterations asked for")
        if algo.schedule_names and state.total_iterations != iterations:
            raise CheckpointError(f"{path}: {run.algorithm}'s schedule was set for "
                                  f"{state.total_iterations} iterations, not {iterations}; "
                                  f"resume with --iterations {state.total_iterations}")
    else:
        if path is not None and path.exists():
            raise CheckpointError(f"{path} already exists; resume it or choose another "
                                  "checkpoint folder (nothing was overwritten)")
        params = algo.init_params(run.seed)
        state = TrainState(params, algo.init_outer_state(params))
    state.total_iterations = iterations

    bar = Progress(iterations, f"meta-train {run.algorithm}", start=state.iteration, stream=progress)
    try:
        while state.iteration < iterations:
            t = state.iteration
            batch = source.sample(run.meta_batch, episode_generator(run.seed, "train", t))
            # Schedules (Reptile's ε) are set from t and the total before each step.
            outer = algo.set_schedule(state.outer_state, t, iterations)
            loss, params, outer = algo.meta_step(state.params, outer, batch)
            state.params = _detached(params)
            state.outer_state = _detached(outer)
            state.losses.append(float(loss))
            state.iteration = t + 1
            bar.update(loss=_recent_mean(state.losses))
            if path is not None and (state.iteration % checkpoint_every == 0
                                     or state.iteration == iterations):
                save_checkpoint(path, state, run)
    finally:
        bar.close()
    return state


def _detached(params: Params) -> Params:
    return {n: t.detach() for n, t in params.items()}


def _recent_mean(losses: list[float], window: int = 100) -> float:
    recent = losses[-window:]
    return sum(recent) / len(recent)


# ---------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | Path, state: TrainState, run: RunConfig) -> Path:
    path = Path(path)
    meta = {"run": run.to_json(), "iteration": state.iteration,
            "total_iterations": state.total_iterations}
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
               "meta": json.dumps(meta, sort_keys=True),
               "params": dict(state.params), "outer_state": dict(state.outer_state),
               "losses": torch.tensor(state.losses, dtype=torch.float64)}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    # readers see the old checkpoint or the new, never half; on disk before it replaces the old
    write_atomic(path, buffer.getvalue(), durable=True)
    return path


def load_checkpoint(path: str | Path, run: RunConfig, algo: Algorithm) -> TrainState:
    """The training state saved at `path`, checked against `run` and the parameter and
    optimizer-state names and shapes `algo` uses."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint to resume at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure to read is the same fact for the user
        raise CheckpointError(f"{path} is corrupt or not a checkpoint "
                              f"({e.__class__.__name__}: {_first_line(e)})") from None
    try:
        if payload.get("format") != CHECKPOINT_FORMAT or payload.get("version") != CHECKPOINT_VERSION:
            raise ValueError("unknown format or version")
        meta = json.loads(payload["meta"])
        params, outer, losses = payload["params"], payload["outer_state"], payload["losses"]
        iteration = int(meta["iteration"])
        total = int(meta["total_iterations"])
        saved_run = meta["run"]
        if not all(isinstance(t, Tensor) for t in (*params.values(), *outer.values(), losses)):
            raise ValueError("non-tensor entries")
        if losses.shape != (iteration,):
            raise ValueError(f"{losses.shape[0]} losses for {iteration} iterations")
    except Exception as e:  # noqa: BLE001
        raise CheckpointError(f"{path} is corrupt or not an hwsim checkpoint ({_first_line(e)})") from None
    mine = run.to_json()
    diff = [k for k in sorted(set(mine) | set(saved_run)) if mine.get(k) != saved_run.get(k)]
    if diff:
        k = diff[0]
        raise CheckpointError(f"{path} belongs to a different run: {k} is {saved_run.get(k)!r} "
                              f"there, {mine.get(k)!r} here")
    fresh = algo.init_params(run.seed)
    fresh_outer = algo.init_outer_state(fresh)
    for what, saved, expected in (("parameters", params, fresh), ("optimizer state", outer, fresh_outer)):
        if list(saved) != list(expected) or any(saved[n].shape != expected[n].shape for n in saved):
            raise CheckpointError(f"{path}: its {what} do not match {run.algorithm} with "
                                  f"{run.backbone} (different names or shapes)")
    return TrainState(dict(params), dict(outer), iteration, losses.tolist(), total)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else e.__class__.__name__


# ---------------------------------------------------------------- progress bar


class Progress:
    """The one progress bar of the package: redraws one line in place on a terminal, prints a
    line every 10 % elsewhere (logs), nothing when disabled. `stream` is False/True (stderr) or
    a text stream."""

    def __init__(self, total: int, desc: str, *, start: int = 0,
                 stream: bool | IO[str] = True) -> None:
        self.total, self.desc, self.done, self.start = total, desc, start, start
        self.stream: IO[str] | None = sys.stderr if stream is True else (stream or None)
        self.tty = bool(self.stream is not None and getattr(self.stream, "isatty", lambda: False)())
        self.t0 = self.last_draw = time.monotonic()
        self.last_decile = start * 10 // max(total, 1)
        self.postfix = ""

    def update(self, n: int = 1, **postfix: float) -> None:
        self.done += n
        if postfix:
            self.postfix = " ".join(f"{k}={v:.4g}" for k, v in postfix.items())
        if self.stream is None:
            return
        now = time.monotonic()
        if self.tty:
            if now - self.last_draw >= 0.1 or self.done >= self.total:
                self.last_draw = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
        else:
            decile = self.done * 10 // max(self.total, 1)
            if decile > self.last_decile:
                self.last_decile = decile
                self.stream.write(self._line(now) + "\n")
                self.stream.flush()

    def close(self) -> None:
        if self.stream is not None and self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def _line(self, now: float) -> str:
        width = 24
        frac = self.done / self.total if self.total else 1.0
        filled = int(width * frac)
        elapsed = now - self.t0
        rate = (self.done - self.start) / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        return (f"{self.desc} |{'#' * filled}{'.' * (width - filled)}| {self.done}/{self.total} "
                f"[{_clock(elapsed)}<{_clock(eta)}, {rate:.2f} it/s] {self.postfix}").rstrip()


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
