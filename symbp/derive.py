"""The derivation model: every equation of forward pass, loss, back-propagation and update.

SymPy derives each local rule once from the registries' forward formulas, then the layer
recursion composes them, so the cost is flat in width and linear in depth:

* the generic Dense layer ``z = a W + 1 b`` gives ``dW = a^T delta``, ``db = 1^T delta`` and the
  gradient passed down ``g = delta W^T`` by matrix calculus (``d trace(delta^T z)``);
* each activation gives its backward rule ``delta_j = sum_i g_i d a_i / d z_j`` (element-wise:
  ``g_j f'(z_j)``), written in the layer's output ``a`` where SymPy can invert the formula;
* the loss, reduced as Keras reduces it, gives the output layer's ``delta`` (on the logits
  ``z`` when Keras takes its logits path, simplified to the teacher's ``a - y``);
* the optimizer gives its element-wise assignments.

Row expressions use the indexed rows below (``a[j]``, ``z[j]``, ``g[j]``, ``y[j]``) with ``j``
the unit; the printers turn them into whole-array NumPy or LaTeX.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import sympy as sp

from .calculus import B, K, clean_floats, i, j, pull_out_of_sums, row_gradient, same_function
from .rules import Activation, Loss, Optimizer, activations, losses, optimizers
from .rules.activations import f32

#: a layer's pre-activation, output, upstream gradient dL/da, and the label row
z = sp.IndexedBase("z", real=True)
a = sp.IndexedBase("a", real=True)
g = sp.IndexedBase("g", real=True)
y = sp.IndexedBase("y", real=True)
_k = sp.Symbol("k", integer=True, nonnegative=True)
_zs = sp.Symbol("z", real=True)
_ps = sp.Symbol("a", real=True)


# ---------------------------------------------------------------- the generic Dense layer
@dataclass(frozen=True)
class DenseRule:
    """Matrix rules of one Dense layer, derived by SymPy's matrix calculus."""
    a_in: sp.MatrixSymbol
    W: sp.MatrixSymbol
    b: sp.MatrixSymbol
    delta: sp.MatrixSymbol
    z: sp.MatrixExpr        # a W + 1 b
    dW: sp.MatrixExpr       # a^T delta
    db: sp.MatrixExpr       # 1^T delta (column sums)
    g_down: sp.MatrixExpr   # delta W^T


@lru_cache(maxsize=None)
def dense_rule() -> DenseRule:
    n, m = sp.symbols("n m", integer=True, positive=True)
    a_in, W = sp.MatrixSymbol("a_prev", B, n), sp.MatrixSymbol("W", n, m)
    b, delta = sp.MatrixSymbol("b", 1, m), sp.MatrixSymbol("delta", B, m)
    z_mat = a_in * W + sp.OneMatrix(B, 1) * b
    # delta = dL/dz, so dL/dX = d trace(delta^T z)/dX for every X that z depends on linearly
    surrogate = sp.Trace(delta.T * z_mat)
    dW, db, g_down = (surrogate.diff(x) for x in (W, b, a_in))
    return DenseRule(a_in, W, b, delta, z_mat, dW.T if dW.shape != W.shape else dW,
                     db.T if db.shape != b.shape else db, g_down)


# ---------------------------------------------------------------- activations
@dataclass(frozen=True)
class ActivationDerivation:
    rule: Activation
    forward: sp.Expr                 # a[j] as a formula in z
    derivative: Optional[sp.Expr]    # f'(z_j), element-wise rules only; in a[j] where possible
    backward: sp.Expr                # delta[j] from g = dL/da
    uses_z: bool                     # backward needs z (not expressible in a alone)


def _inverse_substitutions(piece: sp.Expr) -> list[sp.Expr]:
    """The inverses z = f^-1(a) of one formula piece that satisfy f(f^-1(a)) = a numerically
    (checked here: SymPy's own symbolic check of each root was most of solve's time)."""
    try:
        solutions = sp.solve(sp.Eq(_ps, piece), _zs, check=False)
    except (NotImplementedError, ValueError, TypeError):
        return []
    return [s for s in solutions if not s.has(sp.LambertW, sp.Piecewise, sp.nan, sp.zoo, sp.oo)
            and same_function(piece.subs(_zs, s), _ps, _ps)]


def _derivative_in_output(piece: sp.Expr) -> sp.Expr:
    """f'(z) of one formula piece, in the output a when SymPy can invert the piece.

    Candidates: the derivative with the piece itself replaced by a (tanh: 1 - a^2), and the
    derivative at each inverse z = f^-1(a) (sigmoid: a (1 - a)); each is checked numerically
    against the derivative in z, and the shortest wins.
    """
    derivative = clean_floats(sp.diff(piece, _zs))
    if not derivative.has(_zs):
        return derivative
    candidates = [derivative.subs(piece, _ps)]
    candidates += [derivative.subs(_zs, inverse) for inverse in _inverse_substitutions(piece)]
    valid = []
    for candidate in candidates:
        candidate = teacher_form(sp.simplify(candidate))
        if candidate.has(_zs) or candidate.has(sp.I):
            continue
        if same_function(candidate.subs(_ps, piece), derivative, _zs):
            valid.append(candidate)
    if valid:
        return min(valid, key=sp.count_ops)
    return _tidy_in_z(derivative)


