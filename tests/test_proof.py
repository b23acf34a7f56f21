"""Proof: the composed matrix equations equal SymPy's full scalar differentiation of the loss.

For small nets, every weight and bias is a SymPy symbol; the oracle builds the whole batch loss
as one scalar expression from the registries' forward formulas and differentiates it by each
symbol. The derivation model's equations (output delta, the Dense rule's dW = a^T delta,
db = 1^T delta, g = delta W^T, each activation's backward rule) are evaluated on the same
symbolic matrices. Each gradient entry must simplify to exactly the oracle's.
"""

from __future__ import annotations

import pytest
import sympy as sp

from symbp.derivation.calculus import B, K, j
from symbp.derivation.derive import a, derive_network, g, y, z
from symbp.derivation.network import dense_layers
from symbp.spec import LossSpec, OptimizerSpec

NETS = [
    # (widths, activations, loss, x rows, y rows) — inputs and labels exact rationals
    ([2, 2, 2], ["tanh", "softmax"], "categorical_crossentropy", [[1, -2]], [[0, 1]]),
    ([2, 2, 1], ["sigmoid", "linear"], "mean_squared_error", [[1, 2], [-1, 1]], [[3], [-1]]),
    ([1, 2, 2], ["tanh", "sigmoid"], "binary_crossentropy", [[2]], [[1, 0]]),
    ([2, 2], ["softmax"], "mean_squared_error", [[1, 1]], [[1, 0]]),
    ([1, 1, 1, 1], ["softplus", "tanh", "linear"], "mean_squared_error", [[2], [-1]], [[1], [0]]),
]


def evaluate_rows(expr, rows: dict, units: int, batch: int) -> sp.Matrix:
    """A row expression (in j, over indexed rows) evaluated at every (sample, unit)."""
    expr = expr.subs({K: units, B: batch})

    def at(n, col):
        e = expr.subs(j, col).doit()
        return e.replace(lambda t: isinstance(t, sp.Indexed) and t.base in rows,
                         lambda t: rows[t.base][n, int(t.indices[0])])
    return sp.Matrix(batch, units, at)


def evaluate_matrix(expr, matrices: dict, batch: int) -> sp.Matrix:
    """A Dense-rule matrix expression with its MatrixSymbols bound to explicit matrices."""
    expr = expr.subs(B, batch)
    bound = {sym: matrices[sym.name] for sym in expr.atoms(sp.MatrixSymbol) if sym.name in matrices}
    return sp.Matrix(expr.xreplace(bound).doit())


def build(widths, act_names, loss_name, x_rows, y_rows):
    batch = len(x_rows)
    X, Y = sp.Matrix(x_rows), sp.Matrix(y_rows)
    Ws = [sp.Matrix(widths[n], widths[n + 1], lambda r, c, n=n: sp.Symbol(f"W{n}_{r}{c}", real=True))
          for n in range(len(act_names))]
    bs = [sp.Matrix(1, widths[n + 1], lambda r, c, n=n: sp.Symbol(f"b{n}_{c}", real=True))
          for n in range(len(act_names))]
    return batch, X, Y, Ws, bs


def scalar_loss(widths, act_names, loss_name, X, Y, Ws, bs, batch):
    """The oracle: the batch loss as one scalar expression of every weight symbol."""
    from symbp.rules.activations import activations as registry
    outs, pre = [X], []
    for n, name in enumerate(act_names):
        Z = outs[-1] * Ws[n] + sp.ones(batch, 1) * bs[n]
        rule = registry[name]
        if rule.row_wise:
            k = sp.Symbol("k", integer=True)
            zb = sp.IndexedBase("zrow")
            A = sp.Matrix(batch, widths[n + 1], lambda r, c: rule.formula(zb, c, k, widths[n + 1])
                          .doit().replace(lambda t: isinstance(t, sp.Indexed), lambda t: Z[r, int(t.indices[0])]))
        else:
            A = Z.applyfunc(rule.formula)
        pre.append(Z)
        outs.append(A)
    model = derive_network(dense_layers(widths, act_names), LossSpec(loss_name),
                           OptimizerSpec("sgd", {"learning_rate": 0.1}))
    units = widths[-1]
    row = model.loss.per_sample.subs(K, units)
    source = pre[-1] if model.loss.on_logits else outs[-1]
    base = z if model.loss.on_logits else a
    total = 0
    for n in range(batch):
        e = row.doit().replace(lambda t: isinstance(t, sp.Indexed),
                               lambda t: (source if t.base == base else Y)[n, int(t.indices[0])])
        total += e
    return total / batch, outs, pre, model


@pytest.mark.parametrize("net", NETS, ids=lambda n: "-".join(map(str, n[0])) + "-" + "-".join(n[1]) + "-" + n[2])
def test_composed_equations_equal_scalar_differentiation(net):
    widths, act_names, loss_name, x_rows, y_rows = net
    batch, X, Y, Ws, bs = build(*net)
    L, outs, pre, model = scalar_loss(widths, act_names, loss_name, X, Y, Ws, bs, batch)
    dense = model.layers[0].calculus  # the Dense rule's calculus (every layer here is Dense)
    depth = len(act_names)
    delta = None
    checked = 0
    for l in range(depth, 0, -1):
        rows = {a: outs[l], z: pre[l - 1], y: Y}
        units = widths[l]
        if l == depth:
            delta = evaluate_rows(model.loss.delta, rows, units, batch)
        else:
            upstream = evaluate_matrix(dense.g_down, {"delta": delta, "W": Ws[l]}, batch)
            delta = evaluate_rows(model.layers[l - 1].activation.backward, {**rows, g: upstream}, units, batch)
        dW = evaluate_matrix(dense.gradients["kernel"], {"a_prev": outs[l - 1], "delta": delta}, batch)
        db = evaluate_matrix(dense.gradients["bias"], {"delta": delta}, batch)
        for composed, params in ((dW, Ws[l - 1]), (db, bs[l - 1])):
            assert composed.shape == params.shape
            for r in range(params.rows):
                for c in range(params.cols):
                    oracle = sp.diff(L, params[r, c])
                    difference = sp.simplify((composed[r, c] - oracle).rewrite(sp.exp))
                    assert difference == 0, (params[r, c], difference)
                    checked += 1
    assert checked == sum(w.rows * w.cols + b.cols for w, b in zip(Ws, bs))


def test_the_oracle_detects_a_wrong_rule():
    """Guard: a deliberately wrong derivative (tanh' = 1 - a) is caught by the comparison."""
    widths, act_names, loss_name, x_rows, y_rows = NETS[0]
    batch, X, Y, Ws, bs = build(*NETS[0])
    L, outs, pre, model = scalar_loss(widths, act_names, loss_name, X, Y, Ws, bs, batch)
    delta = evaluate_rows(model.loss.delta, {a: outs[2], z: pre[1], y: Y}, 2, batch)
    upstream = evaluate_matrix(model.layers[0].calculus.g_down, {"delta": delta, "W": Ws[1]}, batch)
    wrong = evaluate_rows(g[j] * (1 - a[j]), {a: outs[1], g: upstream}, 2, batch)
    dW0 = evaluate_matrix(model.layers[0].calculus.gradients["kernel"], {"a_prev": outs[0], "delta": wrong}, batch)
    difference = dW0[0, 0] - sp.diff(L, Ws[0][0, 0])
    # not identically zero: it has a non-zero value at a point (simplify would only be slower)
    point = {s: sp.Rational(k + 1, 7) for k, s in enumerate(sorted(difference.free_symbols, key=str))}
    assert abs(difference.subs(point).evalf(30)) > 1e-6
