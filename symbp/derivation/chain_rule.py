"""The scalar chain rule of one parameter entry (``--explain W1[2,0]``), derived by SymPy.

A layer rule states the indexed formula of one output entry (``LayerRule.entry``; Dense's is
``z_l[r, c] = sum_i a_{l-1}[r, i] W_{l-1}[i, c] + b_{l-1}[c]``). For an entry ``p`` of a
parameter of layer l the loss depends on ``p`` only through ``z_l[r, c]`` of each row r, so

    dL/dp = sum_r dL/dz_l[r, c] * dz_l[r, c]/dp,

and, for an element-wise activation (not the output of a loss Keras takes on the logits),
``dL/dz_l[r, c] = dL/da_l[r, c] * f'(z_l[r, c])`` with, below the output layer,
``dL/da_l[r, c] = sum_k delta_{l+1}[r, k] * dz_{l+1}[r, k]/da_l[r, c]``. Each partial of a
``z`` is SymPy's derivative of the layer rule's entry (:func:`layer_entry`); ``f'`` is the
activation's derivative of the derivation model; ``delta``, ``g`` and ``f'(z)`` are the module's
trace (their own rules are worked out in the handout's backprop). :func:`chain_rule` returns the
factors with their values, so their products can be checked against the module's gradient.

An indexed layer's parameter (a convolution's kernel ``W[u, v, k, c]`` or bias ``b[c]``) reaches
the loss through channel c of its feature map at every sample and position, so
``dL/dp = sum_{n, p, q} delta_l[n, p, q, c] * dz_l[n, p, q, c]/dp`` (:func:`indexed_chain_rule`),
each partial SymPy's derivative of the layer's indexed entry (a window entry for a kernel).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import sympy as sp

from . import naming

#: a generic row and unit of an entry (the rule in symbols before it is filled in per row)
ROW, SUM_UNIT = sp.Symbol("r", integer=True, nonnegative=True), sp.Symbol("k", integer=True, nonnegative=True)


def entries(l: int) -> dict[str, sp.IndexedBase]:
    """The indexed bases of layer l's rows, named as the module names its arrays."""
    return {"a_prev": sp.IndexedBase(naming.OUTPUT.format(l=l - 1)), "a": sp.IndexedBase(naming.OUTPUT.format(l=l)),
            "z": sp.IndexedBase(naming.PRE_ACTIVATION.format(l=l)), "delta": sp.IndexedBase(naming.DELTA.format(l=l)),
            "g": sp.IndexedBase(naming.UPSTREAM.format(l=l))}


def parameter_entries(layer) -> dict[str, sp.IndexedBase]:
    """The indexed base of each parameter of a layer instance, by Keras variable name (W1, b1)."""
    return {name.kind: sp.IndexedBase(name.code) for name in layer.param_names}


def layer_entry(layer, row, unit) -> sp.Expr:
    """z_l[row, unit] of a layer instance, by its rule's ``entry`` (ValueError if it states none)."""
    if layer.rule.entry is None:
        raise ValueError(f"--explain: the {layer.rule.name} layer rule states no indexed entry")
    return layer.rule.entry(entries(layer.number)["a_prev"], parameter_entries(layer), row, unit, layer.input_shape)


def partial(expr: sp.Expr, entry: sp.Indexed) -> sp.Expr:
    """d expr / d entry, sums of Kronecker deltas done (SymPy's derivative of an indexed formula)."""
    return sp.diff(expr, entry).doit()


@dataclass(frozen=True)
class Target:
    """A parameter entry: W{n}[row, col] (row given) or b{n}[col]; ``indices``: an entry of
    another rank (a convolution's kernel W0[u, v, k, c]), its unit the last index."""
    name: str
    row: Optional[int]
    col: int
    indices: tuple = ()

    @property
    def param(self) -> naming.ParamName:
        return naming.ParamName.parse(self.name)

    @property
    def layer(self) -> int:
        """l = 1 .. L of the layer it belongs to."""
        return self.param.layer + 1

    @property
    def index(self) -> tuple[int, ...]:
        if self.indices:
            return tuple(self.indices)
        return (self.col,) if self.row is None else (self.row, self.col)

    def entry(self) -> sp.Indexed:
        return sp.IndexedBase(self.name)[self.index]


