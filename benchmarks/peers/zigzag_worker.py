"""Run layers through ZigZag and print what it reports, one JSON line per case.

This file runs under ZigZag's own interpreter (zigzag-dse 3.9.1 in /work/peers/zigzag), never
under hwsim's: it imports nothing from hwsim. `zigzag_goldens.py` calls it as

    <zigzag python> zigzag_worker.py CASES.json

where CASES.json is a list of case dicts (see `zigzag_goldens.Case`, plus the energy constants).
For each case it writes ZigZag's three inputs — the layer as a workload dict, an accelerator YAML
(operational array, per-PE registers, one global buffer, DRAM) and a mapping YAML — runs
`zigzag.api.get_hardware_performance_zigzag` (its CLI is broken in 3.9.1) and reads the numbers
back from the cost-model evaluation it returns.

Access counts: ZigZag counts a memory's accesses in words of the port's `bandwidth_max` bits
(rounded up per transfer period to `bandwidth_min` bits). Every port here has bandwidth_min =
32 bits = one element, so the rounding never applies and bytes = accesses · bandwidth_max / 8.
The energy per access is therefore set to (pJ per byte) · bandwidth_max / 8.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time

ELEMENT_BITS = 32  # fp32 everywhere, like the float32 ONNX layers hwsim compiles


def main(cases_path: str) -> None:
    logging.disable(logging.WARNING)  # ZigZag logs every clipped unrolling at WARNING
    from zigzag.api import get_hardware_performance_zigzag

    with open(cases_path) as f:
        cases = json.load(f)
    for case in cases:
        if case["case_id"] == "zigzag_regression_gemm_l1":
            print(json.dumps(_regression(get_hardware_performance_zigzag)), flush=True)
            continue
        with tempfile.TemporaryDirectory(prefix="zigzag_") as tmp:
            acc = os.path.join(tmp, "accelerator.yaml")
            mapping = os.path.join(tmp, "mapping.yaml")
            with open(acc, "w") as f:
                f.write(accelerator_yaml(case))
            with open(mapping, "w") as f:
                f.write(mapping_yaml(case))
            start = time.perf_counter()
            _, _, cmes = get_hardware_performance_zigzag(
                [workload(case)], acc, mapping, opt=case["opt"], lpf_limit=case["lpf_limit"],
                dump_folder=os.path.join(tmp, "out"), loma_show_progress_bar=False,
            )
            wall = time.perf_counter() - start
        print(json.dumps({"case_id": case["case_id"], "wall_s": wall, **_report(case, cmes)}),
              flush=True)


def workload(case: dict) -> dict:
    """The layer as ZigZag's workload dict. A GEMM C[M×N] = A[M×K]·B[K×N] is written with
    ZigZag's Gemm equation, B ← M (rows of A), C ← K (reduction), K ← N (columns of B)."""
    prec = {"W": ELEMENT_BITS, "I": ELEMENT_BITS, "O": ELEMENT_BITS, "O_final": ELEMENT_BITS}
    if case["kind"] == "gemm":
        return {
            "id": 0, "name": case["case_id"], "operator_type": "Gemm",
            "equation": "O[b][k]+=I[b][c]*W[c][k]", "dimension_relations": [],
            "loop_dims": ["B", "C", "K"],
            "loop_sizes": [case["gemm_m"], case["gemm_k"], case["gemm_n"]],
            "operand_precision": prec, "operand_source": {"I": 0, "W": 0},
        }
    s, r, pad, h = case["stride"], case["filter_h"], case["pad"], case["ifmap_h"]
    oh = (h + 2 * pad - r) // s + 1  # ONNX rounding, as hwsim's IR has it
    return {
        "id": 0, "name": case["case_id"], "operator_type": "Conv",
        "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
        "dimension_relations": [f"ix={s}*ox+1*fx", f"iy={s}*oy+1*fy"],
        "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"],
        "loop_sizes": [case["batch"], case["num_filters"], case["channels"], oh, oh, r, r],
        "operand_precision": prec, "operand_source": {"I": 0, "W": 0},
        # ZigZag derives the input extent from the relations; padding is subtracted from it
        "pr_loop_dims": ["IX", "IY"], "pr_loop_sizes": [h + 2 * pad, h + 2 * pad],
        "padding": [[pad, pad], [pad, pad]],
    }


