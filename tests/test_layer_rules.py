"""Layers are registered rules: a layer type stated only in the registry (here a toy "Scale",
registered by this test and nowhere in symbp) is derived, named, initialised and generated, and
the generated module's gradients match central differences of its own loss."""

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pytest
import sympy as sp

from symbp.emit.codegen import derive_spec, module_source
from symbp.witnesses.module import load_module
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
        _scale_forward, lambda shape, args: tuple(shape), (), _scale_forward.__doc__,
        keras_class="symbp_test>Scale", keras_arguments=("activation",),
        entry=lambda a_prev, p, row, unit, shape: a_prev[row, unit] * p["scale"][unit] + p["bias"][unit]))


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


def keras_scale_layer():
    """The toy layer as a Keras custom layer (registered with Keras as ``symbp_test>Scale``):
    ``activation(x * scale + bias)``, its weights built scale first, as the rule lists them."""
    from symbp.witnesses.keras import _keras
    keras = _keras()
    if keras.saving.get_registered_object("symbp_test>Scale") is not None:
        return keras.saving.get_registered_object("symbp_test>Scale")

    @keras.saving.register_keras_serializable(package="symbp_test", name="Scale")
    class KerasScale(keras.layers.Layer):
        def __init__(self, activation=None, **kwargs):
            super().__init__(**kwargs)
            self.activation = keras.activations.get(activation)

        def build(self, input_shape):
            self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")
            self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias")

        def call(self, x):
            return self.activation(x * self.scale + self.bias)
    return KerasScale


def test_the_keras_witness_builds_each_layer_from_its_rule():
    """No Scale in the witness: the rule names its Keras class and arguments, and `check` trains
    the Keras model of Dense, Scale, Dense, weights set by ParamName, to 1e-9."""
    from symbp.witnesses.compare import check
    from symbp.witnesses.keras import _keras, build_keras_model, keras_floatx
    scale_class = keras_scale_layer()
    spec = scale_network()
    with keras_floatx("float64"):
        model = build_keras_model(spec, spec.initial_params())
    keras = _keras()
    assert [type(layer) for layer in model.layers] == [keras.layers.Dense, scale_class, keras.layers.Dense]
    assert [layer.units for layer in (model.layers[0], model.layers[2])] == [3, 2]
    np.testing.assert_array_equal(model.layers[1].get_weights()[0], [1.5, -0.7, 0.9])
    report = check(spec, "float64")
    assert [c.name for c in report.parameters] == ["W0", "b0", "s1", "b1", "W2", "b2"]
    assert report.match, report.describe(spec)
    assert "Checking s1 (scale of the hidden layer 2)" in report.describe(spec)


def test_explain_and_the_handout_read_any_layer_rule_that_states_its_entry():
    """The toy rule states its entry z[r, c] = a[r, c] s[c] + b[c]: --explain derives s1's and
    W2's chain rules through it (their products sum to the module's gradients) and the handout
    writes its gradient steps from the rule's derived formulas, named by ParamName."""
    from symbp.derivation.chain_rule import Target, chain_rule
    from symbp.emit.handouts import HandoutOptions, parse_explain, render_handouts
    spec = scale_network()
    model = derive_spec(spec)
    module = load_module(module_source(spec, model), spec.name)
    params = module.initial_params()
    trace = module.trace(params, module.X, module.Y)
    gradients = module.gradients(params, module.X, module.Y)
    for name, row, col in (("s1", None, 1), ("b1", None, 2), ("W0", 1, 2), ("W2", 0, 1)):
        chain = chain_rule(model, Target(name, row, col), trace, params)
        assert chain.total == pytest.approx(gradients[name][chain.target.index], rel=1e-12, abs=1e-15), name
    assert parse_explain("s1[2]", spec) == Target("s1", None, 2)
    solution = render_handouts(spec, HandoutOptions(explain=("s1[1]",)))["solution"]
    assert r"\steptitle{Gradient of the scale $s_{1}$}" in solution
    assert r"\steptitle{The chain rule for $s_{1}[1]$}" in solution
    assert "(with $s_{1}$ before its update)" in solution
