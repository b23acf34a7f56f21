"""The rules of one training step as evaluable lines, in back-propagation order.

Each quantity of the answer key (``loss``, ``delta{l}``, ``dW{n}``, ``db{n}``, ``W{n}_updated``)
gets a :class:`StepRule`: the derivation's own expressions (:mod:`symbp.derivation.derive`) as
:class:`RuleLine` s (``target = expr`` with the names binding the rule's symbols), read from a
namespace of the step's numbers. The grader evaluates a rule on the student's own earlier
answers (carried-forward credit) and :mod:`symbp.classroom.mistakes` mutates its lines (the
classic mistakes). Nothing here is a hand-typed formula for a network: every line is an
expression of the derivation model, printed by the module's own
:class:`~symbp.emit.printers.ArrayPrinter` and evaluated with NumPy.

An indexed layer (convolution, pooling, Flatten) gives its rules the same way: its derived entry
formulas as RuleLines with their ``indices`` (printed as the module prints them, one
``np.einsum``), and the gather or its adjoint (``_windows``, ``_windows_adjoint``, a reshape) as a
:class:`CodeLine` of the module's own code (:mod:`symbp.emit.indexed`). A CNN's feature and pooled
maps (``a{l}`` of a windowed layer) are quantities too, before the loss: the gather, the entry
formula and the activation from the student's own ``a{l-1}``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Optional

import numpy as np
import sympy as sp

from ..derivation import naming
from ..derivation.calculus import row_gradient
from ..derivation.derive import NetworkDerivation, batch_mean, a as A_ROW, y as Y_ROW, i as I_IDX, K
from ..derivation.naming import ParamName
from ..emit import indexed
from ..emit.printers import ArrayPrinter, EinsumPrinter
from ..rules.losses import piecewise_form
from ..standalone_draws import step_scope

#: the kinds of quantity a rule computes (a mistake lists the kinds it can show in)
OUTPUT_DELTA, HIDDEN_DELTA, GRADIENT, UPDATE, LOSS = "output_delta", "hidden_delta", "gradient", "update", "loss"
#: a CNN's feature or pooled map (a{l} of a windowed layer)
FEATURE_MAP = "feature_map"


@dataclass(frozen=True)
class RuleLine:
    """``target = expr``; ``names`` binds the expression's symbols to namespace entries (or to
    NumPy code over them, such as ``delta3[:1]``)."""
    target: str
    expr: sp.Basic
    names: tuple   # ((symbol name, namespace code), ...): hashable, so printed code is cached
    #: an indexed layer's entry formula: the target's index symbols (printed as one np.einsum)
    indices: tuple = ()

    def code(self) -> str:
        return _printed(self.expr, self.names, self.indices)

    def rebind(self, **changes: str) -> "RuleLine":
        return replace(self, names=tuple((k, changes.get(k, v)) for k, v in self.names))


@dataclass(frozen=True)
class CodeLine:
    """``target = code``: a line of the generated module's own code (an indexed layer's gather or
    its adjoint, :mod:`symbp.emit.indexed`), printed from the derivation and the spec's numbers
    only. No mutation edits it."""
    target: str
    text: str
    expr = None
    names: tuple = ()

    def code(self) -> str:
        return self.text


def _code_lines(lines: list) -> list[CodeLine]:
    """:mod:`symbp.emit.indexed`'s lines (target, code, equation) as CodeLines."""
    return [CodeLine(line.target, line.code) for line in lines]


class _Line:
    """What :mod:`symbp.emit.indexed` builds its lines with (its ``line_class``)."""
    def __init__(self, target: str, code: str, equation: str = ""):
        self.target, self.code = target, code


class _Helpers:
    """The ``emit`` :mod:`symbp.emit.indexed` records helper names in (the module has them all)."""
    helpers: set = set()


@lru_cache(maxsize=4096)
def _printed(expr: sp.Basic, names: tuple, indices: tuple = ()) -> str:
    if indices:
        return EinsumPrinter(indices, dict(names)).doprint(expr)
    return ArrayPrinter(dict(names)).doprint(expr)


def _function_source(setup: tuple, lines: tuple, function: str = "evaluate") -> str:
    """A function ``function(scope)``: each name a line reads taken from ``scope``, then the
    lines in order (code printed from the derivation, and constants' names: no student text)."""
    steps = [*setup, *((line.target, line.code()) for line in lines)]
    assigned, reads = set(), []
    for target, code in steps:
        for name in sorted({n.id for n in ast.walk(ast.parse(code, mode="eval")) if isinstance(n, ast.Name)}):
            if name not in assigned and name not in reads:
                reads.append(name)
        assigned.update(name.strip() for name in target.split(","))   # "mask2, max2" assigns two
    body = [f"    {name} = scope[{name!r}]" for name in reads]
    body += [f"    {target} = {code}" for target, code in steps]
    return f"def {function}(scope):\n" + "\n".join(body) + f"\n    return {steps[-1][0]}\n"


