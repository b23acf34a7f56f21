"""Activations, each stated once by its forward formula (as Keras computes it).

Convention: an element-wise rule maps the pre-activation ``z`` (a SymPy scalar) to the
output; a row-wise rule (softmax) maps the indexed row ``z[k]`` to its ``j``-th output.
Nothing here states a derivative: :mod:`symbp.derivation.derive` gets every one from these formulas.
Constants Keras stores as float32 are written ``f32(...)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy as sp

from .registry import Registry


def f32(value: float) -> sp.Float:
    """The float32 rounding of ``value``, as Keras stores that constant (exact in float64)."""
    return sp.Float(float(np.float32(value)), 17)


@dataclass(frozen=True)
class Activation:
    name: str
    formula: Callable[..., sp.Expr]
    row_wise: bool = False
    #: Keras tags this output with its logits (softmax, sigmoid): cross-entropies then use z.
    tags_logits: bool = False
    #: TensorFlow's gradient multiplies g by the derivative (ReluGrad: g * (z > 0), so a masked
    #: inf gives nan and a masked negative g gives -0.0) instead of selecting a branch
    multiplies_gradient: bool = False

    @property
    def doc(self) -> str:
        return (self.formula.__doc__ or "").strip()


activations: Registry[Activation] = Registry("activation")


def activation(name: str, *, aliases: tuple[str, ...] = (), row_wise: bool = False,
               tags_logits: bool = False, multiplies_gradient: bool = False):
    def register(formula: Callable[..., sp.Expr]) -> Callable[..., sp.Expr]:
        activations.add(name, Activation(name, formula, row_wise, tags_logits, multiplies_gradient),
                        aliases)
        return formula
    return register


@activation("linear", aliases=("none", "identity"))
def linear(z):
    """f(z) = z"""
    return z


@activation("sigmoid", tags_logits=True)
def sigmoid(z):
    """f(z) = 1 / (1 + e^{-z})"""
    return 1 / (1 + sp.exp(-z))


@activation("tanh")
def tanh(z):
    """f(z) = tanh z"""
    return sp.tanh(z)


@activation("relu", multiplies_gradient=True)
def relu(z):
    """f(z) = z if z > 0 else 0"""
    return sp.Piecewise((z, z > 0), (0, True))


LEAKY_RELU_SLOPE = f32(0.2)


@activation("leaky_relu")
def leaky_relu(z):
    """f(z) = z if z > 0 else s z, s = f32(0.2)"""
    return sp.Piecewise((z, z > 0), (LEAKY_RELU_SLOPE * z, True))


ELU_ALPHA = sp.Integer(1)


@activation("elu")
def elu(z):
    """f(z) = z if z > 0 else alpha (e^z - 1), alpha = 1"""
    return sp.Piecewise((z, z > 0), (ELU_ALPHA * (sp.exp(z) - 1), True))


SELU_ALPHA = sp.Float(1.6732632423543772, 17)
SELU_SCALE = sp.Float(1.0507009873554805, 17)


@activation("selu")
def selu(z):
    """f(z) = scale z if z >= 0 else scale alpha (e^z - 1)"""
    return sp.Piecewise((SELU_SCALE * z, z >= 0), (SELU_SCALE * SELU_ALPHA * (sp.exp(z) - 1), True))


@activation("softplus")
def softplus(z):
    """f(z) = log(1 + e^z)"""
    return sp.log(1 + sp.exp(z))


@activation("softsign")
def softsign(z):
    """f(z) = z / (1 + |z|)"""
    return z / (1 + sp.Abs(z))


@activation("silu", aliases=("swish",))
def silu(z):
    """f(z) = z sigmoid(z) = z / (1 + e^{-z})"""
    return z / (1 + sp.exp(-z))


GELU_C = f32(1 / np.sqrt(2))


@activation("gelu")
def gelu(z):
    """f(z) = z/2 erfc(-c z), c = f32(1/sqrt 2) (Keras's exact form)"""
    return z / 2 * sp.erfc(-GELU_C * z)


@activation("softmax", row_wise=True, tags_logits=True)
def softmax(z, j, k, K):
    """f(z)_j = e^{z_j} / sum_k e^{z_k}"""
    return sp.exp(z[j]) / sp.Sum(sp.exp(z[k]), (k, 0, K - 1))
