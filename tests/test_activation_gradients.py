"""Each element-wise activation's backward rule, as the generated module prints it, gives exactly
TensorFlow's gradient (tf.GradientTape through Keras's activation), edge values included: a masked
inf or nan upstream, a masked negative upstream (0 or -0.0), z exactly 0."""

from __future__ import annotations

import numpy as np
import pytest

from symbp.derivation.derive import derive_activation
from symbp.witnesses.keras import _keras
from symbp.emit.printers import ArrayPrinter

Z = np.array([1.5, -1.5, 0.0, -2.0, 2.0, -0.5])
UPSTREAM = np.array([np.inf, np.inf, -3.0, -1.0, np.nan, np.nan])


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "elu", "selu"])
def test_piecewise_backward_is_tensorflow_s(name):
    keras = _keras()
    import tensorflow as tf
    rule = derive_activation(name)
    code = ArrayPrinter({"z": "z", "g": "g", "a": "a"}).doprint(rule.backward)
    z_tf = tf.constant(Z)
    with tf.GradientTape() as tape:
        tape.watch(z_tf)
        out = keras.activations.get(name)(z_tf)
    expected = tape.gradient(out, z_tf, output_gradients=tf.constant(UPSTREAM)).numpy()
    with np.errstate(all="ignore"):
        ours = eval(code, {"np": np, "z": Z, "g": UPSTREAM, "a": out.numpy()})
    ours = np.broadcast_to(ours, Z.shape)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)   # nan where TF has nan
    exact = (expected == 0) | np.isinf(expected)                      # 0 and -0.0, inf and -inf
    assert np.array_equal(np.signbit(ours[exact]), np.signbit(expected[exact])), (code, ours, expected)
