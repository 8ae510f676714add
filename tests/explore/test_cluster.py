"""The models reach each dask worker once (scattered), not with every task."""

import json
import os

from hwsim.config import load_hardware
from hwsim.explore.cluster import Dask
from hwsim.explore.point import Job, Models


class Probe:
    """Writes a line (the process id) each time it is unpickled; copying it is free."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return _arrive, (self.path,)

    def __deepcopy__(self, memo):
        return self


def _arrive(path):
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    return Probe(path)


def test_models_are_shipped_to_each_worker_once(tmp_path):
    log = tmp_path / "arrivals"
    base = json.loads(load_hardware("edge-npu").model_dump_json())
    base["probe"] = Probe(str(log))          # travels with the models; the config then refuses it
    ex = Dask(Models(base, ()), workers=2)
    try:
        for i in range(12):
            ex.submit([Job(i, {"hw.array.rows": 8})])
        outcomes = [o for _ in range(12) for o in ex.next_result()]
    finally:
        ex.close()
    assert sorted(o["point"] for o in outcomes) == list(range(12))
    assert all(o["status"] == "infeasible" and "probe" in o["reason"] for o in outcomes)
    # (this process may unpickle its own copy while scattering; it runs no task)
    on_workers = [pid for pid in log.read_text().split() if pid != str(os.getpid())]
    assert len(on_workers) == len(set(on_workers)) == 2, on_workers    # once per worker, 12 tasks
