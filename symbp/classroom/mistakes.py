"""The classic back-propagation mistakes, each a mutation of the derivation's rules.

API (used by the grader and by LMS exports that need distractors):

* ``MISTAKES``: mistake id -> :class:`Mistake` (``id``, ``description``, ``rule``: the rule in
  symbols the student should have used, ``kinds``: the quantities it can show in, ``mutate``).
* ``mutated(mistake_id, step_rule)``: the :class:`~symbp.classroom.rules_of_step.StepRule` with
  that mistake made, or None where it does not apply (a row-wise Jacobian on an element-wise
  activation) .
* ``mistake_values(spec, mistake_id, module=None)``: {quantity: array} the numbers one mistake
  gives for a student's spec, every earlier quantity correct (a distractor per quantity); only
  quantities where the mistake changes the number.
* ``step_namespace(spec, module)``: the numbers a rule reads (forward pass, labels, parameters,
  the module's constants and helpers), to which the grader adds the student's answers.

A mutation edits the derivation's expressions (f'(z) replaced by 1, by f(z), its z and a
swapped; g passed down through the updated parameters; an operand transposed; the gradient's
sign in the optimizer flipped; the learning rate set to 1; B set to 1 or B^2; the batch
restricted to one row; the output error negated; the row-wise Jacobian replaced by its
diagonal). It is never a formula typed for one network, so every depth, activation, loss and
optimizer gets every mistake that applies to it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Callable, Optional

import numpy as np
import sympy as sp

from ..derivation.calculus import B, row_gradient
from ..derivation.derive import a as A_ROW, express_in_output, g as G_ROW, j as J_IDX, z as Z_ROW
from ..derivation import naming
from ..derivation.naming import ParamName
from .rules_of_step import GRADIENT, HIDDEN_DELTA, OUTPUT_DELTA, UPDATE, StepRule


@dataclass(frozen=True)
class Mistake:
    id: str
    description: str
    rule: str                                   # what the student should have used, in symbols
    kinds: frozenset                            # kinds of quantity it shows in (rules_of_step)
    mutate: Callable[[StepRule], Optional[StepRule]]


# ---------------------------------------------------------------- mutations of the activation step
def _with_delta_line(rule: StepRule, backward: Optional[sp.Expr]) -> Optional[StepRule]:
    """``rule`` with its delta line's activation step replaced by ``backward`` (in g, z, a).

    On Keras's fused logits path (softmax + cross-entropy) the upstream g = dl/da / B comes
    from the loss's probability formula first, so the activation step can be mutated there too."""
    if backward is None or rule.kind not in (OUTPUT_DELTA, HIDDEN_DELTA):
        return None
    lines = list(rule.lines)
    if rule.uses_logits:
        model_gradient = rule.activation_gradient
        if model_gradient is None:
            return None
        g_line = replace(lines[-1], target=naming.UPSTREAM.format(l=rule.layer), expr=model_gradient)
        lines = [g_line, lines[-1]]
    lines[-1] = replace(lines[-1], expr=backward)
    return replace(rule, lines=tuple(lines))


def _derivative_dropped(rule: StepRule):
    return _with_delta_line(rule, G_ROW[J_IDX])


def _activation_for_derivative(rule: StepRule):
    if rule.activation is None:
        return None
    return _with_delta_line(rule, G_ROW[J_IDX] * rule.activation.forward)


def _derivative_in_wrong_variable(rule: StepRule):
    derivative = getattr(rule.activation, "derivative", None)
    if derivative is None:
        return None
    swapped = derivative.xreplace({Z_ROW: A_ROW, A_ROW: Z_ROW})
    return _with_delta_line(rule, G_ROW[J_IDX] * swapped) if swapped != derivative else None


@lru_cache(maxsize=None)
def _jacobian_diagonal(activation) -> Optional[sp.Expr]:
    """d a_j / d z_j of a row-wise activation (softmax: a_j (1 - a_j)), by SymPy."""
    if activation.derivative is not None:
        return None
    return express_in_output(row_gradient(activation.forward, Z_ROW), activation.rule)


def _jacobian_ignored(rule: StepRule):
    if rule.activation is None:
        return None
    diagonal = _jacobian_diagonal(rule.activation)
    return None if diagonal is None else _with_delta_line(rule, G_ROW[J_IDX] * diagonal)


