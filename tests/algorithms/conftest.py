"""Fixtures shared by the algorithms tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "algorithms"



@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one intra-op thread is fastest, and on a shared machine torch's default
    thread pool makes these tests many times slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def conv4_golden() -> dict:
    """Conv4-64 on 28×28×1 with a 5-way head: parameter and MAC counts (see the README there)."""
    return json.loads((GOLDEN / "conv4_64_28x28x1.json").read_text())


@pytest.fixture(scope="session")
def export_cache(tmp_path_factory) -> Path:
    """One export cache for the session, so a spec several tests need is exported once."""
    return tmp_path_factory.mktemp("export-cache")


@pytest.fixture(scope="session")
def sine_setting() -> dict:
    """A small sinusoid task setting that still has every kind of scope (k = 2, B = 2)."""
    return dict(backbone="sine_mlp", way=1, shot=3, query=3, inner_steps=2, meta_batch=2)


@pytest.fixture(scope="session")
def conv_setting() -> dict:
    """A small Conv4 classification setting (3-way 1-shot, one query per class, k = 1, B = 2)."""
    return dict(backbone="conv4_32_28x28x1", way=3, shot=1, query=1, inner_steps=1, meta_batch=2)
