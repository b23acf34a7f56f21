"""The generated module as the side every witness is compared with: loaded, trained, nudged.

``load_module`` is the one place generated source is executed (our own template's output).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

from ..emit.codegen import module_source
from ..spec.model import Spec

#: training work (epochs x samples x parameters, ~ a third of its floating-point operations)
#: past which check and derive print their progress: a few seconds of training
PROGRESS_WORK = 3 * 10**9
#: seconds between two progress lines (the last epoch is always reported)
PROGRESS_INTERVAL = 2.0


def training_work(spec: Spec) -> int:
    """epochs x samples x parameters: what a training's time grows with."""
    from ..derivation.network import layers_from_spec
    parameters = sum(int(np.prod(layer.param_shape(name.kind)))
                     for layer in layers_from_spec(spec) for name in layer.param_names)
    return spec.epochs * len(spec.x) * parameters


def training_progress(spec: Spec, who: str, stream=None):
    """A callback ``report(epochs_done)`` printing ``who: epoch e/E`` on stderr at most every
    PROGRESS_INTERVAL seconds (and at the last epoch), or None for a training too short to wait on."""
    if training_work(spec) < PROGRESS_WORK:
        return None
    last = [float("-inf")]

    def report(done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_INTERVAL or done == spec.epochs:
            last[0] = now
            print(f"{who}: epoch {done}/{spec.epochs}", file=stream or sys.stderr, flush=True)
    return report


def load_module(source: str, name: str, data: dict[str, np.ndarray] | None = None) -> types.ModuleType:
    """Execute generated module source (our own template's output) as a fresh module.

    ``data``: the arrays of its sidecar .npz (``codegen.module_data``), when it has one; they are
    written beside it in a temporary folder, so the module reads them the way it will once written.
    """
    module = types.ModuleType(name)
    if not data:
        module.__file__ = f"<symbp generated {name}>"
        exec(compile(source, module.__file__, "exec"), module.__dict__)
        return module
    from ..emit.codegen import npz_bytes
    with tempfile.TemporaryDirectory(prefix="symbp-") as folder:
        module.__file__ = os.path.join(folder, f"{name}.py")
        Path(folder, f"{name}_data.npz").write_bytes(npz_bytes(data))
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def spec_module(spec: Spec, model=None, source: str | None = None) -> types.ModuleType:
    """The spec's generated module, loaded (with its sidecar data, if any)."""
    from ..emit.codegen import module_data
    return load_module(source or module_source(spec, model), spec.name, module_data(spec))


def module_train(spec: Spec, dtype: str = "float64", module=None):
    """Train with the generated module's ``train`` on arrays of ``dtype``; (params, epoch losses)."""
    module = module or spec_module(spec)
    params = {k: v.astype(dtype) for k, v in module.initial_params().items()}
    return module.train(params, module.X.astype(dtype), module.Y.astype(dtype),
                        progress=training_progress(spec, "generated module"))


def module_gradients(spec: Spec, module=None) -> dict[str, np.ndarray]:
    """The generated ``gradients`` at the initial parameters, all the data as one batch, float64:
    what a witness's ``Run.gradients`` is compared with."""
    module = module or spec_module(spec)
    params = {k: np.asarray(v, dtype=np.float64) for k, v in module.initial_params().items()}
    return module.gradients(params, module.X.astype(np.float64), module.Y.astype(np.float64))


def nudged_train(spec: Spec, dtype: str = "float64", seed: int = 0, module=None):
    """The generated module's ``train`` with every step's new parameters nudged by one ulp, up
    or down at random: as if each step had rounded differently, as another framework's kernels may.

    ``module``: the module being checked (its ``step`` is wrapped for the run, then restored), so
    the spread is its own rounding: a fresh module of the spec would differ from a changed one by
    the change, and a wrong rule's effect would pass for rounding."""
    module = module or spec_module(spec)
    exact_step, rng = module.step, np.random.default_rng(seed)

    def nudged_step(*args, **kwargs):
        params, state = exact_step(*args, **kwargs)
        return {name: w + rng.choice((-1.0, 1.0), size=np.shape(w)).astype(w.dtype) * np.abs(np.spacing(w))
                for name, w in params.items()}, state

    module.step = nudged_step   # train looks step up in the module's globals at each call
    try:
        return module_train(spec, dtype, module)
    finally:
        module.step = exact_step