# ---------------------------------------------------------------- other mutations
def _exprs(rule: StepRule, change: Callable[[sp.Basic], sp.Basic], first_only: bool = False) -> StepRule:
    lines = [replace(line, expr=change(line.expr)) if (not first_only or n == 0) else line
             for n, line in enumerate(rule.lines)]
    return replace(rule, lines=tuple(lines))


def _updated_weights(rule: StepRule):
    """g passed down through the parameters after the update (the g line's parameters rebound)."""
    if rule.kind != HIDDEN_DELTA:
        return None
    g_line = rule.lines[0]   # Dense's g = delta W^T, or a convolution's dwin = sum_c W delta
    params = {k: naming.UPDATED.format(param=v) for k, v in g_line.names if ParamName.names_one(v)}
    if not params:   # passed down through pooling or Flatten: no weights to take after the update
        return None
    return replace(rule, lines=(g_line.rebind(**params), *rule.lines[1:]))


def _transposed(rule: StepRule):
    """A gradient given transposed, or the weights used untransposed when passing g down (matrix
    rules only: an indexed layer's entry formulas have no transpose to forget)."""
    if rule.indexed:
        return None
    if rule.kind == GRADIENT:
        return _exprs(rule, lambda e: e.T)
    if rule.kind == HIDDEN_DELTA:
        g_line = rule.lines[0]
        weights = [s for s in g_line.expr.atoms(sp.MatrixSymbol) if s.name not in ("a_prev", "delta")]
        flipped = g_line.expr.xreplace({w: w.T for w in weights}).doit()
        return replace(rule, lines=(replace(g_line, expr=flipped), *rule.lines[1:]))
    return None


def _learning_rate_dropped(rule: StepRule):
    if rule.kind != UPDATE:
        return None
    rates = {k for line in rule.lines for k, v in line.names if v.startswith(naming.hyperparameter("learning_rate"))}
    return _exprs(rule, lambda e: e.xreplace({s: sp.S.One for s in e.free_symbols if s.name in rates}))


def _update_sign_flipped(rule: StepRule):
    if rule.kind != UPDATE:
        return None
    gradient = sp.Symbol("g", real=True)
    return _exprs(rule, lambda e: e.xreplace({gradient: -gradient}))


def _batch_mean_dropped(rule: StepRule):
    return _exprs(rule, lambda e: e.xreplace({B: sp.S.One})) if rule.kind == OUTPUT_DELTA else None


def _batch_mean_doubled(rule: StepRule):
    if rule.kind == OUTPUT_DELTA:
        return _exprs(rule, lambda e: e.xreplace({B: B ** 2}))
    if rule.kind == GRADIENT:   # the gradient's delta divided by B once more
        line = rule.lines[0]
        return replace(rule, lines=(line.rebind(**{k: f"({v} / B)" for k, v in line.names if k == "delta"}),))
    return None


def _bias_from_one_row(rule: StepRule):
    """db from the first row of delta instead of the sum over the batch."""
    if rule.kind != GRADIENT or rule.param.kind != "bias":
        return None
    line = rule.lines[0]
    rows = {k: f"{v}[:1]" for k, v in line.names if k in ("a_prev", "delta")}
    return replace(rule, lines=(line.rebind(**rows),))


def _output_error_negated(rule: StepRule):
    return _exprs(rule, lambda e: -e, first_only=True) if rule.kind == OUTPUT_DELTA else None


