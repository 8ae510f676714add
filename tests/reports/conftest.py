"""Real results for the report tests: the committed ONNX fixtures simulated on real presets,
once per session."""

from pathlib import Path

import pytest

from hwsim import pipeline
from hwsim.config import load_hardware

DATA = Path(__file__).resolve().parents[1] / "data" / "compiler"


@pytest.fixture(scope="session")
def simulated():
    """(onnx stem, preset) -> SimResult, simulated on first use."""
    cache: dict = {}

    def get(stem: str, preset: str):
        key = (stem, preset)
        if key not in cache:
            cache[key] = pipeline.simulate(pipeline.prepare(DATA / f"{stem}.onnx"), load_hardware(preset)).result
        return cache[key]

    return get


@pytest.fixture(scope="session")
def export_cache(tmp_path_factory):
    """One export cache for the report tests that run the CLI end to end (demo, compare)."""
    return tmp_path_factory.mktemp("hwsim-cache")
