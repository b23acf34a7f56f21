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
rivalries that change a number (:func:`window_gaps`).
"""

from __future__ import annotations

import functools
from typing import Iterable, NamedTuple, Optional

import numpy as np
import sympy as sp

from ..rules import activations, loss_registry
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


def distance_to_kinks(values: np.ndarray, kinks: Iterable[float]) -> float:
    """min over entries and kinks of |value - kink| (inf without kinks or values)."""
    values = np.asarray(values, dtype=np.float64)
    distances = [float(np.min(np.abs(values - c))) for c in kinks if values.size]
    return min(distances, default=float("inf"))


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


def _nearest(values: np.ndarray, kinks: tuple[float, ...], where: str, epoch: int, batch: int):
    """The KinkHit of the entry of ``values`` nearest one of ``kinks`` (None without kinks)."""
    best = None
    for kink in kinks:
        gaps = np.abs(np.asarray(values, dtype=np.float64) - kink)
        gaps[~np.isfinite(gaps)] = np.inf   # a non-finite value is nowhere near a kink
        if gaps.size == 0:
            continue
        index = np.unravel_index(int(np.argmin(gaps)), gaps.shape)
        hit = KinkHit(float(gaps[index]), f"{where}{[int(k) for k in index]}", float(values[index]), kink, epoch, batch)
        if best is None or hit.distance < best.distance:
            best = hit
    return best


def _batches(spec, module, params, x, y):
    """(epoch, batch, parameters before the step, x batch, y batch, forward pass) of every step
    ``train`` takes (model.fit's order)."""
    state = None
    for epoch in range(1, spec.epochs + 1):
        for batch, start in enumerate(range(0, len(x), spec.batch_size), start=1):
            xb, yb = x[start:start + spec.batch_size], y[start:start + spec.batch_size]
            forward_pass = module._forward(params, xb)
            yield epoch, batch, params, xb, yb, forward_pass
            grads = module.backward(params, xb, yb, forward_pass)[0]
            params, state = module.step(params, xb, yb, state, grads)


def nearest_kink(spec, module, params=None, x=None, y=None) -> Optional[KinkHit]:
    """The pre-activation of a piecewise activation, or the argument e = p - y of a piecewise
    loss, that comes nearest its kink over the whole training of ``module`` (every batch of
    every epoch, as ``train`` replays ``model.fit``); None when no rule of the spec has a kink.
    ``params``, ``x``, ``y`` default to the spec's own."""
    params = spec.initial_params() if params is None else params
    x = np.array(spec.x, dtype=np.float64) if x is None else x
    y = np.array(spec.y, dtype=np.float64) if y is None else y
    layer_kinks = [activation_kinks(activations.canonical(layer.activation)) for layer in spec.layers]
    kinks_of_loss = spec_loss_kinks(spec.loss, spec.framework)
    if not any(layer_kinks) and not kinks_of_loss:
        return None
    hits = []
    for epoch, batch, _, _, yb, (zs, outputs, *_masks) in _batches(spec, module, params, x, y):  # masks: pooling's
        for n, (z, kinks) in enumerate(zip(zs, layer_kinks)):
            hits.append(_nearest(z, kinks, f"layer {n} ({spec.layers[n].activation}) z", epoch, batch))
        if kinks_of_loss and outputs[-1].shape == yb.shape:
            hits.append(_nearest(outputs[-1] - yb, kinks_of_loss, f"loss ({spec.loss.name}) e = p - y",
                                 epoch, batch))
    return min((h for h in hits if h is not None), key=lambda h: h.distance, default=None)


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


def window_gaps(module, layer, a_prev: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(gap, largest) of each max-pooling window of ``a_prev`` (axes: row, positions.., channel):
    how far the window's maximum (the first, as TensorFlow selects it) is from its nearest rival,
    counting only rivalries whose outcome changes a number: a pair of entries where the gradient
    would reach a parameter through one of them (``live``: f'(z) != 0 below; relu's zeros, equal
    in every window of negative pre-activations, pass nothing down whichever is chosen). The
    windows are read by ``module._windows`` as the module's forward pass reads them; padding is
    never selected, so it is left out; a window without a rival has gap inf."""
    window, strides, padding = layer.window_geometry()
    windows = module._windows(a_prev, window, strides, padding)
    inside = module._windows(np.ones_like(a_prev[:1]), window, strides, padding) > 0
    rank = len(window)
    flat = lambda array: array.reshape(*array.shape[:-rank], -1)
    entries = flat(np.where(inside, windows, -np.inf))
    alive = flat(module._windows(live, window, strides, padding) & inside)
    first = np.argmax(entries, axis=-1)[..., None]
    largest = np.take_along_axis(entries, first, axis=-1)[..., 0]
    rivals = np.where(np.arange(entries.shape[-1]) == first, -np.inf, entries)
    first_alive = np.take_along_axis(alive, first, axis=-1)[..., 0]
    nearest = np.where(first_alive, rivals.max(axis=-1), np.where(alive, rivals, -np.inf).max(axis=-1))
    with np.errstate(invalid="ignore"):
        gaps = largest - nearest
    return np.where(np.isfinite(gaps), gaps, np.inf), largest


def _live(module, spec, layer, params, xb, yb) -> np.ndarray:
    """Where the gradient reaching the input of pooling layer ``layer`` moves a parameter: f'(z)
    != 0 of the layer below (the trace's ``fprime``; a row-wise activation: everywhere); nowhere
    on the input x itself (no parameter below it)."""
    below = layer.position   # the layer number (1..L) of the layer below
    if below == 0:
        return np.zeros(np.shape(xb), dtype=bool)
    trace = module.trace(params, xb, yb)
    fprime, z = trace.get(f"fprime{below}"), trace[f"z{below}"]
    return np.ones(z.shape, dtype=bool) if fprime is None else np.broadcast_to(fprime != 0, z.shape).copy()


def nearest_tie(spec, module, params=None, x=None, y=None) -> Optional[TieHit]:
    """The max-pooling window (MaxPooling, GlobalMaxPooling) whose maximum comes nearest a rival
    entry (:func:`window_gaps`) over the whole training of ``module`` (every batch of every
    epoch, as ``train`` replays ``model.fit``); None without max pooling. ``params``, ``x``,
    ``y`` default to the spec's own."""
    pools = [layer for layer in layers_from_spec(spec) if layer.rule.indexed and layer.rule.gather.mask == "first_max"]
    if not pools:
        return None
    params = spec.initial_params() if params is None else params
    x = np.array(spec.x, dtype=np.float64) if x is None else x
    y = np.array(spec.y, dtype=np.float64) if y is None else y
    best = None
    for epoch, batch, step_params, xb, yb, (_, outputs, *_gathered) in _batches(spec, module, params, x, y):
        for layer in pools:
            live = _live(module, spec, layer, step_params, xb, yb)
            gaps, largest = window_gaps(module, layer, outputs[layer.position], live)
            index = np.unravel_index(int(np.argmin(gaps)), gaps.shape)
            if best is None or gaps[index] < best.gap:
                best = TieHit(float(gaps[index]), f"layer {layer.position} ({layer.rule.name}) window"
                              f"{[int(k) for k in index]}", float(largest[index]),
                              float(largest[index] - gaps[index]), epoch, batch)
    return best
