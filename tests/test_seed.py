"""The seed assignment's printed numbers (CS 4820, assignment 7) come out to every printed digit.

The expected arrays below are copied from the seed notebook's printed output (sections 1.1-1.3,
printed to 8 decimals); each is checked to half a unit of its last printed digit.
"""

import numpy as np
import pytest

from symbp.emit.codegen import module_source
from symbp.witnesses.module import load_module
from symbp.spec import load_spec

HALF_LAST_DIGIT = 5e-9

SEED_FORWARD = [
    [[0.29131261, 0.46211716, -0.29131261]],
    [[0.56659243, -0.7504016, 0.38022725]],
    [[0.14432633, 0.66121078, 0.05013656, 0.14432633]],
]
SEED_DELTAS = {  # error_gradient_output_layer, aggregated_error_gradient_layer_2, ..._layer_1
    3: [[0.14432633, -0.33878922, 0.05013656, 0.14432633]],
    2: [[-0.44901899, 0.17211113, 0.22872531]],
    1: [[0.55701915, -0.73832976, 0.32417294]],
}
SEED_UPDATED = {
    "W2": [[-1.00817742, 1.11919554, -0.0028407, -1.00817742],
           [0.01083027, -1.0254228, 1.10376226, 0.01083027],
           [1.09451232, 0.01288169, -1.00190633, 1.09451232]],
    "b2": [0.08556737, 0.13387892, 0.09498634, 0.08556737],
    "W1": [[-0.98691951, -0.80501381, 1.29333694],
           [1.32074994, -1.00795355, -0.81056979],
           [-0.81308049, 1.30501381, -0.99333694]],
    "b1": [0.1449019, 0.08278889, 0.07712747],
    "W0": [[0.94986828, 0.06644968, -0.02917556],
           [-0.0668423, 1.08859957, -1.03890075],
           [-1.03899134, 0.05168308, -0.02269211],
           [-0.04456153, -0.94093362, 0.97406616]],
    "b0": [0.04429809, 0.17383298, 0.06758271],
}


@pytest.fixture(scope="module")
def seed_module():
    spec = load_spec()
    return load_module(module_source(spec), spec.name)


def assert_printed(actual, printed):
    printed = np.asarray(printed, dtype=np.float64)
    assert np.shape(actual) == printed.shape
    assert np.max(np.abs(np.asarray(actual) - printed)) < HALF_LAST_DIGIT


def test_forward_outputs(seed_module):
    outputs = seed_module.forward(seed_module.initial_params(), seed_module.X)
    assert_printed(outputs[0], [[0.9, 1.2, 0.7, 0.8]])
    for actual, printed in zip(outputs[1:], SEED_FORWARD, strict=True):
        assert_printed(actual, printed)


def test_loss(seed_module):
    value = seed_module.loss(seed_module.initial_params(), seed_module.X, seed_module.Y)
    assert round(value, 4) == 0.4137
    _, epoch_losses = seed_module.train()
    assert round(epoch_losses[0], 4) == 0.4137


def test_deltas(seed_module):
    deltas = seed_module.deltas(seed_module.initial_params(), seed_module.X, seed_module.Y)
    for layer, printed in SEED_DELTAS.items():
        assert_printed(deltas[layer - 1], printed)


def test_updated_parameters(seed_module):
    params, _ = seed_module.train()
    for name, printed in SEED_UPDATED.items():
        assert_printed(params[name], printed)


def test_step_equals_train_for_one_sample(seed_module):
    params = seed_module.initial_params()
    stepped, state = seed_module.step(params, seed_module.X, seed_module.Y)
    trained, _ = seed_module.train()
    assert state["t"] == 1
    for name in seed_module.PARAM_NAMES:
        np.testing.assert_array_equal(stepped[name], trained[name])
