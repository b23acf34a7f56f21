"""Convolution, pooling, Flatten and global pooling (issue 13): derived, generated, Keras-exact.

* the derivation: SymPy's entry gradients of the indexed forward formulas are the textbook
  correlations (dW = sum delta * window, db = sum delta, dwin = sum_c W delta);
* the proof: on tiny conv/pool nets the generated module, run on exact rationals, gives every
  gradient entry equal to SymPy's differentiation of the whole scalar loss, built by plain loops
  from the definitions (TensorFlow's "same" padding, max of the window);
* max pooling's ties: the gradient goes where TensorFlow sends it (the first maximum);
* Keras: a covering grid (Conv1D/Conv2D, valid/same, strides 1/2, channels and filters, every
  pooling type, Flatten and global pooling, mixed with Dense; a short last batch, several epochs,
  every optimizer) in float64 (1e-9) and float32 (1e-5).
"""

from __future__ import annotations

import dataclasses

import functools
import itertools
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp

from symbp.derivation.derive import derive_indexed_layer
from symbp.derivation.network import build_layers
from symbp.emit.codegen import module_source
from symbp.rules import optimizers
from symbp.spec.model import Spec, SpecError
from symbp.witnesses.compare import check as keras_check
from symbp.witnesses.module import load_module, spec_module


def make_spec(layers, x_shape, classes=3, loss="categorical_crossentropy", optimizer=None,
              batch_size=2, epochs=2, seed=0, integers=False) -> Spec:
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=x_shape).astype(float) if integers else rng.normal(size=x_shape).round(2)
    y = np.eye(classes)[rng.integers(0, classes, x_shape[0])]
    return Spec.from_dict({
        "name": "conv_net", "seed": seed, "data": {"x": x.tolist(), "y": y.tolist()}, "layers": layers,
        "loss": {"name": loss}, "optimizer": optimizer or {"name": "sgd", "learning_rate": 0.1},
        "training": {"batch_size": batch_size, "epochs": epochs}})


# ---------------------------------------------------------------- the derivation
def test_conv2d_entry_gradients_are_the_correlations():
    calc = derive_indexed_layer("Conv2D")
    n, p, q, c = calc.out
    (kernel_entry, d_kernel), (bias_entry, d_bias) = calc.gradients["kernel"], calc.gradients["bias"]
    u, v, k, c1 = kernel_entry.indices
    assert d_kernel.function == calc.delta[n, p, q, c1] * calc.win[n, p, q, k, u, v]
    assert [limit[0] for limit in d_kernel.limits] == [n, p, q]
    assert d_bias.function == calc.delta[n, p, q, bias_entry.indices[0]]
    win_entry, d_win = calc.g_win
    n1, p1, q1, k1, u1, v1 = win_entry.indices
    assert d_win.function == calc.parameters["kernel"][u1, v1, k1, c] * calc.delta[n1, p1, q1, c]
    assert [limit[0] for limit in d_win.limits] == [c]


@pytest.mark.parametrize("name", ["MaxPooling2D", "AveragePooling1D", "GlobalMaxPooling2D", "Flatten"])
def test_pooling_passes_delta_through_its_selection_weights(name):
    calc = derive_indexed_layer(name)
    entry, d_win = calc.g_win
    if name == "Flatten":
        assert d_win == calc.delta[entry.indices]
    else:
        assert d_win == calc.delta[entry.indices[:len(calc.out)]] * calc.mask[entry.indices]


