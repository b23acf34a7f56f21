"""PyTorch's losses (``torch.nn`` classes), each stated once by its per-sample formula.

The convention of :mod:`symbp.rules.losses` (``p`` the output row, ``y`` the label row, ``i``
the unit, ``K`` the units, arguments as symbols by torch's names), with torch's reductions:

* an element-wise loss (MSELoss, L1Loss, BCELoss, BCEWithLogitsLoss, HuberLoss, SmoothL1Loss)
  states the sum of its K per-element terms; ``reduction="mean"`` (torch's default) is the mean
  over every element, so :func:`symbp.derivation.derive.derive_loss` divides by K and then by
  the batch, ``reduction="sum"`` divides by neither;
* a class loss (CrossEntropyLoss, NLLLoss) states one term per sample on the one-hot row of a
  class index (or on a row of probabilities, CrossEntropyLoss's other target form): "mean"
  divides by the batch (no class weights), "sum" does not.

``reduction="none"`` gives no scalar to back-propagate and is not accepted. A torch model's last
layer outputs what the loss takes: logits for CrossEntropyLoss and BCEWithLogitsLoss (activation
"linear"), probabilities for BCELoss (sigmoid), log-probabilities for NLLLoss.
"""

from __future__ import annotations

import sympy as sp

from .losses import Loss
from .ranges import POSITIVE, UNIT, require_ranges
from .registry import Registry

torch_losses: Registry[Loss] = Registry("loss")

#: the reductions a torch loss takes here (torch's default first)
REDUCTIONS = ("mean", "sum")

#: the values each torch loss argument may take (besides being finite in float32)
ARGUMENT_RANGES = {"delta": POSITIVE, "beta": POSITIVE, "label_smoothing": UNIT}

#: torch.nn.BCELoss clamps each log at -100 so that log(0) stays finite
LOG_FLOOR = -100


def _log_softmax(p, i, K):
    k = sp.Dummy("k", integer=True)
    return p[i] - sp.log(sp.Sum(sp.exp(p[k]), (k, 0, K - 1)))


def cross_entropy_loss(p, y, i, K, label_smoothing):
    """l = -sum_i ((1 - s) y_i + s / K) log_softmax(x)_i, x the logits, s = label_smoothing
    (y one-hot for a class index)"""
    return -sp.Sum(((1 - label_smoothing) * y[i] + label_smoothing / K) * _log_softmax(p, i, K), (i, 0, K - 1))


def nll_loss(p, y, i, K):
    """l = -sum_i y_i x_i = -x_class, x the log-probabilities (y one-hot of the class index)"""
    return -sp.Sum(y[i] * p[i], (i, 0, K - 1))


def mse_loss(p, y, i, K):
    """l = sum_i (x_i - y_i)^2"""
    return sp.Sum((p[i] - y[i]) ** 2, (i, 0, K - 1))


def l1_loss(p, y, i, K):
    """l = sum_i |x_i - y_i|"""
    return sp.Sum(sp.Abs(p[i] - y[i]), (i, 0, K - 1))


def bce_loss(p, y, i, K):
    """l = -sum_i [y_i max(log x_i, -100) + (1 - y_i) max(log(1 - x_i), -100)]"""
    return -sp.Sum(y[i] * sp.Max(sp.log(p[i]), LOG_FLOOR)
                   + (1 - y[i]) * sp.Max(sp.log(1 - p[i]), LOG_FLOOR), (i, 0, K - 1))


def bce_with_logits_loss(p, y, i, K):
    """l = -sum_i [y_i log sigmoid(x_i) + (1 - y_i) log(1 - sigmoid(x_i))]"""
    s = 1 / (1 + sp.exp(-p[i]))
    return -sp.Sum(y[i] * sp.log(s) + (1 - y[i]) * sp.log(1 - s), (i, 0, K - 1))


def huber_loss(p, y, i, K, delta):
    """l = sum_i (e_i^2 / 2 if |e_i| < delta else delta (|e_i| - delta / 2)), e = x - y"""
    e = p[i] - y[i]
    return sp.Sum(sp.Piecewise((e ** 2 / 2, sp.Abs(e) < delta),
                               (delta * (sp.Abs(e) - delta / 2), True)), (i, 0, K - 1))


def smooth_l1_loss(p, y, i, K, beta):
    """l = sum_i (e_i^2 / (2 beta) if |e_i| < beta else |e_i| - beta / 2), e = x - y"""
    e = p[i] - y[i]
    return sp.Sum(sp.Piecewise((e ** 2 / (2 * beta), sp.Abs(e) < beta),
                               (sp.Abs(e) - beta / 2, True)), (i, 0, K - 1))


def _add(name: str, formula, **options) -> None:
    require_ranges(f"loss {name}", options.get("arguments", {}), ARGUMENT_RANGES)
    torch_losses.add(name.lower(), Loss(name, formula, framework="torch", **options))


_add("CrossEntropyLoss", cross_entropy_loss, either_labels=True, labels_are_distributions=True,
     arguments={"label_smoothing": 0.0})
_add("NLLLoss", nll_loss, sparse_labels=True)
_add("MSELoss", mse_loss, elementwise=True)
_add("L1Loss", l1_loss, elementwise=True)
_add("BCELoss", bce_loss, elementwise=True)
_add("BCEWithLogitsLoss", bce_with_logits_loss, elementwise=True)
_add("HuberLoss", huber_loss, elementwise=True, arguments={"delta": 1.0})
_add("SmoothL1Loss", smooth_l1_loss, elementwise=True, arguments={"beta": 1.0})