@dataclass(frozen=True)
class Factor:
    """One factor of a row's product: which partial (``of`` by ``by``), its rule, its value."""
    of: sp.Indexed          # the differentiated entry, or the loss (None)
    by: sp.Indexed
    rule: sp.Expr           # its derived formula in entries (a sum over k for dL/da)
    value: float
    terms: tuple = ()       # dL/da's (delta_{l+1}[r, k], dz_{l+1}[r, k]/da_l[r, c]) for each k


@dataclass(frozen=True)
class ChainRule:
    target: Target
    through_activation: bool
    rows: tuple[tuple[Factor, ...], ...]   # per row of the batch, the factors of its product
    entries: dict                          # every entry the factors name -> its value
    #: the names of the leading indices the sum runs over: the batch row (r), or a feature
    #: map's sample and position (n, p, q) for an indexed layer
    summed: tuple[str, ...] = ("r",)

    @property
    def products(self) -> list[float]:
        return [float(np.prod([f.value for f in factors])) for factors in self.rows]

    @property
    def total(self) -> float:
        return float(sum(self.products))


def value_of(expr: sp.Expr, arrays: dict) -> float:
    """The number of an expression in entries: each entry replaced by its array's value."""
    numbers = {e: float(np.asarray(arrays[str(e.base)])[tuple(int(i) for i in e.indices)])
               for e in expr.atoms(sp.Indexed)}
    return float(expr.xreplace(numbers))


def upstream_terms(model, l: int, row, unit) -> list[tuple[sp.Indexed, sp.Expr]]:
    """dL/da_l[row, unit] = sum_k delta_{l+1}[row, k] dz_{l+1}[row, k]/da_l[row, unit] (l < L):
    each k's (delta entry, derived partial); ``unit`` symbolic (:data:`SUM_UNIT`) gives the rule."""
    above = model.layers[l]      # layer l + 1
    delta, a = entries(l + 1)["delta"], entries(l)["a"][row, unit]
    return [(delta[row, k], partial(layer_entry(above.layer, row, k), a)) for k in range(above.units)]


def upstream_factor(model, l: int, row: int, unit: int, arrays: dict) -> Factor:
    """dL/da_l[row, unit]: the output layer's g (the trace's), else the sum over the layer above."""
    e = entries(l)
    if l == model.depth:
        return Factor(e["a"][row, unit], None, e["g"][row, unit], value_of(e["g"][row, unit], arrays))
    terms = tuple(upstream_terms(model, l, row, unit))
    rule = sp.Add(*[delta * local for delta, local in terms])
    return Factor(e["a"][row, unit], None, rule, value_of(rule, arrays), terms)


