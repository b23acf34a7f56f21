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
class Constant:
    """A constant of an activation's formula (its keyword argument ``name``): ``value`` is what
    Keras computes with (the float32 rounding where Keras stores one), ``exact`` the number it
    stands for (1/sqrt 2, SELU's lambda). A handout writes the formula with ``shown`` in its
    place: the exact number (1/sqrt 2, so SymPy derives e^{-z^2/2}, not e^{-0.49999998 z^2}) or,
    for a number known only by name, its ``symbol`` (lambda), and states the value once."""
    name: str
    value: sp.Expr
    exact: sp.Expr
    symbol: str = ""
    #: frameworks that compute with ``exact`` itself (in the run's dtype) where Keras stores the
    #: float32 rounding: PyTorch's GELU multiplies by M_SQRT1_2, a double, so a float64 run
    #: differs from Keras's f32(1/sqrt 2) by 1e-9 relative
    exact_in: tuple[str, ...] = ()

    def value_in(self, framework: str) -> sp.Expr:
        """What ``framework`` computes with: ``exact`` (as a float) or Keras's ``value``."""
        return sp.Float(float(self.exact), 17) if framework in self.exact_in else self.value

    def rounded_in(self, framework: str) -> bool:
        """``framework`` computes with a rounding of the exact number (float32), not the number itself."""
        return float(self.value_in(framework)) != float(self.exact)

    @property
    def shown(self) -> sp.Expr:
        return sp.Symbol(self.symbol, positive=True) if self.symbol else self.exact


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
    #: the formula's named constants (its keyword arguments, defaulting to what Keras computes with)
    constants: tuple[Constant, ...] = ()

    @property
    def doc(self) -> str:
        return (self.formula.__doc__ or "").strip()

    def formula_in(self, z, framework: str = "keras") -> sp.Expr:
        """The formula with each constant as ``framework`` computes with it (Constant.value_in)."""
        return self.formula(z, **{c.name: c.value_in(framework) for c in self.constants})

    def shown_formula(self, z) -> sp.Expr:
        """The formula as a handout writes it: each constant exact or by name (Constant.shown)."""
        return self.formula(z, **{c.name: c.shown for c in self.constants})


activations: Registry[Activation] = Registry("activation")


def activation(name: str, *, aliases: tuple[str, ...] = (), row_wise: bool = False,
               tags_logits: bool = False, multiplies_gradient: bool = False,
               constants: tuple[Constant, ...] = ()):
    def register(formula: Callable[..., sp.Expr]) -> Callable[..., sp.Expr]:
        activations.add(name, Activation(name, formula, row_wise, tags_logits, multiplies_gradient,
                                         constants), aliases)
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


@activation("selu", constants=(Constant("scale", SELU_SCALE, SELU_SCALE, "lambda"),
                               Constant("alpha", SELU_ALPHA, SELU_ALPHA, "alpha")))
def selu(z, scale=SELU_SCALE, alpha=SELU_ALPHA):
    """f(z) = lambda z if z >= 0 else lambda alpha (e^z - 1), lambda = 1.0507009873554805,
    alpha = 1.6732632423543772 (Klambauer et al.; Keras's constants)"""
    return sp.Piecewise((scale * z, z >= 0), (scale * alpha * (sp.exp(z) - 1), True))


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


@activation("gelu", constants=(Constant("c", GELU_C, 1 / sp.sqrt(2), exact_in=("torch",)),))
def gelu(z, c=GELU_C):
    """f(z) = z/2 erfc(-c z), c = f32(1/sqrt 2) (Keras's exact form; torch.nn.GELU computes
    z/2 (1 + erf(c z)) with c = 1/sqrt 2 in the run's dtype)"""
    return z / 2 * sp.erfc(-c * z)


@activation("softmax", row_wise=True, tags_logits=True)
def softmax(z, j, k, K):
    """f(z)_j = e^{z_j} / sum_k e^{z_k}"""
    return sp.exp(z[j]) / sp.Sum(sp.exp(z[k]), (k, 0, K - 1))
