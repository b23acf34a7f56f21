"""Losses, each stated once by its per-sample formula (as Keras computes it).

Convention: ``p`` is the output row (``IndexedBase``), ``y`` the label row, ``i`` the unit index
summed over, ``K`` the number of output units; a loss with arguments (huber's ``delta``) gets
each as a SymPy symbol by its Keras name. A loss on sparse labels (a class index per sample)
states its formula on the one-hot row of that index, as Keras computes it. Keras then reduces per-sample losses by
``sum_over_batch_size`` (mean over the batch); :mod:`symbp.derivation.derive` adds that and derives every
gradient. A loss may also state its form on the logits ``z``: Keras takes that path when the
output activation tags its logits (softmax, sigmoid; see ``Activation.tags_logits``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import sympy as sp

from .ranges import POSITIVE, require_ranges
from .registry import Registry

#: ``keras.config.epsilon()``: the clipping bound of the cross-entropies' probability paths.
EPSILON = sp.Float(1e-7, 17)


class Clip(sp.Function):
    """clip(q, lo, hi) = lo if q < lo, hi if q > hi, else q (TF passes the gradient on [lo, hi]).

    Kept whole in the stated loss so the printed loss clips the array in its own dtype, as
    Keras does; the derivation differentiates its piecewise form.
    """

    def _eval_rewrite_as_Piecewise(self, q, lo, hi, **hints):
        return sp.Piecewise((lo, q < lo), (hi, q > hi), (q, True))


def clip(q):
    """clip(q) = min(max(q, eps), 1 - eps)"""
    return Clip(q, EPSILON, 1 - EPSILON)


def piecewise_form(expr: sp.Expr) -> sp.Expr:
    """The loss with every clip written as its piecewise definition (for differentiation)."""
    return expr.replace(lambda e: isinstance(e, Clip), lambda e: e.rewrite(sp.Piecewise))


@dataclass(frozen=True)
class Loss:
    name: str
    formula: Callable[..., sp.Expr]
    #: per-sample formula on the logits z, taken when the output activation tags them
    logits_formula: Optional[Callable[..., sp.Expr]] = None
    #: label rows must sum to one (a distribution); lets the derivation write p - y
    labels_are_distributions: bool = False
    #: the activation whose logits ``logits_formula`` takes (softmax for CCE, sigmoid for BCE)
    expects: Optional[str] = None
    #: labels are class indices, one per sample (data.y has one column); ``y`` is their one-hot row
    sparse_labels: bool = False
    #: Keras argument name -> default value (huber: delta = 1.0)
    arguments: dict = field(default_factory=dict)
    #: the framework whose loss this is (torch's live in :mod:`symbp.rules.torch_losses`)
    framework: str = "keras"
    #: torch: ``formula`` sums one term per output unit, so reduction "mean" also divides by K
    #: (the mean over every element); a class loss (CrossEntropyLoss) states one term per sample
    elementwise: bool = False
    #: labels may be class indices (one column) or rows, as the data gives them (CrossEntropyLoss)
    either_labels: bool = False

    @property
    def doc(self) -> str:
        return (self.formula.__doc__ or "").strip()


losses: Registry[Loss] = Registry("loss")

#: the values each loss argument may take (besides being finite in float32, symbp.rules.ranges)
ARGUMENT_RANGES = {"delta": POSITIVE}


def categorical_crossentropy(p, y, i, K):
    """l = -sum_i y_i log clip(p_i / sum_k p_k)"""
    k = sp.Dummy("k", integer=True)
    return -sp.Sum(y[i] * sp.log(clip(p[i] / sp.Sum(p[k], (k, 0, K - 1)))), (i, 0, K - 1))


def categorical_crossentropy_from_logits(z, y, i, K):
    """l = -sum_i y_i log softmax(z)_i = -sum_i y_i (z_i - log sum_k e^{z_k})"""
    k = sp.Dummy("k", integer=True)
    return -sp.Sum(y[i] * (z[i] - sp.log(sp.Sum(sp.exp(z[k]), (k, 0, K - 1)))), (i, 0, K - 1))


def binary_crossentropy(p, y, i, K):
    """l = -1/K sum_i [y_i log clip(p_i) + (1 - y_i) log(1 - clip(p_i))]"""
    return -sp.Sum(y[i] * sp.log(clip(p[i])) + (1 - y[i]) * sp.log(1 - clip(p[i])), (i, 0, K - 1)) / K


def binary_crossentropy_from_logits(z, y, i, K):
    """l = -1/K sum_i [y_i log sigmoid(z_i) + (1 - y_i) log(1 - sigmoid(z_i))]"""
    s = 1 / (1 + sp.exp(-z[i]))
    return -sp.Sum(y[i] * sp.log(s) + (1 - y[i]) * sp.log(1 - s), (i, 0, K - 1)) / K


def mean_squared_error(p, y, i, K):
    """l = 1/K sum_i (p_i - y_i)^2"""
    return sp.Sum((p[i] - y[i]) ** 2, (i, 0, K - 1)) / K


def half_sum_squared_error(p, y, i, K):
    """l = 1/2 sum_i (p_i - y_i)^2: the textbook E (Mazur, Nielsen), summed over the outputs and
    halved so that dl/dp = p - y; Keras has no such loss (the check passes it as a function)"""
    return sp.Sum((p[i] - y[i]) ** 2, (i, 0, K - 1)) / 2


def sparse_categorical_crossentropy(p, y, i, K):
    """l = log sum_k clip(p_k) - sum_i y_i log clip(p_i), y the one-hot row of the class index
    (softmax cross-entropy of log clip(p), without normalising p first)"""
    k = sp.Dummy("k", integer=True)
    return sp.log(sp.Sum(clip(p[k]), (k, 0, K - 1))) - sp.Sum(y[i] * sp.log(clip(p[i])), (i, 0, K - 1))


def mean_absolute_error(p, y, i, K):
    """l = 1/K sum_i |p_i - y_i|"""
    return sp.Sum(sp.Abs(p[i] - y[i]), (i, 0, K - 1)) / K


def huber(p, y, i, K, delta):
    """l = 1/K sum_i (e_i^2 / 2 if |e_i| <= delta else delta |e_i| - delta^2 / 2), e = p - y"""
    e = p[i] - y[i]
    return sp.Sum(sp.Piecewise((e ** 2 / 2, sp.Abs(e) <= delta),
                               (delta * sp.Abs(e) - delta ** 2 / 2, True)), (i, 0, K - 1)) / K


losses.add("categorical_crossentropy",
           Loss("categorical_crossentropy", categorical_crossentropy,
                categorical_crossentropy_from_logits, labels_are_distributions=True, expects="softmax"),
           aliases=("cce", "categoricalcrossentropy"))
losses.add("sparse_categorical_crossentropy",
           Loss("sparse_categorical_crossentropy", sparse_categorical_crossentropy,
                categorical_crossentropy_from_logits, labels_are_distributions=True, expects="softmax",
                sparse_labels=True),
           aliases=("scce", "sparsecategoricalcrossentropy"))
losses.add("binary_crossentropy",
           Loss("binary_crossentropy", binary_crossentropy, binary_crossentropy_from_logits,
                expects="sigmoid"),
           aliases=("bce", "binarycrossentropy"))
losses.add("mean_squared_error", Loss("mean_squared_error", mean_squared_error),
           aliases=("mse", "meansquarederror"))
losses.add("half_sum_squared_error", Loss("half_sum_squared_error", half_sum_squared_error),
           aliases=("half_sse", "halfsumsquarederror"))
losses.add("mean_absolute_error", Loss("mean_absolute_error", mean_absolute_error),
           aliases=("mae", "meanabsoluteerror"))
losses.add("huber", Loss("huber", huber, arguments={"delta": 1.0}), aliases=("huber_loss",))
for _name in losses.names():
    require_ranges(f"loss {_name}", losses[_name].arguments, ARGUMENT_RANGES)
