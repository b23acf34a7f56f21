"""A network as a tuple of layer instances: the one place a spec's layers become layer rules.

A :class:`Layer` is a registered :class:`~symbp.rules.layers.LayerRule` at a position with its
arguments (``units``, ``activation``, ...) and the shapes it takes and gives (batch left out).
Everything past the spec (derivation, naming, code, initial weights) reads these, not widths.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .naming import ParamName
from ..rules.initializers import weight_fan_in
from ..rules.layers import LayerRule, layers as layer_rules


@dataclass(frozen=True)
class Layer:
    rule: LayerRule
    position: int                     # 0-based; its parameters are ParamName(position, kind)
    arguments: dict = field(hash=False, compare=False)
    input_shape: tuple
    output_shape: tuple

    @property
    def number(self) -> int:
        """l = 1 .. L, as the derivation and the handouts count layers (a0 is the input)."""
        return self.position + 1

    @property
    def activation(self) -> str:
        return self.arguments.get("activation", "linear")

    @property
    def units(self) -> int:
        """The width of its output (the last axis)."""
        return self.output_shape[-1]

    @property
    def param_names(self) -> tuple[ParamName, ...]:
        return tuple(ParamName(self.position, p.kind) for p in self.rule.parameters)

    def param_shape(self, kind: str) -> tuple:
        """The Keras shape of its parameter ``kind``."""
        return tuple(self.rule.parameter(kind).shape(self.input_shape, self.arguments))

    @property
    def fan_in(self) -> int:
        """The inputs each of its output units sums: its first parameter's (the weight's)
        entries per unit, whatever the layout (torch's default initializer's bound); 0 without."""
        if not self.rule.parameters:
            return 0
        weight = self.rule.parameters[0]
        return weight_fan_in(self.param_shape(weight.kind), weight.unit_axis)

    @property
    def window_values(self) -> int:
        """Entries of its windows per sample (output positions x window offsets x input
        channels; 0 for a layer without windows): what its window matrix holds, and so its
        mask, their gradients and a trace. A large kernel with "same" padding on a small input
        makes it far larger than any output (32x32 positions of 1024x1024 windows: 1 GiB of
        float64 per sample)."""
        if not self.rule.indexed or self.rule.gather.kind != "windows":
            return 0
        window, _, _ = self.window_geometry()
        return int(np.prod(self.output_shape[:-1])) * int(np.prod(window)) * int(self.input_shape[-1])

    def window_geometry(self) -> tuple[tuple, tuple, str]:
        """(window, strides, padding) of a windowed layer's Gather (convolution, pooling): a
        global pooling's window is its whole input, stride 1, no padding."""
        gather = self.rule.gather
        window = tuple(int(k) for k in gather.window(self.input_shape, self.arguments))
        padding = "valid" if gather.global_window else self.arguments.get("padding", "valid")
        return window, tuple(int(s) for s in gather.strides(self.arguments)), padding


def build_layers(input_shape: tuple, entries: list[tuple[str, dict]]) -> tuple[Layer, ...]:
    """Layers from (Keras class name, arguments), input to output, each taking the last's shape."""
    built, shape = [], tuple(input_shape)
    for position, (class_name, arguments) in enumerate(entries):
        rule = layer_rules[class_name]
        output = tuple(rule.output_shape(shape, arguments))
        built.append(Layer(rule, position, dict(arguments), shape, output))
        shape = output
    return tuple(built)


def layers_from_spec(spec) -> tuple[Layer, ...]:
    """The spec's ``[[layers]]`` (units, activation) as layer instances, each of its ``type``
    (Dense; a torch spec's are Linear)."""
    entries = [(layer.type, {"units": layer.units, "activation": layer.activation,
                                **layer.arguments})
               for layer in spec.layers]
    return build_layers(tuple(np.shape(spec.x)[1:]), entries)


def torch_parameter_keys(layers: tuple[Layer, ...]) -> list[tuple[ParamName, str]]:
    """Each parameter with its key in the state_dict of the nn.Sequential torch builds for
    ``layers``: nn.Linear then the activation's module (none for linear), so module indices
    count both (``0.weight``, ``0.bias``, ``2.weight``, ...)."""
    keys, index = [], 0
    for layer in layers:
        keys += [(name, f"{index}.{'weight' if name.kind == 'kernel' else name.kind}") for name in layer.param_names]
        index += 1 if layer.activation == "linear" else 2
    return keys


def dense_layers(widths: list[int], activation_names: list[str]) -> tuple[Layer, ...]:
    """Dense layers ``widths = [inputs, units_1, ..., units_L]`` (tests and the API's shorthand)."""
    return build_layers((widths[0],), [("Dense", {"units": units, "activation": act})
                                      for units, act in zip(widths[1:], activation_names)])


def param_names(layers: tuple[Layer, ...]) -> list[ParamName]:
    """Every parameter in Keras's get_weights order (W0, b0, W1, ...)."""
    return [name for layer in layers for name in layer.param_names]
