"""The derivation model: every equation of forward pass, loss, back-propagation and update.

SymPy derives each local rule once from the registries' forward formulas, then the layer
recursion composes them, so the cost is flat in width and linear in depth:

* each registered layer's forward formula (:mod:`symbp.rules.layers`; Dense ``z = a W + 1 b``)
  gives the gradient of each of its parameters and the gradient passed down by matrix calculus
  (``d trace(delta^T z)``: Dense ``dW = a^T delta``, ``db = 1^T delta``, ``g = delta W^T``);
* each activation gives its backward rule ``delta_j = sum_i g_i d a_i / d z_j`` (element-wise:
  ``g_j f'(z_j)``; both stated once, in :func:`derive_activation`, for every layer type),
  written in the layer's output ``a`` where SymPy can invert the formula;
* the loss, reduced as Keras reduces it, gives the output layer's ``delta`` (on the logits
  ``z`` when Keras takes its logits path, simplified to the teacher's ``a - y``);
* the optimizer gives its element-wise assignments.

Row expressions use the indexed rows below (``a[j]``, ``z[j]``, ``g[j]``, ``y[j]``) with ``j``
the unit; the printers turn them into whole-array NumPy or LaTeX.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Optional

import sympy as sp

from .calculus import B, K, clean_floats, entry_gradient, i, j, pull_out_of_sums, row_gradient, same_function
from .network import Layer
from ..rules import Activation, Loss, Optimizer, activations, loss_registry, losses, optimizer_registry
from ..rules.layers import LayerRule, layers as layer_rules
from ..rules.activations import f32
from ..rules.losses import piecewise_form
from ..rules.torch_losses import torch_losses
from ..rules.optimizers import F32

#: a layer's pre-activation, output, upstream gradient dL/da, and the label row
z = sp.IndexedBase("z", real=True)
a = sp.IndexedBase("a", real=True)
g = sp.IndexedBase("g", real=True)
y = sp.IndexedBase("y", real=True)
_k = sp.Symbol("k", integer=True, nonnegative=True)
_zs = sp.Symbol("z", real=True)
_ps = sp.Symbol("a", real=True)


# ---------------------------------------------------------------- layers
@dataclass(frozen=True)
class LayerCalculus:
    """Matrix rules of one layer type, derived by SymPy's matrix calculus from its forward formula."""
    rule: LayerRule
    a_in: sp.MatrixSymbol                  # the batch input a_prev
    parameters: dict                       # Keras variable name -> MatrixSymbol (named by its letter)
    delta: sp.MatrixSymbol                 # dL/dz
    z: sp.MatrixExpr                       # the forward formula (Dense: a W + 1 b)
    gradients: dict                        # Keras variable name -> dL/d it (Dense: a^T delta, 1^T delta)
    g_down: sp.MatrixExpr                  # dL/da_prev, passed down (Dense: delta W^T)


def _linear_gradient(surrogate: sp.Expr, x: sp.MatrixSymbol) -> sp.MatrixExpr:
    """d surrogate / dx in x's own shape (SymPy may return its transpose)."""
    gradient = surrogate.diff(x)
    return gradient.T if gradient.shape != x.shape else gradient


@lru_cache(maxsize=None)
def derive_layer(name: str) -> LayerCalculus:
    """Every backward rule of layer type ``name``, for symbolic shapes (so once for all widths).

    With delta = dL/dz, the chain rule through a z linear in X is dL/dX = d trace(delta^T z)/dX:
    one surrogate differentiated by each parameter the rule lists, and by its input.
    """
    rule = layer_rules[name]
    features = sp.Symbol("n", integer=True, positive=True)
    arguments = {key: sp.Symbol(key, integer=True, positive=True) for key in rule.shape_arguments}
    a_in = sp.MatrixSymbol("a_prev", B, features)
    parameters = {p.kind: sp.MatrixSymbol(p.code, *p.matrix_shape((features,), arguments))
                  for p in rule.parameters}
    z_mat = rule.forward(a_in, parameters)
    delta = sp.MatrixSymbol("delta", *z_mat.shape)
    surrogate = sp.Trace(delta.T * z_mat)
    gradients = {kind: _linear_gradient(surrogate, symbol) for kind, symbol in parameters.items()}
    return LayerCalculus(rule, a_in, parameters, delta, z_mat, gradients, _linear_gradient(surrogate, a_in))


