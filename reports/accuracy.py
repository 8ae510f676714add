"""Accuracy beside cost: `hwsim train` results joined with simulated runs.

A train result (the JSON of `hwsim train --out`) says how well an algorithm meta-learned: the
meta-test score (few-shot accuracy in %, or sinusoid MSE) after k inner steps, mean and 95 %
interval. The simulated runs of `hwsim compare` say what the same algorithm costs: one
meta-training step (the `meta_train` phase) and adapting to one new task (the `adapt` phase).

A train result is matched to the simulation on `MATCH_FIELDS` — the settings that determine
the simulated graphs: algorithm, backbone, way, shot, query, inner steps and meta-batch. Its
score is the one after as many inner steps as the simulated adaptation takes. A train result
that does not match is refused with the flags that would make it match; nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from hwsim.errors import BadInput

from .compare import Run

MATCH_FIELDS = ("algorithm", "backbone", "way", "shot", "query", "inner_steps", "meta_batch")
METRICS = {"accuracy": "higher", "mse": "lower"}


class AccuracyError(BadInput):
    """A train result that cannot be read, or that matches no simulated run."""


@dataclass(frozen=True)
class TrainResult:
    label: str                                  # shown beside its points (file stem)
    setting: dict[str, Any]                     # MATCH_FIELDS as trained
    data: str
    metric: str
    scores: dict[int, tuple[float, float, int]]  # inner steps -> (mean, ci95, episodes)
    iterations: int


def read_train_result(data: Any, label: str, where: str) -> TrainResult:
    """Check and read the JSON of `hwsim train --out`."""
    if not isinstance(data, Mapping) or not isinstance(data.get("run"), Mapping) \
            or not isinstance(data.get("results"), list) or not data["results"]:
        raise AccuracyError(f"{where}: not a `hwsim train --out` result (expected 'run' and 'results')")
    run = data["run"]
    missing = [k for k in (*MATCH_FIELDS, "data") if k not in run]
    if missing:
        raise AccuracyError(f"{where}: run is missing {', '.join(missing)}")
    scores: dict[int, tuple[float, float, int]] = {}
    metrics = set()
    for r in data["results"]:
        try:
            steps, mean, ci = int(r["steps"]), float(r["mean"]), float(r["ci95"])
            metrics.add(str(r["metric"]))
            scores[steps] = (mean, ci, int(r.get("episodes", 0)))
        except (KeyError, TypeError, ValueError):
            raise AccuracyError(f"{where}: a result lacks steps, metric, mean or ci95") from None
    if len(metrics) != 1 or next(iter(metrics)) not in METRICS:
        raise AccuracyError(f"{where}: metric {sorted(metrics)} is not one of {', '.join(METRICS)}")
    return TrainResult(label, {k: run[k] for k in MATCH_FIELDS}, str(run["data"]), metrics.pop(), scores,
                       int(data.get("iterations", 0)))


def check_match(train: TrainResult, simulated: Mapping[str, Any], where: str) -> None:
    """Refuse a train result whose settings differ from the simulated ones, naming the flags."""
    if train.setting["algorithm"] not in simulated["algorithms"]:
        raise AccuracyError(f"{where}: algorithm {train.setting['algorithm']!r} is not among the compared "
                            f"algorithms ({', '.join(simulated['algorithms'])}); add it to --algos")
    differ = [k for k in MATCH_FIELDS[1:] if train.setting[k] != simulated[k]]
    if differ:
        flags = " ".join(f"--{k.replace('_', '-')} {train.setting[k]}" for k in differ)
        trained = ", ".join(f"{k} {train.setting[k]}" for k in differ)
        sim = ", ".join(f"{k} {simulated[k]}" for k in differ)
        raise AccuracyError(f"{where}: trained with {trained} but simulated with {sim}; run compare with {flags}")
    k = simulated["inner_steps"]
    if k not in train.scores:
        raise AccuracyError(f"{where}: no meta-test score after {k} inner step(s) (it has "
                            f"{', '.join(map(str, sorted(train.scores)))}); evaluate with --eval-steps {k}")


def join(trains: Sequence[TrainResult], runs: Sequence[Run], inner_steps: int) -> list[dict[str, Any]]:
    """One point per (train result, target): its score after `inner_steps` steps, the energy and
    latency of one simulated meta-training step and of one adaptation, and whether it is on the
    Pareto set of its target for each cost."""
    by = {(r.algorithm, r.phase, r.result.target): r.result for r in runs}
    targets = list(dict.fromkeys(r.result.target for r in runs))
    points = []
    for t in trains:
        algo = t.setting["algorithm"]
        mean, ci, episodes = t.scores[inner_steps]
        for tgt in targets:
            train_run, adapt_run = by.get((algo, "meta_train", tgt)), by.get((algo, "adapt", tgt))
            if train_run is None or adapt_run is None:
                continue
            points.append({"label": t.label, "algorithm": algo, "data": t.data, "target": tgt,
                           "metric": t.metric, "mean": mean, "ci95": ci, "episodes": episodes,
                           "steps": inner_steps, "meta_iterations": t.iterations,
                           "meta_train_energy_j": train_run.energy_pj * 1e-12,
                           "meta_train_latency_s": train_run.seconds,
                           "adapt_energy_j": adapt_run.energy_pj * 1e-12,
                           "adapt_latency_s": adapt_run.seconds})
    for tgt in targets:
        mine = [p for p in points if p["target"] == tgt]
        for key, flag in (("meta_train_energy_j", "pareto_meta_train"), ("adapt_latency_s", "pareto_adapt")):
            front = {id(p) for p in pareto(mine, key, trains[0].metric if trains else "accuracy")}
            for p in mine:
                p[flag] = id(p) in front
    return points


def pareto(points: Sequence[Mapping[str, Any]], cost: str, metric: str) -> list[Mapping[str, Any]]:
    """Points no other point beats on both `cost` (lower) and the score (higher accuracy,
    lower MSE); ties on both are all kept."""
    sign = 1.0 if METRICS.get(metric, "higher") == "higher" else -1.0

    def beats(a, b) -> bool:
        ca, cb, sa, sb = a[cost], b[cost], sign * a["mean"], sign * b["mean"]
        return ca <= cb and sa >= sb and (ca < cb or sa > sb)

    return [p for p in points if not any(beats(q, p) for q in points if q is not p)]


def accuracy_markdown(points: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    from .tables import render, si

    if not points:
        return []
    rows = [(p["label"], p["algorithm"], p["target"], f"{p['mean']:.3f} ± {p['ci95']:.3f}",
             si(p["meta_train_energy_j"], "J"), si(p["meta_train_latency_s"], "s"),
             si(p["adapt_latency_s"], "s"), si(p["adapt_energy_j"], "J"),
             ("train " if p["pareto_meta_train"] else "") + ("adapt" if p["pareto_adapt"] else ""))
            for p in points]
    return ["", f"## Accuracy beside cost ({metric}, {METRICS[metric]} is better)", "",
            f"Matched on {', '.join(MATCH_FIELDS)}; score after {points[0]['steps']} inner step(s).", "",
            render(("train result", "algorithm", "target", metric, "meta-train energy/step",
                    "meta-train latency/step", "adapt latency/task", "adapt energy/task", "Pareto"),
                   rows, markdown=True)]
