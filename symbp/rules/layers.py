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

How a convolution is stated (:data:`CONV2D`): Conv2D's ``z[r, y, x, c] =
sum_{u, v, k} a[r, y*s + u, x*s + v, k] W[u, v, k, c] + b[c]`` is an indexed sum over a window,
not a product of matrices. Its entry gives the same four things, with ``forward`` returning that
indexed formula (``IndexedBase`` rows, ``Sum`` over the window) and ``indexed = True``; the
derivation then differentiates it per entry, ``dL/dW[u, v, k, c] = sum_{r, y, x} delta[r, y, x,
c] dz[r, y, x, c] / dW[u, v, k, c]``, with :func:`symbp.derivation.calculus.row_gradient`'s Kronecker-delta
summing, and the NumPy printer gets one method for the resulting window sum (a correlation).
As built, an indexed layer reads its input through a :class:`Gather` (the windows of the
padded input, or the input reshaped): a linear re-indexing whose adjoint (adding each window back
where it came from) is the same for every layer, so the rule's ``forward`` is an entry formula in
the gathered array ``win`` (``win[n, p, q, k, u, v] = a[n, p s + u - pad, q s + v - pad, k]``):
Conv2D ``z[n, p, q, c] = sum_{u, v, k} win[n, p, q, k, u, v] W[u, v, k, c] + b[c]``; pooling
``z[n, p, q, c] = sum_{u, v} win[n, p, q, c, u, v] mask[n, p, q, c, u, v]`` with ``mask`` the
selection weights (max: 1 at the first maximum of the window, TensorFlow's choice on ties;
average: 1 / the number of input entries in the window). :func:`symbp.derivation.derive.
derive_indexed_layer` differentiates any such entry formula by SymPy and sums the Kronecker deltas
out (:func:`symbp.derivation.calculus.entry_gradient`); the printers print each indexed sum as one
``np.tensordot`` (two arrays summed over their shared indices) or one ``np.einsum``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
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
    initializer: str                           # the framework's default initializer (by name)
    spec_key: str                              # the spec's key giving its values ("weights")
    #: the index of one of its entries that is the layer's output unit (Keras's kernel[i, unit]:
    #: the last; torch's Linear.weight[unit, i]: the first): --explain's z entry it moves
    unit_axis: int = -1

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
    indexed: bool = False                      # forward is an entry formula over a Gather (below)
    gather: Optional["Gather"] = None
    #: (Keras argument name, default) of each argument the spec's table takes besides
    #: ``activation`` (checked by :func:`symbp.spec.validate.check_window_layer`)
    arguments: tuple = ()
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


# ---------------------------------------------------------------- indexed layers
@dataclass(frozen=True)
class Gather:
    """How an indexed layer reads its input ``a`` (batch first, channels last) into ``win``.

    ``kind`` "windows": the windows of ``a`` padded (TensorFlow's "same": total padding
    max((ceil(n / s) - 1) s + k - n, 0) per axis, the smaller half before, zeros), axes
    ``(n, positions..., channel, offsets...)`` as ``sliding_window_view`` gives them (max
    pooling's mask never selects padding). ``kind`` "flatten":
    ``a`` reshaped to ``(n, features)``. ``mask``: the selection weights pooling sums with (a
    key of MASKS; None for none). Its adjoint adds each window back where it came from.
    """
    kind: str
    spatial: int = 0
    window: Callable[[Shape, dict], tuple] = lambda shape, args: ()
    strides: Callable[[dict], tuple] = lambda args: ()
    mask: Optional[str] = None
    global_window: bool = False

    @property
    def selects_maximum(self) -> bool:
        """Max pooling (its mask selects the window's maximum), whichever way it splits ties."""
        return self.mask in MAXIMUM_MASKS


#: the selection weights a pooling rule sums its window with, by the mask's name. Keras's two max
#: poolings send a tie's gradient differently: MaxPooling (tf.nn.max_pool) all to the first
#: maximum in C order; GlobalMaxPooling (ops.max, tf.reduce_max) 1/k to each of the k tied
#: maxima (measured: [0, 1/3, 1/3, 1/3] for a 2x2 map of 1, 3, 3, 3).
MASKS = {"first_max": "1 at the first maximum of its window, else 0",
         "shared_max": "1/k at each of the k maxima of its window (ties share), else 0",
         "mean": "1 / (the input entries in its window)"}
MAXIMUM_MASKS = ("first_max", "shared_max")