#: index symbols of indexed layers: batch row, window positions, window offsets, in/out channel
_POSITIONS, _OFFSETS = ("p", "q"), ("u", "v")


def _index(name: str) -> sp.Symbol:
    return sp.Symbol(name, integer=True, nonnegative=True)


@dataclass(frozen=True)
class IndexedCalculus:
    """Entry rules of an indexed layer type, derived by SymPy from its entry formula.

    ``z`` is z[out] in the gathered input ``win`` (and the selection weights ``mask``);
    ``gradients[kind]`` and ``g_win`` are (entry, formula) pairs: dL/d that entry as a sum over
    the other indices, with delta = dL/dz (the upstream of the gathered input's adjoint).
    """
    rule: LayerRule
    out: tuple                   # z's index symbols
    ranges: dict                 # index symbol -> its count (symbolic)
    win: sp.IndexedBase
    mask: sp.IndexedBase
    parameters: dict             # Keras variable name -> IndexedBase (named by its letter)
    delta: sp.IndexedBase
    z: sp.Expr
    gradients: dict              # kind -> (entry, formula)
    g_win: tuple                 # (entry of win, dL/d that entry)


def _primed(entry: sp.Indexed) -> sp.Indexed:
    return entry.base[tuple(_index(f"{s}'") for s in entry.indices)]


def _entry_of(expr: sp.Expr, base: sp.IndexedBase) -> sp.Indexed:
    return next(e for e in sorted(expr.atoms(sp.Indexed), key=str) if e.base == base)


@lru_cache(maxsize=None)
def derive_indexed_layer(name: str) -> IndexedCalculus:
    """Every backward rule of indexed layer type ``name`` (Conv2D, pooling, Flatten), once for all
    sizes: dL/dX[t] = sum_out delta[out] dz[out]/dX[t] for each parameter and for the gathered
    input ``win``, by SymPy's derivative of the entry formula, the Kronecker deltas summed out
    (:func:`symbp.derivation.calculus.entry_gradient`)."""
    rule = layer_rules[name]
    gather = rule.gather
    spatial = 0 if gather.global_window else gather.spatial
    positions = tuple(_index(s) for s in _POSITIONS[:spatial])
    offsets = tuple(_index(s) for s in _OFFSETS[:gather.spatial])
    n, k, c = _index("n"), _index("k"), _index("c")
    out = (n, *positions, c) if gather.kind == "windows" else (n, _index("f"))
    ranges = {s: sp.Symbol(f"{str(s).upper()}_{{{name}}}", integer=True, positive=True)
              for s in (n, *positions, *offsets, k, c, _index("f"))}
    win, mask, delta = sp.IndexedBase("win"), sp.IndexedBase("mask"), sp.IndexedBase("delta")
    parameters = {p.kind: sp.IndexedBase(p.code) for p in rule.parameters}
    z_entry = rule.forward(win, parameters, mask, out, offsets, k, ranges)
    gradients = {}
    for kind, base in parameters.items():
        target = _primed(_entry_of(z_entry, base))
        gradients[kind] = (target, entry_gradient(z_entry, delta, out, ranges, target))
    target = _primed(_entry_of(z_entry, win))
    return IndexedCalculus(rule, out, ranges, win, mask, parameters, delta, z_entry, gradients,
                           (target, entry_gradient(z_entry, delta, out, ranges, target)))


