"""The Keras comparison's tolerance (symbp.witnesses.tolerance) and its rounding-growth witness
(symbp.witnesses.compare.explain_rounding_growth): no false "They don't match", no excused wrong formula."""

from __future__ import annotations

import numpy as np
import pytest

from symbp.emit.codegen import module_source
from symbp.witnesses.compare import check
from symbp.witnesses.module import load_module
from symbp.spec import Spec
from symbp.witnesses.tolerance import TOLERANCES, Tolerance


def test_tolerance_is_relative_to_the_keras_value_scale():
    tolerance = Tolerance(1e-9)
    assert tolerance.agree(np.array([0.5, 1.0]), np.array([0.5, 1.0 + 5e-10]))
    assert not tolerance.agree(np.array([0.5, 1.0]), np.array([0.5, 1.0 + 5e-9]))
    big = np.array([5e29, -1e29])
    assert tolerance.agree(big, big + 1e14)              # 1e14 of 5e29: rounding
    assert not tolerance.agree(big, big + 1e21)          # 2e-9 of the scale
    assert not tolerance.agree(np.array([1.0]), np.array([1e30]))   # symbp's own size widens nothing
    assert not tolerance.agree(np.array([1.0]), np.array([np.nan]))
    assert not tolerance.agree(np.array([1.0, 2.0]), np.array([1.0]))
    assert TOLERANCES["float64"].relative == 1e-9 and TOLERANCES["float32"].relative == 1e-5


def _spec(optimizer: dict, epochs: int, **training) -> Spec:
    rng = np.random.default_rng(1)
    return Spec.from_dict({
        "name": "scale", "seed": 3,
        "data": {"x": np.round(rng.uniform(-1, 1, (8, 3)), 2).tolist(),
                 "y": np.round(rng.uniform(-1, 1, (8, 2)), 2).tolist()},
        "layers": [{"units": 6, "activation": "tanh"}, {"units": 2, "activation": "linear"}],
        "loss": {"name": "mse"}, "optimizer": optimizer,
        "training": {"batch_size": training.get("batch_size", 1), "epochs": epochs}})


def test_a_huge_learning_rate_matches_relative_to_the_weights():
    """lr = 1e30: weights ~1e30, float64 rounding ~1e14: an absolute 1e-9 said "don't match"."""
    spec = _spec({"name": "sgd", "learning_rate": 1e30}, epochs=1, batch_size=8)
    report = check(spec)
    assert report.match, report.describe(spec)
    worst = max(report.parameters, key=lambda c: c.max_abs_diff)
    assert worst.max_abs_diff > 1e-9 and np.max(np.abs(worst.witness)) > 1e20
    assert all(c.rounding_spread is None for c in report.comparisons)   # no witness needed


@pytest.fixture(scope="module")
def long_adam():
    """Adam at lr 1 over 320 steps: the runs agree to ~1e-12 for 10 epochs, then rounding grows
    past 1e-9 of the weights' scale (as in a 10,000-epoch run, faster)."""
    return _spec({"name": "adam", "learning_rate": 1.0}, epochs=40)


def test_a_long_runs_rounding_growth_is_said_and_not_a_mismatch(long_adam):
    report = check(long_adam)
    grown = [c for c in report.comparisons if c.rounding_spread is not None]
    assert report.match and grown, report.describe(long_adam)
    assert all(c.max_abs_diff > c.allowed for c in grown)
    text = report.describe(long_adam)
    assert "They match to rounding" in text and "one ulp" in text and "They don't match" not in text
    assert report.to_json()["parameters"][grown[0].name]["rounding_spread"] == grown[0].rounding_spread


def test_a_wrong_step_is_not_excused_as_rounding(long_adam):
    """The same run with the module's learning rate off by 1e-7: the first epochs' losses
    disagree, so no difference counts as rounding growth."""
    module = load_module(module_source(long_adam), long_adam.name)
    module.LEARNING_RATE *= 1 + 1e-7
    report = check(long_adam, module=module)
    assert not report.match
    assert all(c.rounding_spread is None for c in report.comparisons)
    assert "They don't match." in report.describe(long_adam)


def test_the_mismatch_diagnostics_load_a_sidecar_specs_module_with_its_data(sidecar_spec):
    """A spec with more numbers than a module writes out keeps its data in a sidecar .npz: the
    rounding-growth replay (nudged_train) and the kink search a mismatch runs load the module
    with it (before, both looked for the .npz in the current folder: an internal error)."""
    from symbp.witnesses.compare import kink_at_rounding
    from symbp.witnesses.module import module_train, nudged_train
    spec = sidecar_spec
    _, losses = module_train(spec)
    _, nudged_losses = nudged_train(spec)
    assert np.allclose(nudged_losses, losses, rtol=1e-12) and len(losses) == spec.epochs
    assert kink_at_rounding(spec) is None   # tanh and softmax: no kink to find
