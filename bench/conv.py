"""The convolution benchmark row (issue 13): ``python bench/conv.py``; writes nothing.

LeNet-sized: 28x28x1 -> Conv2D 8 3x3 relu -> MaxPooling2D 2 -> Conv2D 16 3x3 relu ->
MaxPooling2D 2 -> Flatten -> Dense 10 softmax, categorical cross-entropy, SGD, batch 64,
float32. Prints the generated ``step`` against Keras's ``train_on_batch`` on the same weights and
batch (timed side by side by :func:`nets.interleaved`, each side STEPS_IN_A_ROW steps back to
back per timing), then per batch of a training loop (the generated ``train``, loss included,
over LOOP_BATCHES batches, against ``train_on_batch`` on each), the step's GFLOP/s (the
convolutions' and the Dense layer's multiply-adds: forward, kernel gradient, and the gradient
passed down for all but the first layer), derivation + codegen time from cold caches, and the
whole ``symbp codegen`` command in a fresh process.

Threads: NumPy's BLAS and TensorFlow run on the same number of threads, ``--threads`` (default
1: the machine's cores are shared, and a BLAS thread waiting on a descheduled sibling costs more
than it gains on these small products), set before either library starts; the line printed says
which. Allocators: both rows are timed three times in the one run (ALLOCATOR_STATES): with
glibc malloc's defaults in a process that has not yet freed a large array, with the same
defaults after it has freed one of 16 MB (:func:`free_one_large_array`), and with freed memory
kept in the process (``mallopt``: no mmap per large array, no trimming). In the first state NumPy
gives each step's large temporaries back to the system and touches fresh pages the next step (a
page fault per 4 KiB, ~1.7 microseconds each here), while TensorFlow keeps its own pool; the
page faults per step are printed beside the times.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _threads_from_argv() -> int:
    """--threads N, read before NumPy is imported (its BLAS reads the variables once, at start)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="threads for NumPy's BLAS and for TensorFlow")
    return parser.parse_args().threads


THREADS = _threads_from_argv() if __name__ == "__main__" else 1
for _variable in THREAD_VARIABLES:
    os.environ[_variable] = str(THREADS)

import numpy as np  # noqa: E402

from nets import ROOT, interleaved  # noqa: E402  (puts the repository on sys.path)
from symbp.derivation import derive as derive_module  # noqa: E402
from symbp.derivation.network import layers_from_spec  # noqa: E402
from symbp.emit.codegen import module_data, module_source  # noqa: E402
from symbp.spec.model import Spec  # noqa: E402
from symbp.witnesses.keras import build_keras_model, keras_floatx  # noqa: E402
from symbp.witnesses.module import load_module  # noqa: E402

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


