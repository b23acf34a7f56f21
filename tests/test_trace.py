"""The generated module's trace: every number of one step, agreeing with the module's own functions.

Presenters read the trace instead of evaluating expressions, so it must hold what forward,
loss, backward and step compute, plus g, f'(z) and each optimizer assignment, consistently.
"""

from __future__ import annotations

import numpy as np
import pytest

from symbp.emit.codegen import module_source
from symbp.witnesses.module import load_module
from symbp.spec import load_spec
from test_every_optimizer_and_loss import CASES
from test_handouts import OTHER_SPECS

SPECS = {"seed": load_spec, **OTHER_SPECS, **CASES}


@pytest.mark.parametrize("key", sorted(SPECS))
def test_trace_holds_the_step_the_module_computes(key):
    spec = SPECS[key]()
    module = load_module(module_source(spec), spec.name)
    params = module.initial_params()
    x, y = module.X[:spec.batch_size], module.Y[:spec.batch_size]
    trace = module.trace(params, x, y)
    depth = len(spec.layers)
    outputs = module.forward(params, x)
    grads, deltas = module.backward(params, x, y)
    for l in range(depth + 1):
        np.testing.assert_array_equal(trace[f"a{l}"], outputs[l])
    for l in range(1, depth + 1):
        np.testing.assert_array_equal(trace[f"delta{l}"], deltas[l - 1])
        if l < depth:   # g_l = dL/da_l = delta_{l+1} W_l^T; delta_l = g_l f'(z_l) where element-wise
            np.testing.assert_allclose(trace[f"g{l}"], deltas[l] @ params[f"W{l}"].T, rtol=1e-12)
        if f"fprime{l}" in trace and f"g{l}" in trace:
            np.testing.assert_allclose(trace[f"g{l}"] * trace[f"fprime{l}"], deltas[l - 1], rtol=1e-12, atol=1e-15)
    for name in spec.param_names:
        np.testing.assert_array_equal(trace[f"d{name}"], grads[name])
        assigned = trace["update"][name]
        assert assigned[-1][0] == "w"
        np.testing.assert_array_equal(assigned[-1][1], trace["updated"][name])
    assert trace["loss"] == module.loss(params, x, y)
    assert np.mean(trace["per_sample"]) == trace["loss"]
    updated, _ = module.step(params, x, y)
    for name in spec.param_names:
        np.testing.assert_array_equal(trace["updated"][name], updated[name])


def test_no_eval_outside_loading_the_generated_module():
    """Presenters read the trace: eval and exec appear only where the generated module is loaded."""
    import ast
    from pathlib import Path

    import symbp
    calls = []
    for path in sorted(Path(symbp.__file__).parent.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("eval", "exec"):
                    calls.append((path.name, function.name))
    assert set(calls) <= {("module.py", "load_module")}, calls