@lru_cache(maxsize=4096)
def _compiled(setup: tuple, lines: tuple):
    """The rule as a function, loaded the way the generated module is (its one loader)."""
    from ..witnesses.module import load_module
    return load_module(_function_source(setup, lines), "symbp_rule").evaluate


@dataclass(frozen=True)
class StepRule:
    """How one quantity follows from the step's earlier numbers.

    ``lines`` run in order in a copy of the namespace; the quantity is the last target.
    ``layer`` is the rule's layer (1..L), ``param`` the parameter for gradients and updates.
    ``activation`` is the derivation of the layer's activation (for the mutations that touch it).
    """
    quantity: str
    kind: str
    lines: tuple[RuleLine, ...]
    layer: int
    param: Optional[ParamName] = None
    activation: object = None
    uses_logits: bool = False
    activation_gradient: Optional[sp.Expr] = None   # g_L = dl/da / B on the fused logits path
    setup: tuple = ()   # (target, NumPy code) run first: names and constants only, never student text

    def function_source(self, name: str) -> str:
        """The rule as the NumPy function ``name(scope)`` it is evaluated with (for modules
        that must run without symbp: PrairieLearn's server.py)."""
        return _function_source(self.setup, self.lines, name)

    @property
    def indexed(self) -> bool:
        """Some line is an indexed layer's (an entry formula or the module's gather code): the
        matrix-only mutations (a transposed operand) do not apply."""
        return any(isinstance(line, CodeLine) or line.indices for line in self.lines)

    def evaluate(self, namespace: dict) -> Optional[np.ndarray]:
        """The rule's value from ``namespace`` (its names bound to arrays), or None where NumPy
        cannot evaluate it (shapes that do not fit a transposed operand, say)."""
        try:
            with np.errstate(all="ignore"):
                result = _compiled(self.setup, self.lines)(namespace)
        except (ValueError, TypeError, IndexError, KeyError, ZeroDivisionError, FloatingPointError):
            return None
        return np.asarray(result, dtype=np.float64)


def _names(*mappings: dict) -> tuple:
    merged = {}
    for mapping in mappings:
        merged.update(mapping)
    return tuple(sorted(merged.items()))


def _loss_names(model: NetworkDerivation) -> dict:
    return {str(sym): naming.loss_argument(model.loss.rule.name, name)
            for name, (sym, _) in model.loss.arguments.items()}


def _rule_names(layer) -> dict:
    return naming.layer_rule_names(layer.number, tuple(p.code for p in layer.calculus.rule.parameters))


def _indexed_names(layer) -> dict:
    return naming.indexed_names(layer.number, tuple(p.code for p in layer.calculus.rule.parameters))


def _passed_down(above) -> list:
    """g{l} from layer ``above`` (l + 1): Dense's delta W^T, or an indexed layer's derived dwin
    then its gather's adjoint (the module's own line)."""
    l = above.number - 1
    if not above.layer.rule.indexed:
        return [RuleLine(naming.UPSTREAM.format(l=l), above.calculus.g_down, _names(_rule_names(above)))]
    entry, formula = above.calculus.g_win
    dwin = RuleLine(naming.WINDOWS_GRADIENT.format(l=above.number), formula, _names(_indexed_names(above)),
                    entry.indices)
    return [dwin, *_code_lines(indexed.passed_down_lines(above, _Helpers(), _Line)[1:])]


def feature_map_rule(model: NetworkDerivation, layer) -> StepRule:
    """a{l} of a windowed layer (a feature map, a pooled map) from a{l-1}: the module's gather
    lines (win{l}, mask{l}), the entry formula, then the activation."""
    l, calculus = layer.number, layer.calculus
    lines = [*_code_lines(indexed.gather_lines(layer, _Helpers(), _Line)),
             RuleLine(naming.PRE_ACTIVATION.format(l=l), calculus.z, _names(_indexed_names(layer)), calculus.out),
             RuleLine(naming.OUTPUT.format(l=l), layer.activation.forward, _names(naming.layer_names(l)))]
    return StepRule(naming.OUTPUT.format(l=l), FEATURE_MAP, tuple(lines), l, activation=layer.activation)


def probability_gradient(model: NetworkDerivation) -> sp.Expr:
    """dl/da of the loss's probability formula (per sample): the output layer's upstream g
    before the activation's chain rule, also where Keras fuses the two on the logits."""
    if not model.loss.on_logits:
        return model.loss.gradient
    rule = model.loss.rule
    symbols = {name: sym for name, (sym, _) in model.loss.arguments.items()}
    per_sample = rule.formula(A_ROW, Y_ROW, I_IDX, K, **symbols)
    return row_gradient(piecewise_form(per_sample), A_ROW)


def output_delta_rule(model: NetworkDerivation) -> StepRule:
    """delta_L: on the logits the loss's fused rule (a - y)/B; otherwise g_L = dl/da / B, then
    the activation's chain rule (the same two steps the derivation composes)."""
    layer = model.layers[-1]
    l = layer.number
    names = _names(naming.layer_names(l), _loss_names(model))
    target = naming.DELTA.format(l=l)
    if model.loss.on_logits:
        lines = (RuleLine(target, model.loss.delta, names),)
    else:
        lines = (RuleLine(naming.UPSTREAM.format(l=l), batch_mean(model.loss.gradient), names),
                 RuleLine(target, layer.activation.backward, names))
    return StepRule(target, OUTPUT_DELTA, lines, l, activation=layer.activation,
                    uses_logits=model.loss.on_logits, activation_gradient=batch_mean(probability_gradient(model)))


