"""The committed generated module is current, importable, deterministic and dtype-preserving."""

import importlib.util

import numpy as np

from conftest import ROOT
from symbp.emit.codegen import module_source
from symbp.spec import load_spec

GENERATED = ROOT / "generated" / "cs4820_a7.py"


def import_committed():
    spec = importlib.util.spec_from_file_location("cs4820_a7_committed", GENERATED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_module_is_regenerated_byte_identically():
    source = module_source(load_spec())
    assert GENERATED.read_text(encoding="utf-8") == source
    assert module_source(load_spec()) == source  # deterministic


def test_codegen_command_writes_the_same_bytes(tmp_path, symbp_cli):
    result = symbp_cli("codegen", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "cs4820_a7.py").read_bytes() == GENERATED.read_bytes()


def test_interface():
    module = import_committed()
    assert module.PARAM_NAMES == ("W0", "b0", "W1", "b1", "W2", "b2")
    assert module.X.shape == (1, 4) and module.Y.shape == (1, 4)
    assert module.EPOCHS == 1 and module.BATCH_SIZE == 1
    params = module.initial_params()
    assert [params[n].shape for n in module.PARAM_NAMES] == [(4, 3), (3,), (3, 3), (3,), (3, 4), (4,)]
    outputs = module.forward(params, module.X)
    assert len(outputs) == 4
    grads = module.gradients(params, module.X, module.Y)
    assert list(grads) == list(module.PARAM_NAMES)
    assert all(grads[n].shape == params[n].shape for n in module.PARAM_NAMES)


def test_only_numpy_is_imported():
    imports = [line for line in GENERATED.read_text().splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import numpy as np"]


def test_step_does_not_mutate_its_inputs():
    module = import_committed()
    params = module.initial_params()
    before = {k: v.copy() for k, v in params.items()}
    x, y = module.X.copy(), module.Y.copy()
    new, state = module.step(params, x, y)
    for name in module.PARAM_NAMES:
        np.testing.assert_array_equal(params[name], before[name])
        assert not np.array_equal(new[name], before[name])
    np.testing.assert_array_equal(x, module.X)
    np.testing.assert_array_equal(y, module.Y)


def test_float32_in_float32_out():
    module = import_committed()
    params = {k: v.astype(np.float32) for k, v in module.initial_params().items()}
    x, y = module.X.astype(np.float32), module.Y.astype(np.float32)
    assert all(a.dtype == np.float32 for a in module.forward(params, x))
    assert all(g.dtype == np.float32 for g in module.gradients(params, x, y).values())
    trained, losses = module.train(params, x, y, epochs=2)
    assert all(p.dtype == np.float32 for p in trained.values())
    assert all(np.isfinite(losses))
