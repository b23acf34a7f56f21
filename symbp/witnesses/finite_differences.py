"""The third witness: central differences of the generated ``loss`` against its ``gradients``.

Independent of SymPy and of Keras: for every weight w, in float64,

    dL/dw ~ (L(w + h) - L(w - h)) / (2 h),   h = STEP * max(1, |w|),

compared with the generated module's ``gradients`` at the same point. The difference is measured
relative to the gradient's scale (its largest entry over all parameters), so a tiny entry is not
held to an impossible relative error: central differences leave ~1e-10 of rounding in L / h.
Where the loss has a kink (relu at 0, |e| in mean_absolute_error, the clipping bounds of the
cross-entropies' probability paths), the quotient straddling it need not agree.
"""

from __future__ import annotations

import numpy as np

from . import compare
from .base import Run, Witness, register
from .module import spec_module
from .report import CheckReport
from .tolerance import Tolerance

STEP = 1e-6
RELATIVE_TOLERANCE = 1e-6


def central_differences(module, params: dict, x: np.ndarray, y: np.ndarray,
                        step: float = STEP) -> dict[str, np.ndarray]:
    """(L(w + h e_k) - L(w - h e_k)) / 2h for every entry k of every parameter, in float64."""
    params = {name: np.array(value, dtype=np.float64) for name, value in params.items()}
    estimates = {}
    for name in module.PARAM_NAMES:
        estimate = np.zeros_like(params[name])
        for index in np.ndindex(params[name].shape):
            original = params[name][index]
            h = step * max(1.0, abs(original))
            params[name][index] = original + h
            above = module.loss(params, x, y)
            params[name][index] = original - h
            below = module.loss(params, x, y)
            params[name][index] = original
            estimate[index] = (above - below) / (2 * h)
        estimates[name] = estimate
    return estimates


@register
class FiniteDifferences(Witness):
    """A witness of gradients only: central differences of the generated ``loss`` at the
    initial parameters, all the data as one batch (``Run.gradients``; nothing trained)."""
    name = "finite_differences"
    framework = "Central differences"

    def __init__(self, step: float = STEP, tolerance: float = RELATIVE_TOLERANCE):
        self.step, self.tolerance = step, tolerance

    def train(self, spec, dtype: str = "float64") -> Run:
        module = spec_module(spec)
        return Run(None, None, central_differences(module, module.initial_params(), module.X, module.Y, self.step))

    def gradient_tolerance(self, dtype: str) -> Tolerance:
        """RELATIVE_TOLERANCE of the gradients' scale (central differences leave ~1e-10 of
        rounding in L / h), whatever the dtype: the quotient is taken in float64."""
        return Tolerance(self.tolerance, floor=np.finfo(np.float64).tiny)


def compare_gradients(module, params: dict, x: np.ndarray, y: np.ndarray, step: float = STEP,
                      tolerance: float = RELATIVE_TOLERANCE) -> CheckReport:
    """Central differences of ``module.loss`` against ``module.gradients`` at any ``params``."""
    params = {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    witness = FiniteDifferences(step, tolerance)
    report = CheckReport("float64", tolerance, framework=witness.framework, witness=witness.name)
    report.gradients = compare.compare_gradients(
        list(module.PARAM_NAMES), central_differences(module, params, x, y, step),
        module.gradients(params, x, y), witness.gradient_tolerance("float64"))
    return report


def check(spec, module=None, step: float = STEP, tolerance: float = RELATIVE_TOLERANCE) -> CheckReport:
    """The spec's generated module at its initial weights, on all of its data as one batch
    (:func:`symbp.witnesses.compare.check` with this witness)."""
    return compare.check(spec, "float64", module, witness=FiniteDifferences(step, tolerance))