def teacher_form(expr: sp.Expr) -> sp.Expr:
    """The shortest of the expanded and factored forms, a leading minus moved into a factor
    (so -(a - 1) a prints as a (1 - a)), floats next to an integer made that integer."""
    forms = []
    for form in (sp.factor(expr), sp.expand(expr)):
        coefficient, factors = form.as_coeff_mul()
        if coefficient == -1 and any(f.is_Add for f in factors):
            first = next(f for f in factors if f.is_Add)
            rest = list(factors)
            rest.remove(first)
            form = sp.Mul(sp.expand(-first), *rest, evaluate=False) if rest else sp.expand(-first)
        forms.append(clean_floats(form))
    return min(forms, key=sp.count_ops)


def _tidy_in_z(derivative: sp.Expr) -> sp.Expr:
    """Clean a derivative SymPy left in z (z sign(z) = |z|), keeping the shorter form."""
    cleaned = derivative.replace(
        lambda e: e.is_Mul and sp.sign(_zs) in e.args and _zs in e.args,
        lambda e: e.subs({sp.sign(_zs): 1, _zs: sp.Abs(_zs)}, simultaneous=True))
    candidates = [derivative, sp.factor(sp.together(cleaned))]
    return min(candidates, key=sp.count_ops)


@lru_cache(maxsize=None)
def derive_activation(name: str) -> ActivationDerivation:
    rule = activations[name]
    if rule.row_wise:
        forward = rule.formula(z, j, _k, K)
        upstream = sp.Sum(g[i] * rule.formula(z, i, _k, K), (i, 0, K - 1))
        backward = express_in_output(row_gradient(upstream, z), rule)
        return ActivationDerivation(rule, forward, None, sp.factor_terms(backward), backward.has(z))
    formula = rule.formula(_zs)
    if isinstance(formula, sp.Piecewise):
        derivative = sp.Piecewise(*[(_derivative_in_output(e), c) for e, c in formula.args])
    else:
        derivative = _derivative_in_output(formula)
    derivative = derivative.subs({_zs: z[j], _ps: a[j]}, simultaneous=True)
    forward = formula.subs(_zs, z[j])
    return ActivationDerivation(rule, forward, derivative, g[j] * derivative, derivative.has(z))


def express_in_output(expr: sp.Expr, rule: Activation) -> sp.Expr:
    """Rewrite a row expression in z into the activation's output a where that removes z."""
    if rule.row_wise:
        # a_i = N(z_i) / S with S = sum_k N(z_k): so N(z_i) = a_i S, and sum_k a_k = 1
        numerator = rule.formula(z, j, _k, K).as_numer_denom()[0]
        total = sp.Dummy("S", positive=True)
        pattern = sp.Wild("idx")
        rewritten = expr.replace(numerator.subs(j, pattern), a[pattern] * total)
        rewritten = rewritten.replace(
            lambda e: isinstance(e, sp.Sum) and e.function == numerator.subs(j, e.limits[0][0]),
            lambda e: total)
        rewritten = pull_out_of_sums(sp.expand(rewritten))
        rewritten = rewritten.replace(
            lambda e: isinstance(e, sp.Sum) and isinstance(e.function, sp.Indexed) and e.function.base == a,
            lambda e: sp.S.One)
        rewritten = sp.simplify(rewritten)
        return expr if rewritten.has(total) or rewritten.has(z) else rewritten
    formula = rule.formula(_zs)
    if isinstance(formula, sp.Piecewise):
        return expr
    simplest = min((expr, sp.simplify(expr)), key=sp.count_ops)
    for inverse in _inverse_substitutions(formula):
        idx = sp.Wild("idx")
        rewritten = expr.replace(z[idx], inverse.subs(_ps, a[idx]))
        rewritten = sp.factor(sp.simplify(rewritten))
        if not rewritten.has(z) and not rewritten.has(sp.I) \
                and sp.count_ops(rewritten) <= sp.count_ops(simplest):
            return rewritten
    return simplest


# ---------------------------------------------------------------- losses
@dataclass(frozen=True)
class LossDerivation:
    rule: Loss
    activation: Activation
    on_logits: bool          # Keras's logits path: the loss is taken from z, not a
    per_sample: sp.Expr      # l(a, y) or l(z, y), a row formula summed over i
    gradient: sp.Expr        # dl/da[j] (probability path) or dl/dz[j] (logits path), per sample
    delta: sp.Expr           # delta[j] = dL/dz[j] of the batch loss L = 1/B sum_n l_n
    uses_z: bool


