"""Fingerprints of the NPU lowering with default options (run:
.venv/bin/python tests/data/codesign/make_fingerprints.py).

For every ONNX fixture of tests/data/compiler and two exported phases (`EXPORTS`: MAML on the
sinusoid MLP and on Conv4-32, with scopes, through the export cache), on every NPU preset, in both streaming forms
(`detail="node"` and `"tiles"`), the SHA-256 of the lowered Program's JSON and of the simulated
SimResult's JSON. Produced on the commit before the co-design options (precision, fusion,
recompute) were added to the NPU lowering; `tests/compiler/test_codesign_defaults.py` checks that
the default options still give these exact bytes. Regenerate only for an intended change of the
default cost model or of the JSON formats, and say so in the commit. Regenerated once at the
merge of the options into main, whose result JSON (hardware record, per-task work, memory demand)
and exported graphs (the new exporter) had changed since; the lowering's defaults had not (the
options' branch checked them against the previous fingerprints before the merge).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
FIXTURES = ROOT / "tests" / "data" / "compiler"
OUT = HERE / "default_fingerprints.json"
NPU_PRESETS = ("edge-npu", "eyeriss-like", "server-npu", "tpu-v1-like")
DETAILS = ("node", "tiles")
# Small exported phases with task / inner-step scopes (the fixtures above have none).
EXPORTS = {
    "maml_sine_k2_b2": dict(algorithm="maml", phase="meta_train", inner_steps=2, meta_batch=2),
    "maml_conv4_32_k2_b1": dict(algorithm="maml", phase="meta_train", backbone="conv4_32_28x28x1", way=5,
                                shot=1, query=1, inner_steps=2, meta_batch=1),
}


def models() -> dict:
    """The fixtures' paths and the exported phases' ModelProtos, by name."""
    from algorithms.export import PhaseSpec, export_phase
    from hwsim.pipeline import default_cache_dir

    out: dict = {path.stem: path for path in sorted(FIXTURES.glob("*.onnx"))}
    for name, spec in EXPORTS.items():
        out[name] = export_phase(PhaseSpec(**spec), cache_dir=default_cache_dir())
    return out


def fingerprints() -> dict[str, dict[str, str]]:
    from hwsim import pipeline
    from hwsim.config import load_hardware

    out: dict[str, dict[str, str]] = {}
    for name, model in models().items():
        front = pipeline.prepare(model)
        for preset in NPU_PRESETS:
            hw = load_hardware(preset)
            for detail in DETAILS:
                run = pipeline.simulate(front, hw, detail=detail)
                out[f"{name}/{preset}/{detail}"] = {
                    "program": hashlib.sha256(run.program.to_json().encode()).hexdigest(),
                    "result": hashlib.sha256(run.result.to_json().encode()).hexdigest(),
                }
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    OUT.write_text(json.dumps(fingerprints(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")