def accelerator_yaml(case: dict) -> str:
    """rows×cols MACs; a weight and an accumulator register per PE (the stationary operands of a
    weight-stationary array); one global buffer holding I, W and O; DRAM. Energies per access are
    the case's per-byte constants scaled to the port width (module docstring)."""
    import yaml

    e = ELEMENT_BITS
    gb_bits = int(case["gb_bytes_per_cycle"] * 8)
    dram_bits = int(case["dram_bytes_per_cycle"] * 8)
    rf_cost = case["rf_pj_per_byte"] * e / 8

    def port(name, kind, bits, *alloc):
        return {"name": name, "type": kind, "bandwidth_min": e, "bandwidth_max": bits,
                "allocation": list(alloc)}

    def memory(size_bits, cost, operands, ports, served):
        return {"size": size_bits, "r_cost": cost, "w_cost": cost, "area": 0, "latency": 1,
                "operands": operands, "ports": ports, "served_dimensions": served}

    data = {
        "name": f"hwsim_mirror_{case['array_rows']}x{case['array_cols']}",
        "memories": {
            "rf_w": memory(e, rf_cost, ["I2"], [port("r_port_1", "read", e, "I2, tl"),
                                                port("w_port_1", "write", e, "I2, fh")], []),
            "rf_o": memory(e, rf_cost, ["O"], [port("r_port_1", "read", e, "O, tl"),
                                               port("r_port_2", "read", e, "O, th"),
                                               port("w_port_1", "write", e, "O, fh"),
                                               port("w_port_2", "write", e, "O, fl")], []),
            "gb": memory(case["gb_bytes"] * 8, case["gb_pj_per_byte"] * gb_bits / 8,
                         ["I1", "I2", "O"],
                         [port("r_port_1", "read", gb_bits, "I1, tl", "I2, tl", "O, tl", "O, th"),
                          port("w_port_1", "write", gb_bits, "I1, fh", "I2, fh", "O, fh", "O, fl")],
                         ["D1", "D2"]),
            "dram": memory(10**11, case["dram_pj_per_byte"] * dram_bits / 8, ["I1", "I2", "O"],
                           [port("rw_port_1", "read_write", dram_bits, "I1, fh", "I1, tl", "I2, fh",
                                 "I2, tl", "O, fh", "O, tl", "O, fl", "O, th")],
                           ["D1", "D2"]),
        },
        "operational_array": {
            "input_precision": [e, e], "unit_energy": case["mac_pj"], "unit_area": 1,
            "dimensions": ["D1", "D2"], "sizes": [case["array_cols"], case["array_rows"]],
        },
    }
    return yaml.safe_dump(data, sort_keys=False)


def mapping_yaml(case: dict) -> str:
    """Weight-stationary spatial mapping as hwsim (and SCALE-Sim) use it: output channels (N of a
    GEMM) across the array's columns (D1), input channels (the reduction) down its rows (D2).
    ZigZag clips an unrolling larger than the layer dimension. The temporal order is searched."""
    return f"""- name: default
  spatial_mapping:
    D1:
      - K, {case["array_cols"]}
    D2:
      - C, {case["array_rows"]}
  memory_operand_links:
    O: O
    W: I2
    I: I1
"""


def _report(case: dict, cmes) -> dict:
    from zigzag.hardware.architecture.memory_port import DataDirection

    cme = cmes[0][0]
    out = {
        "latency_total": float(cme.latency_total2),
        "latency_compute_and_stall": float(cme.latency_total0),
        "ideal_temporal_cycles": float(cme.ideal_temporal_cycle),
        "ideal_cycles": float(cme.ideal_cycle),
        "onloading_cycles": float(cme.data_onloading_cycle),
        "offloading_cycles": float(cme.data_offloading_cycle),
        "energy_total_pj": float(cme.energy_total),
        "mac_energy_pj": float(cme.mac_energy),
        "mem_energy_pj": float(cme.mem_energy),
    }
    # Per operand and level: energy and the four access directions, converted to bytes.
    widths = {"rf": ELEMENT_BITS, "gb": case["gb_bytes_per_cycle"] * 8,
              "dram": case["dram_bytes_per_cycle"] * 8}
    levels = {"W": ["rf", "gb", "dram"], "I": ["gb", "dram"], "O": ["rf", "gb", "dram"]}
    for op, accesses in cme.memory_word_access.items():
        name = str(op)
        lv_names = levels[name]
        energies = cme.mem_energy_breakdown[op]
        for lv, acc, energy in zip(lv_names, accesses, energies):
            out[f"{name}_{lv}_energy_pj"] = float(energy)
            for direction, key in (("rd_out_to_low", "rd_low"), ("wr_in_by_low", "wr_low"),
                                   ("rd_out_to_high", "rd_high"), ("wr_in_by_high", "wr_high")):
                words = float(acc.get(DataDirection(direction)))
                out[f"{name}_{lv}_{key}_bytes"] = words * widths[lv] / 8
    cme_layer = cmes[0][1][0][0] if cmes[0][1] else cme
    out["temporal_mapping"] = str(getattr(cme_layer, "temporal_mapping", ""))
    out["spatial_mapping"] = str(getattr(cme_layer, "spatial_mapping_int", ""))
    return out


def _regression(api) -> dict:
    """ZigZag's own regression (its tests/main/test_origin/test_gemm_l1.py at the revision quoted in
    REFERENCE.md §2): a 128×128×128 GEMM on the shipped 8×8×8 `gemm_l1` accelerator, lpf_limit 3."""
    import zigzag

    base = os.path.join(os.path.dirname(zigzag.__file__), "inputs")
    layer = {
        "id": 0, "operator_type": "Gemm", "equation": "O[d0][d1]+=I[d0][d2]*W[d2][d1]",
        "dimension_relations": [], "loop_dims": ["D0", "D1", "D2"], "loop_sizes": [128, 128, 128],
        "operand_precision": {"W": 8, "I": 8, "O": 32, "O_final": 32},
        "operand_source": {"I": 0, "W": 0},
    }
    with tempfile.TemporaryDirectory(prefix="zigzag_") as tmp:
        start = time.perf_counter()
        energy, latency, _ = api([layer], os.path.join(base, "hardware", "gemm_l1.yaml"),
                                 os.path.join(base, "mapping", "gemm_l1.yaml"), lpf_limit=3,
                                 dump_folder=os.path.join(tmp, "out"), loma_show_progress_bar=False)
        wall = time.perf_counter() - start
    return {"case_id": "zigzag_regression_gemm_l1", "wall_s": wall,
            "energy_total_pj": float(energy), "latency_total": float(latency)}


if __name__ == "__main__":
    main(sys.argv[1])
