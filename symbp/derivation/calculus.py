"""Small SymPy helpers for differentiating row formulas written with indexed sums.

A row formula uses ``IndexedBase`` rows (``z[i]``, ``y[i]``) and ``Sum`` over a unit index.
``row_gradient(expr, z, j)`` is ``d expr / d z[j]``: SymPy differentiates, the Kronecker deltas
that appear (``d z[i] / d z[j]``) are summed out here, for ``j`` inside the row.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

#: the unit index a row gradient is taken at, and the index a row formula sums over
j = sp.Symbol("j", integer=True, nonnegative=True)
i = sp.Symbol("i", integer=True, nonnegative=True)
#: units in the row, rows in the batch
K = sp.Symbol("K", integer=True, positive=True)
B = sp.Symbol("B", integer=True, positive=True)


def row_gradient(expr: sp.Expr, row: sp.IndexedBase, at: sp.Symbol = j) -> sp.Expr:
    """d expr / d row[at], with every Kronecker delta summed out."""
    return pull_out_of_sums(_sum_out_deltas(sp.diff(expr, row[at]), at))


def pull_out_of_sums(expr: sp.Basic) -> sp.Basic:
    """Split sums over added terms and move factors free of the summation index outside."""
    def split(total: sp.Sum) -> sp.Expr:
        (index, *_), = total.limits
        result = sp.S.Zero
        for term in sp.Add.make_args(sp.expand_mul(total.function)):
            inside, outside = [], []
            for factor in sp.Mul.make_args(term):
                (inside if factor.has(index) else outside).append(factor)
            result += sp.Mul(*outside) * (sp.Sum(sp.Mul(*inside), *total.limits) if inside
                                          else (total.limits[0][2] - total.limits[0][1] + 1))
        return result
    return expr.replace(lambda e: isinstance(e, sp.Sum), split)


def clean_floats(expr: sp.Basic) -> sp.Basic:
    """Floats within rounding of an integer become that integer (0.99999999999999997 -> 1)."""
    return expr.replace(
        lambda e: isinstance(e, sp.Float) and abs(float(e) - round(float(e))) < 1e-14,
        lambda e: sp.Integer(round(float(e))))


def _is_delta_at(node: sp.Basic, index: sp.Symbol, at: sp.Symbol) -> bool:
    return isinstance(node, sp.KroneckerDelta) and set(node.args) == {index, at}


def _split_at(term: sp.Expr, index: sp.Symbol, at: sp.Symbol) -> tuple[sp.Expr, sp.Expr]:
    """term = picked * delta(index, at) + rest; returns (picked at index=at, rest)."""
    picked, rest = sp.S.Zero, sp.S.Zero
    for part in sp.Add.make_args(sp.expand_mul(term)):
        if part.has(sp.KroneckerDelta) and any(_is_delta_at(n, index, at) for n in sp.preorder_traversal(part)):
            picked += part.replace(lambda n: _is_delta_at(n, index, at), lambda n: sp.S.One)
        else:
            rest += part
    return picked.subs(index, at), rest


def _sum_out_deltas(expr: sp.Basic, at: sp.Symbol) -> sp.Basic:
    if isinstance(expr, sp.Sum):
        summand = _sum_out_deltas(expr.function, at)
        (index, low, high), = expr.limits
        return _sum_at(summand, index, at, expr.limits)
    if not expr.args or isinstance(expr, sp.Indexed):
        return expr
    return expr.func(*[_sum_out_deltas(arg, at) for arg in expr.args])


def _sum_at(summand: sp.Expr, index: sp.Symbol, at: sp.Symbol, limits) -> sp.Expr:
    if not summand.has(sp.KroneckerDelta):
        return sp.S.Zero if summand == 0 else sp.Sum(summand, *limits)
    summand = sp.piecewise_fold(summand)
    if isinstance(summand, sp.Piecewise):
        picked, rest = [], []
        for expr, cond in summand.args:
            p, r = _split_at(expr, index, at)
            picked.append((p, cond.subs(index, at)))
            rest.append((r, cond))
        total = sp.Piecewise(*picked)
        if any(r != 0 for r, _ in rest):
            total += sp.Sum(sp.Piecewise(*rest), *limits)
        return total
    picked, rest = _split_at(summand, index, at)
    return picked + (sp.Sum(rest, *limits) if rest != 0 else sp.S.Zero)


def same_function(a: sp.Expr, b: sp.Expr, var: sp.Symbol, points=(-2.3, -0.7, 0.4, 1.9)) -> bool:
    """True when a and b agree (to 1e-9) at the sample points of var where both are defined."""
    seen = False
    for x in points:
        try:
            va, vb = complex(a.subs(var, x).evalf()), complex(b.subs(var, x).evalf())
        except (TypeError, ValueError):
            continue
        if not (np.isfinite(va) and np.isfinite(vb)):
            continue
        seen = True
        if abs(va - vb) > 1e-9 * max(1.0, abs(va)):
            return False
    return seen


# ---------------------------------------------------------------- entry formulas (indexed layers)
def _flat_terms(expr: sp.Expr) -> list[tuple[sp.Expr, tuple]]:
    """expr as added (product, limits) terms: nested sums flattened, sums split over their terms."""
    out = []
    for term in sp.Add.make_args(sp.expand(expr)):
        if isinstance(term, sp.Sum):
            out += [(inner, tuple(term.limits) + limits) for inner, limits in _flat_terms(term.function)]
        elif isinstance(term, sp.Mul) and any(isinstance(f, sp.Sum) for f in term.args):
            outside = sp.Mul(*[f for f in term.args if not isinstance(f, sp.Sum)])
            total, = [f for f in term.args if isinstance(f, sp.Sum)]
            out += [(outside * inner, limits) for inner, limits in _flat_terms(total)]
        else:
            out.append((term, ()))
    return out


def _sum_out_kronecker(term: sp.Expr, limits: tuple) -> sp.Expr:
    """Sum ``term`` over ``limits``, each KroneckerDelta(i, j) of a summed i done by setting i = j
    (j is in i's range: it is an entry index of the same array). Sums left become one Sum."""
    limits = list(limits)
    while True:
        delta = next((d for d in term.atoms(sp.KroneckerDelta)
                      if any(s in d.args for s, *_ in limits)), None)
        if delta is None:
            break
        summed = next(s for s, *_ in limits if s in delta.args)
        other = delta.args[1] if delta.args[0] == summed else delta.args[0]
        term = term.xreplace({delta: sp.S.One}).xreplace({summed: other})
        limits = [lim for lim in limits if lim[0] != summed]
    return sp.Sum(term, *limits) if limits and term != 0 else (term if not limits else sp.S.Zero)


def entry_gradient(entry: sp.Expr, upstream: sp.IndexedBase, out: tuple, ranges: dict,
                   target: sp.Indexed) -> sp.Expr:
    """dL/d target = sum_out upstream[out] d entry[out] / d target: SymPy differentiates each term
    of ``upstream[out] * entry`` (Kronecker deltas appear for every index), the deltas are summed
    out here. ``out``: the entry's index symbols; ``ranges``: each index symbol's count."""
    limits = tuple((s, 0, ranges[s] - 1) for s in out)
    total = sp.S.Zero
    for term, inner in _flat_terms(upstream[out] * entry):
        derivative = sp.diff(term, target)
        if derivative != 0:
            total += _sum_out_kronecker(sp.expand(derivative), inner + limits)
    return total
