"""Where the points come from: a lazy grid, or Optuna's samplers (random, TPE, NSGA-II).

The sampled points are proposed in batches of a fixed size. Batch b is asked of a *fresh*
sampler, seeded from (seed, b), over an in-memory study holding every point of batches < b as
the store records them. So a proposal is a pure function of the space, the seed and the
results before it: the same whatever the number of workers, the order in which points finish,
or how many times the run was killed and resumed. A batch all of whose points are in the store
is not asked again; one that is partly there is asked again and must propose the same points
(else the store is not this exploration's, and the run stops).

The grid does not use Optuna's GridSampler: it builds the whole product in its constructor,
and a grid here is decoded point by point (`Space.grid_point`) so none is ever materialised.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterator

import numpy as np

from .space import Choices, Range, Scalar, Space
from .store import Record, StoreError


def distributions(space: Space) -> dict[str, Any]:
    """Each parameter as an Optuna distribution. A discrete range is its index (an ordered
    integer, so TPE and NSGA-II see that 128 lies between 64 and 256); choices are categorical."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for name, d in space.domains().items():
        if isinstance(d, Choices):
            out[name] = CategoricalDistribution(d.choices)
        elif d.discrete:
            out[name] = IntDistribution(0, d.count() - 1)
        else:
            out[name] = FloatDistribution(float(d.low), float(d.high), log=d.log)
    return out


def external(space: Space, internal: dict[str, Any]) -> dict[str, Scalar]:
    """The parameter values a sampler's params stand for."""
    out: dict[str, Scalar] = {}
    for name, d in space.domains().items():
        v = internal[name]
        out[name] = d.value(v) if isinstance(d, Range) and d.discrete else v
    return out


def batches(space: Space) -> Iterator[range]:
    """The points of each batch, in order."""
    n, size = space.n_points(), space.search.batch_size()
    for start in range(0, n, size):
        yield range(start, min(start + size, n))


def propose(space: Space, batch: int, points: range, history: dict[int, Record]) -> list[tuple[int, dict, dict]]:
    """(point, parameter values, sampler trial) for each point of a batch. Grid points are
    decoded; sampled points are asked of a fresh sampler over the history before the batch."""
    if space.search.sampler == "grid":
        return [(p, space.grid_point(p), None) for p in points]
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = distributions(space)
    k = len(space.objectives)
    with warnings.catch_warnings():
        # TPE's multi-objective and constraint handling are marked experimental in Optuna.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(directions=["minimize"] * k, sampler=_sampler(space, batch))
        if space.search.sampler != "random":      # random draws ignore what came before
            study.add_trials([_frozen(history[p], dists) for p in range(points.start)])
        out = []
        for p in points:
            trial = study.ask(fixed_distributions=dists)
            attrs = study.get_trials(deepcopy=False)[trial.number].system_attrs
            out.append((p, external(space, trial.params),
                        {"params": dict(trial.params), "system_attrs": dict(attrs)}))
    return out


def check_same(proposed: list[tuple[int, dict, dict]], history: dict[int, Record], where: str) -> None:
    """A resumed batch must propose what the store holds for its finished points."""
    for p, params, trial in proposed:
        rec = history.get(p)
        if rec is not None and (rec.params != params or rec.trial != trial):
            raise StoreError(f"{where}: point {p} holds other parameters than this space and seed "
                             "propose; the store was written by another exploration or hwsim version")


def _seed(seed: int, batch: int) -> int:
    return int(np.random.SeedSequence([seed, batch]).generate_state(1)[0])


def _sampler(space: Space, batch: int):
    from optuna.samplers import NSGAIISampler, RandomSampler, TPESampler

    seed = _seed(space.search.seed, batch)
    name = space.search.sampler
    if name == "random":
        return RandomSampler(seed=seed)
    if name == "tpe":
        # multivariate: the parameters of an accelerator interact (array size vs buffer vs
        # bandwidth), which independent per-parameter densities cannot see.
        return TPESampler(seed=seed, multivariate=True)
    return NSGAIISampler(seed=seed, population_size=space.search.batch_size())


def _frozen(rec: Record, dists: dict[str, Any]):
    from optuna.trial import TrialState, create_trial

    trial = rec.trial or {}
    attrs = dict(trial.get("system_attrs", {}))
    if rec.status != "ok":
        return create_trial(state=TrialState.FAIL, params=trial.get("params", {}), distributions=dists,
                            system_attrs=attrs)
    return create_trial(state=TrialState.COMPLETE, values=rec.objectives, params=trial.get("params", {}),
                        distributions=dists, system_attrs=attrs,
                        constraints={str(i): v for i, v in enumerate(rec.violations)} or None)


__all__ = ["distributions", "external", "batches", "propose", "check_same"]