def _tuple(value, rank: int) -> tuple:
    """A Keras size argument (an int or a list) as a tuple of ``rank`` ints."""
    return tuple(int(v) for v in value) if isinstance(value, (list, tuple)) else (int(value),) * rank


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one axis: (before, after), the larger half after."""
    total = max((-(-size // stride) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def window_output_size(size: int, window: int, stride: int, padding: str) -> int:
    """Positions of a window along one axis: ceil(n / s) ("same") or floor((n - k) / s) + 1."""
    return -(-size // stride) if padding == "same" else (size - window) // stride + 1


def _spatial_output(rank: int, window_key: str, channels):
    def output_shape(shape: Shape, args: dict) -> Shape:
        window = _tuple(args[window_key], rank)
        strides = _tuple(args.get("strides") or window, rank)
        padding = args.get("padding", "valid")
        sizes = tuple(window_output_size(n, k, s, padding) for n, k, s in zip(shape[:rank], window, strides))
        return (*sizes, channels(shape, args))
    return output_shape


def conv_forward(win: sp.IndexedBase, p: dict, mask, out: tuple, offsets: tuple, k: sp.Symbol, limits: dict):
    """z[n, p.., c] = sum_{u.., k} win[n, p.., k, u..] W[u.., k, c] + b[c]: the window times the kernel."""
    n, *positions, c = out
    summed = [(s, 0, limits[s] - 1) for s in (*offsets, k)]
    return sp.Sum(win[(n, *positions, k, *offsets)] * p["kernel"][(*offsets, k, c)], *summed) + p["bias"][c]


def pool_forward(win: sp.IndexedBase, p: dict, mask, out: tuple, offsets: tuple, k: sp.Symbol, limits: dict):
    """z[n, p.., c] = sum_{u..} win[n, p.., c, u..] mask[n, p.., c, u..]: the selected (max) or
    averaged (mean) entries of the window, by the selection weights ``mask``."""
    summed = [(s, 0, limits[s] - 1) for s in offsets]
    return sp.Sum(win[(*out, *offsets)] * mask[(*out, *offsets)], *summed)


def flatten_forward(win: sp.IndexedBase, p: dict, mask, out: tuple, offsets: tuple, k, limits: dict):
    """z[n, f] = win[n, f]: the input's entries in a row, in C order as Keras's Flatten."""
    return win[out]


def _conv_rule(name: str, rank: int) -> LayerRule:
    def kernel_shape(shape, args):
        return (*_tuple(args["kernel_size"], rank), shape[-1], args["filters"])
    return LayerRule(
        name,
        (Parameter("kernel", "W", kernel_shape, "glorot_uniform", "weights"),
         Parameter("bias", "b", lambda shape, args: (args["filters"],), "zeros", "bias")),
        conv_forward, _spatial_output(rank, "kernel_size", lambda shape, args: args["filters"]),
        ("filters",), conv_forward.__doc__, indexed=True,
        gather=Gather("windows", rank, lambda shape, args: _tuple(args["kernel_size"], rank),
                      lambda args: _tuple(args.get("strides", 1), rank)),
        arguments=(("filters", None), ("kernel_size", None), ("strides", 1), ("padding", "valid"),
                   ("activation", "linear")),
        keras_arguments=("filters", "kernel_size", "strides", "padding", "activation"))


def _pool_rule(name: str, rank: int, mask: str) -> LayerRule:
    return LayerRule(
        name, (), pool_forward, _spatial_output(rank, "pool_size", lambda shape, args: shape[-1]),
        (), pool_forward.__doc__, indexed=True,
        gather=Gather("windows", rank, lambda shape, args: _tuple(args["pool_size"], rank),
                      lambda args: _tuple(args.get("strides") or args["pool_size"], rank), mask),
        arguments=(("pool_size", 2), ("strides", None), ("padding", "valid")),
        keras_arguments=("pool_size", "strides", "padding"))


def _global_pool_rule(name: str, rank: int, mask: str) -> LayerRule:
    return LayerRule(
        name, (), pool_forward, lambda shape, args: (shape[-1],), (), pool_forward.__doc__, indexed=True,
        gather=Gather("windows", rank, lambda shape, args: tuple(shape[:rank]), lambda args: (1,) * rank,
                      mask, global_window=True))


CONV2D = register(_conv_rule("Conv2D", 2))
CONV1D = register(_conv_rule("Conv1D", 1))
for _rank in (1, 2):
    register(_pool_rule(f"MaxPooling{_rank}D", _rank, "first_max"))
    register(_pool_rule(f"AveragePooling{_rank}D", _rank, "mean"))
    register(_global_pool_rule(f"GlobalMaxPooling{_rank}D", _rank, "shared_max"))
    register(_global_pool_rule(f"GlobalAveragePooling{_rank}D", _rank, "mean"))
FLATTEN = register(LayerRule(
    "Flatten", (), flatten_forward, lambda shape, args: (int(np.prod(shape)),), (),
    flatten_forward.__doc__, indexed=True, gather=Gather("flatten")))


def _linear_forward(a_prev: sp.MatrixExpr, p: dict) -> sp.MatrixExpr:
    """z = a W^T + 1 b: torch's nn.Linear, its weight (units x inputs) transposed onto the batch."""
    return a_prev * p["kernel"].T + sp.OneMatrix(a_prev.shape[0], 1) * p["bias"]


def _linear_entry(a_prev: sp.IndexedBase, p: dict, row, unit, input_shape: Shape) -> sp.Expr:
    """z[row, unit] = sum_i a_prev[row, i] weight[unit, i] + bias[unit]: ``_linear_forward``'s entry."""
    return sp.Sum(a_prev[row, _SUMMED] * p["kernel"][unit, _SUMMED], (_SUMMED, 0, input_shape[-1] - 1)) \
        + p["bias"][unit]


#: torch.nn.Linear: its ``weight`` is the (units x inputs) matrix (the spec's ``weight``, kept in
#: LayerSpec.kernel); its parameters are kernel and bias here too (W0, b0), in
#: model.parameters()'s order, so every name past the spec is the same for both frameworks.
#: Left out, both start as torch's own: U(+-1/sqrt(inputs)) (initializers.torch_default)
LINEAR = register(LayerRule(
    "Linear",
    (Parameter("kernel", "W", lambda shape, args: (args["units"], shape[-1]), "torch_default", "weights", 0),
     Parameter("bias", "b", lambda shape, args: (args["units"],), "torch_default", "bias")),
    _linear_forward,
    lambda shape, args: (*shape[:-1], args["units"]),
    ("units",),
    _linear_forward.__doc__,
    entry=_linear_entry))
