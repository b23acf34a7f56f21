"""The benchmark's networks, their float32 arrays, and a side-by-side timer.

Every timing in ``bench/`` comes from :func:`interleaved`: the candidates run in turn, in a
rotating order, several rounds, and each one's median per-call time is kept. The machine is
shared, so only ratios measured this way (in one run, side by side) mean much.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from symbp.emit.codegen import module_source  # noqa: E402
from symbp.witnesses.module import load_module  # noqa: E402
from symbp.spec import LayerSpec, LossSpec, OptimizerSpec, Spec, TrainingSpec, load_spec  # noqa: E402


@dataclass
class Net:
    """A spec, its generated module, and one float32 batch with the spec's initial weights."""
    label: str
    spec: Spec
    module: object
    params: dict
    x: np.ndarray
    y: np.ndarray

    @property
    def widths(self) -> list[int]:
        return self.spec.widths

    @property
    def batch(self) -> int:
        return self.x.shape[0]


def wide_spec(widths: list[int], name: str = "wide", rows: int = 4, seed: int = 0,
              validate: bool = True) -> Spec:
    """relu hidden layers, a softmax output, categorical cross-entropy, SGD; weights left to
    the initializers (drawn from ``seed``); ``rows`` one-hot labelled rows of data.

    ``validate=False`` builds the same Spec directly, below the validator, whose limits (32
    layers of 1024 units) reject the largest specs of the codegen table.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, widths[0])).tolist()
    y = np.eye(widths[-1])[rng.integers(0, widths[-1], rows)].tolist()
    activations = ["relu"] * (len(widths) - 2) + ["softmax"]
    loss, optimizer = {"name": "categorical_crossentropy"}, {"name": "sgd", "learning_rate": 0.01}
    if not validate:
        return Spec(name, x, y, [LayerSpec(u, a) for u, a in zip(widths[1:], activations)],
                    LossSpec.from_mapping(loss), OptimizerSpec.from_mapping(optimizer),
                    TrainingSpec(batch_size=rows), seed=seed)
    return Spec.from_dict({
        "name": name, "seed": seed, "data": {"x": x, "y": y},
        "layers": [{"units": u, "activation": a} for u, a in zip(widths[1:], activations)],
        "loss": loss, "optimizer": optimizer, "training": {"batch_size": rows}})


def float32_net(label: str, spec: Spec, batch: int | None = None, seed: int = 1) -> Net:
    """Generate the spec's module; a float32 batch of ``batch`` rows (the spec's data if None)."""
    module = load_module(module_source(spec), spec.name)
    params = {k: v.astype(np.float32) for k, v in module.initial_params().items()}
    if batch is None:
        x, y = module.X.astype(np.float32), module.Y.astype(np.float32)
    else:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((batch, spec.widths[0])).astype(np.float32)
        y = np.eye(spec.widths[-1], dtype=np.float32)[rng.integers(0, spec.widths[-1], batch)]
    return Net(label, spec, module, params, x, y)


def seed_net() -> Net:
    return float32_net("seed 4-3-3-4 tanh (batch 1)", load_spec())


def wide_net(widths: list[int], batch: int) -> Net:
    label = "-".join(map(str, widths)) + f" relu (batch {batch})"
    return float32_net(label, wide_spec(widths), batch)


def interleaved(candidates: dict, rounds: int = 7, calls: int = 1, warmup: int = 2,
                page_faults: dict | None = None) -> dict[str, float]:
    """Median seconds per call of each candidate (a no-argument callable), run side by side.

    ``page_faults``, if given, receives each candidate's minor page faults per call (the cost
    of touching freshly allocated memory).
    """
    names = list(candidates)
    for name in names:
        for _ in range(warmup):
            candidates[name]()
    samples = {name: [] for name in names}
    faults = {name: 0 for name in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            for _ in range(calls):
                candidates[name]()
            samples[name].append((time.perf_counter() - start) / calls)
            faults[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    if page_faults is not None:
        page_faults.update({name: count / (rounds * calls) for name, count in faults.items()})
    return {name: statistics.median(values) for name, values in samples.items()}


def step_flops(widths: list[int], batch: int) -> float:
    """Multiply-adds (x2) of one step's matrix products: forward a W, dW = a^T delta for every
    layer, g = delta W^T for every layer but the first (no gradient goes to the input)."""
    products = [n_in * n_out for n_in, n_out in zip(widths, widths[1:])]
    return 2.0 * batch * (2 * sum(products) + sum(products[1:]))
