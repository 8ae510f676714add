"""Shared fixtures of the compiler tests."""

from __future__ import annotations

import pytest

from algorithms.export import PhaseSpec, export_phase
from compiler.compile import Frontend, front_end
from hwsim.pipeline import default_cache_dir


@pytest.fixture(scope="session")
def maml_conv4() -> Frontend:
    """One meta-training step of second-order MAML on Conv4-32 (5-way 1-shot, 1 query, 2 inner
    steps, meta-batch 1), through the export cache: scopes forward, loss, backward and update
    per inner step, query, meta_grad, outer_update."""
    spec = PhaseSpec(algorithm="maml", phase="meta_train", backbone="conv4_32_28x28x1", way=5, shot=1, query=1,
                     inner_steps=2, meta_batch=1)
    return front_end(export_phase(spec, cache_dir=default_cache_dir()))
