"""The convolution benchmark row (issue 13): ``python bench/conv.py``; writes nothing.

LeNet-sized: 28x28x1 -> Conv2D 8 3x3 relu -> MaxPooling2D 2 -> Conv2D 16 3x3 relu ->
MaxPooling2D 2 -> Flatten -> Dense 10 softmax, categorical cross-entropy, SGD, batch 64,
float32. Prints the generated ``step`` against Keras's ``train_on_batch`` on the same weights and
batch (timed side by side by :func:`nets.interleaved`), the step's GFLOP/s (the convolutions'
and the Dense layer's multiply-adds: forward, kernel gradient, and the gradient passed down
for all but the first layer), and derivation + codegen time from cold caches.
"""

from __future__ import annotations

import time

import numpy as np

from nets import interleaved  # noqa: E402  (puts the repository on sys.path)
from symbp.derivation import derive as derive_module
from symbp.derivation.network import layers_from_spec
from symbp.emit.codegen import module_data, module_source
from symbp.spec.model import Spec
from symbp.witnesses.keras import build_keras_model, keras_floatx
from symbp.witnesses.module import load_module

BATCH = 64
LAYERS = [{"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu"},
          {"type": "MaxPooling2D", "pool_size": 2},
          {"type": "Conv2D", "filters": 16, "kernel_size": 3, "activation": "relu"},
          {"type": "MaxPooling2D", "pool_size": 2},
          {"type": "Flatten"}, {"units": 10, "activation": "softmax"}]


def lenet_spec() -> Spec:
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 28, 28, 1)).round(3)
    y = np.eye(10)[rng.integers(0, 10, BATCH)]
    return Spec.from_dict({"name": "lenet_bench", "data": {"x": x.tolist(), "y": y.tolist()},
                           "layers": LAYERS, "loss": {"name": "categorical_crossentropy"},
                           "optimizer": {"name": "sgd", "learning_rate": 0.01},
                           "training": {"batch_size": BATCH}})


def step_flops(spec: Spec) -> float:
    """2 x multiply-adds of the step's products: each convolution and Dense layer forward, its
    kernel gradient, and (all but the first) the gradient passed down."""
    total = 0.0
    for layer in layers_from_spec(spec):
        if not layer.rule.parameters:
            continue
        kernel = int(np.prod(layer.param_shape("kernel")))
        positions = int(np.prod(layer.output_shape[:-1]))  # 1 for Dense
        per_pass = 2.0 * BATCH * positions * kernel
        total += per_pass * (2 if layer.position == 0 else 3)
    return total


def codegen_seconds(spec: Spec) -> float:
    for cached in (derive_module.derive_layer, derive_module.derive_indexed_layer,
                   derive_module.derive_activation, derive_module.derive_loss):
        cached.cache_clear()
    start = time.perf_counter()
    module_source(spec)
    return time.perf_counter() - start


def main() -> None:
    spec = lenet_spec()
    seconds = codegen_seconds(spec)
    module = load_module(module_source(spec), "lenet_bench", module_data(spec))
    x, y = module.X.astype(np.float32), module.Y.astype(np.float32)
    params = {k: v.astype(np.float32) for k, v in module.initial_params().items()}
    current = {"params": params}

    def generated():
        current["params"] = module.step(current["params"], x, y)[0]

    with keras_floatx("float32"):
        model = build_keras_model(spec, params)
        times = interleaved({"generated": generated, "Keras": lambda: model.train_on_batch(x, y)}, rounds=9)
    flops = step_flops(spec)
    print(f"LeNet-sized CNN, batch {BATCH}, float32: derivation + codegen {seconds:.2f} s")
    for name, t in times.items():
        print(f"  {name:10s} {t * 1e3:8.2f} ms/step  {flops / t / 1e9:6.2f} GFLOP/s")
    print(f"  generated / Keras speed: {times['Keras'] / times['generated']:.2f}x")


if __name__ == "__main__":
    main()
