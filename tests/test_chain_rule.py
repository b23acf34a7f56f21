"""--explain's scalar chain rule is SymPy's: its products, evaluated, sum to the module's gradient.

For entries of hidden and output layers, weights and biases, a batch of one and of several rows,
element-wise activations (through dL/da and f'(z)), a row-wise softmax and a loss on the logits
(through delta), the factors of :func:`symbp.derivation.chain_rule.chain_rule` multiply and sum, row by
row, to the generated module's ``gradients`` entry.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from symbp.derivation.chain_rule import Target, chain_rule, entries, layer_entry, parameter_entries, partial
from symbp.derivation.network import dense_layers
from symbp.emit.codegen import derive_spec, module_source
from symbp.witnesses.module import load_module
from symbp.spec import load_spec
from test_every_optimizer_and_loss import CASES
from test_handouts import OTHER_SPECS

def torch_seed():
    from pathlib import Path
    import symbp
    return load_spec(Path(symbp.__file__).parent / "examples" / "cs4820_a7_torch.toml")


SPECS = {"seed": load_spec, **OTHER_SPECS, "adamw_huber": CASES["adamw_huber"], "torch_seed": torch_seed}
ENTRIES = {
    "seed": [("W1", 2, 0), ("b2", None, 1), ("W0", 3, 2), ("b0", None, 1), ("W2", 1, 3)],
    "sigmoid_mse": [("W1", 1, 0), ("b1", None, 1), ("W0", 0, 1)],            # output through g, f'
    "deep_bce": [("W0", 1, 0), ("W3", 1, 0), ("b2", None, 1), ("W1", 3, 2)],  # batch 2, relu, elu
    "momentum_softmax_mse": [("W1", 4, 2), ("b0", None, 3)],                  # softmax: through delta
    "adamw_huber": [("W1", 0, 1), ("W0", 2, 0), ("b1", None, 0)],             # batch 2, huber
    # torch's Linear.weight[unit, input]: the seed's entries transposed
    "torch_seed": [("W1", 0, 2), ("b2", None, 1), ("W0", 2, 3), ("b0", None, 1), ("W2", 3, 1)],
}


def _first_step(spec):
    """(derivation, initial params, first batch x, its trace, its gradients) of ``spec``'s module."""
    model = derive_spec(spec)
    module = load_module(module_source(spec, model), spec.name)
    params = module.initial_params()
    x, y = module.X[:spec.batch_size], module.Y[:spec.batch_size]
    return model, params, x, module.trace(params, x, y), module.gradients(params, x, y)


@pytest.mark.parametrize("key", sorted(ENTRIES))
def test_explain_products_sum_to_the_module_gradient(key):
    spec = SPECS[key]()
    model, params, x, trace, gradients = _first_step(spec)
    for name, row, col in ENTRIES[key]:
        chain = chain_rule(model, Target(name, row, col), trace, params)
        assert len(chain.rows) == len(x)
        expected = gradients[name][chain.target.index]
        assert chain.total == pytest.approx(expected, rel=1e-12, abs=1e-15), (name, row, col)
        assert all(len(factors) == (3 if chain.through_activation else 2) for factors in chain.rows)


def test_partials_come_from_differentiating_the_dense_entry():
    """dz[r,c]/dW[i,c] = a_prev[r,i], dz[r,c]/db[c] = 1, dz[r,k]/da_prev[r,c] = W[c,k]: derived
    from the Dense rule's entry (rules/layers.py), for layer 2 of a 3-4-2 network."""
    layer = dense_layers([3, 4, 2], ["tanh", "softmax"])[1]
    e, p = entries(2), parameter_entries(layer)
    assert set(p) == {"kernel", "bias"} and str(p["kernel"]) == "W1"
    z = layer_entry(layer, 0, 1)
    assert partial(z, p["kernel"][3, 1]) == e["a_prev"][0, 3]
    assert partial(z, p["kernel"][3, 0]) == 0
    assert partial(z, p["bias"][1]) == 1
    k = sp.Symbol("k", integer=True, nonnegative=True)
    assert partial(layer_entry(layer, 0, k), e["a_prev"][0, 2]) == p["kernel"][2, k]


@pytest.mark.parametrize("activation, name, value", [("gelu", r"\frac{\sqrt{2}}{2}", "0.7071067"),
                                                     ("selu", r"\lambda", "1.05070")])
def test_explain_prints_activation_constants_by_name(activation, name, value):
    """--explain's f'(z) factor writes the activation's constant as the handout does (1/sqrt 2 exact,
    SELU's lambda by name), not as the float Keras computes with; its number is still the trace's."""
    from symbp.emit.handouts import HandoutOptions, render_handouts
    from test_handouts import small_spec
    spec = small_spec("constants", [2, 2, 1], [activation, "sigmoid"], "mean_squared_error",
                      [[0.3, -0.4]], [[1.0]])
    solution = render_handouts(spec, HandoutOptions(explain=("W0[1,0]",)))["solution"]
    explained = solution[solution.index(r"\steptitle{The chain rule for"):]
    factor = next(line for line in explained.splitlines() if r"\partial z_{1}[0,0]} =" in line)
    assert name in factor and value not in factor


# ---------------------------------------------------------------- convolutions
def _cnn_specs():
    from pathlib import Path
    from test_cnn_handouts import OTHER_NETS
    example = Path(__file__).resolve().parents[1] / "symbp" / "examples" / "cnn_6x6.toml"
    return {"cnn_6x6": lambda: load_spec(example), **OTHER_NETS}


