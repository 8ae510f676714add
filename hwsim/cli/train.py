"""`hwsim train`: meta-train an algorithm on the sinusoid, digits or Omniglot tasks, then report
its meta-test score as mean ± 95 % interval over test episodes.

    hwsim train --algo maml --data sinusoid --shot 10 --eval-shot 5 --eval-steps 1,5,10
    hwsim train --algo protonet --data digits --way 5 --shot 1 --out out/protonet.json

Settings left out take the standard values of the task family: the sinusoid setup of Finn et
al. 2017 (1-way, K=10, 10 queries, α=0.01, meta-batch 25) or the few-shot classification one
(5-way 1-shot, 15 queries per class, α=0.4 as for MAML on Omniglot, meta-batch 4).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from . import UsageError
from ..files import write_atomic

if TYPE_CHECKING:
    from algorithms.training import RunConfig

# Per task family: way, shot, query, inner lr, meta-batch.
_DEFAULTS = {
    "regression": dict(way=1, shot=10, query=10, inner_lr=0.01, meta_batch=25),       # Finn 2017 §5.1
    "classification": dict(way=5, shot=1, query=15, inner_lr=0.4, meta_batch=4),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train", help="meta-train an algorithm and evaluate it on test episodes",
                              description=__doc__.splitlines()[0])
    p.add_argument("--algo", default="maml", help="registered algorithm, or 'pretrained' (baseline)")
    p.add_argument("--data", default="sinusoid", help="sinusoid, digits or omniglot")
    p.add_argument("--data-dir", type=Path,
                   help="Omniglot folder holding images_background/ and images_evaluation/")
    p.add_argument("--rotations", action="store_true", help="Omniglot: rotations by 90° as new classes")
    p.add_argument("--backbone", default="", help="default: sine_mlp (sinusoid), conv4_32_28x28x1 (digits), "
                   "conv4_64_28x28x1 (omniglot)")
    p.add_argument("--way", type=int, help="classes per task (1 for the sinusoid; default 5)")
    p.add_argument("--shot", type=int, help="support examples per class K (default 10 sinusoid, 1 images)")
    p.add_argument("--query", type=int, help="query examples per class (default 10 sinusoid, 15 images)")
    p.add_argument("--inner-steps", type=int, default=1, help="inner-loop steps k during meta-training")
    p.add_argument("--inner-lr", type=float,
                   help="inner-loop learning rate α (default 0.01 sinusoid, 0.4 images)")
    p.add_argument("--meta-batch", type=int, help="tasks per meta-step (default 25 sinusoid, 4 images)")
    p.add_argument("--iterations", type=int, default=1000,
                   help="meta-steps in total (a resumed run continues to this)")
    p.add_argument("--eval-episodes", type=int, default=600, help="meta-test episodes")
    p.add_argument("--eval-shot", type=int, help="support examples per class at test (default --shot)")
    p.add_argument("--eval-query", type=int, help="query examples per class at test (default --query)")
    p.add_argument("--eval-steps", default="",
                   help="inner steps at test, comma-separated (default --inner-steps)")
    p.add_argument("--eval-lr", type=float, help="inner learning rate at test (default --inner-lr)")
    p.add_argument("--seed", type=int, default=0, help="seeds the initial parameters and every episode")
    p.add_argument("--eval-seed", type=int, help="seeds the test episodes (default --seed); another "
                   "value gives held-out episodes, e.g. to tune --eval-lr")
    p.add_argument("--checkpoint-dir", type=Path, help="folder for checkpoint.pt (none: no checkpoints)")
    p.add_argument("--checkpoint-every", type=int, default=500, help="meta-steps between checkpoints")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir")
    p.add_argument("--out", type=Path, help="write the results as JSON")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (results are "
                   "reproducible bit for bit at a fixed thread count)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Imported here so that building the parser does not load torch.
    import torch

    from algorithms.training import RunConfig

    family = "regression" if args.data == "sinusoid" else "classification"
    d = _DEFAULTS[family]
    setting = {k: d[k] if getattr(args, k) is None else getattr(args, k) for k in d}
    cfg = RunConfig(algorithm=args.algo, data=args.data, backbone=args.backbone,
                    inner_steps=args.inner_steps, seed=args.seed, rotations=args.rotations, **setting)
    eval_steps = _steps(args.eval_steps, cfg.inner_steps)
    if args.eval_episodes < 2:
        raise UsageError(f"--eval-episodes must be >= 2, got {args.eval_episodes}")
    if args.eval_lr is not None and not args.eval_lr > 0:
        raise UsageError(f"--eval-lr must be > 0, got {args.eval_lr}")
    if args.iterations < 0 or args.checkpoint_every < 1:
        raise UsageError("--iterations must be >= 0 and --checkpoint-every >= 1")
    if args.resume and args.checkpoint_dir is None:
        raise UsageError("--resume needs --checkpoint-dir")
    if args.checkpoint_dir is not None and args.checkpoint_dir.exists() and not args.checkpoint_dir.is_dir():
        raise UsageError(f"--checkpoint-dir {args.checkpoint_dir}: is a file; give a folder")
    if args.out is not None and args.out.is_dir():
        raise UsageError(f"--out {args.out}: is a folder; give a .json file path")
    if args.data_dir is not None and args.data != "omniglot":
        raise UsageError("--data-dir is only used with --data omniglot")
    if args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        return _train_and_evaluate(args, cfg, eval_steps)
    finally:
        torch.set_num_threads(previous_threads)


def _train_and_evaluate(args: argparse.Namespace, cfg: RunConfig, eval_steps: list[int]) -> int:
    from algorithms.evaluation import evaluate
    from algorithms.training import meta_train

    algo = cfg.build_algorithm()
    train_tasks, test_tasks = cfg.task_sources(args.data_dir, eval_shot=args.eval_shot,
                                               eval_query=args.eval_query)
    print(f"meta-train {cfg.algorithm} ({cfg.backbone}) on {train_tasks.describe()}, "
          f"meta-batch {cfg.meta_batch}, k={cfg.inner_steps}, α={cfg.inner_lr:g}, seed {cfg.seed}")
    t0 = time.monotonic()
    state = meta_train(algo, train_tasks, cfg, iterations=args.iterations,
                       checkpoint_dir=args.checkpoint_dir, checkpoint_every=args.checkpoint_every,
                       resume=args.resume, progress=sys.stderr)
    t1 = time.monotonic()
    results = evaluate(algo, state.params, test_tasks, episodes=args.eval_episodes,
                       seed=cfg.seed if args.eval_seed is None else args.eval_seed,
                       steps=eval_steps, lr=args.eval_lr, progress=sys.stderr)
    t2 = time.monotonic()

    print(f"meta-test on {test_tasks.describe()}, {args.eval_episodes} episodes "
          f"(mean ± 95 % interval), after {state.iteration} meta-steps:")
    for k, est in results.items():
        print(f"  {k:3d} step{'s' if k != 1 else ' '}  {est.metric} {est}")
    if args.out is not None:
        report = {"run": cfg.to_json(), "iterations": state.iteration,
                  "train_tasks": train_tasks.describe(), "test_tasks": test_tasks.describe(),
                  "eval_lr": args.eval_lr if args.eval_lr is not None else cfg.inner_lr,
                  "eval_seed": cfg.seed if args.eval_seed is None else args.eval_seed,
                  "results": [{"steps": k, **est.to_json()} for k, est in results.items()],
                  "final_meta_loss": sum(state.losses[-100:]) / max(len(state.losses[-100:]), 1),
                  "train_seconds": round(t1 - t0, 1), "eval_seconds": round(t2 - t1, 1)}
        write_atomic(args.out, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0


def _steps(text: str, default: int) -> list[int]:
    if not text:
        return [default]
    try:
        steps = [int(s) for s in text.split(",")]
    except ValueError:
        raise UsageError(f"--eval-steps {text!r}: expected integers >= 1 separated by commas") from None
    if not steps or min(steps) < 1:
        raise UsageError(f"--eval-steps {text!r}: every step count must be >= 1")
    return steps