def hidden_delta_rule(model: NetworkDerivation, l: int) -> StepRule:
    """delta_l = (delta_{l+1} passed down through the layer above's parameters) then f'."""
    layer, above = model.layers[l - 1], model.layers[l]
    lines = (*_passed_down(above),
             RuleLine(naming.DELTA.format(l=l), layer.activation.backward, _names(naming.layer_names(l))))
    return StepRule(naming.DELTA.format(l=l), HIDDEN_DELTA, lines, l, activation=layer.activation)


def gradient_rule(model: NetworkDerivation, layer, param: ParamName) -> StepRule:
    if layer.layer.rule.indexed:   # the derived entry gradient: a sum over rows and positions
        entry, formula = layer.calculus.gradients[param.kind]
        line = RuleLine(param.gradient, formula, _names(_indexed_names(layer)), entry.indices)
        return StepRule(param.gradient, GRADIENT, (line,), layer.number, param)
    names = _names(naming.layer_names(layer.number), _rule_names(layer))
    line = RuleLine(param.gradient, layer.calculus.gradients[param.kind], names)
    return StepRule(param.gradient, GRADIENT, (line,), layer.number, param)


def update_rule(model: NetworkDerivation, layer, param: ParamName) -> StepRule:
    """The optimizer's assignments for one parameter from a fresh state: w starts as the
    parameter, g is its gradient; the per-step scalars first, then each assignment in order."""
    opt = model.optimizer
    constants = {str(sym): naming.hyperparameter(name) for name, sym in opt.symbols.items()}

    def start(init) -> str:   # a slot's initial value: a constant's name or a number
        return constants[str(init)] if isinstance(init, sp.Symbol) else repr(float(init))
    setup = [(str(opt.w), param.code), (str(opt.grad), param.gradient), (str(opt.t), "1")]
    setup += [(str(sym), f"np.zeros_like({param.code}) + {start(init)}") for sym, init in opt.slots.values()]
    setup += [(str(sym), start(init)) for sym, init in opt.step_slots.values()]
    body = [RuleLine(str(target), expr, _names(constants))
            for target, expr in [*opt.step_assignments, *opt.assignments]]
    body.append(RuleLine(naming.UPDATED.format(param=param.code), opt.w, _names({})))
    return StepRule(naming.UPDATED.format(param=param.code), UPDATE, tuple(body), layer.number, param,
                    setup=tuple(setup))


def kept_rule(model: NetworkDerivation, layer, param: ParamName) -> StepRule:
    """A parameter training keeps as given (``bias_trainable = false``): its update is itself."""
    w = str(model.optimizer.w)
    line = RuleLine(naming.UPDATED.format(param=param.code), model.optimizer.w, _names({}))
    return StepRule(naming.UPDATED.format(param=param.code), UPDATE, (line,), layer.number, param,
                    setup=((w, param.code),))


def loss_rule(model: NetworkDerivation) -> StepRule:
    """The loss is given by the forward pass: graded against the key only."""
    return StepRule("loss", LOSS, (), model.depth)


def step_rules(model: NetworkDerivation, fixed=()) -> list[StepRule]:
    """Every quantity of the answer key in back-propagation order: a CNN's feature and pooled
    maps (forward, first), the loss; then from the output layer down: delta_l, each parameter's
    gradient, each parameter's update (``fixed``: the names of parameters training keeps,
    ``Spec.fixed_params``, updated to themselves)."""
    rules = [feature_map_rule(model, layer) for layer in model.layers if map_layer(layer.layer)]
    rules.append(loss_rule(model))
    for layer in reversed(model.layers):
        l = layer.number
        rules.append(output_delta_rule(model) if l == model.depth else hidden_delta_rule(model, l))
        params = layer.layer.param_names
        rules += [gradient_rule(model, layer, p) for p in params]
        rules += [kept_rule(model, layer, p) if p.code in fixed else update_rule(model, layer, p)
                  for p in params]
    return rules


def map_layer(layer) -> bool:
    """A layer whose output is a quantity of its own: a convolution's feature map, a pooling
    layer's pooled map (the windowed layers; a Dense layer's or Flatten's output is not)."""
    return layer.rule.indexed and layer.rule.gather.kind == "windows"


def step_namespace(spec, module) -> dict:
    """What a rule reads for ``spec``'s step on its first batch: the module's constants and
    helpers, B and K, the forward pass (z{l}, a{l}), the label rows the loss reads and the
    parameters before the step. The grader adds the answers (delta{l}, dW{n}, W{n}_updated)."""
    x = np.array(spec.x[:spec.batch_size], dtype=np.float64)
    y = np.array(spec.y[:spec.batch_size], dtype=np.float64)
    return step_scope(module, spec.initial_params(), x, y)
