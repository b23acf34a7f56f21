"""The check: a witness's Run against the generated module's, for every witness alike.

``check(spec, dtype, witness=None)`` (the spec's framework's witness) trains with the witness and with the generated module,
compares every parameter, the epoch losses and (where the witness has them) the initial
gradients within the dtype's tolerance (:mod:`symbp.witnesses.tolerance`), then explains a
difference past it: rounding grown over a long run, float32 rounding of the formulas, or a
value at a kink.
"""

from __future__ import annotations

import numpy as np

from ..spec.model import Spec
from .base import Run, Witness, witness as witness_named
from .module import module_gradients, module_train, nudged_train, spec_module
from .report import ROUNDING_GROWTH_FACTOR, CheckReport, Comparison, compare
from .tolerance import TOLERANCES, Tolerance

#: the relative tolerance per dtype (symbp.witnesses.tolerance states the comparison)
TOLERANCE = {dtype: tolerance.relative for dtype, tolerance in TOLERANCES.items()}
#: rounding growth needs the losses of the first this many epochs (the formulas) to agree
EARLY_EPOCHS = 10
#: a value this near a kink can be on either side of it after rounding
AT_KINK = 1e-9


def check(spec: Spec, dtype: str = "float64", module=None, witness: str | Witness | None = None) -> CheckReport:
    """Train with the witness (default: the spec's framework's, Keras or PyTorch) and with the
    generated module; compare (see the module). A witness of gradients only (finite
    differences) is compared on those, at the initial parameters."""
    if dtype not in TOLERANCES:
        raise ValueError(f"dtype must be float64 or float32, not {dtype!r}")
    witness = witness_named(witness or spec.framework) if not isinstance(witness, Witness) else witness
    module = module or spec_module(spec)
    run = witness.train(spec, dtype)
    report = CheckReport(dtype, TOLERANCES[dtype].relative, framework=witness.framework, witness=witness.name)
    if run.params is not None:
        compare_training(report, spec, run, module)
    if run.gradients is not None:
        tolerance = witness.gradient_tolerance(dtype)
        report.gradients = compare_gradients(spec.param_names, run.gradients, module_gradients(spec, module),
                                             tolerance)
        report.tolerance = report.tolerance if run.params is not None else tolerance.relative
    if not report.match and report.losses is not None:
        report.kink = kink_at_rounding(spec, module)
    return report


def compare_training(report: CheckReport, spec: Spec, run: Run, module) -> None:
    """The witness's trained parameters and epoch losses against the module's own training, in
    the report's dtype; then rounding (grown over the run; in float32, float32's own) behind a
    difference past the tolerance."""
    tolerance = TOLERANCES[report.dtype]
    params, losses = module_train(spec, report.dtype, module)
    report.parameters = [compare(name, run.params[name], params[name], tolerance) for name in spec.param_names]
    report.losses = compare("loss", run.epoch_losses, losses, tolerance)
    if not report.match:
        explain_rounding_growth(report, spec, (params, losses), tolerance, module)
    if not report.match and report.dtype == "float32":
        explain_float32_rounding(report, spec, (params, losses), module)
    for c in report.parameters:   # float32 in must give float32 out, whatever the numbers
        if params[c.name].dtype != np.dtype(report.dtype):
            c.match = False


def compare_gradients(names, theirs: dict, ours: dict, tolerance: Tolerance) -> list[Comparison]:
    """Each parameter's gradient against the witness's, held to ``tolerance`` of the largest
    |witness gradient entry| over all parameters (a tiny entry is not held to an impossible
    relative error)."""
    scale = [np.max(np.abs(np.asarray(theirs[name], dtype=np.float64)), initial=0.0) for name in names]
    return [compare(name, theirs[name], ours[name], tolerance, reference=max(scale, default=0.0)) for name in names]


def explain_rounding_growth(report: CheckReport, spec: Spec, run: tuple, tolerance: Tolerance, module) -> None:
    """Mark the differences past the tolerance that are rounding grown over a long run as matches.

    A long run amplifies rounding (Adam over 10,000 epochs drifts past 1e-9 after ~1,700 while
    its formulas agree to 3e-15 at 1,000). Witness: symbp's own run with every step nudged by one
    ulp (``nudged_train``); its spread from the exact run is how far rounding alone moves the
    result. A difference counts as rounding growth when the first EARLY_EPOCHS epochs' losses
    agree within the tolerance (the formulas are right) and it is at most
    ROUNDING_GROWTH_FACTOR x that spread; ``rounding_spread`` then records the spread
    (``rounding_witness`` "nudged"). The nudged run is ``module``'s, the one checked.
    """
    early = min(EARLY_EPOCHS, len(report.losses.witness))
    if report.losses.symbp.shape != report.losses.witness.shape \
            or not tolerance.agree(report.losses.witness[:early], report.losses.symbp[:early]):
        return
    with np.errstate(all="ignore"):   # the nudged run overflows where the exact one does
        nudged = nudged_train(spec, report.dtype, module=module)
    excuse_within_spread(report, run_spreads(spec, run, nudged), "nudged")


