"""The Keras witness: the same model trained by ``model.fit``.

Imports TensorFlow only when called. float64 runs set ``keras.config.set_floatx("float64")``
before building the model and its optimizer (and restore it after), as KERAS-SEMANTICS.md says.
The comparison with the generated module is every witness's (:mod:`symbp.witnesses.compare`).
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

from ..spec import Spec
from .base import Run, Witness, register
from .module import training_progress


def _keras():
    """Import Keras (TensorFlow backend) with TensorFlow's start-up chatter kept off stderr."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with _quiet_stderr():
        import keras
        import tensorflow  # noqa: F401  (its C++ logging starts here)
    return keras


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null for the block (C++ logging ignores sys.stderr)."""
    if os.environ.get("SYMBP_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def keras_floatx(dtype: str):
    """Keras's floatx *and* its global dtype policy set to ``dtype`` for the block, then restored.

    A layer takes the global policy when it is made, and Keras caches that policy the first time
    it is read: setting floatx alone does not change the dtype of later layers in the process.
    """
    keras = _keras()
    from keras.src.backend.common import global_state
    # the policy as stored, None when never set: keras.config.dtype_policy() would pin one (of
    # the floatx of the moment) and restoring that would fix later layers' dtype for good
    previous = keras.config.floatx(), global_state.get_global_attribute("dtype_policy", None)
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield keras
    finally:
        keras.config.set_floatx(previous[0])
        global_state.set_global_attribute("dtype_policy", previous[1])


def keras_layer(keras, layer):
    """One layer as Keras builds it: ``keras.layers.<rule's Keras class>(**its Keras arguments)``
    (a class not in ``keras.layers`` is looked up among Keras's registered serializables)."""
    class_name, arguments = layer.rule.keras_layer(layer.arguments)
    cls = getattr(keras.layers, class_name, None) or keras.saving.get_registered_object(class_name)
    if cls is None:
        raise ValueError(f"Keras has no layer class {class_name!r} (layer rule {layer.rule.name})")
    return cls(**arguments)


def keras_weights(layers, params: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The module's parameters in Keras's ``get_weights`` order: layer by layer, each rule's
    parameters in the order it lists them (Keras's ``build`` order)."""
    return [params[name.code] for layer in layers for name in layer.param_names]


def build_keras_model(spec: Spec, params: dict[str, np.ndarray]):
    """The spec's network, built from its layer rules, as a compiled Keras Sequential model holding ``params``."""
    from ..derivation.network import layers_from_spec
    keras = _keras()
    layers = layers_from_spec(spec)
    model = keras.Sequential([keras.Input(shape=layers[0].input_shape)]
                             + [keras_layer(keras, layer) for layer in layers])
    # numbers as floats: Keras's SGD rejects an integer momentum
    settings = {k: v if isinstance(v, bool) else float(v)
                for k, v in spec.optimizer.arguments.items()}
    optimizer_class = type(keras.optimizers.get(spec.optimizer.name))
    model.compile(optimizer=optimizer_class(**settings), loss=keras_loss(spec.loss), jit_compile=False)
    model.set_weights(keras_weights(layers, params))
    freeze_biases(model, spec)
    return model


def freeze_biases(model, spec: Spec) -> None:
    """``bias_trainable = false``: the layer's bias variable made non-trainable, so it stays in
    ``get_weights()`` (same order) but the optimizer neither updates it nor gives it a slot."""
    for layer, given in zip(model.layers, spec.layers):
        if not given.bias_trainable:
            layer.bias.trainable = False


def half_sum_squared_error(y_true, y_pred):
    """E = 1/2 sum_i (y_pred_i - y_true_i)^2 per sample; ``compile`` averages it over the batch
    (Keras's sum_over_batch_size), as symbp's half_sum_squared_error rule states."""
    ops = _keras().ops
    return 0.5 * ops.sum(ops.square(y_pred - y_true), axis=-1)


#: losses Keras does not have, given to ``compile`` as functions of (y_true, y_pred)
CUSTOM_LOSSES = {"half_sum_squared_error": half_sum_squared_error}


def keras_loss(loss):
    """The spec's loss (a LossSpec) for ``compile``: its name, its Keras class when it has
    arguments, or a function of ours (CUSTOM_LOSSES) for a textbook loss Keras lacks."""
    if loss.name in CUSTOM_LOSSES:
        return CUSTOM_LOSSES[loss.name]
    arguments = {k: float(v) for k, v in loss.arguments.items()}
    if not arguments:
        return loss.name
    keras = _keras()
    return getattr(keras.losses, "".join(part.title() for part in loss.name.split("_")))(**arguments)


def keras_train(spec: Spec, dtype: str = "float64") -> tuple[dict[str, np.ndarray], list[float]]:
    """Train the spec's network with ``model.fit(shuffle=False)``; (final params, epoch losses)."""
    with keras_floatx(dtype) as keras:
        keras.utils.set_random_seed(spec.seed)
        params = {k: v.astype(dtype) for k, v in spec.initial_params().items()}
        model = build_keras_model(spec, params)
        report = training_progress(spec, "Keras model.fit")
        callbacks = [] if report is None else [
            keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: report(epoch + 1))]
        history = model.fit(np.array(spec.x, dtype=dtype), np.array(spec.y, dtype=dtype),
                            batch_size=spec.batch_size, epochs=spec.epochs, shuffle=False, verbose=0,
                            callbacks=callbacks)
        weights = model.get_weights()
    return dict(zip(spec.param_names, weights)), [float(v) for v in history.history["loss"]]


@register
class KerasWitness(Witness):
    """Keras 3 (TensorFlow backend): ``model.fit(shuffle=False)`` from the spec's initial weights."""
    name = "keras"
    framework = "Keras"

    def train(self, spec: Spec, dtype: str = "float64") -> Run:
        params, losses = keras_train(spec, dtype)
        return Run(params, losses)
