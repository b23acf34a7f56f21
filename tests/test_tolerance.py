"""The Keras comparison's tolerance (symbp.witnesses.tolerance) and its rounding witnesses
(symbp.witnesses.compare.explain_rounding_growth, explain_float32_rounding): no false "They don't
match", no excused wrong formula."""

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


def _cancelling(optimizer: dict) -> Spec:
    """Two samples per batch mirrored in the second input, whose weights are 1e-5: that row's
    gradient (~1.6e-7) is the difference of two terms of ~0.1, so float32 computes it with a
    relative error of ~1e-2, and an Adam-family step (m/(sqrt(v)+eps), eps 1e-7) turns that into
    ~1e-3 of the learning rate in the weights (as the fuzz campaign's nadam and adamax repros)."""
    return Spec.from_dict({
        "name": "cancelling", "seed": 3,
        "data": {"x": [[0.3, 0.5], [0.3, -0.5], [-0.7, 0.2], [-0.7, -0.2]],
                 "y": [[0.5, -0.2], [0.5, -0.2], [0.1, 0.4], [0.1, 0.4]]},
        "layers": [{"units": 3, "activation": "tanh", "weights": [[0.4, -0.3, 0.6], [1e-5, -1e-5, 2e-5]],
                    "bias": [0.1, -0.2, 0.05]},
                   {"units": 2, "activation": "linear", "weights": [[0.5, -0.4], [0.3, 0.7], [-0.6, 0.2]],
                    "bias": [0.0, 0.1]}],
        "loss": {"name": "mse"}, "optimizer": {"name": optimizer["name"], "learning_rate": 0.2, **optimizer},
        "training": {"batch_size": 2, "epochs": 1}})


#: the fuzz campaign's adamax repro (Conv1D, pooling, three dense layers): Keras's float32 run is
#: ~4x further from the float64 result than symbp's, the difference ~5x symbp's own float32 spread
FUZZ_ADAMAX = {
    "name": "fz2", "seed": 9395,
    "data": {"x": [[[0.0242], [-0.8244], [-0.7962], [-0.9604], [0.5012], [-0.7896], [-0.9511]],
                   [[0.339], [-0.0923], [0.0711], [-0.24], [0.3694], [0.521], [-0.5797]],
                   [[0.6122], [-0.1488], [-0.9574], [0.1827], [0.7629], [0.8578], [0.1627]]],
             "y": [[0.7703, -0.3412], [-0.6549, -0.426], [-0.688, 0.9734]]},
    "layers": [
        {"type": "Conv1D", "filters": 4, "kernel_size": 2, "padding": "valid", "activation": "silu",
         "weights": [[[0.3046, 0.6919, -0.3068, 0.599]], [[-0.1404, -0.632, -0.4826, 0.4405]]]},
        {"type": "AveragePooling1D", "pool_size": 2, "strides": 2, "padding": "same"},
        {"type": "Conv1D", "filters": 1, "kernel_size": [1], "strides": 2, "padding": "same",
         "activation": "tanh", "weights": [[[-0.1679], [-0.6052], [-0.6052], [-0.6712]]], "bias": [0.4597]},
        {"type": "Flatten"},
        {"units": 3, "activation": "elu", "weights": [[0.7354, -0.5737, -0.2001], [-0.0253, 0.5853, 0.3513]],
         "bias": [0.1367, -0.0486, -0.0047]},
        {"units": 3, "activation": "selu", "bias": [-0.0864, 0.2986, -0.2121],
         "weights": [[-0.4294, -0.0179, -0.385], [-0.1158, 0.2866, 0.6697], [0.1374, 0.5086, -0.6465]]},
        {"units": 2, "activation": "linear", "weights": [[0.4777, 0.6582], [0.2902, 0.4957], [-0.7399, 0.7583]],
         "bias": [-0.0656, 0.125]}],
    "loss": {"name": "huber"},
    "optimizer": {"name": "adamax", "learning_rate": 0.2, "beta_1": 0.0, "beta_2": 0.9},
    "training": {"batch_size": 2, "epochs": 2, "shuffle": False}}


@pytest.mark.parametrize("spec", [_cancelling({"name": "nadam"}), _cancelling({"name": "adamax"}),
                                  Spec.from_dict(FUZZ_ADAMAX)], ids=["nadam", "adamax", "fuzz-adamax"])
def test_a_float32_gradients_cancellation_is_said_as_float32_rounding(spec):
    """float32 only: the difference past 1e-5 is float32 rounding of a gradient entry (symbp's
    own float64 training says so), not a wrong rule: a match, with its evidence."""
    report = check(spec, "float32")
    explained = [c for c in report.comparisons if c.rounding_witness == "float64"]
    assert report.match and explained, report.describe(spec)
    assert all(c.allowed < c.max_abs_diff <= 10 * c.rounding_spread for c in explained)
    text = report.describe(spec)
    assert "They match to float32 rounding" in text and "float64 training" in text
    assert "They don't match" not in text
    recorded = report.to_json()["parameters"][explained[0].name]
    assert recorded["rounding_spread"] == explained[0].rounding_spread and recorded["rounding_witness"] == "float64"


def _wrong_learning_rate(module):
    module.LEARNING_RATE *= 1 + 1e-3


def _wrong_gradient(module):
    """The output bias's gradient off by 1e-3 (as a loss derivative with a stray term)."""
    exact = module.backward

    def backward(params, x, y, *args, **kwargs):
        grads, deltas = exact(params, x, y, *args, **kwargs)
        return {**grads, "b1": grads["b1"] + 1e-3}, deltas
    module.backward = backward   # train looks backward up in the module's globals


def _wrong_kernel_row(module):
    """W0's first row's gradient off by 0.03: the row beside the one whose float32 gradient
    cancellation makes ~4e-3 off its float64 value."""
    exact = module.backward

    def backward(params, x, y, *args, **kwargs):
        grads, deltas = exact(params, x, y, *args, **kwargs)
        kernel = grads["W0"].copy()
        kernel[0] = kernel[0] + 0.03
        return {**grads, "W0": kernel}, deltas
    module.backward = backward


@pytest.mark.parametrize("wrong", [_wrong_learning_rate, _wrong_gradient, _wrong_kernel_row],
                         ids=["update", "gradient", "beside-the-rounding"])
def test_a_wrong_rule_is_not_excused_as_float32_rounding(wrong):
    """A rule off by 1e-3 moves symbp's float32 and float64 runs alike: their distance stays
    float32 rounding while Keras differs by the rule's effect, so it is still a mismatch. (The
    one-ulp witness replays the module checked; before, it replayed a fresh, right one, whose
    spread from the wrong run was the wrong gradient's effect, and excused it as rounding growth.)"""
    spec = _cancelling({"name": "nadam"})
    module = load_module(module_source(spec), spec.name)
    wrong(module)
    report = check(spec, "float32", module=module)
    moved = "W0" if wrong is _wrong_kernel_row else "b1"   # the first two rules move b1 too
    quantity = next(c for c in report.parameters if c.name == moved)
    assert not report.match and not quantity.match and quantity.rounding_spread is None
    assert "They don't match." in report.describe(spec)
