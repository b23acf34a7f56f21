"""Kinks: the points where an activation or a loss switches between the cases of its formula.

A kink of a rule f(t) is a point c where a hand computation must choose a branch, and where a
rounding of t to +-1e-17 can flip the branch NumPy and Keras take: relu at z = 0, huber at
e = +-delta (e = p - y), mean_absolute_error at e = 0. They are read off each rule's own SymPy
formula (nothing is listed by hand):

- a ``Piecewise`` condition ``lhs REL rhs`` gives the real solutions t of ``lhs = rhs``
  (relu's ``z > 0`` gives 0, huber's ``|e| <= delta`` gives +-delta);
- ``Abs``, ``sign``, ``Heaviside`` give the zeros of their argument, and ``Max``/``Min`` the
  points where two arguments are equal, but only where the first derivative jumps there
  (|e| in mean_absolute_error is a kink; |z| in softsign, whose derivative 1/(1 + |z|)^2 is
  continuous, is not).

``Clip`` in the cross-entropies is a function of its own, not one of these: its bounds are
saturation (max_abs_z's business), not a branch a student chooses.

Max pooling has a kink of its own: ``max`` of a window switches the entry it selects where its two
largest entries are equal, and there the gradient goes to the first of them (TensorFlow's
choice, which a rounding of 1e-17 can move and a student must guess). :func:`nearest_tie` finds
the window whose maximum comes nearest a rival entry over a whole training (the windows read by
the module's own ``_windows``; padding is never selected, so it is left out), counting only
rivalries that change a number (:func:`symbp.standalone_draws.window_gaps`).

The search over a training runs on the generated module with NumPy alone
(:mod:`symbp.standalone_draws`, which a PrairieLearn question carries too); this module
finds the kinks it searches for and names what it finds.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import numpy as np
import sympy as sp

from ..rules import activations, loss_registry
from .. import standalone_draws
from .network import layers_from_spec

#: the variable of a rule: the pre-activation z, or a loss's e = p_i - y_i
T = sp.Symbol("t", real=True)
#: a derivative that changes by more than this across c +- JUMP_STEP jumps at c
JUMP_STEP, JUMP = 1e-7, 1e-4


def _real_points(equation: sp.Expr) -> set[float]:
    """The real, finite solutions t of ``equation = 0``."""
    try:
        solutions = sp.solve(equation, T, dict=False)
    except NotImplementedError:
        return set()
    return {float(s) for s in solutions if s.is_real and s.is_finite}


def _case_points(expr: sp.Expr) -> set[float]:
    """Where a Piecewise condition of ``expr`` changes truth value."""
    points: set[float] = set()
    for piecewise in expr.atoms(sp.Piecewise):
        for _, condition in piecewise.args:
            for relation in condition.atoms(sp.core.relational.Relational):
                points |= _real_points(relation.lhs - relation.rhs)
    return points


def _non_smooth_points(expr: sp.Expr) -> set[float]:
    """Zeros of Abs/sign/Heaviside arguments and ties of Max/Min arguments (candidates)."""
    points: set[float] = set()
    for node in expr.atoms(sp.Abs, sp.sign, sp.Heaviside):
        points |= _real_points(node.args[0])
    for node in expr.atoms(sp.Max, sp.Min):
        for k, first in enumerate(node.args):
            for second in node.args[k + 1:]:
                points |= _real_points(first - second)
    return points


def _derivative_jumps(expr: sp.Expr, point: float) -> bool:
    """f'(c + h) and f'(c - h) differ by more than JUMP (a corner, not a smooth point)."""
    derivative = sp.diff(expr, T)
    left, right = (complex(derivative.subs(T, point + side * JUMP_STEP).evalf()) for side in (-1, 1))
    return abs(right - left) > JUMP


def kinks_of(expr: sp.Expr) -> tuple[float, ...]:
    """The kinks of ``expr``, a formula in ``T`` with every other symbol given a number."""
    corners = {c for c in _non_smooth_points(expr) if _derivative_jumps(expr, c)}
    return tuple(sorted(_case_points(expr) | corners))


@functools.lru_cache(maxsize=None)
def activation_kinks(name: str) -> tuple[float, ...]:
    """Kinks of an element-wise activation in its pre-activation z (none for softmax)."""
    rule = activations[name]
    if rule.row_wise:
        return ()
    return kinks_of(sp.sympify(rule.formula(T)))


@functools.lru_cache(maxsize=None)
def loss_kinks(name: str, arguments: tuple[tuple[str, float], ...] = (), framework: str = "keras") -> tuple[float, ...]:
    """Kinks of a loss in e = p_i - y_i: its per-unit summand with p_i = y_i + e and its
    arguments (huber's delta) at their values. A loss whose summand still depends on y or on
    other units after that (the cross-entropies) has no kink in e."""
    rule = loss_registry(framework)[name]
    p, y = sp.IndexedBase("p"), sp.IndexedBase("y")
    i, K = sp.Idx("i"), sp.Symbol("K", integer=True, positive=True)
    values = {**rule.arguments, **dict(arguments)}
    formula = rule.formula(p, y, i, K, *(sp.Symbol(a) for a in rule.arguments))
    sums = list(formula.atoms(sp.Sum))
    if not sums:
        return ()
    summand = sums[0].function.subs({sp.Symbol(a): sp.Float(v) for a, v in values.items()})
    summand = summand.subs(p[i], y[i] + T)
    if summand.free_symbols - {T}:
        return ()
    return kinks_of(summand)


def spec_loss_kinks(loss, framework: str = "keras") -> tuple[float, ...]:
    """Kinks of a spec's loss (a :class:`~symbp.spec.model.LossSpec`: name and numeric arguments;
    torch's reduction scales the loss and moves no kink)."""
    arguments = tuple(sorted((k, float(v)) for k, v in loss.arguments.items() if k != "reduction"))
    return loss_kinks(loss_registry(framework).canonical(loss.name), arguments, framework)


# ---------------------------------------------------------------- a spec's training, near its kinks
class KinkHit(NamedTuple):
    """The value nearest a kink over a whole training: where it is and how near."""
    distance: float
    where: str          # "layer 1 (relu) z[0, 2]" or "loss (huber) e = p - y [0, 1]"
    value: float
    kink: float
    epoch: int          # from 1
    batch: int          # from 1

    def describe(self) -> str:
        return (f"{self.where} = {self.value:.3g} in epoch {self.epoch}, batch {self.batch} is "
                f"{self.distance:.3g} from the kink at {self.kink:g}")


def layer_kinks_of(spec) -> list[tuple[float, ...]]:
    """Per layer of ``spec``, the kinks of its activation in z (() for a smooth one)."""
    return [activation_kinks(activations.canonical(layer.activation)) for layer in spec.layers]


def max_pools_of(spec) -> list:
    """The built layers of ``spec`` that pool by a window's maximum (MaxPooling, GlobalMaxPooling)."""
    return [layer for layer in layers_from_spec(spec) if layer.rule.indexed and layer.rule.gather.selects_maximum]


def pool_geometries(spec) -> list[tuple[int, tuple]]:
    """[(position, (window, strides, padding))] of each max-pooling layer, as
    :func:`symbp.standalone_draws.nearest_tie` reads them."""
    return [(layer.position, layer.window_geometry()) for layer in max_pools_of(spec)]


def _training_steps(spec, module, params, x, y):
    """Every step of the training of ``module`` from ``params``, ``x``, ``y`` (default: the
    spec's own), as ``train`` replays ``model.fit``."""
    params = spec.initial_params() if params is None else params
    x = np.array(spec.x, dtype=np.float64) if x is None else x
    y = np.array(spec.y, dtype=np.float64) if y is None else y
    return standalone_draws.training_steps(module, params, x, y, spec.epochs, spec.batch_size)


def nearest_kink(spec, module, params=None, x=None, y=None) -> Optional[KinkHit]:
    """The pre-activation of a piecewise activation, or the argument e = p - y of a piecewise
    loss, that comes nearest its kink over the whole training of ``module`` (every batch of
    every epoch, as ``train`` replays ``model.fit``; :func:`symbp.standalone_draws.nearest_kink`);
    None when no rule of the spec has a kink. ``params``, ``x``, ``y`` default to the spec's own."""
    found = standalone_draws.nearest_kink(_training_steps(spec, module, params, x, y), layer_kinks_of(spec),
                                          spec_loss_kinks(spec.loss, spec.framework))
    if found is None:
        return None
    where = (f"loss ({spec.loss.name}) e = p - y" if found.layer is None
             else f"layer {found.layer} ({spec.layers[found.layer].activation}) z")
    return KinkHit(found.distance, f"{where}{list(found.index)}", found.value, found.kink, found.epoch, found.batch)


# ---------------------------------------------------------------- max pooling's ties
class TieHit(NamedTuple):
    """The max-pooling window whose two largest entries come nearest each other over a training."""
    gap: float          # largest - second largest entry of the window
    where: str          # "layer 1 (MaxPooling2D) window[0, 1, 0, 2]" (row, positions.., channel)
    largest: float
    second: float
    epoch: int          # from 1
    batch: int          # from 1

    @property
    def distance(self) -> float:
        return self.gap

    def describe(self) -> str:
        return (f"{self.where} holds {self.largest:.3g} and {self.second:.3g}, {self.gap:.3g} apart, in epoch "
                f"{self.epoch}, batch {self.batch}: a near tie the max (and its gradient) must choose between")


def nearest_tie(spec, module, params=None, x=None, y=None) -> Optional[TieHit]:
    """The max-pooling window (MaxPooling, GlobalMaxPooling) whose maximum comes nearest a rival
    entry over the whole training of ``module`` (every batch of every epoch, as ``train``
    replays ``model.fit``; :func:`symbp.standalone_draws.nearest_tie`, its
    ``window_gaps`` counting only rivalries that change a number); None without max pooling.
    ``params``, ``x``, ``y`` default to the spec's own."""
    found = standalone_draws.nearest_tie(module, _training_steps(spec, module, params, x, y), pool_geometries(spec))
    if found is None:
        return None
    name = next(layer.rule.name for layer in max_pools_of(spec) if layer.position == found.position)
    return TieHit(found.gap, f"layer {found.position} ({name}) window{list(found.index)}", found.largest,
                  found.largest - found.gap, found.epoch, found.batch)
