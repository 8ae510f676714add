"""Per-configuration resource report of a fabric run (FPGA or CGRA). Reads results only.

The fabric lowering stores the report as JSON in `Program.metadata["fabric.configurations"]`,
which reaches `SimResult.metadata` unchanged: one entry per configuration with its resources
used and available (DSP, BRAM18, URAM, LUT, FF on an FPGA; contexts on a CGRA), its load size
and how often it was activated.
"""

from __future__ import annotations

import json
from typing import Any

from hwsim.result import SimResult

from .tables import render, si

KEY = "fabric.configurations"


def configurations(r: SimResult) -> list[dict[str, Any]]:
    """The configuration report of a fabric run ([] for an NPU run). The one place that reads
    it: it is JSON text in the metadata today and will become typed data."""
    return json.loads(r.metadata.get(KEY, "[]"))


def fabric_record(r: SimResult) -> dict[str, Any] | None:
    """Everything a report shows about a fabric run's configurations, or None (not a fabric)."""
    if KEY not in r.metadata:
        return None
    configs = configurations(r)
    m = r.metadata
    return {"mode": m.get("fabric.mode", "?"), "configs": configs,
            "kinds": list(configs[0]["available"]) if configs else [],
            "reconfigurations": int(float(m.get("fabric.reconfigurations", 0))),
            "reconfiguration_bytes": float(m.get("fabric.reconfiguration_bytes", 0)),
            "entry_load": m.get("fabric.entry_load", "charged")}


def configuration_table(r: SimResult, *, markdown: bool = False) -> str:
    configs = configurations(r)
    kinds = list(configs[0]["available"]) if configs else []
    rows = []
    for c in configs:
        cells = [f"{c['used'].get(k, 0):,}/{c['available'][k]:,} ({c['used'].get(k, 0) / c['available'][k]:.0%})"
                 if c["available"][k] else f"{c['used'].get(k, 0):,}/0" for k in kinds]
        rows.append([str(c["configuration"]), str(c["stages"]), str(c["activations"]),
                     si(c["load_bytes"], "B"), *cells])
    m = r.metadata
    head = (f"fabric: {m.get('fabric.mode', '?')} mode, {len(configs)} configuration(s), "
            f"{m.get('fabric.reconfigurations', '0')} load(s) of {si(float(m.get('fabric.reconfiguration_bytes', 0)), 'B')}"
            f" (entry load {m.get('fabric.entry_load', 'charged')})")
    table = render(("config", "stages", "activations", "load", *(f"{k} used/avail" for k in kinds)), rows,
                   markdown=markdown)
    return head + "\n" + table
