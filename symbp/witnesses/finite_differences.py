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

from dataclasses import dataclass, field

import numpy as np

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


@dataclass
class Agreement:
    name: str
    max_abs_diff: float
    relative_diff: float   # max_abs_diff over the gradient's scale
    match: bool


@dataclass
class FiniteDifferenceReport:
    step: float
    tolerance: float
    scale: float           # the largest |gradient entry| over all parameters
    parameters: list[Agreement] = field(default_factory=list)

    @property
    def match(self) -> bool:
        return all(p.match for p in self.parameters)

    def to_json(self) -> dict:
        return {"match": self.match, "step": self.step, "relative_tolerance": self.tolerance,
                "gradient_scale": self.scale,
                "parameters": {p.name: {"max_abs_diff": p.max_abs_diff,
                                        "relative_diff": p.relative_diff, "match": p.match}
                               for p in self.parameters}}

    def describe(self) -> str:
        lines = [f"Central differences (h = {self.step:g} max(1, |w|)) against the generated gradients:"]
        for p in self.parameters:
            verdict = "agree" if p.match else "DISAGREE"
            lines.append(f"  {p.name}: largest difference {p.max_abs_diff:.3g} "
                         f"(relative {p.relative_diff:.3g}) {verdict}")
        summary = "agree" if self.match else "do NOT agree"
        lines.append(f"Finite differences {summary} with the gradients (relative tolerance {self.tolerance:g}).")
        return "\n".join(lines) + "\n"


def compare_gradients(module, params: dict, x: np.ndarray, y: np.ndarray, step: float = STEP,
                      tolerance: float = RELATIVE_TOLERANCE) -> FiniteDifferenceReport:
    """Central differences of ``module.loss`` against ``module.gradients`` at ``params``."""
    params = {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    gradients = module.gradients(params, x, y)
    estimates = central_differences(module, params, x, y, step)
    scale = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in gradients.values())
    scale = max(scale, np.finfo(np.float64).tiny)
    report = FiniteDifferenceReport(step, tolerance, scale)
    for name in module.PARAM_NAMES:
        diff = float(np.max(np.abs(gradients[name] - estimates[name]))) if estimates[name].size else 0.0
        finite = bool(np.all(np.isfinite(gradients[name])) and np.all(np.isfinite(estimates[name])))
        report.parameters.append(Agreement(name, diff, diff / scale, finite and diff / scale <= tolerance))
    return report


def check(spec, module=None, step: float = STEP,
          tolerance: float = RELATIVE_TOLERANCE) -> FiniteDifferenceReport:
    """The spec's generated module at its initial weights, on all of its data as one batch."""
    from .module import spec_module
    module = module or spec_module(spec)
    return compare_gradients(module, module.initial_params(), module.X, module.Y, step, tolerance)
