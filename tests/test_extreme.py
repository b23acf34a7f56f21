"""Extreme numbers: the generated module is as stable as Keras.

Every activation, as the output layer under each loss (logits and clipped paths) and as a hidden
layer, at pre-activations of +-1000 (sigmoid +-800): loss, gradients and one model.fit step match
Keras in float64 to 1e-9 relative, finite wherever Keras is finite, with no RuntimeWarning.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from symbp.emit.codegen import module_source
from symbp.witnesses.keras import _keras, build_keras_model, keras_train
from symbp.witnesses.module import load_module
from symbp.rules import activations
from symbp.spec import Spec

LOSSES = ["mean_squared_error", "categorical_crossentropy", "binary_crossentropy"]
LABELS = {"mean_squared_error": [[0.5, 0.2, 0.1]], "categorical_crossentropy": [[1.0, 0.0, 0.0]],
          "binary_crossentropy": [[1.0, 0.0, 1.0]]}


def extreme(activation: str) -> float:
    return 800.0 if activation == "sigmoid" else 1000.0


def output_spec(activation: str, loss: str) -> Spec:
    """One Dense layer whose pre-activation is [big, -big, 0.5] for the input [1, 0]."""
    big = extreme(activation)
    return Spec.from_dict({
        "name": "extreme", "data": {"x": [[1.0, 0.0]], "y": LABELS[loss]},
        "layers": [{"units": 3, "activation": activation, "weights": [[big, -big, 0.5], [0.0, 0.0, 0.0]],
                    "bias": [0.0, 0.0, 0.0]}],
        "loss": {"name": loss}, "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "training": {"batch_size": 1, "epochs": 1}})


def hidden_spec(activation: str) -> Spec:
    """A hidden layer at [big, -big, 0.5], then a linear output unit under MSE."""
    big = extreme(activation)
    return Spec.from_dict({
        "name": "extreme", "data": {"x": [[1.0, 0.0], [0.5, 1.0]], "y": [[0.5], [-0.25]]},
        "layers": [{"units": 3, "activation": activation, "weights": [[big, -big, 0.5], [-big, big, 0.25]],
                    "bias": [0.0, 0.0, 0.0]},
                   {"units": 1, "activation": "linear", "weights": [[1e-3], [-2e-3], [0.5]], "bias": [0.0]}],
        "loss": {"name": "mse"}, "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "training": {"batch_size": 2, "epochs": 1}})


def keras_loss_and_gradients(spec: Spec):
    """Keras's batch loss and its gradients (the graph model.fit runs: the logits shortcut holds)."""
    keras = _keras()
    import tensorflow as tf
    previous = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        params = spec.initial_params()
        model = build_keras_model(spec, params)
        x, y = tf.constant(np.array(spec.x)), tf.constant(np.array(spec.y))

        @tf.function
        def loss_and_gradients():
            with tf.GradientTape() as tape:
                loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=True))
            return loss, tape.gradient(loss, model.trainable_variables)

        loss, grads = loss_and_gradients()
    finally:
        keras.config.set_floatx(previous)
    return float(loss), dict(zip(spec.param_names, (g.numpy() for g in grads)))


def assert_as_keras(ours, theirs, what: str) -> None:
    """Finite exactly where Keras is finite; there, equal to 1e-9 relative."""
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape, what
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs), err_msg=f"{what}: {ours} vs {theirs}")
    finite = np.isfinite(theirs)
    scale = max(1.0, float(np.max(np.abs(theirs[finite])))) if finite.any() else 1.0
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-9, atol=1e-12 * scale, err_msg=what)


def check_against_keras(spec: Spec) -> None:
    source = module_source(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning from the generated code fails the test
        module = load_module(source, spec.name)
        params, x, y = module.initial_params(), module.X, module.Y
        loss = module.loss(params, x, y)
        grads = module.gradients(params, x, y)
        trained, epoch_losses = module.train()
    keras_loss, keras_grads = keras_loss_and_gradients(spec)
    keras_params, keras_losses = keras_train(spec, "float64")
    assert_as_keras(loss, keras_loss, "loss")
    for name in spec.param_names:
        assert_as_keras(grads[name], keras_grads[name], f"d{name}")
        assert_as_keras(trained[name], keras_params[name], f"{name} after one step")
    assert_as_keras(epoch_losses, keras_losses, "epoch loss")
    assert np.all(np.isfinite(loss)) or not np.isfinite(keras_loss)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", sorted(activations))
def test_output_layer_at_extreme_logits(activation, loss):
    check_against_keras(output_spec(activation, loss))


@pytest.mark.parametrize("activation", sorted(activations))
def test_hidden_layer_at_extreme_pre_activations(activation):
    check_against_keras(hidden_spec(activation))


@pytest.mark.parametrize("activation, loss", [("softmax", "categorical_crossentropy"),
                                              ("sigmoid", "binary_crossentropy"),
                                              ("softmax", "binary_crossentropy")])
def test_the_logits_paths_stay_finite_where_the_probabilities_underflow(activation, loss):
    """At these logits p = 0 or 1 exactly in float64: log p would be -inf, Keras's logits path is finite."""
    spec = output_spec(activation, loss)
    module = load_module(module_source(spec), spec.name)
    p = module.forward(module.initial_params(), module.X)[-1]
    assert np.any(p == 0.0) or np.any(p == 1.0)
    assert np.isfinite(module.loss(module.initial_params(), module.X, module.Y))
    assert all(np.all(np.isfinite(g)) for g in module.gradients(module.initial_params(), module.X, module.Y).values())


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "binary_crossentropy"])
def test_log_of_zero_is_clipped_as_keras_clips_it(loss):
    """relu outputs exactly 0 at z = -1000: the clipped probability path gives log(eps), not -inf."""
    spec = output_spec("relu", loss)
    module = load_module(module_source(spec), spec.name)
    assert np.any(module.forward(module.initial_params(), module.X)[-1] == 0.0)
    assert np.isfinite(module.loss(module.initial_params(), module.X, module.Y))


def test_silu_derivative_is_written_in_sigmoids():
    """e^z in silu's f'(z) would overflow at z = 800; its printed form uses the stable sigmoid."""
    source = module_source(hidden_spec("silu"))
    backward = source[source.index("def backward"):source.index("def gradients")]
    assert "np.exp(" not in backward and "_sigmoid(z1)" in backward
