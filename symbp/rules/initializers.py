"""Keras-named weight initializers, each a :class:`Draw` that symbp runs and can also print.

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


def _fans(shape):
    return (shape[0], shape[1]) if len(shape) == 2 else (shape[0], shape[0])


def _uniform(scale_of):
    def draw(shape):
        limit = math.sqrt(scale_of(*_fans(shape)))
        return Draw("uniform", shape, (-limit, limit))
    return draw


def _truncated(scale_of):
    def draw(shape):
        # Keras: stddev = sqrt(scale) / .87962566103423978, truncated at two stddevs
        return Draw("truncated_normal", shape, (math.sqrt(scale_of(*_fans(shape))) / 0.87962566103423978,))
    return draw


INITIALIZERS = {
    "zeros": lambda shape: Draw("zeros", shape),
    "ones": lambda shape: Draw("ones", shape),
    "glorot_uniform": _uniform(lambda fi, fo: 6.0 / (fi + fo)),
    "he_uniform": _uniform(lambda fi, fo: 6.0 / fi),
    "lecun_uniform": _uniform(lambda fi, fo: 3.0 / fi),
    "random_uniform": lambda shape: Draw("uniform", shape, (-0.05, 0.05)),
    "glorot_normal": _truncated(lambda fi, fo: 2.0 / (fi + fo)),
    "he_normal": _truncated(lambda fi, fo: 2.0 / fi),
    "lecun_normal": _truncated(lambda fi, fo: 1.0 / fi),
    "random_normal": lambda shape: Draw("normal", shape, (0.0, 0.05)),
}


def initialize(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    return INITIALIZERS[name](tuple(shape)).sample(rng)
