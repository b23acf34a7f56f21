"""A variant drawn, a bad draw rejected, its key, a mistake named: NumPy only, for symbp and PrairieLearn.

``symbp variants`` (:mod:`symbp.classroom.variants`) and symbp's kink and tie search
(:mod:`symbp.derivation.kinks`) call these functions, and ``symbp export prairielearn`` writes
this file, byte for byte, beside the question's ``server.py``, which draws each PrairieLearn
variant where symbp is not installed. So this module imports NumPy and the standard library only
and knows a network only through its generated module (``_forward``, ``backward``, ``step``,
``trace``, ``_windows``) and the plain numbers of a :class:`DrawRules` (symbp builds them from
the spec; the question reads them from ``draw.json``): both draw the same variants from a seed.
It is a leaf at the package's top, in neither of its users' packages: the derivation's kink
search reads it without importing the classroom.

The answer key of a draw (:func:`first_step`), what the rules grading it read
(:func:`step_scope`) and the naming of a mistake from them (:func:`first_mistake`) come from
here too.

A draw is rejected (:func:`rejected`) when it is degenerate on the first batch (:func:`degenerate`)
or comes within ``kink_margin`` of a kink or of a max-pooling tie at any step of the whole
training (:func:`kink_in_step`, :func:`tie_in_step`; one replay serves both): there NumPy and
the framework may round to different branches, and a student must guess one.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Iterator, NamedTuple, Optional

import numpy as np


class Grid(NamedTuple):
    """Multiples of ``step`` from ``low`` to ``high`` (inclusive); in JSON ``[step, low, high]``."""
    step: float
    low: float
    high: float

    def draw(self, rng: np.random.Generator, shape: tuple) -> np.ndarray:
        """k * step for k drawn uniformly from ceil(low / step) .. floor(high / step); the product
        taken in Decimal of the step as written (0.1 * 3 is 0.3, not 0.30000000000000004), so a
        drawn number prints as short as the grid's step."""
        first = math.ceil(self.low / self.step - 1e-9)
        last = math.floor(self.high / self.step + 1e-9)
        multiples = rng.integers(first, last + 1, size=shape)
        step = Decimal(repr(float(self.step)))
        return np.array([float(int(k) * step) for k in multiples.flat], dtype=np.float64).reshape(shape)


class DrawRules(NamedTuple):
    """What to draw and what to reject, as plain numbers (``draw.json``'s ``draw``, :meth:`as_json`).

    ``params``: [(module name, spec item)] in the order drawn ("weights" for kernels too);
    ``label_kind``: a key of LABEL_DRAWS; ``classes``: the output units (sparse labels' range);
    ``layer_kinks``: per layer, the kinks of its activation in z; ``loss_kinks``: of the loss in
    e = p - y; ``pools``: [(position, (window, strides, padding))] of each max-pooling layer, its
    input ``outputs[position]``; ``tries``: draws before a seed gives up."""
    vary: list
    grids: dict
    params: list
    label_kind: str
    classes: int
    batch_size: int
    epochs: int
    max_abs_z: float
    zero_gradient: float
    kink_margin: float
    layer_kinks: list
    loss_kinks: list
    pools: list
    tries: int

    def as_json(self) -> dict:
        """The rules as JSON's types (``from_json`` gives them back, equal)."""
        return {**self._asdict(), "grids": {item: list(grid) for item, grid in self.grids.items()}}

    @classmethod
    def from_json(cls, table: dict) -> "DrawRules":
        """The rules of ``as_json``'s table (draw.json's lists made tuples and Grids again)."""
        pools = [(position, (tuple(window), tuple(strides), padding))
                 for position, (window, strides, padding) in table["pools"]]
        return cls(**{**table, "grids": {item: Grid(*grid) for item, grid in table["grids"].items()},
                      "pools": pools, "params": [tuple(pair) for pair in table["params"]],
                      "layer_kinks": [tuple(kinks) for kinks in table["layer_kinks"]],
                      "loss_kinks": tuple(table["loss_kinks"])})


# ---------------------------------------------------------------- drawing
def _sparse_labels(rng, shape, classes, grid):
    return rng.integers(0, classes, size=(shape[0], 1)).astype(np.float64)


def _one_hot_labels(rng, shape, classes, grid):
    return np.eye(shape[1])[rng.integers(0, shape[1], size=shape[0])]


def _binary_labels(rng, shape, classes, grid):
    return rng.integers(0, 2, size=shape).astype(np.float64)


def _grid_labels(rng, shape, classes, grid):
    return grid.draw(rng, shape)