# ---------------------------------------------------------------- the catalogue
_DELTAS = frozenset({OUTPUT_DELTA, HIDDEN_DELTA})
MISTAKES: dict[str, Mistake] = {m.id: m for m in [
    Mistake("missing_activation_derivative", "the activation's derivative was left out (delta = g)",
            "delta = g ⊙ f'(z)", _DELTAS, _derivative_dropped),
    Mistake("activation_instead_of_derivative", "the activation f(z) was used where its derivative f'(z) belongs",
            "delta = g ⊙ f'(z)", _DELTAS, _activation_for_derivative),
    Mistake("derivative_in_wrong_variable", "the derivative was evaluated at the wrong variable "
            "(at a where the rule is in z, or at z where it is in a)", "delta = g ⊙ f'(z)", _DELTAS,
            _derivative_in_wrong_variable),
    Mistake("softmax_jacobian_ignored", "a row-wise activation (softmax) was treated element-wise: "
            "only the Jacobian's diagonal was used", "delta_j = sum_i g_i da_i/dz_j", _DELTAS, _jacobian_ignored),
    Mistake("updated_weights_used", "g was passed down through the updated weights instead of the "
            "weights of the forward pass", "g = delta W^T (W before the update)", frozenset({HIDDEN_DELTA}),
            _updated_weights),
    Mistake("transposed", "a matrix was used transposed", "dW = a^T delta, g = delta W^T",
            frozenset({GRADIENT, HIDDEN_DELTA}), _transposed),
    Mistake("wrong_update_sign", "the update went up the gradient (+ instead of -)",
            "w = w - eta g (the optimizer's rule)", frozenset({UPDATE}), _update_sign_flipped),
    Mistake("learning_rate_missing", "the learning rate was left out of the update",
            "w = w - eta g (the optimizer's rule)", frozenset({UPDATE}), _learning_rate_dropped),
    Mistake("missing_batch_mean", "the loss's mean over the batch (1/B) was left out",
            "L = 1/B sum_r l_r, so delta_L carries 1/B", frozenset({OUTPUT_DELTA}), _batch_mean_dropped),
    Mistake("extra_batch_mean", "the batch mean 1/B was applied twice",
            "1/B enters once, in delta_L", frozenset({OUTPUT_DELTA, GRADIENT}), _batch_mean_doubled),
    Mistake("bias_not_summed", "the bias gradient was taken from one row instead of summed over the batch",
            "db = 1^T delta (sum over the batch)", frozenset({GRADIENT}), _bias_from_one_row),
    Mistake("wrong_output_error_sign", "the output error has the wrong sign (y - a for a - y)",
            "delta_L = dL/dz_L (a - y for a matched loss)", frozenset({OUTPUT_DELTA}), _output_error_negated),
]}


@lru_cache(maxsize=4096)
def mutated(mistake_id: str, rule: StepRule) -> Optional[StepRule]:
    """``rule`` with mistake ``mistake_id`` made, or None where it does not apply (cached: a
    class's students share their rules)."""
    mistake = MISTAKES[mistake_id]
    if rule.kind not in mistake.kinds:
        return None
    return mistake.mutate(rule)


def mistake_values(spec, mistake_id: str, module=None) -> dict[str, np.ndarray]:
    """{quantity: the number mistake ``mistake_id`` gives there} for ``spec``'s step, every
    earlier quantity correct: one distractor per quantity where the mistake changes the answer."""
    from ..emit.codegen import derive_spec
    from ..witnesses.module import spec_module
    from .rules_of_step import step_namespace, step_rules
    from .variants import answers
    module = module or spec_module(spec)
    namespace = step_namespace(spec, module)
    key = {name: np.asarray(value, dtype=np.float64) for name, value in answers(spec, module).items()}
    namespace.update(key)
    out = {}
    for rule in step_rules(derive_spec(spec), spec.fixed_params):
        changed = mutated(mistake_id, rule)
        value = changed.evaluate(namespace) if changed is not None else None
        expected = key[rule.quantity]
        if value is not None and value.shape == expected.shape and not np.allclose(value, expected, rtol=1e-9, atol=0):
            out[rule.quantity] = value
    return out


def mistaken_rules(spec) -> list[tuple[str, str, StepRule]]:
    """(quantity, mistake id, the rule with that mistake made) for every quantity of ``spec``'s
    step in back-propagation order and every catalogued mistake that applies there."""
    from ..emit.codegen import derive_spec
    from .rules_of_step import step_rules
    return [(rule.quantity, mistake_id, changed) for rule in step_rules(derive_spec(spec), spec.fixed_params)
            for mistake_id in MISTAKES if (changed := mutated(mistake_id, rule)) is not None]


def mistakes_module_source(spec) -> str:
    """A NumPy-only module of every mistaken rule of ``spec``'s step (its functions printed by
    the rules' own printer, :meth:`StepRule.function_source`), and ``MISTAKEN_RULES``: quantity
    -> [(mistake id, function)] (``templates/prairielearn_mistakes.py.j2``)."""
    from ..emit.render import python_env, render
    functions, table = [], {}
    for quantity, mistake_id, changed in mistaken_rules(spec):
        name = f"{mistake_id}__{quantity}"
        functions.append({"source": changed.function_source(name).rstrip("\n")})
        table.setdefault(repr(quantity), []).append({"id": repr(mistake_id), "name": name})
    return render(python_env(), "prairielearn_mistakes.py.j2", functions=functions, table=list(table.items()))

