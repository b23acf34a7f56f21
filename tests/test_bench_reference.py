"""The benchmark's hand-written NumPy step (bench/handwritten.py) and the generated step agree:
the comparison in bench/run_all.py times two implementations of the same update."""

import importlib.util

import numpy as np
import pytest

from conftest import ROOT
from symbp.emit.codegen import module_source
from symbp.witnesses.module import load_module
from symbp.spec import Spec


def handwritten():
    spec = importlib.util.spec_from_file_location("bench_handwritten", ROOT / "bench" / "handwritten.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("hidden", ["relu", "tanh"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_hand_written_step_matches_the_generated_step(hidden, dtype):
    rng = np.random.default_rng(5)
    widths = [7, 6, 5, 4]
    spec = Spec.from_dict({
        "name": "reference", "seed": 4,
        "data": {"x": rng.standard_normal((9, 7)).tolist(), "y": np.eye(4)[rng.integers(0, 4, 9)].tolist()},
        "layers": [{"units": u, "activation": a} for u, a in zip(widths[1:], [hidden, hidden, "softmax"])],
        "loss": {"name": "categorical_crossentropy"}, "optimizer": {"name": "sgd", "learning_rate": 0.5}})
    module = load_module(module_source(spec), "reference")
    params = {k: v.astype(dtype) for k, v in module.initial_params().items()}
    x, y = module.X.astype(dtype), module.Y.astype(dtype)
    before = {k: v.copy() for k, v in params.items()}
    ours = module.step(params, x, y)[0]
    theirs = handwritten().step(params, x, y, module.LEARNING_RATE, hidden)
    tolerance = 1e-12 if dtype == np.float64 else 1e-6
    for name in module.PARAM_NAMES:
        assert ours[name].dtype == theirs[name].dtype == dtype
        np.testing.assert_allclose(ours[name], theirs[name], rtol=0, atol=tolerance)
        np.testing.assert_array_equal(params[name], before[name])
    assert not np.allclose(ours["W0"], params["W0"])


def test_codegen_specs_built_below_the_validator_equal_validated_ones():
    """bench/run_all.py times codegen of specs beyond the validator's limits, built directly:
    within the limits the direct build is the spec the validator returns."""
    import sys
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from nets import wide_spec
    finally:
        sys.path.remove(str(ROOT / "bench"))
    for widths in ([5, 9, 9, 3], [12, 7, 4]):
        assert wide_spec(widths, rows=3, validate=False) == wide_spec(widths, rows=3)
