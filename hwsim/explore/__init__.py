"""Design-space exploration: search hardware (and, later, compiler) parameters for the Pareto set.

    space = load_space(Path("space.yaml"))            # parameters, objectives, constraints, search
    summary = explore(space, Path("."), Path("out/x"), workers=2)   # resumable; Dask when > 1 worker
    store = open_store(Path("out/x"))                  # a finished or a partial store
    pareto_front(store.records.values())

Modules, top-down: `run` (the driver), `search` (grid and Optuna proposals), `cluster` (in
process or dask.distributed), `point` (one point on a worker), `store` (the journal that
survives a kill), `space` (the YAML format), `cost` (the area objective per hardware kind).
docs/explore.md is the user's guide.
"""

from .cost import AREA_UNIT, area
from .run import Summary, explore, objective
from .space import (MAX_POINTS, METRICS, SAMPLERS, Choices, Constraint, ModelRef, Objective, Range, Search, Space,
                    SpaceError, SweepError, load_space)
from .store import JOURNAL, MANIFEST, Record, Store, StoreError, open_store, pareto_front, rows, to_csv

__all__ = ["load_space", "explore", "open_store", "pareto_front", "rows", "to_csv", "area", "objective",
           "Space", "ModelRef", "Choices", "Range", "Objective", "Constraint", "Search", "Summary", "Store",
           "Record", "SpaceError", "SweepError", "StoreError", "MAX_POINTS", "METRICS", "SAMPLERS", "AREA_UNIT",
           "JOURNAL", "MANIFEST"]