def command_seconds(spec: Spec) -> float:
    """``symbp codegen`` of the spec's TOML in a fresh process: imports, parsing, derivation,
    codegen and writing, as a user runs it."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"{spec.name}.toml")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(spec.to_toml())
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "symbp", "codegen", path, "-o", os.path.join(folder, "out")],
                       check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        return time.perf_counter() - start


def tensorflow_threads() -> None:
    """TensorFlow's thread pools at THREADS, before its first operation starts them."""
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory in the process: arrays up to 32 MB from the heap,
    up to 64 MB free at its top before it is trimmed (the most glibc's own dynamic thresholds
    reach; the README's ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` set the same at
    start): a pool as TensorFlow's allocator keeps for itself. False where there is no glibc
    ``mallopt``."""
    import ctypes
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 64 << 20))


def free_one_large_array() -> bool:
    """Allocate and free one 16 MB array, as normalizing a copy of a data set does; nothing is
    set. glibc raises its mmap threshold to the largest mmapped block a process has freed (up to
    32 MB) and its trim threshold to twice that, so from then on up to 32 MB stay free at the
    heap's top instead of going back to the system: a step's ~8.5 MB of arrays are no longer
    faulted in again at each step. A process that has freed nothing over 2.2 MB (the first
    state timed) trims at 4.4 MB."""
    block = np.ones(16 << 20, np.uint8)
    del block
    return True


#: the allocator's states both rows are timed in, in this order (mallopt ends glibc's dynamic thresholds)
ALLOCATOR_STATES = (("glibc malloc's defaults, in a process that has freed no array over 2.2 MB", lambda: True),
                    ("glibc malloc's defaults, after the process freed one 16 MB array", free_one_large_array),
                    ("freed memory kept in the process (mallopt)", keep_freed_memory))

#: steps each timing runs back to back: alternating one generated step and one Keras step put
#: each one's working set out of the other's caches (Keras then took 3.9 ms a step, 2.5 ms back to back)
STEPS_IN_A_ROW = 10
#: batches of the training-loop row: the generated ``train`` over them, Keras's ``train_on_batch`` on each
LOOP_BATCHES = 40


def training_loop_row(module, model, x, y, params) -> tuple[dict, dict]:
    """Seconds and page faults per batch of a training loop, loss included: the generated
    ``train`` (one epoch of LOOP_BATCHES batches: forward, loss, backward, update, as fit's
    loop) against Keras's ``train_on_batch`` on each batch (which returns the loss too).
    ``train`` keeps one batch's forward pass until the next one's is computed, so the heap's top
    stays in use and glibc does not hand it back between batches, as it does after a lone step."""
    xs, ys = np.concatenate([x] * LOOP_BATCHES), np.concatenate([y] * LOOP_BATCHES)
    loop = {"generated": lambda: module.train(params, xs, ys, epochs=1, batch_size=BATCH),
            "Keras": lambda: [model.train_on_batch(x, y) for _ in range(LOOP_BATCHES)]}
    faults: dict = {}
    times = interleaved(loop, rounds=5, page_faults=faults)   # each call LOOP_BATCHES steps back to back
    return ({name: t / LOOP_BATCHES for name, t in times.items()},
            {name: count / LOOP_BATCHES for name, count in faults.items()})


#: issue 13's targets: the generated step at least this fraction of Keras's speed; derivation + codegen within CODEGEN_TARGET s
SPEED_TARGET, CODEGEN_TARGET = 0.5, 2.0


def verdict(met: bool) -> str:
    return "meets" if met else "MISSES"


def print_rows(times: dict, faults: dict, flops: float) -> None:
    for name, t in times.items():
        print(f"    {name:10s} {t * 1e3:8.2f} ms/step  {flops / t / 1e9:6.2f} GFLOP/s  "
              f"{faults[name]:7.0f} page faults/step")
    ratio = times["Keras"] / times["generated"]
    print(f"    generated / Keras speed: {ratio:.2f}x ({verdict(ratio >= SPEED_TARGET)} issue 13's >= {SPEED_TARGET}x)")


def main() -> None:
    spec = lenet_spec()
    seconds = codegen_seconds(spec)
    module = load_module(module_source(spec), "lenet_bench", module_data(spec))
    x, y = module.X.astype(np.float32), module.Y.astype(np.float32)
    params = {k: v.astype(np.float32) for k, v in module.initial_params().items()}
    current = {"params": params}

    def generated():
        current["params"] = module.step(current["params"], x, y)[0]

    flops = step_flops(spec)
    print(f"LeNet-sized CNN, batch {BATCH}, float32: derivation + codegen {seconds:.2f} s "
          f"({verdict(seconds < CODEGEN_TARGET)} < {CODEGEN_TARGET:g} s; "
          f"`symbp codegen` in a fresh process: {command_seconds(spec):.2f} s)")
    print(f"  threads: {THREADS} ({', '.join(THREAD_VARIABLES)} for NumPy's BLAS; TensorFlow's intra-op "
          f"and inter-op pools)")
    with keras_floatx("float32"):
        tensorflow_threads()
        model = build_keras_model(spec, params)
        candidates = {"generated": generated, "Keras": lambda: model.train_on_batch(x, y)}
        for allocator, setup in ALLOCATOR_STATES:
            if not setup():
                print(f"  (no glibc here: {allocator} not timed)")
                break
            faults: dict = {}
            times = interleaved(candidates, rounds=9, calls=STEPS_IN_A_ROW, page_faults=faults)
            print(f"  allocator: {allocator}; one step (generated step, Keras train_on_batch)")
            print_rows(times, faults, flops)
            print(f"  allocator: {allocator}; a training loop of {LOOP_BATCHES} batches, per batch "
                  f"(generated train with its loss, Keras train_on_batch)")
            print_rows(*training_loop_row(module, model, x, y, current["params"]), flops)


if __name__ == "__main__":
    main()