def batch_mean(per_sample_gradient: sp.Expr) -> sp.Expr:
    """dL/d of one row's quantity when L = 1/B sum_r l_r (Keras's sum_over_batch_size): the
    per-sample gradient over B. The one place the batch mean enters the back-propagation."""
    return per_sample_gradient / B


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

    First the derivative with the piece itself replaced by a (tanh: 1 - a^2); when that leaves
    z, the derivative at each inverse z = f^-1(a) (sigmoid: a (1 - a)), the shortest winning.
    Each candidate is checked numerically against the derivative in z. (Inverses are tried
    only when needed: simplifying tanh's log-form inverses was most of its derivation's time.)
    """
    derivative = clean_floats(sp.diff(piece, _zs))
    if not derivative.has(_zs):
        return derivative
    valid = _valid_in_output([derivative.subs(piece, _ps)], piece, derivative)
    if not valid:
        inverses = _inverse_substitutions(piece)
        valid = _valid_in_output([derivative.subs(_zs, inverse) for inverse in inverses], piece, derivative)
    if valid:
        return min(valid, key=sp.count_ops)
    return _tidy_in_z(derivative)


def _valid_in_output(candidates: list[sp.Expr], piece: sp.Expr, derivative: sp.Expr) -> list[sp.Expr]:
    """The candidates, simplified, that are free of z and equal the derivative numerically."""
    valid = []
    for candidate in candidates:
        candidate = teacher_form(sp.simplify(candidate))
        if candidate.has(_zs) or candidate.has(sp.I):
            continue
        if same_function(candidate.subs(_ps, piece), derivative, _zs):
            valid.append(candidate)
    return valid


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
def derive_activation(name: str, shown: bool = False, framework: str = "keras") -> ActivationDerivation:
    """The activation's forward, derivative and backward rules, with its constants as
    ``framework`` computes with them (Activation.formula_in); ``shown``: derived from the
    formula as a handout writes it (its named constants exact or by name: Activation.shown_formula),
    for print only (the module computes with the constants' values)."""
    rule = activations[name]
    if rule.row_wise:
        forward = rule.formula(z, j, _k, K)
        upstream = sp.Sum(g[i] * rule.formula(z, i, _k, K), (i, 0, K - 1))
        backward = express_in_output(row_gradient(upstream, z), rule)
        return ActivationDerivation(rule, forward, None, sp.factor_terms(backward), backward.has(z))
    formula = rule.shown_formula(_zs) if shown else rule.formula_in(_zs, framework)
    if isinstance(formula, sp.Piecewise):
        derivative = sp.Piecewise(*[(_derivative_in_output(e), c) for e, c in formula.args])
    else:
        derivative = _derivative_in_output(formula)
    derivative = derivative.subs({_zs: z[j], _ps: a[j]}, simultaneous=True)
    forward = formula.subs(_zs, z[j])
    # g * piecewise folds into one piecewise where TF selects (a masked inf or nan stays out);
    # where TF multiplies (relu), g times the 0/1 mask
    backward = g[j] * derivative if rule.multiplies_gradient else sp.piecewise_fold(g[j] * derivative)
    return ActivationDerivation(rule, forward, derivative, backward, derivative.has(z))


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
    arguments: dict = field(default_factory=dict)   # Keras argument name -> (symbol, value)
    warnings: tuple = ()     # where Keras's behaviour for this pairing is surprising
    batch_reduction: str = "mean"   # the batch loss from the per-sample ones: "mean" or "sum" (torch)


#: SymPy symbols of loss arguments (named apart from the rows a, z, delta of the derivation)
LOSS_ARGUMENT_SYMBOLS = {"delta": "delta_huber", "beta": "beta_smooth", "label_smoothing": "epsilon_ls"}


def _labels_sum_to_one(expr: sp.Expr) -> sp.Expr:
    return expr.replace(
        lambda e: isinstance(e, sp.Sum) and isinstance(e.function, sp.Indexed) and e.function.base == y,
        lambda e: sp.S.One)


#: torch losses -> the output activation they are meant for (the model outputs what the loss takes)
TORCH_EXPECTS = {"crossentropyloss": "linear", "bcewithlogitsloss": "linear", "bceloss": "sigmoid"}


def torch_loss_warnings(loss_name: str, activation_name: str) -> tuple[str, ...]:
    """A torch loss on an output it does not expect (CrossEntropyLoss after a softmax)."""
    name, act = torch_losses.canonical(loss_name), activations.canonical(activation_name)
    expected = TORCH_EXPECTS.get(name)
    if expected is None or expected == act:
        return ()
    what = "logits (a linear output layer)" if expected == "linear" else f"a {expected} output"
    return (f"{torch_losses[name].name} on a {act} output: torch applies the loss to the output as "
            f"it is, and it expects {what}",)


def loss_warnings(loss_name: str, activation_name: str, framework: str = "keras") -> tuple[str, ...]:
    """What the framework does with this loss on this output activation, where it is surprising."""
    if framework == "torch":
        return torch_loss_warnings(loss_name, activation_name)
    rule, act = loss_registry()[loss_name], activations[activation_name]
    if rule.logits_formula is None:
        return ()
    if act.tags_logits and act.name != rule.expects:
        return (f"{rule.name} on a {act.name} output: Keras ignores the {act.name} and computes "
                f"the loss from the logits z as if the output were {rule.expects} ({rule.expects} "
                f"cross-entropy of z), in float64 and float32 alike, and symbp follows it. Rarely "
                f"what is meant: use a {rule.expects} output, or the matching loss",)
    if not act.tags_logits:
        normalised = " (after dividing each row by its sum)" if rule.labels_are_distributions \
            and not rule.sparse_labels else ""
        return (f"{rule.name} on a {act.name} output: Keras clips the outputs{normalised} to "
                f"[1e-7, 1 - 1e-7] and clipped entries pass no gradient; this loss expects a "
                f"{rule.expects} output",)
    return ()


@lru_cache(maxsize=None)
def derive_loss(loss_name: str, activation_name: str, arguments: tuple = ()) -> LossDerivation:
    """The loss's per-sample formula and output-layer delta; ``arguments``: ((name, value), ...)."""
    rule, act = loss_registry()[loss_name], activations[activation_name]
    values = {**rule.arguments, **dict(arguments)}
    symbols = {name: sp.Symbol(LOSS_ARGUMENT_SYMBOLS.get(name, name), positive=True) for name in values}
    on_logits = rule.logits_formula is not None and act.tags_logits
    if on_logits:
        per_sample = rule.logits_formula(z, y, i, K, **symbols)
        gradient = row_gradient(piecewise_form(per_sample), z)
        if rule.labels_are_distributions:
            gradient = _labels_sum_to_one(gradient)
        # simplest in the output of the activation these logits belong to (a - y) ...
        expected = activations[rule.expects]
        gradient = express_in_output(gradient, expected)
        if expected is not act:  # ... which is not this layer's output: write that activation of z
            gradient = _substitute_row(gradient, a, expected.formula(z[j]) if not expected.row_wise
                                       else expected.formula(z, j, _k, K))
        delta = batch_mean(gradient)
    else:
        per_sample = rule.formula(a, y, i, K, **symbols)
        gradient = row_gradient(piecewise_form(per_sample), a)
        gradient = sp.factor(gradient) if not gradient.has(sp.Piecewise) else gradient
        backward = derive_activation(activation_name).backward
        delta = _substitute_row(backward, g, batch_mean(gradient))
    return LossDerivation(rule, act, on_logits, per_sample, gradient, delta, delta.has(z),
                          {name: (symbols[name], float(value)) for name, value in values.items()},
                          loss_warnings(loss_name, activation_name))


def _max_as_piecewise(expr: sp.Expr) -> sp.Expr:
    """max(u, c) as (u if u > c else c), so SymPy differentiates it (BCELoss's log clamp)."""
    return expr.replace(lambda e: isinstance(e, sp.Max),
                        lambda e: sp.Piecewise((e.args[0], e.args[0] > e.args[1]), (e.args[1], True))
                        if len(e.args) == 2 else e)


@lru_cache(maxsize=None)
def derive_torch_loss(loss_name: str, activation_name: str, arguments: tuple = (),
                      reduction: str = "mean", class_indices: bool = False) -> LossDerivation:
    """A torch.nn loss's per-sample formula and output-layer delta, on the last layer's output
    (torch has no logits path: the model outputs what the loss takes).

    ``reduction="mean"``: L = 1/B sum_n l_n, with l the mean over the K elements of an
    element-wise loss; ``"sum"``: L = sum_n l_n, l the sum over the elements.
    ``class_indices``: the labels are one class index per sample (their one-hot rows).
    """
    rule = replace(torch_losses[loss_name], sparse_labels=class_indices or torch_losses[loss_name].sparse_labels)
    act = activations[activation_name]
    values = {**rule.arguments, **dict(arguments)}
    symbols = {name: sp.Symbol(LOSS_ARGUMENT_SYMBOLS.get(name, name), nonnegative=True) for name in values}
    per_sample = rule.formula(a, y, i, K, **symbols)
    if rule.elementwise and reduction == "mean":
        per_sample = per_sample / K
    gradient = row_gradient(_max_as_piecewise(per_sample), a)
    if rule.labels_are_distributions:   # log-softmax of the logits: its gradient softmax - y
        gradient = express_in_output(_labels_sum_to_one(gradient).xreplace({a: z}), activations["softmax"])
        softmax = activations["softmax"].formula(z, j, _k, K)
        gradient = _substitute_row(gradient, a, softmax).xreplace({z: a})
    gradient = sp.factor(gradient) if not gradient.has(sp.Piecewise, sp.Sum) else gradient
    upstream = batch_mean(gradient) if reduction == "mean" else gradient
    delta = _substitute_row(derive_activation(activation_name, framework="torch").backward, g, upstream)
    return LossDerivation(rule, act, False, per_sample, gradient, delta, delta.has(z),
                          {name: (symbols[name], float(value)) for name, value in values.items()},
                          torch_loss_warnings(loss_name, activation_name), reduction)


def _substitute_row(expr: sp.Expr, row: sp.IndexedBase, replacement: sp.Expr) -> sp.Expr:
    """Replace row[idx] in expr by replacement (a row expression in j) at that idx."""
    return expr.replace(lambda e: isinstance(e, sp.Indexed) and e.base == row,
                        lambda e: replacement.xreplace({j: e.indices[0]}))


# ---------------------------------------------------------------- optimizers
@dataclass(frozen=True)
class OptimizerDerivation:
    rule: Optimizer
    settings: dict            # the spec's values by Keras argument name (defaults filled in)
    symbols: dict             # constant key -> SymPy symbol (a Keras argument, a fixed constant,
                              # or "<name>_f32": that argument as Keras casts it to float32)
    values: dict              # constant key -> the float Keras uses (f32-rounded where it does)
    slots: dict               # slot name -> (symbol, initial value: a number or a symbol of `symbols`)
    w: sp.Symbol
    grad: sp.Symbol
    t: sp.Symbol
    assignments: list         # ordered (target symbol, expression), element-wise, per parameter
    step_assignments: list = field(default_factory=list)  # per-step scalars, before the parameters
    step_slots: dict = field(default_factory=dict)        # step slot name -> (symbol, initial value)
    float32_of: dict = field(default_factory=dict)        # constant key -> the name it is f32 of

    @property
    def float32_hyperparameters(self) -> frozenset:
        """Keras argument names this configuration uses rounded to float32 somewhere."""
        return frozenset(self.float32_of.values())


HYPERPARAMETER_SYMBOLS = {
    "learning_rate": r"eta", "momentum": r"mu", "weight_decay": r"lambda",
    "beta_1": r"beta_1", "beta_2": r"beta_2", "epsilon": r"epsilon", "rho": r"rho",
    "initial_accumulator_value": r"A_0",
    # torch.optim's names
    "lr": r"eta", "eps": r"epsilon", "beta1": r"beta_1", "beta2": r"beta_2", "dampening": r"tau",
    "lr_decay": r"kappa", "momentum_decay": r"psi",
}


def _resolve_float32(assignments: list, symbols: dict, values: dict, slot_inits: dict, framework: str = "keras"):
    """Replace each F32(x) by a symbol of x's float32 rounding.

    A hyperparameter Keras only ever casts keeps its name with the rounded value; one also used
    exact gets a second constant ``<name>_f32``. Returns (assignments, symbols, values, float32_of).
    """
    casts = set().union(*(expr.atoms(F32) for _, expr in assignments))
    exact_uses = set().union(*(expr.replace(lambda e: isinstance(e, F32), lambda e: sp.S.One).free_symbols
                               for _, expr in assignments))
    symbols, values, float32_of, replacements = dict(symbols), dict(values), {}, {}
    by_symbol = {sym: name for name, sym in symbols.items()}
    for cast in sorted(casts, key=str):
        name = by_symbol[cast.args[0]]
        if cast.args[0] in exact_uses:
            key = f"{name}_f32"
            symbols[key] = sp.Symbol(f"{cast.args[0].name}_f32", positive=True)
        else:
            key = name
        values[key] = float(f32(values[name]))
        float32_of[key] = name
        replacements[cast] = symbols[key]
    for name in slot_inits.values():   # Keras's Constant initializer casts a slot's start value
        if framework == "keras" and name not in float32_of.values():
            values[name] = float(f32(values[name]))
            float32_of[name] = name
    resolved = [(target, expr.xreplace(replacements)) for target, expr in assignments]
    return resolved, symbols, values, float32_of


def _expand_pairs(rule: Optimizer, settings: dict) -> dict:
    """An argument given as a pair (torch's ``betas``) as its two entries by the rule's names."""
    out = dict(settings)
    for pair, names in rule.pairs.items():
        out.update(zip(names, (float(v) for v in out.pop(pair))))
    return out


def derive_optimizer(name: str, arguments: dict, framework: str = "keras") -> OptimizerDerivation:
    """The optimizer's assignments for its ``arguments`` (the rest its defaults; ``framework``'s
    rule of that name): weight decay first, step scalars hoisted."""
    rule = optimizer_registry(framework)[name]
    full = _expand_pairs(rule, {**rule.defaults, **arguments})
    numbers = {k: v for k, v in {**full, **rule.constants}.items()
               if k not in rule.switches and v is not None and not isinstance(v, bool)}
    symbols = {k: sp.Symbol(HYPERPARAMETER_SYMBOLS.get(k, k), positive=True) for k in numbers}
    values = {k: float(v) for k, v in numbers.items()}
    w, grad, t = sp.Symbol("w", real=True), sp.Symbol("g", real=True), sp.Symbol("t", positive=True, integer=True)
    slot_symbols = {s: sp.Symbol(s, real=True) for s in {**rule.slots, **rule.step_slots}}
    assignments = list(rule.rule(symbols, w, grad, slot_symbols, t, full))
    if full.get("weight_decay") and not rule.states_weight_decay:
        assignments.insert(0, (w, w - w * F32(symbols["weight_decay"]) * symbols["learning_rate"]))
    named = set().union(*({target} | expr.free_symbols for target, expr in assignments))
    slot_inits = {s: init for s, init in rule.slots.items() if slot_symbols[s] in named}
    assignments, symbols, values, float32_of = _resolve_float32(
        assignments, symbols, values, {s: v for s, v in slot_inits.items() if isinstance(v, str)},
        rule.framework)
    step_level = {t} | set(symbols.values()) | {slot_symbols[s] for s in rule.step_slots}
    step_assignments, parameter_assignments = [], []
    for target, expr in assignments:
        if target != w and expr.free_symbols <= step_level:
            step_assignments.append((target, expr))
            step_level.add(target)
        else:
            parameter_assignments.append((target, expr))
    slots = {s: (slot_symbols[s], symbols[init] if isinstance(init, str) else init)
             for s, init in slot_inits.items()}
    step_slots = {s: (slot_symbols[s], init) for s, init in rule.step_slots.items()
                  if slot_symbols[s] in named}
    return OptimizerDerivation(rule, full, symbols, values, slots, w, grad, t, parameter_assignments,
                               step_assignments, step_slots, float32_of)


# ---------------------------------------------------------------- the network
@dataclass(frozen=True)
class LayerDerivation:
    """One layer instance with its type's rules and its activation's."""
    layer: Layer
    calculus: "LayerCalculus | IndexedCalculus"
    activation: ActivationDerivation

    @property
    def number(self) -> int:
        return self.layer.number

    @property
    def units(self) -> int:
        return self.layer.units

    @property
    def inputs(self) -> int:
        return self.layer.input_shape[-1]

    @property
    def param_index(self) -> int:
        return self.layer.position

    def index_sizes(self, rows: int) -> dict:
        """An indexed layer's count symbols -> its numbers for a batch of ``rows``: batch rows,
        output positions, window offsets, input and output channels."""
        calc, shape_in, shape_out = self.calculus, self.layer.input_shape, self.layer.output_shape
        ranges = calc.ranges
        values = {ranges[calc.out[0]]: rows, ranges[calc.out[-1]]: shape_out[-1]}
        if calc.rule.gather.kind == "windows":
            window = self.layer.window_geometry()[0]
            values.update({ranges[p]: shape_out[i] for i, p in enumerate(calc.out[1:-1])})
            offsets = [s for s in ranges if str(s) in ("u", "v")]
            values.update({ranges[u]: window[i] for i, u in enumerate(offsets)})
            values.update({ranges[s]: shape_in[-1] for s in ranges if str(s) == "k"})
        return values


@dataclass(frozen=True)
class NetworkDerivation:
    layers: tuple[LayerDerivation, ...]
    loss: LossDerivation
    optimizer: OptimizerDerivation

    @property
    def depth(self) -> int:
        return len(self.layers)

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.loss.warnings

    @property
    def has_indexed_layers(self) -> bool:
        """A convolution, pooling or Flatten layer among the layers: the module, handouts and
        notebooks then show shapes and indexed notation, not a drawing of neurons."""
        return any(layer.layer.rule.indexed for layer in self.layers)


def derive_network(layers: tuple[Layer, ...], loss, optimizer, framework: str = "keras",
                   class_indices: bool = False) -> NetworkDerivation:
    """Derive every rule of a network of layer instances (:func:`symbp.derivation.network.layers_from_spec`)
    with its loss and optimizer (:class:`~symbp.spec.model.LossSpec`, :class:`~symbp.spec.model.OptimizerSpec`)
    in ``framework``'s registries (torch: the loss's ``reduction`` mean or sum; ``class_indices``:
    CrossEntropyLoss's labels are class indices)."""
    derived = tuple(LayerDerivation(layer, (derive_indexed_layer if layer.rule.indexed else derive_layer)(layer.rule.name),
                                    derive_activation(activations.canonical(layer.activation), framework=framework))
                    for layer in layers)
    output_activation = activations.canonical(layers[-1].activation)
    arguments = dict(loss.arguments)
    if framework == "torch":
        reduction = arguments.pop("reduction", "mean")
        derived_loss = derive_torch_loss(torch_losses.canonical(loss.name), output_activation,
                                         tuple(sorted(arguments.items())), reduction, class_indices)
    else:
        derived_loss = derive_loss(losses.canonical(loss.name), output_activation, tuple(sorted(arguments.items())))
    return NetworkDerivation(derived, derived_loss, derive_optimizer(optimizer.name, optimizer.arguments, framework))