# ---------------------------------------------------------------- the proof
def _pad(size, window, stride, padding):
    if padding == "valid":
        return 0, (size - window) // stride + 1
    total = max((-(-size // stride) - 1) * stride + window - size, 0)
    return total // 2, -(-size // stride)


def oracle_conv2d(x, W, b, stride, padding):
    """The textbook convolution, loops over every output entry (zeros outside the input)."""
    N, H, Wd, C = x.shape
    kh, kw, _, F = W.shape
    top, P = _pad(H, kh, stride, padding)
    left, Q = _pad(Wd, kw, stride, padding)
    out = np.empty((N, P, Q, F), dtype=object)
    for n, i, j, f in itertools.product(range(N), range(P), range(Q), range(F)):
        total = b[f]
        for u, v, c in itertools.product(range(kh), range(kw), range(C)):
            r, s = i * stride + u - top, j * stride + v - left
            if 0 <= r < H and 0 <= s < Wd:
                total += x[n, r, s, c] * W[u, v, c, f]
        out[n, i, j, f] = total
    return out


def _inside_windows(x, size, stride, padding):
    """((n, i, j, c), the input entries of that pooling window), padding left out."""
    N, H, Wd, C = x.shape
    top, P = _pad(H, size, stride, padding)
    left, Q = _pad(Wd, size, stride, padding)
    for n, i, j, c in itertools.product(range(N), range(P), range(Q), range(C)):
        yield (n, i, j, c), [x[n, i * stride + u - top, j * stride + v - left, c]
                             for u, v in itertools.product(range(size), range(size))
                             if 0 <= i * stride + u - top < H and 0 <= j * stride + v - left < Wd]


def oracle_pool2d(x, size, stride, padding, kind, values=None):
    """Max or mean of each window. With ``values`` (symbol -> number) max is the entry largest
    there: without ties (checked) the max equals that entry near the point, so their derivatives
    agree, and the oracle stays a polynomial SymPy differentiates quickly."""
    windows = dict(_inside_windows(x, size, stride, padding))
    shape = tuple(k + 1 for k in max(windows))
    out = np.empty(shape, dtype=object)
    for where, inside in windows.items():
        if kind == "max":
            out[where] = max(inside, key=lambda e: e.xreplace(values)) if values else sp.Max(*inside)
        else:
            out[where] = sp.Add(*inside) / len(inside)
    return out


PROOF_NETS = [
    # (conv stride, padding, pool kind, pool size, pool stride, pool padding, activation)
    # (max pooling after linear units: no ties, where the oracle's Max has no derivative)
    (1, "valid", "max", 2, 1, "valid", "linear"),
    (2, "same", "avg", 2, 1, "same", "relu"),
    (1, "same", "max", 3, 2, "same", "linear"),
]


@pytest.mark.parametrize("net", PROOF_NETS, ids=lambda n: "-".join(map(str, n)))
def test_generated_gradients_equal_scalar_differentiation(net):
    stride, padding, kind, size, pool_stride, pool_padding, activation = net
    rng = np.random.default_rng(1)
    # distinct odd eighths (no ties), kernel in quarters, biases 1/64: z is never 0 (no relu kink),
    # and every number, average pooling's 1/count too, is a short binary fraction (exact in float)
    x = rng.permutation(np.arange(-31, 33, 2)).reshape(2, 4, 4, 1) / 8
    y = np.array([[1.0, 0.0], [0.25, -0.5]])
    W = rng.permutation(np.arange(-17, 19, 2))[:18].reshape(3, 3, 1, 2) / 16
    layers = [
        {"type": "Conv2D", "filters": 2, "kernel_size": 3, "strides": stride, "padding": padding,
         "activation": activation, "kernel": W.tolist(), "bias": [1 / 64, -1 / 64]},
        {"type": "MaxPooling2D" if kind == "max" else "AveragePooling2D", "pool_size": size,
         "strides": pool_stride, "padding": pool_padding},
        {"type": "Flatten"}]
    features = build_layers(x.shape[1:], [(l["type"], l) for l in layers])[-1].output_shape[0]
    Wd = rng.integers(-4, 5, size=(features, 2)) / 4
    layers.append({"units": 2, "activation": "linear", "weights": Wd.tolist(), "bias": [0.5, 0.0]})
    spec = make_spec(layers, x.shape, classes=2, loss="mean_squared_error")
    spec = Spec.from_dict({**spec.to_dict(), "data": {"x": x.tolist(), "y": y.tolist()}})
    module = load_module(module_source(spec), "conv_net_proof")
    exact = lambda a: np.vectorize(Fraction, otypes=[object])(np.asarray(a, dtype=float))
    params = {name: exact(value) for name, value in module.initial_params().items()}
    grads, _ = module.backward(params, exact(x), exact(y))
    if kind == "max":   # the oracle's Max has no derivative at a tie: the data must have none
        conv_values = module.trace(module.initial_params(), x, y)["a1"]
        assert all(inside.count(max(inside)) == 1 for _, inside in
                   _inside_windows(conv_values, size, pool_stride, pool_padding))

    symbols = {name: np.vectorize(lambda *i, name=name: sp.Symbol(f"{name}_{'_'.join(map(str, i))}", real=True),
                                  otypes=[object])(*np.indices(value.shape)) for name, value in params.items()}
    values = {symbols[name][index]: sp.Rational(params[name][index]) for name in params for index in np.ndindex(params[name].shape)}
    # relu as its active piece at the point (z is never 0 here), as max pooling below
    act = {"linear": lambda e: e, "relu": lambda e: e if e.xreplace(values) > 0 else sp.S.Zero}[activation]
    rational = lambda a: np.vectorize(sp.Rational, otypes=[object])(a)
    conv = np.vectorize(act, otypes=[object])(oracle_conv2d(rational(exact(x)), symbols["W0"], symbols["b0"], stride, padding))
    pool = oracle_pool2d(conv, size, pool_stride, pool_padding, kind, values).reshape(len(x), -1)
    out = pool.dot(symbols["W3"]) + symbols["b3"]
    loss = sp.Add(*((out - rational(exact(y))) ** 2).ravel()) / out.size
    for name in params:
        for index in np.ndindex(params[name].shape):
            oracle = sp.diff(loss, symbols[name][index]).xreplace(values)
            assert oracle == sp.Rational(grads[name][index]), (net, name, index)


# ---------------------------------------------------------------- max pooling's ties
def test_max_pooling_ties_go_where_tensorflow_sends_them():
    tf = pytest.importorskip("tensorflow")
    x = np.array([[1., 1., 0., 2.], [1., 1., 2., 0.], [3., 0., 5., 5.], [0., 3., 5., 5.]]).reshape(1, 4, 4, 1)
    upstream = np.array([1., 2., 3., 4.]).reshape(1, 2, 2, 1)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        total = tf.reduce_sum(tf.nn.max_pool2d(xt, 2, 2, "VALID") * upstream)
    expected = tape.gradient(total, xt).numpy()
    spec = make_spec([{"type": "Conv2D", "filters": 1, "kernel_size": 1}, {"type": "MaxPooling2D"},
                      {"type": "Flatten"}, {"units": 2}], x.shape, classes=2)   # its module has every helper
    module = load_module(module_source(spec), "conv_net_ties")
    win = module._windows(x, (2, 2), (2, 2), "valid")
    mask = module._first_max(win, 2)[0]
    dwin = np.einsum("npqc,npqcuv->npqcuv", upstream, mask)
    got = module._windows_adjoint(dwin, x.shape, (2, 2), (2, 2), "valid")
    np.testing.assert_array_equal(got, expected)
    assert got[0, 0, 0, 0] == 1 and got[0, 1, 1, 0] == 0   # the first of four tied ones


def test_max_pooling_s_value_is_the_window_maximum_tensorflow_gives_even_for_tied_infinities():
    """The pooled value is the maximum _first_max finds, not sum(mask*win): a window with two
    +inf entries pools to inf, as TensorFlow's max_pool2d (the product form gave 0*inf = NaN)."""
    tf = pytest.importorskip("tensorflow")
    x = np.arange(32.).reshape(2, 4, 4, 1)
    x[0, 0, 0, 0] = x[0, 1, 1, 0] = np.inf
    x[1, 2, 2, 0] = -np.inf
    spec = make_spec([{"type": "MaxPooling2D"}, {"type": "Flatten"}, {"units": 2}], x.shape, classes=2)
    module = load_module(module_source(spec), "conv_net_infinite_max")
    pooled = module.forward(module.initial_params(), x)[1]
    np.testing.assert_array_equal(pooled, tf.nn.max_pool2d(tf.constant(x), 2, 2, "VALID").numpy())
    assert pooled[0, 0, 0, 0] == np.inf


def test_the_first_max_mask_is_argmax_choice_on_ties_nan_and_infinities():
    """One pass per window offset picks what argmax over each window picks (the first of tied
    maxima, the first NaN, -inf when all are), for strided and overlapping windows; a window of
    more than 16 entries (global pooling) takes argmax itself."""
    spec = make_spec([{"type": "Conv2D", "filters": 1, "kernel_size": 1}, {"type": "MaxPooling2D"},
                      {"type": "Flatten"}, {"units": 2}], (1, 4, 4, 1), classes=2)
    module = load_module(module_source(spec), "conv_net_first_max")
    rng = np.random.default_rng(1)
    for trial in range(30):
        x = rng.integers(-2, 3, (2, 5, 6, 3)).astype(float)
        x[rng.random(x.shape) < 0.1 * (trial % 3 == 0)] = np.nan
        x[rng.random(x.shape) < 0.3 * (trial % 5 == 0)] = -np.inf
        for window, strides in (((2, 2), (2, 2)), ((3, 2), (1, 2)), ((2, 3), (2, 1)), ((5, 6), (1, 1))):
            win = module._windows(x, window, strides, "valid")
            flat = win.reshape(*win.shape[:-2], -1)
            expected = np.arange(flat.shape[-1]) == flat.argmax(axis=-1)[..., None]
            mask, maximum = module._first_max(win, 2)
            np.testing.assert_array_equal(mask.reshape(flat.shape), expected)
            np.testing.assert_array_equal(maximum, np.take_along_axis(flat, flat.argmax(axis=-1)[..., None], -1)[..., 0])


# ---------------------------------------------------------------- Keras
OPTIMIZER_CYCLE = [
    {"name": "sgd", "learning_rate": 0.1},
    {"name": "adam", "learning_rate": 0.02},
    {"name": "adamw", "learning_rate": 0.02, "weight_decay": 0.1},
    {"name": "rmsprop", "learning_rate": 0.01, "centered": True},
    {"name": "adagrad", "learning_rate": 0.1},
    {"name": "adamax", "learning_rate": 0.02},
    {"name": "nadam", "learning_rate": 0.02},
    {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
]

KERAS_NETS = [
    ("conv2d-valid-s1-max", (5, 6, 6, 2), [
        {"type": "Conv2D", "filters": 3, "kernel_size": 3, "activation": "relu"},
        {"type": "MaxPooling2D", "pool_size": 2}, {"type": "Flatten"},
        {"units": 3, "activation": "softmax"}]),
    ("conv2d-same-s2-avg-same", (5, 7, 6, 1), [
        {"type": "Conv2D", "filters": 2, "kernel_size": [3, 2], "strides": 2, "padding": "same", "activation": "tanh"},
        {"type": "AveragePooling2D", "pool_size": 2, "padding": "same"}, {"type": "Flatten"},
        {"units": 4, "activation": "tanh"}, {"units": 3, "activation": "softmax"}]),
    ("conv2d-s2-valid-overlapping-max-same", (5, 7, 7, 2), [
        {"type": "Conv2D", "filters": 2, "kernel_size": 2, "strides": [2, 1], "activation": "sigmoid"},
        {"type": "MaxPooling2D", "pool_size": 3, "strides": 2, "padding": "same"}, {"type": "Flatten"},
        {"units": 3, "activation": "softmax"}]),
    ("two-conv2d-global-max", (5, 6, 6, 2), [
        {"type": "Conv2D", "filters": 3, "kernel_size": 3, "padding": "same", "activation": "relu"},
        {"type": "AveragePooling2D", "pool_size": 2},
        {"type": "Conv2D", "filters": 4, "kernel_size": 2, "activation": "elu"},
        {"type": "GlobalMaxPooling2D"}, {"units": 3, "activation": "softmax"}]),
    ("conv2d-global-avg", (5, 5, 5, 3), [
        {"type": "Conv2D", "filters": 2, "kernel_size": 2, "strides": 2, "padding": "same", "activation": "relu"},
        {"type": "GlobalAveragePooling2D"}, {"units": 3, "activation": "softmax"}]),
    ("conv1d-valid-max", (5, 9, 2), [
        {"type": "Conv1D", "filters": 3, "kernel_size": 3, "activation": "relu"},
        {"type": "MaxPooling1D", "pool_size": 2}, {"type": "Flatten"}, {"units": 3, "activation": "softmax"}]),
    ("conv1d-same-s2-avg-global", (5, 8, 3), [
        {"type": "Conv1D", "filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "tanh"},
        {"type": "AveragePooling1D", "pool_size": 2, "strides": 1, "padding": "same"},
        {"type": "GlobalAveragePooling1D"}, {"units": 3, "activation": "softmax"}]),
    ("conv1d-global-max", (5, 6, 2), [
        {"type": "Conv1D", "filters": 3, "kernel_size": 2, "activation": "linear"},
        {"type": "GlobalMaxPooling1D"}, {"units": 3, "activation": "softmax"}]),
]


def test_the_keras_grid_covers_every_optimizer():
    assert {o["name"] for o in OPTIMIZER_CYCLE} == set(optimizers.names())


@pytest.mark.parametrize("case", range(len(KERAS_NETS)), ids=[n for n, _, _ in KERAS_NETS])
def test_keras_agrees_float64_and_float32(case):
    name, shape, layers = KERAS_NETS[case]
    spec = make_spec(layers, shape, optimizer=OPTIMIZER_CYCLE[case], batch_size=2, epochs=3, seed=case)
    module = load_module(module_source(spec), f"conv_net_{case}")
    for dtype in ("float64", "float32"):
        report = keras_check(spec, dtype, module=module)
        assert report.match, (name, dtype, [(c.name, c.max_abs_diff, c.allowed) for c in report.comparisons])


def test_keras_agrees_with_ties_in_max_pooling():
    """Integer images and kernels: many windows hold equal maxima."""
    layers = [{"type": "MaxPooling2D", "pool_size": 2, "strides": 1}, {"type": "Flatten"},
              {"units": 3, "activation": "softmax"}]
    spec = make_spec(layers, (4, 4, 4, 1), batch_size=3, epochs=2, integers=True)
    x = np.asarray(spec.x)
    assert any(np.sum(w == w.max()) > 1 for w in np.lib.stride_tricks.sliding_window_view(x, (2, 2), axis=(1, 2)).reshape(-1, 4))
    assert keras_check(spec, "float64").match


@pytest.mark.parametrize("pool, x_shape", [("MaxPooling2D", (3, 4, 4, 2)), ("GlobalMaxPooling2D", (3, 3, 3, 2)),
                                           ("MaxPooling1D", (3, 6, 2)), ("GlobalMaxPooling1D", (3, 5, 2))])
def test_tied_maxima_send_the_gradient_where_tensorflow_does(pool, x_shape):
    """Ties in the maps a convolution feeds its pooling (integer images, a 1x1 integer kernel,
    one step), so the tie's routing moves the kernel's gradient: MaxPooling (tf.nn.max_pool)
    sends it all to the first maximum, GlobalMaxPooling (tf.reduce_max) 1/k to each of k."""
    rank = len(x_shape) - 2
    conv = {"type": f"Conv{rank}D", "filters": 2, "kernel_size": 1, "kernel": np.reshape([1, -1, 1, 1], (1,) * rank + (2, 2)).tolist(),
            "bias": [0.0, 0.0]}
    pooling = [{"type": pool, **({"pool_size": 2} if not pool.startswith("Global") else {})}]
    flatten = [] if pool.startswith("Global") else [{"type": "Flatten"}]
    spec = make_spec([conv, *pooling, *flatten, {"units": 3, "activation": "softmax"}], x_shape,
                     batch_size=3, epochs=1)
    spec = dataclasses.replace(spec, x=np.random.default_rng(1).integers(0, 2, x_shape).astype(float).tolist())
    module = spec_module(spec)
    trace = module.trace(spec.initial_params(), module.X, module.Y)
    mask = trace["mask2"]
    shared = mask[(mask > 0) & (mask < 1)]
    if pool.startswith("Global"):
        assert shared.size and set(np.round(1 / shared).astype(int)) >= {2}   # ties shared
    else:
        assert shared.size == 0 and np.any(np.sum(trace["win2"] == trace["z2"][..., *(None,) * rank], axis=tuple(range(-rank, 0))) > 1)
    for dtype in ("float64", "float32"):
        assert keras_check(spec, dtype, module=module).match, (pool, dtype)


# ---------------------------------------------------------------- the spec
@pytest.mark.parametrize("layer, says", [
    ({"type": "Conv2D", "filters": 2, "kernel_size": 3, "padding": "full"}, "layers[0].padding"),
    ({"type": "Conv2D", "filters": 2, "kernel_size": 9}, "larger than its input"),
    ({"type": "Conv2D", "filters": 2, "kernel_size": 3, "kernel": [[1.0]]}, "shape (3, 3, 1, 2)"),
    ({"type": "Conv2D", "kernel_size": 3}, "layers[0].filters: missing"),
    ({"type": "Conv2d", "filters": 2, "kernel_size": 3, "dilation": 2}, "layers[0].dilation"),
    ({"type": "Conv3D", "filters": 2}, "unknown layer"),
])
def test_bad_layers_are_named(layer, says):
    with pytest.raises(SpecError) as error:
        make_spec([layer, {"type": "Flatten"}, {"units": 3, "activation": "softmax"}], (2, 5, 5, 1))
    assert says in str(error.value)


@pytest.mark.parametrize("where, entry, says", [
    ("x", "0.8", "data.x[0][0][0][0]: expected a finite number, found '0.8'"),
    ("x", True, "data.x[0][0][0][0]: expected a finite number, found True"),
    ("kernel", "-0.1", "layers[0].kernel[0][0][0][0]: expected a finite number, found '-0.1'"),
    ("bias", False, "layers[0].bias[0]: expected a finite number, found False"),
])
def test_a_string_or_bool_is_no_number_in_a_cnn_spec(where, entry, says):
    """As for Dense layers: NumPy would read "0.8" as 0.8 and true as 1.0, a spec's typo taken
    as data."""
    conv = {"type": "Conv2D", "filters": 2, "kernel_size": 2, "kernel": np.full((2, 2, 1, 2), 0.1).tolist(),
            "bias": [0.0, 0.0]}
    table = make_spec([conv, {"type": "Flatten"}, {"units": 3, "activation": "softmax"}], (2, 3, 3, 1)).to_dict()
    array = table["data"]["x"] if where == "x" else table["layers"][0][where]
    while isinstance(array[0], list):
        array = array[0]
    array[0] = entry
    with pytest.raises(SpecError) as error:
        Spec.from_dict(table)
    assert says in str(error.value)


@pytest.mark.parametrize("layers, x, says", [
    ([{"units": 3, "activation": "softmax"}], np.zeros((2, 2, 2, 1)).tolist(),
     "data.x: Dense takes a 2-D array (samples x features), found 4-D data: images or sequences need a "
     "convolution or a Flatten layer first"),
    ([{"type": "Conv2D", "filters": 2, "kernel_size": 1}, {"type": "Flatten"}, {"units": 3, "activation": "softmax"}],
     [[[[], []], [[], []]]] * 2, "found an empty axis, shape (2, 2, 2, 0)"),
    ([{"type": "Conv2D", "filters": 2, "kernel_size": 1}, {"type": "Flatten"}, {"units": 3, "activation": "softmax"}],
     [functools.reduce(lambda inner, _: [inner], range(100), 0.5)] * 2, "data.x: arrays nested 101 deep: at most 32"),
])
def test_data_of_the_wrong_kind_for_the_first_layer_is_said_so(layers, x, says):
    """Image data into a Dense layer (was "data.x[0][0]: expected a finite number, found [[...]]"),
    images of no channel (was "needs a 4-D array ..., found 4-D")."""
    table = {"name": "t", "data": {"x": x, "y": np.eye(3)[[0, 1]].tolist()}, "layers": layers,
             "loss": {"name": "categorical_crossentropy"}, "optimizer": {"name": "sgd"}}
    with pytest.raises(SpecError) as error:
        Spec.from_dict(table)
    assert says in str(error.value)


def test_a_network_needs_parameters():
    with pytest.raises(SpecError, match="no layer with parameters"):
        make_spec([{"type": "MaxPooling2D"}, {"type": "Flatten"}], (2, 4, 4, 1), classes=4)


def test_dense_after_a_convolution_needs_flatten():
    with pytest.raises(SpecError, match="add a Flatten") as error:
        make_spec([{"type": "Conv2D", "filters": 2, "kernel_size": 3}, {"units": 3, "activation": "softmax"}],
                  (2, 5, 5, 1))
    assert len(error.value.problems) == 1   # not also its units and activation as unknown keys


@pytest.mark.parametrize("layer, says", [
    ({"type": "Convolution2D", "filters": 2, "kernel_size": 3}, "unknown layer 'Convolution2D' (did you mean 'Conv2D'?)"),
    ({"type": "Conv2D", "filters": 2, "kernel_size": 3, "strides": 10**6}, "a positive integer (at most 1024)"),
])
def test_one_mistake_in_a_cnn_layer_is_one_problem_said_plainly(layer, says):
    """A misspelt first layer leaves the images' shape unknown: their numbers are still checked,
    their rank is not (it was "data.x[0][0]: expected a finite number, found [[...]]" too)."""
    with pytest.raises(SpecError) as error:
        make_spec([layer, {"type": "Flatten"}, {"units": 3, "activation": "softmax"}], (2, 5, 5, 1))
    assert [says in str(problem) for problem in error.value.problems] == [True], str(error.value)


def test_the_spec_round_trips_through_toml():
    spec = make_spec(KERAS_NETS[1][2], KERAS_NETS[1][1]).with_initial_params()
    again = Spec.from_dict(__import__("tomllib").loads(spec.to_toml()))
    assert again.layers == spec.layers and again.param_names == ["W0", "b0", "W3", "b3", "W4", "b4"]


# ---------------------------------------------------------------- the command
def test_the_cli_generates_checks_and_derives_a_cnn(tmp_path, symbp_cli):
    spec = make_spec(KERAS_NETS[0][2], KERAS_NETS[0][1], optimizer={"name": "adam", "learning_rate": 0.01})
    path = tmp_path / "small_cnn.toml"
    path.write_text(spec.to_toml().replace('name = "conv_net"', 'name = "small_cnn"'))
    made = symbp_cli("codegen", str(path), "-o", str(tmp_path / "out"))
    assert made.returncode == 0, made.stderr
    source = (tmp_path / "out" / "small_cnn.py").read_text()
    forward = source.split("def _forward")[1].split("def forward")[0]
    assert "sliding_window_view" in source and not any(line.strip().startswith("for ") for line in forward.splitlines())
    checked = symbp_cli("check", str(path), "--json")
    assert checked.returncode == 0, checked.stderr
    derived = symbp_cli("derive", str(path), "-o", str(tmp_path / "d"), "--no-check")   # handouts: tests/test_cnn_handouts.py
    assert derived.returncode == 0, derived.stderr
    assert (tmp_path / "d" / "small_cnn_solution.tex").exists() and (tmp_path / "d" / "small_cnn_student.tex").exists()
    # variants, answer keys and grading of CNNs: tests/test_cnn_variants.py


# ---------------------------------------------------------------- speed's shape (issue 13's LeNet)
LENET = [{"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu"},
         {"type": "MaxPooling2D", "pool_size": 2},
         {"type": "Conv2D", "filters": 16, "kernel_size": 3, "activation": "relu"},
         {"type": "MaxPooling2D", "pool_size": 2},
         {"type": "Flatten"}, {"units": 10, "activation": "softmax"}]


def _lines_run_by_step(side: int) -> tuple[int, str]:
    """(lines of the generated module Python runs for one step on 2 side x side images, its source)."""
    import sys
    spec = make_spec(LENET, (2, side, side, 1), classes=10, batch_size=2)
    source = module_source(spec)
    module = load_module(source, f"lenet_{side}")
    params, x, y = module.initial_params(), module.X, module.Y
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        if frame.f_code.co_filename == module.__file__:
            count += event == "line"
            return tracer
        return None

    sys.settrace(tracer)
    try:
        module.step(params, x, y)
    finally:
        sys.settrace(None)
    return count, source


def test_the_lenet_step_has_no_python_loop_over_pixels():
    """The generated step runs as many Python lines on 32 x 32 images as on 20 x 20 ones: every
    convolution and pooling is whole-array NumPy (windows, one tensordot per contraction), the
    helpers loop over a window's offsets (3 x 3, 2 x 2) only."""
    small, source = _lines_run_by_step(20)
    large, _ = _lines_run_by_step(32)
    assert small == large and small > 50
    assert "sliding_window_view" in source and source.count("np.tensordot(") == 5   # z, dW of two convs; g of one
    body = source.split("def _forward")[1].split("\ndef gradients")[0]
    assert not any(line.strip().startswith(("for ", "while ")) for line in body.splitlines())


def test_the_backward_pass_reuses_the_forward_pass_windows_and_masks_and_kinks_read_past_them():
    """_forward returns the windows and max pooling's selection weights with z and a; backward
    takes them from there, and the kink search (which unpacks the forward pass) still runs on a
    relu CNN."""
    from symbp.derivation.kinks import nearest_kink
    spec = make_spec(LENET[:2] + LENET[4:], (3, 6, 6, 1), classes=10)
    source = module_source(spec)
    module = load_module(source, "lenet_masks")
    zs, outputs, (win1, win2, mask2) = module._forward(module.initial_params(), module.X)
    assert win1.shape == (3, 4, 4, 1, 3, 3) and win2.shape == mask2.shape == (3, 2, 2, 8, 2, 2)
    assert np.all(mask2.sum(axis=(-2, -1)) == 1)
    assert source.count("_first_max(win2, 2)") == 1 and source.count("win1 = _window_rows(") == 1
    hit = nearest_kink(spec, module)
    assert hit is not None and hit.where.startswith("layer 0 (relu) z")


def _peak_bytes(run) -> int:
    import tracemalloc
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_step_holds_one_layer_of_window_gradients_at_a_time():
    """Max pooling's mask is a boolean laid out as the input, so where pooling windows tile their
    input the windows' adjoint is a view of dwin (no copy); backward drops each windowed layer's
    dwin and g once the delta below is computed (a trace, which records every line, keeps them).
    A LeNet step's peak memory is below a recording backward pass's by more than the largest dwin."""
    from symbp.emit.codegen import module_data
    spec = make_spec(LENET, (16, 28, 28, 1), classes=10)
    module = load_module(module_source(spec), spec.name, module_data(spec))
    params, x, y = module.initial_params(), module.X, module.Y
    forward_pass = module._forward(params, x)
    record: dict = {}
    module.backward(params, x, y, forward_pass, record=record)
    mask2 = forward_pass[2][2]
    assert mask2.dtype == bool and np.all(mask2.sum(axis=(-2, -1)) == 1)
    assert np.shares_memory(record["g1"], record["dwin2"]) and {"dwin3", "g3", "dwin4"} <= set(record)
    largest_dwin = record["dwin3"].nbytes
    del forward_pass, record
    recording = _peak_bytes(lambda: module.backward(params, x, y, record={}))
    stepping = _peak_bytes(lambda: module.gradients(params, x, y))
    assert stepping < recording - largest_dwin, (stepping, recording, largest_dwin)


def _own_memory(array: np.ndarray) -> np.ndarray | None:
    """The array that owns ``array``'s memory (itself, or the base a view is of); None for a
    strided window view (its memory is its input's, held in the forward pass anyway)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array if array.base is None else None


def test_a_step_frees_the_forward_pass_arrays_after_their_last_read():
    """backward drops each large array of the forward pass once read for the last time (a1 and
    the second pooling's windows, which it never reads, as it starts): a step's peak memory is
    below a backward pass whose caller holds the forward pass, by more than a1 (the first
    layer's output, which only pooling reads). With glibc malloc's defaults the memory a step
    reaches is faulted in again at every step (bench/conv.py)."""
    from symbp.emit.codegen import module_data
    spec = make_spec(LENET, (16, 28, 28, 1), classes=10)
    source = module_source(spec)
    module = load_module(source, spec.name, module_data(spec))
    params, x, y = module.initial_params(), module.X, module.Y
    backward = source.split("def backward")[1].split("\ndef gradients")[0]
    assert "del a1, win2, a2, a3, win4, a4" in backward and "del z1, g1" in backward
    forward_pass = module._forward(params, x)
    owners = {id(a): a for a in map(_own_memory, (a for arrays in forward_pass for a in arrays)) if a is not None}
    held = sum(a.nbytes for a in owners.values())
    held += _peak_bytes(functools.partial(module.backward, params, x, y, forward_pass))
    a1 = forward_pass[1][1].nbytes
    del forward_pass
    stepping = _peak_bytes(lambda: module.gradients(params, x, y))
    assert stepping < held - a1, (stepping, held, a1)


@pytest.mark.parametrize("channels, strides", [(1, 1), (3, 1), (1, 2)])
def test_a_convolution_s_windows_are_copied_once_into_a_matrix_both_products_read(channels, strides):
    """_window_rows copies a convolution's windows once (im2col), laid out so that the forward
    product (rows: sample and position) and the kernel gradient (rows: offset and channel) both
    read it as a matrix without a copy: a reshape of either transposition is a view. By columns
    for one channel at stride 1 (a grey image's rows copied whole), by rows otherwise."""
    from symbp.emit.codegen import module_data
    layers = [{"type": "Conv2D", "filters": 4, "kernel_size": 3, "strides": strides, "activation": "relu"},
              {"type": "Flatten"}, {"units": 3, "activation": "softmax"}]
    spec = make_spec(layers, (5, 9, 9, channels), classes=3)
    module = load_module(module_source(spec), spec.name, module_data(spec))
    params = module.initial_params()
    win1 = module._forward(params, module.X)[2][0]
    expected = module._windows(module.X, (3, 3), (strides, strides), "valid")
    assert np.array_equal(win1, expected) and not np.shares_memory(win1, module.X)
    for order in ((0, 1, 2, 4, 5, 3), (4, 5, 3, 0, 1, 2)):   # forward's, the kernel gradient's
        matrix = win1.transpose(order)
        flat = matrix.reshape(int(np.prod(matrix.shape[:3])), -1)
        assert np.shares_memory(flat, win1), order
    by_columns = channels == 1 and strides == 1
    assert win1.transpose(4, 5, 3, 0, 1, 2).flags.c_contiguous == by_columns
    assert win1.transpose(0, 1, 2, 4, 5, 3).flags.c_contiguous == (not by_columns)
