"""Left-out weights: the generated module draws them as the spec does, bit for bit, in code."""

import numpy as np
import pytest

from symbp.emit.codegen import module_source
from symbp.rules.initializers import INITIALIZERS
from symbp.witnesses.module import load_module
from symbp.spec import Spec


def spec_with(kernel: str, bias: str, widths=(6, 5, 3), seed=7, explicit_middle=False) -> Spec:
    rng = np.random.default_rng(1)
    layers = [{"units": u, "activation": a, "kernel_initializer": kernel, "bias_initializer": bias}
              for u, a in zip(widths[1:], ["tanh"] * (len(widths) - 2) + ["softmax"])]
    if explicit_middle:
        layers[0] = {"units": widths[1], "activation": "tanh",
                     "weights": rng.uniform(-1, 1, (widths[0], widths[1])).tolist()}
    return Spec.from_dict({
        "name": "drawn", "seed": seed,
        "data": {"x": rng.standard_normal((2, widths[0])).tolist(), "y": [[1, 0, 0], [0, 0, 1]]},
        "layers": layers, "loss": {"name": "categorical_crossentropy"},
        "optimizer": {"name": "sgd"}})


@pytest.mark.parametrize("kernel", sorted(INITIALIZERS))
def test_generated_initial_params_equal_the_specs(kernel):
    spec = spec_with(kernel, "random_normal" if kernel == "zeros" else "zeros")
    module = load_module(module_source(spec), "drawn")
    generated, drawn = module.initial_params(), spec.initial_params()
    assert list(generated) == list(drawn)
    for name in drawn:
        assert generated[name].dtype == drawn[name].dtype == np.float64
        np.testing.assert_array_equal(generated[name], drawn[name])


def test_explicit_weights_stay_literal_and_keep_the_draw_order():
    spec = spec_with("glorot_normal", "random_uniform", explicit_middle=True)
    source = module_source(spec)
    assert "np.array([[" in source and "truncated_normal(rng" in source
    module = load_module(source, "drawn")
    for name, value in spec.initial_params().items():
        np.testing.assert_array_equal(module.initial_params()[name], value)


def test_a_wide_spec_without_weights_gives_a_small_module():
    spec = spec_with("glorot_uniform", "zeros", widths=(3, 512, 512, 3))
    source = module_source(spec)
    assert len(source) < 20_000  # 512 x 512 numbers written out would take megabytes
    module = load_module(source, "drawn")
    assert module.initial_params()["W1"].shape == (512, 512)


def test_a_convolution_kernel_s_fans_count_its_window_as_keras_does():
    """Keras's compute_fans: a kernel (*window, inputs, filters) has fans (inputs, filters) times
    the window's size (3 x 3 here), so glorot_uniform's limit is sqrt(6 / (18 + 36))."""
    draw = INITIALIZERS["glorot_uniform"]((3, 3, 2, 4), 18)
    assert draw.args == pytest.approx((-np.sqrt(6 / 54), np.sqrt(6 / 54)), rel=1e-15)
    assert INITIALIZERS["he_uniform"]((5, 2, 6), 10).args[1] == pytest.approx(np.sqrt(6 / 10), rel=1e-15)
