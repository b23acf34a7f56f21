"""Weight initializers by name (Keras's, and torch's layer defaults), each a :class:`Draw` that
symbp runs and can also print.

A layer that leaves out its weights gets them from its initializer and the spec's ``seed``:
one ``numpy.random.default_rng(seed)`` draws every such array in parameter order (W0, b0, W1,
...). The generated module repeats the same calls (``Draw.code``) instead of writing millions
of numbers out, so a wide network's module stays small and starts fast, and its
``initial_params()`` equals the spec's bit for bit.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np


def truncated_normal(rng, stddev, shape):
    """Normal(0, stddev) draws, each one past two stddevs drawn again (as Keras truncates)."""
    values = rng.normal(0.0, stddev, size=shape)
    while np.any(bad := np.abs(values) > 2 * stddev):
        values[bad] = rng.normal(0.0, stddev, size=int(bad.sum()))
    return values


#: source of the helper a generated module defines when it draws a truncated normal
TRUNCATED_NORMAL_SOURCE = inspect.getsource(truncated_normal)


@dataclass(frozen=True)
class Draw:
    """One initializer call for one shape: ``rng.uniform(low, high)``, ``rng.normal(0, sd)``,
    ``truncated_normal(rng, sd)``, or ``np.zeros`` / ``np.ones`` (which draw nothing)."""
    method: str
    shape: tuple[int, ...]
    args: tuple[float, ...] = ()

    @property
    def uses_rng(self) -> bool:
        return self.method not in ("zeros", "ones")

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        if self.method in ("zeros", "ones"):
            return getattr(np, self.method)(self.shape)
        if self.method == "truncated_normal":
            return truncated_normal(rng, *self.args, self.shape)
        return getattr(rng, self.method)(*self.args, size=self.shape)

    def code(self) -> str:
        """The same call as Python source (every float by repr, so it round-trips exactly)."""
        args = ", ".join(repr(float(v)) for v in self.args)
        if self.method in ("zeros", "ones"):
            return f"np.{self.method}({self.shape!r})"
        if self.method == "truncated_normal":
            return f"truncated_normal(rng, {args}, {self.shape!r})"
        return f"rng.{self.method}({args}, size={self.shape!r})"


def keras_fans(shape: tuple) -> tuple[int, int]:
    """Keras's ``compute_fans`` of a variable from its own shape: a vector ``(k,)`` has fans
    ``(k, k)``; a matrix ``(inputs, units)`` ``(inputs, units)``; a convolution kernel
    ``(*window, inputs, filters)`` both times the window's size."""
    if len(shape) == 1:
        return shape[0], shape[0]
    window = math.prod(shape[:-2])
    return shape[-2] * window, shape[-1] * window


def _uniform(scale_of):
    def draw(shape, fan_in):
        limit = math.sqrt(scale_of(*keras_fans(shape)))
        return Draw("uniform", shape, (-limit, limit))
    return draw


def _truncated(scale_of):
    def draw(shape, fan_in):
        # Keras: stddev = sqrt(scale) / .87962566103423978, truncated at two stddevs
        return Draw("truncated_normal", shape, (math.sqrt(scale_of(*keras_fans(shape))) / 0.87962566103423978,))
    return draw


def torch_default(shape: tuple, fan_in: int) -> Draw:
    """torch's nn.Linear (and nn.Conv*d) default for its weight and its bias alike:
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)), ``fan_in`` the inputs each output unit sums (the
    layer's weight's, so a bias draws with its weight's bound). For the weight torch calls
    ``kaiming_uniform_(a=sqrt(5))``: gain sqrt(2 / (1 + a^2)) = sqrt(1/3), bound
    gain sqrt(3 / fan_in) = 1/sqrt(fan_in); for the bias, ``uniform_`` with that bound."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return Draw("uniform", shape, (-bound, bound))


#: name -> (the parameter's shape, its layer's fan-in) -> the Draw of its start values. Keras's
#: initializers read only the shape (Keras computes fans from the variable itself); torch's
#: layer default reads the layer's fan-in (its bias is drawn with its weight's bound)
INITIALIZERS = {
    "zeros": lambda shape, fan_in: Draw("zeros", shape),
    "ones": lambda shape, fan_in: Draw("ones", shape),
    "glorot_uniform": _uniform(lambda fi, fo: 6.0 / (fi + fo)),
    "he_uniform": _uniform(lambda fi, fo: 6.0 / fi),
    "lecun_uniform": _uniform(lambda fi, fo: 3.0 / fi),
    "random_uniform": lambda shape, fan_in: Draw("uniform", shape, (-0.05, 0.05)),
    "glorot_normal": _truncated(lambda fi, fo: 2.0 / (fi + fo)),
    "he_normal": _truncated(lambda fi, fo: 2.0 / fi),
    "lecun_normal": _truncated(lambda fi, fo: 1.0 / fi),
    "random_normal": lambda shape, fan_in: Draw("normal", shape, (0.0, 0.05)),
    "torch_default": torch_default,
}


def weight_fan_in(shape: tuple, unit_axis: int) -> int:
    """The inputs each output unit of a weight of ``shape`` sums: its entries over its units
    (``unit_axis``: Keras's kernel the last, torch's weight the first), whatever the layout."""
    return math.prod(shape) // shape[unit_axis]


def initialize(name: str, shape: tuple[int, ...], rng: np.random.Generator, layer_fan_in: int = 0) -> np.ndarray:
    """Draw ``name``'s start values for ``shape`` (``layer_fan_in``: torch's default's bound;
    0 takes the shape's own fan-in, as for a weight)."""
    shape = tuple(shape)
    return INITIALIZERS[name](shape, layer_fan_in or keras_fans(shape)[0]).sample(rng)