#: how labels the loss accepts are drawn: class indices (sparse cross-entropy), one-hot rows
#: (categorical cross-entropy), 0/1 (binary losses), else numbers on the ``y`` grid
LABEL_DRAWS = {"sparse": _sparse_labels, "one_hot": _one_hot_labels, "binary": _binary_labels,
               "grid": _grid_labels}


def draw_once(rules: DrawRules, rng: np.random.Generator, params0: dict, x0: np.ndarray,
              y0: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """(params, x, y): each varied item drawn afresh from ``rng`` (parameters in ``rules.params``'
    order, then x, then y), the others as given."""
    params = dict(params0)
    for name, spec_key in rules.params:
        if spec_key in rules.vary:
            params[name] = rules.grids[spec_key].draw(rng, params0[name].shape)
    x = rules.grids["x"].draw(rng, x0.shape) if "x" in rules.vary else x0
    y = (LABEL_DRAWS[rules.label_kind](rng, y0.shape, rules.classes, rules.grids["y"])
         if "y" in rules.vary else y0)
    return params, x, y


def rejected(module, rules: DrawRules, params: dict, x: np.ndarray, y: np.ndarray) -> bool:
    """The draw is degenerate, or near a kink or a tie (within ``kink_margin``) somewhere in its training."""
    return degenerate(module, rules, params, x, y) or near_a_kink(module, rules, params, x, y)


def draw_variant(module, rules: DrawRules, seed: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """(params, x, y): the first draw from ``default_rng(seed)`` not :func:`rejected` (as ``symbp
    variants --seed`` draws its first student), starting from the module's own numbers."""
    rng = np.random.default_rng(seed)
    params0, x0, y0 = module.initial_params(), np.array(module.X), np.array(module.Y)
    for _ in range(rules.tries):
        params, x, y = draw_once(rules, rng, params0, x0, y0)
        if not rejected(module, rules, params, x, y):
            return params, x, y
    raise RuntimeError("no usable variant for this seed: widen the [variants] grid and export again")


# ---------------------------------------------------------------- the key and what its rules read
def first_step(module, params: dict, x: np.ndarray, y: np.ndarray, maps=()) -> dict:
    """One step's quantities on the batch (x, y), by the names the answer key gives them: the
    loss, a{l} of each layer l in ``maps`` (a CNN's feature and pooled maps), delta{l} of every
    layer, d{param} and {param}_updated of every parameter. symbp's key (``symbp variants``) and a
    PrairieLearn question's both come from here. One forward pass serves the loss, the maps
    and the backward pass, whose gradients serve the update (as the module's ``train`` shares them)."""
    forward_pass = module._forward(params, x)
    grads, deltas = module.backward(params, x, y, forward_pass)
    updated, _ = module.step(params, x, y, None, grads)
    outputs = forward_pass[1]
    out = {"loss": float(module.loss(params, x, y, forward_pass))}
    out.update({"a%d" % l: outputs[l] for l in maps})
    out.update({"delta%d" % l: delta for l, delta in enumerate(deltas, start=1)})
    out.update({"d" + name: grads[name] for name in module.PARAM_NAMES})
    out.update({name + "_updated": updated[name] for name in module.PARAM_NAMES})
    return out


def step_scope(module, params: dict, x: np.ndarray, y: np.ndarray) -> dict:
    """What a rule of the step reads (symbp's grader and mistake rules, a PrairieLearn question's):
    the module's names (constants, helpers), every array of its trace of (x, y), the parameters
    before the step, the label rows the loss reads (the trace's y), B and K."""
    scope = {k: v for k, v in vars(module).items() if not k.startswith("__")}
    traced = module.trace(params, x, y)
    scope.update({k: v for k, v in traced.items() if isinstance(v, np.ndarray) or np.isscalar(v)})
    scope.update(params)
    scope["y"] = traced.get("y", y)
    scope["B"], scope["K"] = scope["y"].shape
    scope["np"] = np
    return scope


def in_key_order(value: Optional[np.ndarray], shape: tuple) -> Optional[np.ndarray]:
    """``value`` as a student who wrote it row by row into the key's entries gives it: a
    matrix of another shape with as many entries (a non-square gradient computed transposed,
    its entries written into the key's columns in order) read back in the key's shape."""
    if value is None or value.shape == shape or value.size != int(np.prod(shape)):
        return value
    return value.reshape(shape)


def first_mistake(candidates: Iterator[tuple], answer: np.ndarray, expected: np.ndarray, close) -> Optional[str]:
    """The first mistake id of ``candidates`` ((mistake id, the value its rule gives from the
    student's own earlier answers, or None), in the catalogue's order) whose value, read in the
    key's order of entries (:func:`in_key_order`), differs from the key and gives ``answer``;
    None when none does. ``close(a, b)``: the grader's tolerance. ``symbp grade`` and a
    PrairieLearn question's ``grade`` both name a mistake with it."""
    for mistake_id, value in candidates:
        value = in_key_order(value, np.shape(expected))
        if value is None or value.shape != np.shape(expected) or close(value, expected):
            continue
        if close(answer, value):
            return mistake_id
    return None


# ---------------------------------------------------------------- degenerate draws
def largest_per_unit(delta: np.ndarray) -> np.ndarray:
    """max |delta| of each unit (the last axis: a Dense unit, a convolution's filter) over every
    row and position."""
    return np.max(np.abs(delta), axis=tuple(range(delta.ndim - 1)))


def degenerate(module, rules: DrawRules, params: dict, x: np.ndarray, y: np.ndarray) -> bool:
    """A pre-activation beyond ``max_abs_z`` (a saturated unit) anywhere in x; on the first batch,
    a unit whose delta is below ``zero_gradient`` at every row and position, or a parameter whose
    gradient is (nothing to learn there); anything not finite."""
    zs = module._forward(params, x)[0]
    if any(not np.all(np.isfinite(z)) or np.max(np.abs(z)) > rules.max_abs_z for z in zs):
        return True
    rows = rules.batch_size
    grads, deltas = module.backward(params, x[:rows], y[:rows])
    small = rules.zero_gradient
    if any(not np.all(np.isfinite(d)) or np.any(largest_per_unit(d) < small) for d in deltas):
        return True
    return any(not np.all(np.isfinite(g)) or np.max(np.abs(g)) < small for g in grads.values())


# ---------------------------------------------------------------- kinks and ties over a training
def training_steps(module, params: dict, x: np.ndarray, y: np.ndarray, epochs: int,
                   batch_size: int) -> Iterator[tuple]:
    """(epoch, batch, parameters before the step, x batch, y batch, forward pass) of every step
    of the training (``model.fit``'s order: epochs of batches, unshuffled), epochs and batches from 1."""
    state = None
    for epoch in range(1, epochs + 1):
        for batch, start in enumerate(range(0, len(x), batch_size), start=1):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            forward_pass = module._forward(params, xb)
            yield epoch, batch, params, xb, yb, forward_pass
            grads = module.backward(params, xb, yb, forward_pass)[0]
            params, state = module.step(params, xb, yb, state, grads)


def least_entry(gaps: np.ndarray) -> Optional[tuple]:
    """The index of the least entry of ``gaps`` (the first of equal ones, as ``np.argmin``
    takes it), None when there is none."""
    if gaps.size == 0:
        return None
    return tuple(int(k) for k in np.unravel_index(int(np.argmin(gaps)), gaps.shape))


class KinkFound(NamedTuple):
    """The value nearest a kink: |value - kink|, whose (``layer`` n's z, or None: the loss's
    e = p - y), at which entry, in which step."""
    distance: float
    layer: Optional[int]
    index: tuple
    value: float
    kink: float
    epoch: int
    batch: int


def _nearest_entry(values: np.ndarray, kinks, layer: Optional[int], epoch: int, batch: int):
    """The KinkFound of the entry of ``values`` nearest one of ``kinks`` (the first of the
    nearest); a non-finite value is nowhere near a kink; None without kinks or values."""
    def nearest(kink):
        gaps = np.abs(np.asarray(values, dtype=np.float64) - kink)
        gaps[~np.isfinite(gaps)] = np.inf
        index = least_entry(gaps)
        return None if index is None else KinkFound(float(gaps[index]), layer, index, float(values[index]),
                                                     kink, epoch, batch)
    return _least((nearest(kink) for kink in kinks), "distance")


def kink_in_step(step: tuple, layer_kinks, loss_kinks) -> Optional[KinkFound]:
    """The pre-activation z of a piecewise activation (``layer_kinks``: per layer, the kinks of
    its activation), or the argument e = p - y of a piecewise loss (``loss_kinks``), nearest its
    kink in one ``step`` of :func:`training_steps`; None when no rule has a kink."""
    epoch, batch, _, _, yb, (zs, outputs, *_gathered) = step
    found = [_nearest_entry(z, kinks, n, epoch, batch) for n, (z, kinks) in enumerate(zip(zs, layer_kinks))]
    if loss_kinks and outputs[-1].shape == yb.shape:
        found.append(_nearest_entry(outputs[-1] - yb, loss_kinks, None, epoch, batch))
    return _least(found, "distance")


def _least(hits: Iterator, field: str):
    """The hit with the least ``field`` (the first of equal ones), None when there is none."""
    best = None
    for hit in hits:
        if hit is not None and (best is None or getattr(hit, field) < getattr(best, field)):
            best = hit
    return best


def nearest_kink(steps: Iterator[tuple], layer_kinks, loss_kinks) -> Optional[KinkFound]:
    """:func:`kink_in_step`'s nearest over the ``steps`` of a training (:func:`training_steps`)."""
    if not any(layer_kinks) and not loss_kinks:
        return None
    return _least((kink_in_step(step, layer_kinks, loss_kinks) for step in steps), "distance")


def window_gaps(module, a_prev: np.ndarray, live: np.ndarray, geometry) -> tuple[np.ndarray, np.ndarray]:
    """(gap, largest) of each max-pooling window of ``a_prev`` (axes: row, positions.., channel):
    how far the window's maximum (the first, as TensorFlow selects it) is from its nearest rival,
    counting only rivalries whose outcome changes a number: a pair of entries where the gradient
    would reach a parameter through one of them (``live``: f'(z) != 0 below; relu's zeros, equal
    in every window of negative pre-activations, pass nothing down whichever is chosen). The
    windows are read by ``module._windows`` (``geometry``: window, strides, padding) as the
    module's forward pass reads them; padding is never selected, so it is left out; a window
    without a rival has gap inf."""
    window, strides, padding = geometry
    windows = module._windows(a_prev, window, strides, padding)
    inside = module._windows(np.ones_like(a_prev[:1]), window, strides, padding) > 0
    flat = lambda array: array.reshape(*array.shape[:-len(window)], -1)
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


def live_below(traced: Optional[dict], position: int, a_prev: np.ndarray) -> np.ndarray:
    """Where the gradient reaching ``a_prev``, the input of the pooling layer at ``position``,
    moves a parameter: f'(z) != 0 of the layer below (``traced``: the module's trace of the step;
    its ``fprime``; a row-wise activation: everywhere); nowhere on the input x itself (position 0:
    no parameter below it, no trace needed)."""
    if position == 0:
        return np.zeros(np.shape(a_prev), dtype=bool)
    fprime, z = traced.get(f"fprime{position}"), traced[f"z{position}"]
    return np.ones(z.shape, dtype=bool) if fprime is None else np.broadcast_to(fprime != 0, z.shape).copy()


class TieFound(NamedTuple):
    """The max-pooling window whose maximum comes nearest a rival: the pooling layer at
    ``position``, the window's index (row, positions.., channel), its maximum and the gap."""
    gap: float
    position: int
    index: tuple
    largest: float
    epoch: int
    batch: int


def tie_in_step(module, step: tuple, pools) -> Optional[TieFound]:
    """The max-pooling window (``pools``: [(position, (window, strides, padding))]) whose maximum
    comes nearest a live rival (:func:`window_gaps`) in one ``step`` of a training of ``module``
    (:func:`training_steps`); None without max pooling."""
    epoch, batch, step_params, xb, yb, (_, outputs, *_gathered) = step
    # once a step, for every pooling layer above another (pooling on x needs none: live_below)
    traced = module.trace(step_params, xb, yb) if any(position for position, _ in pools) else None

    def nearest(position, geometry):
        live = live_below(traced, position, outputs[position])
        gaps, largest = window_gaps(module, outputs[position], live, geometry)
        index = least_entry(gaps)
        return None if index is None else TieFound(float(gaps[index]), position, index, float(largest[index]),
                                                   epoch, batch)
    return _least((nearest(position, geometry) for position, geometry in pools), "gap")


def nearest_tie(module, steps: Iterator[tuple], pools) -> Optional[TieFound]:
    """:func:`tie_in_step`'s nearest over the ``steps`` of a training (:func:`training_steps`)."""
    if not pools:
        return None
    return _least((tie_in_step(module, step, pools) for step in steps), "gap")


def near_a_kink(module, rules: DrawRules, params: dict, x: np.ndarray, y: np.ndarray) -> bool:
    """Some value comes within ``kink_margin`` of a kink, or a max-pooling window's maximum within
    it of a rival, at some step of the whole training (kink_margin 0: allowed anywhere). One
    replay of the training serves both searches, and stops at the first step that comes near."""
    if rules.kink_margin <= 0:
        return False
    for step in training_steps(module, params, x, y, rules.epochs, rules.batch_size):
        kink = kink_in_step(step, rules.layer_kinks, rules.loss_kinks)
        if kink is not None and kink.distance < rules.kink_margin:
            return True
        tie = tie_in_step(module, step, rules.pools)
        if tie is not None and tie.gap < rules.kink_margin:
            return True
    return False