def explain_float32_rounding(report: CheckReport, spec: Spec, run: tuple, module) -> None:
    """In float32, mark the differences past the tolerance that float32 rounding alone makes as matches.

    Where a gradient entry is a difference of near-equal terms (1e-6 from terms of 0.1), float32
    computes it with a relative error far above its 6e-8 (~1e-2), and an Adam-family step
    m/(sqrt(v)+eps) turns that relative error into an absolute one of ~ learning rate x it in
    the weights: past 1e-5 in one step, for Keras as for symbp (each framework's float32 run is
    off its float64 run by that order). One-ulp nudges of the new parameters don't model it.
    Witness: symbp's own training in float64 (NumPy, no witness run): the same formulas, only
    the precision differs, so its distance from the float32 run is how far float32 rounding
    alone moves each quantity. A difference at most ROUNDING_GROWTH_FACTOR x that distance is
    float32 rounding; ``rounding_spread`` records the distance (``rounding_witness`` "float64").

    It can't excuse a wrong rule: a wrong formula moves symbp's float32 and float64 runs alike,
    so their distance stays the rounding of the (wrong) run while the witness differs from
    both by the formula's effect. Only an effect under ROUNDING_GROWTH_FACTOR x float32's own
    rounding of that very entry passes, one no float32 run can resolve: the float64 check
    (1e-9) holds the formulas. No early-epochs gate: in float32 the first epochs' losses carry the same
    rounding (a fuzzed adamax run's first epoch loss by 1.5e-5): they are judged like any quantity.
    """
    with np.errstate(all="ignore"):   # the float64 run overflows where the float32 one does
        exact = module_train(spec, "float64", module)
    excuse_within_spread(report, run_spreads(spec, run, exact), "float64")


def run_spreads(spec: Spec, run: tuple, other: tuple) -> dict[str, np.ndarray]:
    """|run - other| entry by entry, of each parameter and of the epoch losses (``run``,
    ``other``: (params, losses))."""
    (params, losses), (other_params, other_losses) = run, other
    spreads = {name: np.abs(np.asarray(params[name], dtype=np.float64) - other_params[name])
               for name in spec.param_names}
    spreads["loss"] = np.abs(np.asarray(losses, dtype=np.float64) - np.asarray(other_losses))
    return spreads


def excuse_within_spread(report: CheckReport, spreads: dict[str, np.ndarray], witness: str) -> None:
    """Each parameter and the losses past the tolerance (finite, not already excused) whose every
    entry differs by at most ROUNDING_GROWTH_FACTOR x that entry's spread (plus the tolerance):
    a match to rounding, the largest spread and ``witness`` recorded. Entry by entry, not the
    array's largest against the largest: rounding that cancellation makes large in one entry
    must not excuse a wrong number in another."""
    for c in report.parameters + [report.losses]:
        past = c.max_abs_diff > c.allowed and np.isfinite(c.max_abs_diff) and c.rounding_spread is None
        spread = spreads[c.name]
        difference = np.abs(np.asarray(c.witness, dtype=np.float64) - np.asarray(c.symbp, dtype=np.float64))
        if past and difference.shape == spread.shape and \
                np.all(difference <= ROUNDING_GROWTH_FACTOR * spread + c.allowed):
            c.match, c.rounding_spread, c.rounding_witness = True, float(np.max(spread)), witness


def kink_at_rounding(spec: Spec, module=None):
    """The pre-activation of a piecewise activation, or argument of a piecewise loss, nearest
    its kink over the whole training, when it is within AT_KINK of it; else the max-pooling
    window nearest a tie, when its maximum is within AT_KINK of a rival (else None)."""
    from ..derivation.kinks import nearest_kink, nearest_tie
    module = module or spec_module(spec)
    hit = nearest_kink(spec, module)
    if hit is not None and hit.distance <= AT_KINK * max(1.0, abs(hit.kink)):
        return hit
    tie = nearest_tie(spec, module)
    return tie if tie is not None and tie.gap <= AT_KINK * max(1.0, abs(tie.largest)) else None
