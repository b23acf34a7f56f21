"""Layers, each stated once by its forward formula (as Keras computes it), registered by Keras
class name like the activations.

A :class:`LayerRule` states, and nothing else:

* ``parameters``: each :class:`Parameter` by its Keras variable name (``kernel``, ``bias``),
  with the letter of its generated name (``W`` -> ``W0``), its Keras shape as a function of the
  layer's input shape (batch left out, as Keras's ``build(input_shape)``) and arguments, its
  Keras default initializer, and the spec key that gives its values;
* ``forward``: the pre-activation ``z`` as a SymPy matrix expression of the batch input
  ``a_prev`` (B x features) and one ``MatrixSymbol`` per parameter (a vector parameter of shape
  ``(k,)`` is the row ``(1, k)``, added to every row of the batch as ``1 b``);
* ``output_shape``: the layer's output shape from its input shape and arguments;
* ``shape_arguments``: the arguments its shapes depend on (Dense: ``units``), made symbols when
  the rule is derived once for every width;
* the activation it applies, by the argument ``activation`` (applied by
  :mod:`symbp.derivation.derive`, whose chain rule is the same for every layer).

No backward rule is stated here. :func:`symbp.derivation.derive.derive_layer` gets every one from
``forward`` by matrix calculus: with ``delta = dL/dz``, ``dL/dX = d trace(delta^T z) / dX`` for
the input and for every parameter the forward formula is linear in (Dense: ``dW = a^T delta``,
``db = 1^T delta``, ``g = delta W^T``). The printers print the resulting matrix expressions
(MatMul, Transpose, HadamardProduct, ``1`` rows and column sums) whatever layer they came from.

How a convolution will be stated (not implemented yet): Conv2D's ``z[r, y, x, c] =
sum_{u, v, k} a[r, y*s + u, x*s + v, k] W[u, v, k, c] + b[c]`` is an indexed sum over a window,
not a product of matrices. Its entry gives the same four things, with ``forward`` returning that
indexed formula (``IndexedBase`` rows, ``Sum`` over the window) and ``indexed = True``; the
derivation then differentiates it per entry, ``dL/dW[u, v, k, c] = sum_{r, y, x} delta[r, y, x,
c] dz[r, y, x, c] / dW[u, v, k, c]``, with :func:`symbp.derivation.calculus.row_gradient`'s Kronecker-delta
summing, and the NumPy printer gets one method for the resulting window sum (a correlation).
Adding it touches this registry and one printer method, plus, the first time an indexed
layer arrives, that generic indexed branch of ``derive_layer`` (not written yet: it is about
any indexed forward, not convolution); naming, initial weights, codegen and the notebooks
already go by ``parameters``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import sympy as sp

from ..derivation.naming import register_parameter_code
from .registry import Registry

#: a shape as Keras writes it, the batch left out; its entries are ints or SymPy symbols
Shape = tuple


@dataclass(frozen=True)
class Parameter:
    """One trainable variable of a layer, named as Keras names it."""
    kind: str                                  # Keras variable name: "kernel", "bias"
    code: str                                  # letter of its generated name: W -> W0
    shape: Callable[[Shape, dict], Shape]      # (input shape, arguments) -> its Keras shape
    initializer: str                           # Keras's default initializer
    spec_key: str                              # the spec's key giving its values ("weights")

    def matrix_shape(self, input_shape: Shape, arguments: dict) -> tuple:
        """The shape of its MatrixSymbol: a vector ``(k,)`` is the row ``(1, k)``."""
        shape = tuple(self.shape(input_shape, arguments))
        return (1, shape[0]) if len(shape) == 1 else shape


@dataclass(frozen=True)
class LayerRule:
    """A layer type: its parameters, its forward formula and its output shape (see the module)."""
    name: str                                  # Keras class name
    parameters: tuple[Parameter, ...]
    forward: Callable[[sp.MatrixExpr, dict], sp.MatrixExpr]   # (a_prev, {kind: symbol}) -> z
    output_shape: Callable[[Shape, dict], Shape]
    shape_arguments: tuple[str, ...] = ()
    doc: str = ""
    #: the Keras class a witness builds (``keras.layers.<name>``, or a name registered with
    #: ``keras.saving.register_keras_serializable``, ``"package>Name"``); empty: ``name``
    keras_class: str = ""
    #: the layer's arguments that Keras's constructor takes, by its argument names
    keras_arguments: tuple[str, ...] = ()
    #: the indexed forward formula of one output entry, ``(a_prev, {kind: IndexedBase}, row,
    #: unit, input_shape) -> z[row, unit]``: what ``--explain``'s scalar chain rule differentiates
    #: (:mod:`symbp.derivation.chain_rule`); None: no ``--explain`` for this layer type
    entry: Optional[Callable[..., sp.Expr]] = None

    def parameter(self, kind: str) -> Parameter:
        return next(p for p in self.parameters if p.kind == kind)

    def keras_layer(self, arguments: dict) -> tuple[str, dict]:
        """(Keras class name, constructor arguments) of a layer of this type. Its weights are
        ``parameters`` in this order: the order of Keras's ``get_weights``."""
        return self.keras_class or self.name, {k: arguments[k] for k in self.keras_arguments if k in arguments}


layers: Registry[LayerRule] = Registry("layer")


def register(rule: LayerRule, aliases: tuple[str, ...] = ()) -> LayerRule:
    """Add a layer type (its parameters' letters become generated names: W0, b0, ...)."""
    for parameter in rule.parameters:
        register_parameter_code(parameter.kind, parameter.code)
    return layers.add(rule.name.lower(), rule, aliases)


def _dense_forward(a_prev: sp.MatrixExpr, p: dict) -> sp.MatrixExpr:
    """z = a W + 1 b: every row of the batch times the kernel, the bias added to each row."""
    return a_prev * p["kernel"] + sp.OneMatrix(a_prev.shape[0], 1) * p["bias"]


#: the summed input unit of an entry
_SUMMED = sp.Symbol("i", integer=True, nonnegative=True)


def _dense_entry(a_prev: sp.IndexedBase, p: dict, row, unit, input_shape: Shape) -> sp.Expr:
    """z[row, unit] = sum_i a_prev[row, i] kernel[i, unit] + bias[unit]: ``_dense_forward``'s entry."""
    return sp.Sum(a_prev[row, _SUMMED] * p["kernel"][_SUMMED, unit], (_SUMMED, 0, input_shape[-1] - 1)) \
        + p["bias"][unit]


DENSE = register(LayerRule(
    "Dense",
    (Parameter("kernel", "W", lambda shape, args: (shape[-1], args["units"]), "glorot_uniform", "weights"),
     Parameter("bias", "b", lambda shape, args: (args["units"],), "zeros", "bias")),
    _dense_forward,
    lambda shape, args: (*shape[:-1], args["units"]),
    ("units",),
    _dense_forward.__doc__,
    keras_arguments=("units", "activation"),
    entry=_dense_entry))
