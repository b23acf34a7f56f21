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