def chain_rule(model, target: Target, trace: dict, params: dict, shown_derivative: sp.Expr | None = None) -> ChainRule:
    """The factors of dL/dp for each row of the traced batch, derived and valued (see module).
    ``shown_derivative``: f' as a handout writes it (its constants by name: 1/sqrt 2, lambda),
    printed in place of the model's; its value is the trace's either way."""
    l = target.layer
    layer, e = model.layers[l - 1], entries(l)
    if layer.layer.rule.indexed:
        return indexed_chain_rule(model, target, trace, params)
    c = target.index[layer.layer.rule.parameter(target.param.kind).unit_axis]   # the unit it feeds
    arrays = {**trace, **params}
    through = layer.activation.derivative is not None and not (l == model.depth and model.loss.on_logits)
    rows = []
    for r in range(len(trace[naming.OUTPUT.format(l=0)])):
        z = e["z"][r, c]
        factors = []
        if through:
            factors.append(upstream_factor(model, l, r, c, arrays))
            fprime = trace[naming.DERIVATIVE.format(l=l)][r, c]
            fprime_rule = layer.activation.derivative if shown_derivative is None else shown_derivative
            factors.append(Factor(e["a"][r, c], z, fprime_rule, float(fprime)))
        else:
            factors.append(Factor(z, None, e["delta"][r, c], value_of(e["delta"][r, c], arrays)))
        local = partial(layer_entry(layer.layer, r, c), target.entry())
        factors.append(Factor(z, target.entry(), local, value_of(local, arrays)))
        rows.append(tuple(factors))
    named = set().union(*(factor.rule.atoms(sp.Indexed) | {factor.of} for factors in rows for factor in factors))
    named |= {factor.by for factors in rows for factor in factors if factor.by is not None}
    concrete = {e for e in named if str(e.base) in arrays and all(i.is_Integer for i in e.indices)}
    return ChainRule(target, through, tuple(rows), {e: value_of(e, arrays) for e in concrete})


def indexed_entry(layer, sizes: dict) -> tuple[tuple, sp.Expr]:
    """(z's index symbols, z_l[n, p.., c]) of an indexed layer instance: its rule's entry formula
    (:func:`symbp.derivation.derive.derive_indexed_layer`) with this layer's ``sizes`` as its
    sums' limits and its bases named as the module names its arrays (win1, delta1, W0, b0)."""
    calc, l = layer.calculus, layer.number
    bases = {calc.win: sp.IndexedBase(f"win{l}"), calc.delta: sp.IndexedBase(naming.DELTA.format(l=l))}
    bases.update({calc.parameters[name.kind]: sp.IndexedBase(name.code) for name in layer.layer.param_names})
    renamed = calc.z.replace(lambda e: isinstance(e, sp.IndexedBase) and e in bases, lambda e: bases[e])
    return calc.out, renamed.xreplace(sizes)


def indexed_chain_rule(model, target: Target, trace: dict, params: dict) -> ChainRule:
    """dL/dp = sum_{n, p, q} delta_l[n, p, q, c] * dz_l[n, p, q, c]/dp for an entry p of an
    indexed layer's parameter feeding channel c (a kernel's W[u, v, k, c], a bias b[c]): the loss
    reaches p only through channel c of the feature map z_l, at every sample and position. Each
    partial is SymPy's derivative of the rule's entry at that position (a window entry
    win_l[n, p, q, k, u, v] for a kernel, 1 for a bias), taken once at symbolic n, p, q and filled
    in at each (one derivative per position took 33 s for a batch of 8 LeNet images); delta_l is
    the module's trace."""
    layer, l = model.layers[target.layer - 1], target.layer
    rows_in_batch = len(trace[naming.OUTPUT.format(l=0)])
    out, z_rule = indexed_entry(layer, layer.index_sizes(rows_in_batch))
    arrays = {**trace, **params}
    delta, z = sp.IndexedBase(naming.DELTA.format(l=l)), sp.IndexedBase(naming.PRE_ACTIVATION.format(l=l))
    c = target.index[-1]
    generic = partial(z_rule.xreplace({out[-1]: c}), target.entry())   # at any sample and position
    rows = []
    for position in np.ndindex(*np.shape(trace[naming.DELTA.format(l=l)])[:-1]):
        local = generic.xreplace(dict(zip(out, position)))
        z_entry, d_entry = z[(*position, c)], delta[(*position, c)]
        rows.append((Factor(z_entry, None, d_entry, value_of(d_entry, arrays)),
                     Factor(z_entry, target.entry(), local, value_of(local, arrays))))
    named = {e for factors in rows for factor in factors for e in factor.rule.atoms(sp.Indexed)}
    return ChainRule(target, False, tuple(rows), {e: value_of(e, arrays) for e in named},
                     tuple(str(i) for i in out[:-1]))