def _labels_sum_to_one(expr: sp.Expr) -> sp.Expr:
    return expr.replace(
        lambda e: isinstance(e, sp.Sum) and isinstance(e.function, sp.Indexed) and e.function.base == y,
        lambda e: sp.S.One)


@lru_cache(maxsize=None)
def derive_loss(loss_name: str, activation_name: str) -> LossDerivation:
    rule, act = losses[loss_name], activations[activation_name]
    on_logits = rule.logits_formula is not None and act.tags_logits
    if on_logits:
        per_sample = rule.logits_formula(z, y, i, K)
        gradient = row_gradient(per_sample, z)
        if rule.labels_are_distributions:
            gradient = _labels_sum_to_one(gradient)
        gradient = express_in_output(gradient, act)
        delta = gradient / B
    else:
        per_sample = rule.formula(a, y, i, K)
        gradient = row_gradient(per_sample, a)
        gradient = sp.factor(gradient) if not gradient.has(sp.Piecewise) else gradient
        backward = derive_activation(activation_name).backward
        delta = _substitute_row(backward, g, gradient / B)
    return LossDerivation(rule, act, on_logits, per_sample, gradient, delta, delta.has(z))


def _substitute_row(expr: sp.Expr, row: sp.IndexedBase, replacement: sp.Expr) -> sp.Expr:
    """Replace row[idx] in expr by replacement (a row expression in j) at that idx."""
    idx = sp.Wild("idx")
    return expr.replace(row[idx], lambda idx: replacement.subs(j, idx)) if False else \
        expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base == row,
                     lambda e: replacement.xreplace({j: e.indices[0]}))


# ---------------------------------------------------------------- optimizers
@dataclass(frozen=True)
class OptimizerDerivation:
    rule: Optimizer
    settings: dict            # the spec's values by Keras argument name (defaults filled in)
    symbols: dict             # hyperparameter name -> SymPy symbol
    values: dict              # hyperparameter name -> the float Keras uses (f32-rounded where it does)
    slots: dict               # slot name -> (symbol, initial value)
    w: sp.Symbol
    grad: sp.Symbol
    t: sp.Symbol
    assignments: list         # ordered (target symbol, expression)


HYPERPARAMETER_SYMBOLS = {
    "learning_rate": r"eta", "momentum": r"mu", "weight_decay": r"lambda",
    "beta_1": r"beta_1", "beta_2": r"beta_2", "epsilon": r"epsilon", "rho": r"rho",
    "initial_accumulator_value": r"A_0",
}


def derive_optimizer(name: str, settings: dict) -> OptimizerDerivation:
    rule = optimizers[name]
    full = {**rule.defaults, **{k: v for k, v in settings.items() if k != "name"}}
    numbers = {k: v for k, v in full.items()
               if k not in rule.switches and v is not None and not isinstance(v, bool)}
    symbols = {k: sp.Symbol(HYPERPARAMETER_SYMBOLS.get(k, k), positive=True) for k in numbers}
    values = {k: float(f32(v)) if k in rule.float32_hyperparameters else float(v)
              for k, v in numbers.items()}
    w, grad, t = sp.Symbol("w", real=True), sp.Symbol("g", real=True), sp.Symbol("t", positive=True, integer=True)
    slots = {s: (sp.Symbol(s, real=True), init) for s, init in rule.active_slots(full).items()}
    assignments = list(rule.rule(symbols, w, grad, {s: sym for s, (sym, _) in slots.items()}, t, full))
    if full.get("weight_decay"):
        assignments.insert(0, (w, w - symbols["learning_rate"] * symbols["weight_decay"] * w))
    return OptimizerDerivation(rule, full, symbols, values, slots, w, grad, t, assignments)


# ---------------------------------------------------------------- the network
@dataclass(frozen=True)
class LayerDerivation:
    number: int                  # l = 1 .. L; its parameters are W{l-1}, b{l-1} (Keras order)
    inputs: int
    units: int
    activation: ActivationDerivation

    @property
    def param_index(self) -> int:
        return self.number - 1


@dataclass(frozen=True)
class NetworkDerivation:
    layers: tuple[LayerDerivation, ...]
    dense: DenseRule
    loss: LossDerivation
    optimizer: OptimizerDerivation

    @property
    def depth(self) -> int:
        return len(self.layers)


def derive_network(widths: list[int], activation_names: list[str], loss_name: str,
                   optimizer_settings: dict) -> NetworkDerivation:
    """Derive every rule of a Dense network with ``widths = [inputs, units_1, ..., units_L]``."""
    layers = tuple(
        LayerDerivation(n + 1, widths[n], widths[n + 1], derive_activation(activations.canonical(act)))
        for n, act in enumerate(activation_names))
    loss = derive_loss(losses.canonical(loss_name), activations.canonical(activation_names[-1]))
    optimizer = derive_optimizer(optimizer_settings["name"], optimizer_settings)
    return NetworkDerivation(layers, dense_rule(), loss, optimizer)
