"""PhaseSpec: validated at the edge, one line per bad field, no coercion, registry-driven."""

import pytest

from algorithms import ALGORITHMS
from algorithms.backbones import BACKBONES
from algorithms.spec import PhaseSpec, SpecError


@pytest.mark.parametrize("fields, field, allowed", [
    (dict(algorithm="nope", phase="infer"), "algorithm", "maml"),
    (dict(algorithm="maml", phase="train"), "phase", "meta_train"),
    (dict(algorithm="maml", phase="adapt", inner_steps=0), "inner_steps", ">= 1"),
    (dict(algorithm="maml", phase="meta_train", meta_batch=0), "meta_batch", ">= 1"),
    (dict(algorithm="maml", phase="infer", backbone="conv9"), "backbone", "sine_mlp"),
    (dict(algorithm="maml", phase="infer", dtype="int8"), "dtype", "float32"),
    (dict(algorithm="maml", phase="infer", way=5), "way", "1"),
    (dict(algorithm="maml", phase="infer", backbone="conv4_64_28x28x1", way=1), "way", "2..64"),
    (dict(algorithm="maml", phase="infer", backbone="conv4_64_28x28x1", way=5, dtype="float64"), "dtype", "float32"),
    (dict(algorithm="maml", phase="infer", shot=0), "shot", ">= 1"),
    (dict(algorithm="maml", phase="infer", inner_lr=-1.0), "inner_lr", "positive"),
    (dict(algorithm="maml", phase="infer", inner_lr=float("inf")), "inner_lr", "finite"),
    (dict(algorithm="maml", phase="infer", seed=-1), "seed", ">= 0"),
    # no coercion: a bool is no integer, a string no integer and no number
    (dict(algorithm="maml", phase="infer", shot=True), "shot", "integer"),
    (dict(algorithm="maml", phase="infer", meta_batch="25"), "meta_batch", "integer"),
    (dict(algorithm="maml", phase="infer", query=2.0), "query", "integer"),
    (dict(algorithm="maml", phase="infer", inner_lr="0.1"), "inner_lr", "number"),
    (dict(algorithm="maml", phase="infer", inner_lr=False), "inner_lr", "number"),
    (dict(algorithm=3, phase="infer"), "algorithm", "algorithm"),
    (dict(algorithm="maml", phase="infer", steps=3), "steps", "inner_steps"),
    (dict(phase="infer"), "algorithm", "required"),
])
def test_bad_specs_are_one_line_naming_field_and_allowed_values(fields, field, allowed):
    with pytest.raises(SpecError) as err:
        PhaseSpec(**fields)
    message = str(err.value)
    assert isinstance(err.value, ValueError)
    assert field in message and allowed in message
    assert "\n" not in message


def test_spec_is_immutable_compared_by_value_and_one_key_for_1_and_1_0():
    a = PhaseSpec(algorithm="maml", phase="infer", inner_lr=1)
    b = PhaseSpec(algorithm="maml", phase="infer", inner_lr=1.0)
    assert a == b and hash(a) == hash(b) and a.fields() == b.fields()
    assert isinstance(a.inner_lr, float)
    with pytest.raises(Exception):
        a.shot = 3  # type: ignore[misc]


def test_replace_validates_like_a_new_spec():
    spec = PhaseSpec(algorithm="maml", phase="meta_train")
    assert spec.replace(meta_batch=7).meta_batch == 7
    with pytest.raises(SpecError, match="meta_batch"):
        spec.replace(meta_batch=0)


def test_positional_construction_is_refused():
    with pytest.raises(TypeError):
        PhaseSpec("maml", "infer")  # type: ignore[misc]


def test_every_registered_algorithm_is_accepted_on_the_backbones_it_needs():
    """The spec validates against the registries: every algorithm exports on a classification
    backbone, every algorithm that does not need one also on the sine MLP, and the spec knows
    each one's order."""
    assert len(ALGORITHMS) >= 7
    for name, cls in ALGORITHMS.items():
        spec = PhaseSpec(algorithm=name, phase="meta_train", backbone="conv4_64_28x28x1", way=5, shot=1)
        assert spec.first_order is cls.first_order
        if cls.needs_classification:
            with pytest.raises(SpecError, match="classification backbone"):
                PhaseSpec(algorithm=name, phase="meta_train")
        else:
            assert PhaseSpec(algorithm=name, phase="meta_train").backbone == "sine_mlp"
    assert sorted(BACKBONES) == BACKBONES.names() and "conv4_64_84x84x3" in BACKBONES