CONV_ENTRIES = {
    "cnn_6x6": [("W0", (1, 2, 0, 1)), ("b0", (2,)), ("W3", (5, 1))],
    "strided_same": [("W0", (0, 2, 0, 1)), ("W1", (1, 0, 1, 0)), ("b1", (1,))],   # same padding, strides 2
    "conv1d_average": [("W0", (2, 1, 0)), ("b0", (1,))],                           # W[u, k, c]
}


@pytest.mark.parametrize("key", sorted(CONV_ENTRIES))
def test_explain_a_convolution_entry_sums_delta_times_window(key):
    """dL/dW[u,v,k,c] = sum_{n,p,q} delta[n,p,q,c] * dz[n,p,q,c]/dW[u,v,k,c]: one term per sample
    and position, each partial SymPy's derivative of the Conv rule's entry (the window entry
    win[n,p,q,k,u,v]; 1 for a bias), valued from the trace; the terms sum to the module's gradient."""
    from symbp.emit.handouts import parse_explain
    spec = _cnn_specs()[key]()
    model, params, x, trace, gradients = _first_step(spec)
    for name, index in CONV_ENTRIES[key]:
        target = parse_explain(f"{name}[{','.join(map(str, index))}]", spec)
        chain = chain_rule(model, target, trace, params)
        assert chain.target.index == index
        assert chain.total == pytest.approx(gradients[name][index], rel=1e-12, abs=1e-15), (name, index)
        layer = model.layers[target.layer - 1].layer
        if not layer.rule.indexed:
            continue
        positions = trace[f"delta{target.layer}"].shape[:-1]
        assert len(chain.rows) == int(np.prod(positions)) and chain.summed == ("n", "p", "q")[:len(positions)]
        for position, (delta, local) in zip(np.ndindex(*positions), chain.rows):
            assert delta.rule == sp.IndexedBase(f"delta{target.layer}")[(*position, index[-1])]
            if name.startswith("b"):
                assert local.rule == 1
            else:       # kernel W[offsets.., k, c]: the window entry win[n, positions.., k, offsets..]
                window = sp.IndexedBase(f"win{target.layer}")[(*position, index[-2], *index[:-2])]
                assert local.rule == window and local.value == trace[f"win{target.layer}"][
                    (*position, index[-2], *index[:-2])]


def test_explain_a_kernel_entry_from_the_cli(tmp_path):
    """`derive cnn_6x6.toml --explain 'W0[1,2,0,1]'` writes the sum over n, p, q (no more exit 2);
    a kernel entry with the wrong number of indices is a one-line error naming its four."""
    from pathlib import Path
    from conftest import run_symbp
    example = Path(__file__).resolve().parents[1] / "symbp" / "examples" / "cnn_6x6.toml"
    result = run_symbp("derive", str(example), "-o", str(tmp_path), "--no-check", "--explain", "W0[1,2,0,1]")
    assert result.returncode == 0, result.stderr
    tex = (tmp_path / "cnn_6x6_solution.tex").read_text()
    assert (r"\frac{\partial L}{\partial W_{0}[1,2,0,1]} = \sum_{n,p,q} \frac{\partial L}{\partial z_{1}[n,p,q,1]}"
            in tex)
    assert r"= \mathrm{win}_{1}[0,0,2,0,1,2] = 0.7}" in tex
    bad = run_symbp("derive", str(example), "-o", str(tmp_path / "bad"), "--no-check", "--explain", "W0[1,2]")
    assert bad.returncode == 2 and "W0[u,v,k,c]" in bad.stderr and not (tmp_path / "bad").exists()


def test_explain_a_kernel_entry_of_a_large_batch_writes_four_terms_out():
    """A LeNet kernel entry over a batch of 4 28x28 images sums 2,704 terms (sample x position):
    the handout writes out the first four that are not 0, then how many it leaves out and how many
    of all are 0 (a ReLU that is off zeroes them), and the sum the module's gradient."""
    from symbp.emit.handout_latex import SHOWN_TERMS
    from symbp.emit.handouts import HandoutOptions, render_handouts
    from test_conv import LENET, make_spec
    spec = make_spec(LENET, (4, 28, 28, 1), classes=10, batch_size=4)
    model, params, _, trace, gradients = _first_step(spec)   # batch_size 4: the whole x
    chain = chain_rule(model, Target("W0", None, 0, (1, 1, 0, 2)), trace, params)
    terms, zeros = 4 * 26 * 26, sum(p == 0 for p in chain.products)
    assert len(chain.rows) == terms and 0 < zeros < terms - SHOWN_TERMS
    solution = render_handouts(spec, HandoutOptions(explain=("W0[1,1,0,2]",)))["solution"]
    explained = solution[solution.index(r"\steptitle{The chain rule for"):].split(r"\appendix")[0]
    written = [line for line in explained.splitlines() if r"\quad \frac{\partial z_{1}[" in line]
    assert len(written) == SHOWN_TERMS and not any(line.endswith("= 0}") for line in written)
    assert f"({terms - SHOWN_TERMS} more terms of the same form, one per sample and position; {zeros} of all {terms} are 0)" in explained
    gradient = gradients["W0"][1, 1, 0, 2]
    total = next(line for line in explained.splitlines() if r"+ \cdots = " in line)
    assert chain.total == pytest.approx(gradient, rel=1e-12) and total.count("+") == SHOWN_TERMS
