"""The generated module's ``trace``: every number of one training step, computed once, in NumPy.

Presenters (the handouts, the answer key) read a step's numbers from ``trace(params, x, y)``;
none of them evaluates an expression itself. The trace reuses the module's ``_forward``,
``loss`` and ``backward`` (which record their intermediates into it) and prints, from the
derivation model with the same :class:`~symbp.emit.printers.ArrayPrinter`, only what the training
step does not compute on its own:

* ``fprime{l} = f'(z{l})`` of each element-wise activation (the derivative SymPy derived);
* ``g{L} = dl/da{L} / B``, the output gradient, when the loss is not taken on the logits
  (``backward`` folds it into ``delta{L}``);
* the per-step scalars and each per-parameter assignment of the optimizer in order, from a
  fresh state (``step`` keeps only their final values: weight decay assigns ``w`` twice);
* the ``parts`` a worked rule shows on the way to its result (:func:`worked_parts`).

This module states the keys; ``templates/module.py.j2`` lays the lines out.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..derivation import naming
from ..derivation.calculus import B, j as UNIT

#: the module's name of a worked rule's parts (row sums first, then piecewise sides), by key
PARTS = "parts"


@dataclass(frozen=True)
class WorkedParts:
    """How a worked rule is shown: each innermost row sum on a line of its own (replaced by a
    column in ``rest``), then each side a piecewise condition compares (huber's ``|a - y|``)."""
    rest: sp.Expr
    sums: tuple[tuple[sp.Expr, sp.Indexed], ...]     # (the row sum, the column standing for it)
    sides: tuple[sp.Expr, ...]

    @property
    def expressions(self) -> tuple[sp.Expr, ...]:
        """The parts in the order ``trace()["parts"][key]`` holds their values."""
        return tuple(total for total, _ in self.sums) + self.sides


def column_name(n: int) -> str:
    return f"rowsum{n}"


def worked_parts(expr: sp.Expr) -> WorkedParts:
    """Split ``expr`` for showing: softmax's ``e^z / rowsum(e^z)`` works out the row sum first
    (when the rest still needs the rows, so the filled-in line shows its column), then a
    piecewise rule shows the rows its conditions compare (the entries' cases follow from them)."""
    sums = []
    for n, total in enumerate(sorted(expr.atoms(sp.Sum), key=sp.default_sort_key)):
        if total.atoms(sp.Sum) != {total}:
            continue
        column = sp.IndexedBase(column_name(n))[UNIT]
        rest = expr.xreplace({total: column})
        if not rest.atoms(sp.Indexed) - {column}:
            continue
        sums.append((total, column))
        expr = rest
    sides, seen = [], set()
    for piecewise in sorted(expr.atoms(sp.Piecewise), key=sp.default_sort_key):
        for _, condition in piecewise.args:
            relations = sorted(condition.atoms(sp.Rel), key=sp.default_sort_key) \
                if isinstance(condition, sp.Basic) else ()
            for side in (side for relation in relations for side in relation.args):
                if not side.has(sp.Indexed) or isinstance(side, sp.Indexed):
                    continue
                side = _entry_of_unit(side)
                if side in seen:
                    continue
                seen.add(side)
                sides.append(side)
    return WorkedParts(expr, tuple(sums), tuple(sides))


def _entry_of_unit(expr: sp.Expr) -> sp.Expr:
    """``expr`` at the unit ``j``: a side compared inside a row sum (``a[i] / rowsum[j]``, its
    summed ``i``) is the same row as one outside it (``a[j] / rowsum[j]``), shown once."""
    indices = {index for entry in expr.atoms(sp.Indexed) for index in entry.indices
               if isinstance(index, sp.Symbol) and index != UNIT}
    return expr.xreplace({index: UNIT for index in indices})


def output_gradient(model) -> sp.Expr:
    """``g_L = dL/da_L`` of the batch loss: the per-sample gradient over B (the batch mean)."""
    return model.loss.gradient / B


def worked_rules(model) -> list[tuple[str, sp.Expr, int]]:
    """(trace key, rule, layer) of each rule a handout works out with its parts."""
    depth, loss = model.depth, model.loss
    rules = [(naming.OUTPUT.format(l=layer.number), layer.activation.forward, layer.number)
             for layer in model.layers]
    rules.append(("per_sample", loss.per_sample, depth))
    if not loss.on_logits:
        rules.append((naming.UPSTREAM.format(l=depth), output_gradient(model), depth))
    rules += [(naming.DELTA.format(l=layer.number), layer.activation.backward, layer.number)
              for layer in model.layers if layer.activation.derivative is None
              and not (layer.number == depth and loss.on_logits)]
    return rules


def trace_context(model, emit, loss_names: dict) -> dict:
    """The lines only ``trace`` prints (see the module docstring), by ``emit`` (codegen's)."""
    depth = model.depth
    derivatives = []
    for layer in model.layers:
        derivative = layer.activation.derivative
        if derivative is None:
            continue
        line = emit.line(naming.DERIVATIVE.format(l=layer.number), derivative,
                         naming.layer_names(layer.number), f"f'({naming.PRE_ACTIVATION.format(l=layer.number)})")
        z = naming.PRE_ACTIVATION.format(l=layer.number)
        if not derivative.atoms(sp.Indexed):   # a constant (linear's 1): one per entry, as z
            line = type(line)(line.target, f"np.broadcast_to({line.code}, {z}.shape)", line.equation, line.guard)
        derivatives.append(line)
    upstream = []
    if not model.loss.on_logits:
        upstream.append(emit.line(naming.UPSTREAM.format(l=depth), output_gradient(model),
                                  {**naming.layer_names(depth), **loss_names}))
    parts = []
    for key, rule, l in worked_rules(model):
        worked = worked_parts(rule)
        names = {**naming.layer_names(l), **loss_names,
                 **{str(column.base): f'{PARTS}["{key}"][{n}]' for n, (_, column) in enumerate(worked.sums)}}
        parts.append((key, [emit.line(f'{PARTS}["{key}"]', part, names).code for part in worked.expressions]))
    return {"derivatives": derivatives, "upstream": upstream,
            "parts": [(key, codes) for key, codes in parts if codes],
            "recorded_upstream": [naming.UPSTREAM.format(l=l) for l in range(1, depth)],
            "step_targets": [str(target) for target, _ in model.optimizer.step_assignments]}
