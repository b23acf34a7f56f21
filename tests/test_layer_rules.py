"""Layers are registered rules: a layer type stated only in the registry (here a toy "Scale",
registered by this test and nowhere in symbp) is derived, named, initialised and generated, and
the generated module's gradients match central differences of its own loss."""

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pytest
import sympy as sp

from symbp.emit.codegen import derive_spec, module_source
from symbp.witnesses.keras import load_module
from symbp.derivation.naming import ParamName
from symbp.derivation.network import layers_from_spec
from symbp.rules.layers import LayerRule, Parameter, layers, register
from symbp.spec import LayerSpec, LossSpec, OptimizerSpec, Spec, TrainingSpec


def _scale_forward(a_prev, p):
    """z = a ⊙ (1 s) + 1 b: each feature scaled by its own s, then shifted by its own b."""
    ones = sp.OneMatrix(a_prev.shape[0], 1)
    return sp.HadamardProduct(a_prev, ones * p["scale"]) + ones * p["bias"]


if "scale" not in layers:  # registered here only: symbp itself knows Dense alone
    register(LayerRule(
        "Scale",
        (Parameter("scale", "s", lambda shape, args: (shape[-1],), "ones", "scale"),
         Parameter("bias", "b", lambda shape, args: (shape[-1],), "zeros", "bias")),
        _scale_forward, lambda shape, args: tuple(shape), (), _scale_forward.__doc__))


@dataclass
class ScaleSpec(LayerSpec):
    """A spec's layer table of the toy type: its ``scale`` and ``bias`` given (or initialised)."""
    type: str = "Scale"
    scale: Optional[list] = None


def scale_network() -> Spec:
    rng = np.random.default_rng(3)
    layers_ = [LayerSpec(3, "tanh", rng.normal(0, 0.8, (2, 3)).tolist(), [0.1, -0.2, 0.3]),
               ScaleSpec(3, "sigmoid", bias=[0.2, 0.0, -0.1], scale=[1.5, -0.7, 0.9]),
               LayerSpec(2, "softmax", rng.normal(0, 0.8, (3, 2)).tolist(), [0.0, 0.1])]
    return Spec("scaled", rng.normal(0, 1, (4, 2)).tolist(), [[1, 0], [0, 1], [0, 1], [1, 0]], layers_,
                LossSpec("categorical_crossentropy"), OptimizerSpec("sgd", {"learning_rate": 0.1}),
                TrainingSpec(batch_size=4, epochs=1))


def test_a_registered_layer_gets_its_parameters_names_and_backward_rules():
    spec = scale_network()
    built = layers_from_spec(spec)
    assert [layer.rule.name for layer in built] == ["Dense", "Scale", "Dense"]
    assert spec.param_names == ["W0", "b0", "s1", "b1", "W2", "b2"]
    assert ParamName.parse("s1") == ParamName(1, "scale") and ParamName(1, "scale").gradient == "ds1"
    assert built[1].param_shape("scale") == (3,)
    calculus = derive_spec(spec).layers[1].calculus
    a_prev, delta = calculus.a_in, calculus.delta
    # derived, not stated: dL/ds = 1^T (a ⊙ delta), dL/db = 1^T delta, g = (1 s) ⊙ delta
    assert calculus.gradients["scale"].has(sp.HadamardProduct(a_prev, delta)) \
        or calculus.gradients["scale"].has(sp.HadamardProduct(delta, a_prev))
    assert set(calculus.gradients) == {"scale", "bias"}
    assert calculus.gradients["scale"].shape == calculus.parameters["scale"].shape
    assert calculus.g_down.shape == a_prev.shape and calculus.g_down.has(calculus.parameters["scale"])
    assert calculus.gradients["bias"].has(delta) and not calculus.gradients["bias"].has(a_prev)


def test_a_registered_layer_generates_a_module_whose_gradients_match_finite_differences():
    spec = scale_network()
    module = load_module(module_source(spec), spec.name)
    params = module.initial_params()
    assert list(params) == ["W0", "b0", "s1", "b1", "W2", "b2"]
    np.testing.assert_array_equal(params["s1"], [1.5, -0.7, 0.9])
    x, y = module.X, module.Y
    grads = module.gradients(params, x, y)
    step = 1e-6
    for name, value in params.items():
        for index in np.ndindex(value.shape):
            plus, minus = ({**params, name: value.copy()} for _ in range(2))
            plus[name][index] += step
            minus[name][index] -= step
            estimate = (module.loss(plus, x, y) - module.loss(minus, x, y)) / (2 * step)
            assert grads[name][index] == pytest.approx(estimate, rel=1e-6, abs=1e-9), (name, index)
    # and the step moves every parameter against its gradient (sgd)
    updated, _ = module.step(params, x, y)
    np.testing.assert_allclose(updated["s1"], params["s1"] - 0.1 * grads["s1"], rtol=1e-12)


def test_parameter_names_are_typed_and_parsed_in_one_place():
    for text in scale_network().param_names:
        assert str(ParamName.parse(text)) == text
    assert ParamName.parse("W1") == ParamName(1, "kernel") and ParamName(0, "bias").code == "b0"
    assert ParamName(2, "kernel").gradient == "dW2" and ParamName(0, "bias").tex({"bias": r"\theta"}) == r"\theta_{0}"
    for bad in ("q1", "W", "1W", "W1[0]"):
        with pytest.raises(ValueError, match="not a parameter name"):
            ParamName.parse(bad)


def test_an_element_wise_layer_prints_its_products_in_the_comments():
    source = module_source(scale_network())
    assert "z2 = b1 + np.multiply(s1, a1)  # z2 = s1*a1 + b1" in source
    assert "HadamardProduct" not in source


def test_the_module_context_is_a_dataclass_read_by_field_and_layer():
    from symbp.emit.codegen import ModuleContext, module_context
    context = module_context(scale_network())
    assert isinstance(context, ModuleContext)
    assert [[line.target for line in layer.forward] for layer in context.layers] == \
        [["z1", "a1"], ["z2", "a2"], ["z3", "a3"]]
    assert [layer.param_names for layer in context.layers] == [("W0", "b0"), ("s1", "b1"), ("W2", "b2")]
    assert context.gradient_names[2] == ("s1", "ds1")
    assert context.hyperparameters == context.loss_constants + context.optimizer_constants
