"""Printers from the derivation model's SymPy expressions to whole-array NumPy code.

A row expression (``a[j]``, ``Sum(.., (i, 0, K - 1))``) prints as array code: an indexed row
prints as the array bound to its base, a sum over the unit index as a sum over the last axis
(kept, so it broadcasts back against the row). Matrix expressions of the Dense rule print with
``@`` and ``.T``; ``1 b`` (bias added to every row) prints as ``b``, ``1 delta`` (column sums) as
``delta.sum(axis=0)``.

Before printing, ``stable_forms`` rewrites patterns that overflow as written into the stable
helpers of ``HELPERS`` (softmax, log-sum-exp, sigmoid, softplus) and e^x in a logistic
denominator into sigmoid(x) (``logistic_form``); the printer records the helpers it used, and
the module template defines only those.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from ..rules.losses import EPSILON, Clip, clip


class NonFiniteLiteral(ValueError):
    """A number to be printed as a literal is inf or nan: a bug (the spec's numbers are checked
    finite, also in float32); printing it would write a module that fails on import."""


def float_literal(value) -> str:
    """The one way a number becomes code: ``repr`` of the Python float (it round-trips exactly).

    Never a bare ``inf`` or ``nan`` (names a generated module does not define): those raise
    NonFiniteLiteral instead.
    """
    number = float(value)
    if not math.isfinite(number):
        raise NonFiniteLiteral(f"a non-finite number ({number!r}) would be printed as a literal")
    return repr(number)


def array_literal_rows(values) -> str:
    """Nested lists of float literals, row by row (``[[1.0, 2.5], [...]]``), finite only."""
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise NonFiniteLiteral(f"a non-finite number would be printed in an array literal of shape {array.shape}")
    def fmt(rows):
        if rows.ndim == 1:  # a row: repr of each Python float (finite, checked above), mapped in one go
            return "[" + ", ".join(map(repr, rows.tolist())) + "]"
        return "[" + ", ".join(fmt(row) for row in rows) + "]"
    return fmt(array)


class FiniteNumbers:
    """Printer mixin: numbers print through float_literal; inf, -inf, zoo and nan raise."""

    def _print_Float(self, expr):
        return float_literal(expr)

    def _print_non_finite(self, expr):
        raise NonFiniteLiteral(f"a non-finite number ({expr}) would be printed as a literal")

    _print_Infinity = _print_NegativeInfinity = _print_ComplexInfinity = _print_NaN = _print_non_finite


class Softmax(sp.Function):
    """softmax(z)_j printed as a stable row-wise helper (not differentiated: printing only)."""


class LogSumExp(sp.Function):
    """log sum_k e^{z_k}, per row, kept as a column."""


class Sigmoid(sp.Function):
    """1 / (1 + e^{-x})"""


class Softplus(sp.Function):
    """log(1 + e^x)"""


#: the clipping bounds of the cross-entropies' probability paths (keras.config.epsilon())
CLIP_LOW, CLIP_HIGH = float(EPSILON), float(1 - EPSILON)


def _clip_bounds(condition):
    """(q, "low") for each q < eps, (q, "high") for each q > 1 - eps in a condition."""
    for atom in (condition.args if isinstance(condition, sp.Or) else (condition,)):
        if isinstance(atom, sp.StrictLessThan) and atom.rhs.is_number and float(atom.rhs) == CLIP_LOW:
            yield atom.lhs, "low"
        elif isinstance(atom, sp.StrictGreaterThan) and atom.rhs.is_number and float(atom.rhs) == CLIP_HIGH:
            yield atom.lhs, "high"


def clip_inside(piecewise: sp.Piecewise) -> sp.Piecewise:
    """In the branch where earlier conditions left q inside [eps, 1 - eps], write q as clip(q).

    Exact there (q = clip(q)), and stable: np.where evaluates every branch on every entry, and
    log q, 1/q, 1/(1 - q) of the entries another branch takes would warn of invalid values.
    """
    excluded: dict = {}
    pieces = []
    for value, condition in piecewise.args:
        inside = [q for q, sides in excluded.items() if sides == {"low", "high"}]
        if inside:
            value = value.xreplace({q: clip(q) for q in inside})
        pieces.append((value, condition))
        for q, side in _clip_bounds(condition):
            excluded.setdefault(q, set()).add(side)
    if len(pieces) == 3 and isinstance(pieces[2][0], Clip):   # the whole of clip(q) itself
        q = pieces[2][0].args[0]
        if [(float(v), list(_clip_bounds(c))) for v, c in pieces[:2]] == \
                [(CLIP_LOW, [(q, "low")]), (CLIP_HIGH, [(q, "high")])]:
            return pieces[2][0]
    return sp.Piecewise(*pieces, evaluate=False)


#: helper name -> (source lines of its body, docstring); printed into the generated module
HELPERS = {
    "_softmax": ("z", "Row-wise e^z / sum e^z, shifted by the row maximum so it cannot overflow.", [
        "e = np.exp(z - z.max(axis=-1, keepdims=True))",
        "return e / e.sum(axis=-1, keepdims=True)",
    ]),
    "_logsumexp": ("z", "Row-wise log sum e^z as a column, shifted by the row maximum.", [
        "m = z.max(axis=-1, keepdims=True)",
        "return m + np.log(np.exp(z - m).sum(axis=-1, keepdims=True))",
    ]),
    "_sigmoid": ("x", "1 / (1 + e^-x) without overflow for large |x|.", [
        "return np.exp(-np.logaddexp(0, -x))",
    ]),
    "_one_hot": ("labels, outputs", "One-hot rows (outputs' dtype) of class indices: (B,) or (B, 1).", [
        "classes = np.arange(outputs.shape[-1])",
        "return (np.reshape(labels, (-1, 1)) == classes).astype(outputs.dtype)",
    ]),
    "_erfc": ("x", "Complementary error function, element-wise (math.erfc), dtype kept.", [
        "return np.vectorize(math.erfc, otypes=[np.asarray(x).dtype])(x)",
    ]),
    "_windows": ("a, window, strides, padding",
                 "The windows of a (batch, positions.., channels) as (batch, positions.., channels, offsets..): "
                 "padded as TensorFlow pads for \"same\" (the larger half after), then strided. A view: no copy.", [
        "axes = tuple(range(1, 1 + len(window)))",
        "if padding == \"same\":",
        "    totals = [max((-(-a.shape[i] // s) - 1) * s + k - a.shape[i], 0) for i, k, s in zip(axes, window, strides)]",
        "    a = np.pad(a, [(0, 0), *((t // 2, t - t // 2) for t in totals), (0, 0)])",
        "view = np.lib.stride_tricks.sliding_window_view(a, window, axis=axes)",
        "return view[(slice(None), *(slice(None, None, s) for s in strides))]",
    ]),
    "_window_rows": ("a, window, strides, padding",
                     "The windows of a as _windows reads them, (batch, positions.., channels, offsets..), "
                     "copied once into a matrix (im2col): a row per batch entry and position, a column "
                     "per window offset and channel. A convolution's forward product and its kernel "
                     "gradient both read it as a matrix (a transposed view), with no copy of their own. "
                     "It is laid out by rows, each window's entries contiguous (copied a window row at a "
                     "time: width x channels numbers), except for one channel read at stride 1, where it "
                     "is laid out by columns (copied a whole input row at a time): 7x faster for a "
                     "28x28 grey image.", [
        "win = _windows(a, window, strides, padding)",
        "rank = len(window)",
        "positions, channel, offsets = list(range(1 + rank)), [1 + rank], list(range(2 + rank, 2 + 2 * rank))",
        "by_columns = a.shape[-1] == 1 and strides[-1] == 1",
        "order = offsets + channel + positions if by_columns else positions + offsets + channel",
        "return np.ascontiguousarray(win.transpose(order)).transpose(np.argsort(order))",
    ]),
    "_windows_adjoint": ("dwin, shape, window, strides, padding",
                         "The adjoint of _windows: every window entry added back where it was read, "
                         "padding dropped (one pass per offset in the window, none per pixel). The first "
                         "offset's entries are written, not added: reading untouched zeros first would cost "
                         "the system a second page fault per page. Where the windows tile the input "
                         "(strides = window, no row left over) each entry is read once: the adjoint is "
                         "dwin laid back in place, a reshape (a view when dwin is laid out as the input, "
                         "as products with _first_max's mask are).", [
        "positions = dwin.shape[1:1 + len(window)]",
        "if tuple(strides) == tuple(window) and all(n * s == shape[1 + i] for i, (n, s) in enumerate(zip(positions, strides))):",
        "    rank = len(window)",
        "    return dwin.transpose(0, *(d for i in range(rank) for d in (1 + i, 2 + rank + i)), 1 + rank).reshape(shape)",
        "axes = tuple(range(1, 1 + len(window)))",
        "totals = [max((-(-shape[i] // s) - 1) * s + k - shape[i], 0) if padding == \"same\" else 0"
        " for i, k, s in zip(axes, window, strides)]",
        "padded = np.zeros((shape[0], *(shape[i] + t for i, t in zip(axes, totals)), shape[-1]), dwin.dtype)",
        "for offset in np.ndindex(*window):",
        "    rows = (slice(None), *(slice(o, o + s * (n - 1) + 1, s) for o, s, n in zip(offset, strides, positions)))",
        "    if any(offset):",
        "        padded[rows] += dwin[(Ellipsis, *offset)]",
        "    else:",
        "        padded[rows] = dwin[(Ellipsis, *offset)]",
        "return padded[(slice(None), *(slice(t // 2, t // 2 + shape[i]) for i, t in zip(axes, totals)))]",
    ]),
    "_first_max": ("win, rank, inside=None",
                   "(mask, maximum) of each window. mask: True at the first maximum (its offsets in C "
                   "order), False elsewhere (a boolean: a quarter of float32's memory, and 1 and 0 in "
                   "every product): the entry max pooling selects, where TensorFlow sends its gradient "
                   "on ties (a NaN is the maximum, as for argmax). maximum: that entry, found on the way, "
                   "so the pooled value needs no product with the mask (sum(mask*win) over the window "
                   "is the same number, 12% of a LeNet step more, and NaN where a window holds two "
                   "infinities: 0*inf). inside: 1 where a window reads the input, 0 at padding (never "
                   "selected). One pass per offset in the window, none per pixel: each pass reads one "
                   "entry of every window, the channels contiguous (a reduction over the window's own "
                   "small axes is 5x slower in NumPy); the mask is laid out as the input (each window "
                   "offset beside its position, channels innermost), so where windows tile the input, "
                   "products with it (einsum keeps its operands' layout) are too, and _windows_adjoint "
                   "lays them back with a reshape. A window of more than 16 entries (a large pool_size) "
                   "takes argmax over its entries instead: no loop over its pixels.", [
        "if inside is not None:",
        "    win = np.where(inside > 0, win, -np.inf)",
        "offsets = list(np.ndindex(*win.shape[-rank:]))",
        "if len(offsets) > 16:",
        "    flat = win.reshape(*win.shape[:-rank], -1)",
        "    first = flat.argmax(axis=-1)[..., None]",
        "    return (np.arange(flat.shape[-1]) == first).reshape(win.shape), np.take_along_axis(flat, first, -1)[..., 0]",
        "entries = [win[(Ellipsis, *offset)] for offset in offsets]",
        "top = entries[0]",
        "for entry in entries[1:]:",
        "    top = np.maximum(top, entry)",
        "positions = win.shape[1:-rank - 1]",
        "as_input = np.zeros((len(win), *(d for pair in zip(positions, win.shape[-rank:]) for d in pair), win.shape[-rank - 1]), bool)",
        "mask = as_input.transpose(0, *range(1, 2 * rank, 2), 2 * rank + 1, *range(2, 2 * rank + 1, 2)).reshape(win.shape)",
        "free = np.ones(top.shape, bool)  # no maximum taken yet in this window",
        "has_nan = bool(np.any(top != top))  # a window holding a NaN takes its first NaN",
        "for offset, entry in zip(offsets, entries):",
        "    first = entry == top",
        "    if has_nan:",
        "        first |= entry != entry",
        "    first &= free",
        "    mask[(Ellipsis, *offset)] = first",
        "    free ^= first",
        "return mask, top",
    ]),
    "_shared_max": ("win, rank",
                    "(mask, maximum) of each window, as Keras's GlobalMaxPooling takes them (tf.reduce_max): "
                    "mask 1/k at each of the window's k maxima, 0 elsewhere, so tied maxima share the "
                    "gradient (MaxPooling's tf.nn.max_pool gives it all to the first: _first_max); in "
                    "the windows' dtype, as TensorFlow divides. maximum: that entry.", [
        "flat = win.reshape(*win.shape[:-rank], -1)",
        "top = flat.max(axis=-1)",
        "ties = flat == top[..., None]",
        "with np.errstate(invalid=\"ignore\"):  # a window holding a NaN: no entry equals its maximum, 0/0 = NaN as TensorFlow's",
        "    mask = np.divide(ties, ties.sum(axis=-1, keepdims=True), dtype=win.dtype)",
        "return mask.reshape(win.shape), top",
    ]),
    "_channel_sums": ("a",
                      "The sums of a over every axis but the last (its channels), as a product with a "
                      "vector of ones: BLAS's, 5x faster than np.einsum's or a.sum's reduction over "
                      "the leading axes (for a LeNet delta of 64x26x26x8, 0.02 ms against 0.12 ms).", [
        "rows = a.reshape(-1, a.shape[-1])",
        "return np.ones(len(rows), a.dtype) @ rows",
    ]),
    "_mean_mask": ("win_of_ones, rank",
                   "1 / (the number of input entries in the window) at each of them, 0 at padding: "
                   "average pooling's weights (TensorFlow leaves padding out of the count).", [
        "counts = win_of_ones.sum(axis=tuple(range(-rank, 0)), keepdims=True)",
        "return win_of_ones / counts",
    ]),
}


def _exp_of(expr: sp.Expr):
    return expr.args[0] if isinstance(expr, sp.exp) else None


@lru_cache(maxsize=None)  # every layer prints the same few rules: rewrite each once
def stable_forms(expr: sp.Basic) -> sp.Basic:
    """Rewrite overflow-prone patterns into the stable helper functions above."""
    if isinstance(expr, sp.MatrixExpr):
        return expr
    def row_of_sum(total):
        if isinstance(total, sp.Sum) and isinstance(total.function, sp.exp):
            arg = total.function.args[0]
            if isinstance(arg, sp.Indexed) and arg.indices == (total.limits[0][0],):
                return arg.base
        return None

    def is_log_sum_exp(e):
        return isinstance(e, sp.log) and row_of_sum(e.args[0]) is not None

    expr = expr.replace(is_log_sum_exp, lambda e: LogSumExp(row_of_sum(e.args[0])))
    expr = expr.replace(lambda e: isinstance(e, sp.Piecewise), clip_inside)

    def is_softmax(e):
        if not e.is_Mul:
            return False
        num = [f for f in e.args if isinstance(f, sp.exp) and isinstance(f.args[0], sp.Indexed)]
        den = [f for f in e.args if f.is_Pow and f.exp == -1 and row_of_sum(f.base) is not None]
        return len(e.args) == 2 and len(num) == 1 and len(den) == 1 and \
            num[0].args[0].base == row_of_sum(den[0].base)

    def softmax_of(e):
        num = next(f for f in e.args if isinstance(f, sp.exp))
        return Softmax(num.args[0])

    expr = expr.replace(is_softmax, softmax_of)

    x = sp.Wild("x")
    expr = expr.replace(1 / (1 + sp.exp(-x)), lambda x: Sigmoid(x))
    expr = expr.replace(sp.exp(x) / (sp.exp(x) + 1), lambda x: Sigmoid(x))
    expr = expr.replace(sp.log(1 + sp.exp(x)), lambda x: Softplus(x))
    # log sigmoid(x) = -softplus(-x), log(1 - sigmoid(x)) = -softplus(x): finite at |x| = 800
    expr = expr.replace(lambda e: isinstance(e, sp.log) and isinstance(e.args[0], Sigmoid),
                        lambda e: -Softplus(-e.args[0].args[0]))
    expr = expr.replace(
        lambda e: isinstance(e, sp.log) and e.args[0].is_Add and len(e.args[0].args) == 2
        and 1 in e.args[0].args and any(isinstance(t, sp.Mul) and t.args[0] == -1
                                        and isinstance(t.args[1], Sigmoid) for t in e.args[0].args),
        lambda e: -Softplus(next(t for t in e.args[0].args if t != 1).args[1].args[0]))
    expr = logistic_form(expr)
    # constants evaluate to plain floats: a NumPy scalar such as np.sqrt(np.pi) would upcast float32
    expr = expr.replace(
        lambda e: isinstance(e, sp.Expr) and e.is_number and not e.is_Rational and e.args,
        lambda e: sp.Float(float(e.evalf(20)), 17))
    return expr


def logistic_form(expr: sp.Basic) -> sp.Basic:
    """Rewrite e^x that sits in a denominator sum (1 + e^x, the logistic pattern) in sigmoid(x).

    With s = sigmoid(x): e^x = s / (1 - s), e^-x = (1 - s) / s, sigmoid(-x) = 1 - s; the result
    is cancelled as a rational function of s. So silu's f'(z) = (e^z + z + 1) e^z / (e^z + 1)^2
    becomes s (1 + z - z s), finite at z = +-1000 where e^z overflows. Kept only when no e^{+-x}
    is left over.
    """
    arguments = set()
    for power in expr.atoms(sp.Pow):
        if power.exp.is_negative and power.base.is_Add:
            for term in power.base.atoms(sp.exp):
                x = term.args[0]
                if not x.is_number and not x.has(sp.Sum):
                    arguments.add(-x if x.could_extract_minus_sign() else x)
    for x in sorted(arguments, key=sp.default_sort_key):
        s = sp.Dummy("s")
        rewritten = expr.replace(
            lambda e: isinstance(e, Sigmoid) and e.args[0] in (x, -x),
            lambda e: s if e.args[0] == x else 1 - s)
        rewritten = rewritten.subs({sp.exp(x): s / (1 - s), sp.exp(-x): (1 - s) / s})
        if any(e.args[0].has(x) for e in rewritten.atoms(sp.exp)):
            continue
        expr = sp.factor(sp.cancel(rewritten)).subs(s, Sigmoid(x))
    return expr


def _may_fail(expr) -> bool:
    """Whether evaluating ``expr`` everywhere may overflow or divide by zero (exp, log, 1/x)."""
    if not isinstance(expr, sp.Basic):
        return False
    def may_fail(e):
        if isinstance(e, (sp.exp, sp.log, LogSumExp)):
            return True
        return e.is_Pow and not (e.exp.is_integer and e.exp.is_nonnegative)
    return any(may_fail(e) for e in sp.preorder_traversal(expr))


@lru_cache(maxsize=None)  # every layer prints the same Dense rule; a matrix product's check costs ~0.3 ms
def _leads_with_minus(term: sp.Basic) -> bool:
    return term.could_extract_minus_sign()


class PositiveFirst:
    """Printer mixin: in a sum, terms with a leading minus go last (a - y, w - eta g, 1 - a^2)."""

    def _as_ordered_terms(self, expr, order=None):
        terms = super()._as_ordered_terms(expr, order=order)
        return sorted(terms, key=_leads_with_minus)


class BoundNames:
    """Prints a matrix symbol or indexed row by the name ``names`` binds it to (its own name when
    unbound): the one binding rule of the NumPy, equation and LaTeX printers. A printer that
    prints symbols the same way sets ``_print_Symbol = _print_Dummy = BoundNames.bound_name``
    (the LaTeX printer falls back to LaTeX's own symbol printing instead)."""

    def bind_names(self, names: dict | None) -> None:
        self.names = {str(k): v for k, v in (names or {}).items()}

    def bound_name(self, expr):
        return self.names.get(expr.name, expr.name)

    _print_MatrixSymbol = bound_name

    def _print_Indexed(self, expr):
        return self.names.get(str(expr.base), str(expr.base))


class ArrayPrinter(BoundNames, FiniteNumbers, PositiveFirst, NumPyPrinter):
    """NumPy printer for the derivation model; ``names`` binds SymPy bases/symbols to variables."""

    printmethod = "_symbp_numpy"

    def __init__(self, names: dict | None = None, settings: dict | None = None):
        super().__init__(settings or {})
        self.bind_names(names)
        self.helpers_used: set[str] = set()
        #: a printed np.where has a branch or condition that can overflow or divide by zero
        self.branches_may_fail = False

    def doprint(self, expr, assign_to=None):  # noqa: D401 - SymPy's signature
        return super().doprint(stable_forms(expr), assign_to)

    def _module_format(self, fqn, register=True):
        if fqn.startswith("numpy."):
            return "np." + fqn[len("numpy."):]
        return super()._module_format(fqn, register)

    # ---- names (matrix symbols, indexed rows: BoundNames)
    _print_Symbol = _print_Dummy = BoundNames.bound_name

    def _print_IndexedBase(self, expr):
        return self.names.get(str(expr), str(expr))

    # ---- row sums and piecewise
    def _print_Sum(self, expr):
        return f"np.sum({self._print(expr.function)}, axis=-1, keepdims=True)"

    def _print_Piecewise(self, expr):
        if any(_may_fail(part) for pair in expr.args for part in pair):
            self.branches_may_fail = True
        *pieces, (last, cond) = expr.args
        if cond != sp.true:
            raise ValueError(f"Piecewise without a default branch: {expr}")
        if not pieces:
            return self._print(last)
        (value, condition), rest = pieces[0], pieces[1:]
        if value == 1 and last == 0 and not rest:
            return f"({self._print(condition)})"  # a mask: bool * array keeps the array's dtype
        if last == 0 and not rest and isinstance(condition, sp.StrictGreaterThan) \
                and condition.rhs == 0 and condition.lhs == value:
            return f"np.maximum({self._print(value)}, 0)"  # x if x > 0 else 0: one pass, no mask
        other = self._print(sp.Piecewise(*rest, (last, True))) if rest else self._print(last)
        text = f"np.where({self._print(condition)}, {self._print(value)}, {other})"
        if all(v.is_number for v, _ in expr.args):
            reference = next(iter(sorted(condition.atoms(sp.Indexed), key=str)))
            text += f".astype({self._print(reference)}.dtype)"
        return text

    def _print_Relational(self, expr):
        ops = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
        return f"{self._print(expr.lhs)} {ops[expr.rel_op]} {self._print(expr.rhs)}"

    def _print_Or(self, expr):
        return " | ".join(f"({self._print(arg)})" for arg in expr.args)

    def _print_And(self, expr):
        return " & ".join(f"({self._print(arg)})" for arg in expr.args)

    def _print_Max(self, expr):
        return self._fold("np.maximum", expr.args)

    def _print_Min(self, expr):
        return self._fold("np.minimum", expr.args)

    def _fold(self, function, args):
        text = self._print(args[0])
        for arg in args[1:]:
            text = f"{function}({text}, {self._print(arg)})"
        return text

    def _print_Abs(self, expr):
        return f"np.abs({self._print(expr.args[0])})"

    # ---- stable helpers
    def _helper(self, name, expr):
        self.helpers_used.add(name)
        return f"{name}({self._print(expr.args[0])})"

    def _print_Softmax(self, expr):
        return self._helper("_softmax", expr)

    def _print_LogSumExp(self, expr):
        return self._helper("_logsumexp", expr)

    def _print_Sigmoid(self, expr):
        return self._helper("_sigmoid", expr)

    def _print_Softplus(self, expr):
        return f"np.logaddexp(0, {self._print(expr.args[0])})"

    def _print_Clip(self, expr):
        return "np.clip({}, {}, {})".format(*(self._print(arg) for arg in expr.args))

    def _print_erfc(self, expr):
        return self._helper("_erfc", expr)

    # ---- a power below zero is a division, as the equations write it (NumPy's printer would
    # print x**(-1.0): a float power to keep integer arrays from failing, and unreadable)
    def _print_Pow(self, expr, rational=False):
        if expr.exp.is_Integer and expr.exp.is_negative:
            power = sp.Pow(expr.base, -expr.exp, evaluate=False) if expr.exp != -1 else expr.base
            return f"1/{self.parenthesize(power, PRECEDENCE['Pow'], strict=True)}"
        return super()._print_Pow(expr, rational)

    # ---- matrices of the layer rules (1 b: a row added to every row; 1^T delta: column sums)
    def _print_MatMul(self, expr):
        coefficient, matrices = expr.as_coeff_matrices()
        if coefficient != 1:   # a scalar times a product: (a.T @ delta)/B, never B**(-1.0) @ a.T @ delta
            return self._scaled(coefficient, sp.MatMul(*matrices) if len(matrices) > 1 else matrices[0])
        factors = list(expr.args)
        if isinstance(factors[0], sp.OneMatrix):
            rest = sp.MatMul(*factors[1:]).doit() if len(factors) > 2 else factors[1]
            if factors[0].shape[1] == 1:          # 1 b: the row b added to every row
                return self._print(rest)
            return f"{self._print(rest)}.sum(axis=0)"  # 1^T delta: sums over the batch
        return " @ ".join(self.parenthesize(f, 50) for f in factors)

    def _scaled(self, coefficient, matrix) -> str:
        """``coefficient * matrix`` with the coefficient's denominator as a division."""
        numerator, denominator = sp.fraction(coefficient)
        text = self.parenthesize(matrix, PRECEDENCE["Mul"])
        if numerator == -1:
            text = f"-{text}"
        elif numerator != 1:
            text = f"{self.parenthesize(numerator, PRECEDENCE['Mul'])}*{text}"
        return text if denominator == 1 else f"{text}/{self.parenthesize(denominator, PRECEDENCE['Pow'])}"

    def _print_Transpose(self, expr):
        return f"{self.parenthesize(expr.arg, 60)}.T"

    def _print_MatAdd(self, expr):
        return " + ".join(self._print(arg) for arg in expr.args)


def _letters(symbols) -> dict:
    """One einsum letter per index symbol: its own name (n, p, q, k, u, v, c) when free, else the
    first unused letter."""
    out: dict = {}
    for symbol in symbols:
        if symbol not in out:
            own = str(symbol).rstrip("'")
            used = set(out.values())
            out[symbol] = own if len(own) == 1 and own not in used else \
                next(letter for letter in "abcdefghijklmnopqrstuvwxyz" if letter not in used)
    return out


def contraction(first: sp.Indexed, second: sp.Indexed, target: tuple):
    """(transposition of ``first``, of ``second``, number of summed axes) with which
    ``np.tensordot(first.transpose(..), second.transpose(..), axes=n)`` is sum_{shared} first *
    second for the entries ``target``, in its order; None when the product is no such
    contraction (an index kept by both or summed in one only, or the target not ``first``'s
    kept indices then ``second``'s).

    A contraction of two arrays over their shared indices is one matrix product of the two
    reshaped (one copy of a strided window view, then BLAS): the convolution, its kernel
    gradient and the windows' gradient all are; ``np.einsum`` gets there through its own path
    search and transposes, 2-3x slower on these shapes. The shared indices are summed in the
    order of the array with fewer indices (the kernel or delta, read in place): a kernel's
    (u.., k) is its input's own memory order (rows, columns, channels), so the windows' copy
    reads runs of channels (5x faster than in the view's (k, u..) order). The result comes out
    in the target's order and C-contiguous (the windows' adjoint adds it back 2x faster so).
    """
    a, b = first.indices, second.indices
    kept_first, kept_second = [s for s in a if s not in b], [s for s in b if s not in a]
    split = len(kept_first)
    if len(set(a)) < len(a) or len(set(b)) < len(b) or set(target[:split]) != set(kept_first) \
            or set(target[split:]) != set(kept_second) or len(target) != split + len(kept_second):
        return None
    shared = [s for s in (a if len(a) < len(b) else b) if s in a and s in b]
    return ([a.index(s) for s in (*target[:split], *shared)],
            [b.index(s) for s in (*shared, *target[split:])], len(shared))


class EinsumPrinter(ArrayPrinter):
    """Prints an entry formula (a sum of products of indexed arrays, as the indexed layers' rules
    are) for the entries ``target`` (its index symbols, in order) as whole-array NumPy: each added
    term a contraction of two arrays over their shared indices as one ``np.tensordot`` (BLAS: see
    :func:`contraction`), with ``offsets_summed`` a product summed over a small window's
    offsets only as a sum over them (:meth:`_window_offsets`), any other product one
    ``np.einsum``, or the array itself when it is already indexed by (a suffix of) the target, so
    it broadcasts (the bias b[c] added to every window position)."""

    def __init__(self, target: tuple, names: dict | None = None, offsets_summed: bool = False):
        super().__init__(names)
        self.target = tuple(target)
        self.offsets_summed = offsets_summed   # a sum over a (small) window's offsets as a Python sum

    def doprint(self, expr, assign_to=None):  # noqa: D401 - SymPy's signature
        from ..derivation.calculus import _flat_terms
        return " + ".join(self._term(product) for product, _ in _flat_terms(expr))

    def _term(self, product: sp.Expr) -> str:
        coefficient, factors = product.as_coeff_mul()
        arrays = [f for f in factors if isinstance(f, sp.Indexed)]
        others = [f for f in factors if not isinstance(f, sp.Indexed)]
        if len(arrays) == 1 and arrays[0].indices == self.target[len(self.target) - len(arrays[0].indices):]:
            text = self._print(arrays[0])
        elif len(arrays) == 2 and (contracted := self._tensordot(*arrays)):
            text = contracted
        elif len(arrays) == 1 and len(self.target) == 1 and self.target[-1:] == arrays[0].indices[-1:] \
                and len(set(arrays[0].indices)) == len(arrays[0].indices) > 1:
            self.helpers_used.add("_channel_sums")   # a bias's gradient: delta summed over all but channels
            text = f"_channel_sums({self._print(arrays[0])})"
        elif self.offsets_summed and arrays and (offsets := self._window_offsets(arrays)):
            text = offsets
        else:
            letters = _letters([s for f in arrays for s in f.indices] + list(self.target))
            inputs = ",".join("".join(letters[s] for s in f.indices) for f in arrays)
            output = "".join(letters[s] for s in self.target)
            text = f'np.einsum("{inputs}->{output}", {", ".join(self._print(f) for f in arrays)})'
        scale = [self._print(f) for f in others] + ([] if coefficient == 1 else [self._print(coefficient)])
        return " * ".join([*scale, text])

    def _window_offsets(self, arrays: list) -> str | None:
        """A product of arrays all indexed by the target then the summed window offsets (average
        pooling's weights times its windows) as a sum over the offsets: ``sum(mask2[..., u, v]*win2[...,
        u, v] for u, v in np.ndindex(win2.shape[-2:]))``, one whole-array product per offset, or None.
        Each reads one entry of every window, channels contiguous; np.einsum's reduction over a
        strided view's two small trailing axes ran 2.5x slower (LeNet's first pooling: 0.82 ms
        against 0.33 ms). Not for global pooling, whose window is the whole input: a loop over
        its offsets would be a loop over pixels."""
        indices = arrays[0].indices
        summed = indices[len(self.target):]
        if not summed or indices[:len(self.target)] != self.target or any(a.indices != indices for a in arrays):
            return None
        letters = _letters(summed)
        at = ", ".join(letters[s] for s in summed)
        product = "*".join(f"{self._print(a.base)}[..., {at}]" for a in arrays)
        last = self._print(arrays[-1].base)
        over = f"range({last}.shape[-1])" if len(summed) == 1 else f"np.ndindex({last}.shape[-{len(summed)}:])"
        return f"sum({product} for {at} in {over})"

    def _tensordot(self, first: sp.Indexed, second: sp.Indexed) -> str | None:
        """``np.tensordot`` of the two arrays, each transposed (when it must be) so their kept
        axes come out in the target's order (:func:`contraction`), or None."""
        for pair in ((first, second), (second, first)):
            found = contraction(*pair, self.target)
            if found is not None:
                operands = [self._print(array) + ("" if list(order) == sorted(order) else f".transpose{tuple(order)}")
                            for array, order in zip(pair, found[:2])]
                return f"np.tensordot({operands[0]}, {operands[1]}, axes={found[2]})"
        return None


class IndexNotationPrinter(StrPrinter):
    """An entry formula as the comment of its line: ``z1[n,p,q,c] = sum_{u,v,k}(win1[n,p,q,k,u,v]*W0[u,v,k,c]) + b0[c]``."""

    printmethod = "_symbp_str"

    def __init__(self, names: dict | None = None):
        super().__init__({})
        self.names = {str(k): v for k, v in (names or {}).items()}

    def _print_Symbol(self, expr):
        return expr.name.rstrip("'")

    def _print_Indexed(self, expr):
        base = self.names.get(str(expr.base), str(expr.base))
        return f"{base}[{','.join(self._print(i) for i in expr.indices)}]"

    def _print_Sum(self, expr):
        over = ",".join(self._print(limit[0]) for limit in expr.limits)
        return f"sum_{{{over}}}({self._print(expr.function)})"
