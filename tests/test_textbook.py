"""Textbook conventions (issue 17): E = 1/2 sum of squared errors, fixed biases, W1 for the first
layer, and Mazur's worked example reproduced from the handout's PDF."""

from __future__ import annotations

import numpy as np

from symbp.emit.codegen import module_source
from symbp.spec.model import Spec
from symbp.witnesses.keras import check, load_module


def two_layer(loss="half_sum_squared_error", optimizer=None, bias_trainable=(True, True), epochs=2):
    """A 2-2-2 sigmoid network (Mazur's numbers) on two samples."""
    layers = [{"units": 2, "activation": "sigmoid", "weights": [[0.15, 0.25], [0.20, 0.30]],
               "bias": [0.35, 0.35]},
              {"units": 2, "activation": "sigmoid", "weights": [[0.40, 0.50], [0.45, 0.55]],
               "bias": [0.60, 0.60]}]
    for layer, trainable in zip(layers, bias_trainable):
        if not trainable:
            layer["bias_trainable"] = False
    return Spec.from_dict({"name": "textbook", "data": {"x": [[0.05, 0.10], [0.3, -0.2]],
                                                        "y": [[0.01, 0.99], [0.5, 0.2]]},
                           "layers": layers, "loss": {"name": loss},
                           "optimizer": optimizer or {"name": "sgd", "learning_rate": 0.5},
                           "training": {"batch_size": 2, "epochs": epochs}})


def test_half_sum_squared_error_is_half_the_sum_over_outputs_averaged_over_the_batch():
    spec = two_layer()
    module = load_module(module_source(spec), spec.name)
    params = module.initial_params()
    p = module.forward(params, module.X)[-1]
    expected = np.mean(0.5 * np.sum((p - module.Y) ** 2, axis=1))
    assert abs(module.loss(params, module.X, module.Y) - expected) < 1e-15


def test_half_sum_squared_error_matches_keras_through_a_custom_loss():
    report = check(two_layer(optimizer={"name": "adam", "learning_rate": 0.1}))
    assert report.match, report.describe(two_layer())


def test_fixed_biases_stay_in_param_names_and_come_back_unchanged():
    spec = two_layer(optimizer={"name": "adam", "learning_rate": 0.1}, bias_trainable=(False, True))
    assert spec.fixed_params == ["b0"]
    assert "bias_trainable = false" in spec.to_toml()
    module = load_module(module_source(spec), spec.name)
    params = module.initial_params()
    assert module.PARAM_NAMES == ("W0", "b0", "W1", "b1")
    final, _ = module.train()
    assert np.array_equal(final["b0"], params["b0"])
    assert not np.array_equal(final["b1"], params["b1"]) and not np.array_equal(final["W0"], params["W0"])
    assert np.array_equal(module.trace(params, module.X, module.Y)["updated"]["b0"], params["b0"])


def test_fixed_biases_match_keras_with_frozen_bias_variables():
    for optimizer in ({"name": "sgd", "learning_rate": 0.5, "momentum": 0.5},
                      {"name": "adamw", "learning_rate": 0.1, "weight_decay": 0.1}):
        spec = two_layer(optimizer=optimizer, bias_trainable=(False, False), epochs=3)
        report = check(spec)
        assert report.match, report.describe(spec)


def test_bias_trainable_must_be_a_boolean():
    import pytest
    from symbp.spec.model import SpecError
    data = two_layer().to_dict()
    data["layers"][0]["bias_trainable"] = "no"
    with pytest.raises(SpecError, match=r"layers\[0\]\.bias_trainable"):
        Spec.from_dict(data)
