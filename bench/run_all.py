"""symbp's benchmarks, in one command: ``python bench/run_all.py [--write-readme] [--quick]``.

Prints five tables (see bench/README.md): the generated ``step`` against Keras's
``train_on_batch`` and against the best hand-written NumPy step, with GFLOP/s next to the
GEMM peak; derivation + codegen time against depth and width; handout rendering; start-up.
Writes nothing unless ``--write-readme``, which replaces the figures in bench/README.md.

If OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set (some machines here set them for old OpenBLAS
builds), this command re-runs itself once without both, for itself alone, and reports the
kernel that NumPy's BLAS then uses (``--keep-openblas-env`` measures with them instead).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _reexec_without_openblas_overrides(argv: list[str]) -> None:
    found = {k: os.environ[k] for k in OPENBLAS_OVERRIDES if k in os.environ}
    if not found or "--keep-openblas-env" in argv or os.environ.get("SYMBP_BENCH_UNSET"):
        return
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_OVERRIDES}
    env["SYMBP_BENCH_UNSET"] = " ".join(f"{k}={v}" for k, v in found.items())
    os.execve(sys.executable, [sys.executable, *argv], env)


_reexec_without_openblas_overrides([str(Path(__file__).resolve()), *sys.argv[1:]])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

import handwritten  # noqa: E402
from nets import ROOT, Net, interleaved, seed_net, step_flops, wide_net, wide_spec  # noqa: E402


# ---------------------------------------------------------------- machine
def machine() -> list[tuple[str, str]]:
    cpu = platform.processor() or platform.machine()
    try:
        names = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    blas = [f"{i['internal_api']} {i.get('version', '')} kernel {i.get('architecture', '?')}, "
            f"{i['num_threads']} threads" for i in threadpool_info() if i["user_api"] == "blas"]
    unset = os.environ.get("SYMBP_BENCH_UNSET")
    kept = {k: os.environ[k] for k in OPENBLAS_OVERRIDES if k in os.environ}
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} cores (shared with other jobs: figures are noisy)"),
        ("Python / NumPy", f"{platform.python_version()} / {np.__version__}"),
        ("NumPy BLAS", "; ".join(blas) or "unknown"),
        ("OpenBLAS overrides", f"unset for this run ({unset})" if unset
         else (f"kept: {kept}" if kept else "none set")),
    ]


# ---------------------------------------------------------------- 1, 2, 5: the step
def gemm_only(net: Net):
    """The step's matrix products alone, on arrays made beforehand (the machine's GEMM peak)."""
    rng = np.random.default_rng(0)
    B, widths = net.batch, net.widths
    outputs = [rng.standard_normal((B, w)).astype(np.float32) for w in widths]
    kernels = [net.params[f"W{n}"] for n in range(len(widths) - 1)]

    def run():
        for n, kernel in enumerate(kernels):
            outputs[n] @ kernel
        for n, kernel in enumerate(kernels):
            outputs[n].T @ outputs[n + 1]
            if n > 0:
                outputs[n + 1] @ kernel.T
    return run


def tensorflow_gemm_only(net: Net):
    """The same matrix products with ``tf.matmul`` (oneDNN), results fetched as NumPy."""
    import tensorflow as tf
    rng = np.random.default_rng(0)
    outputs = [tf.constant(rng.standard_normal((net.batch, w)).astype(np.float32)) for w in net.widths]
    kernels = [tf.constant(net.params[f"W{n}"]) for n in range(len(net.widths) - 1)]

    @tf.function
    def products():
        results = [tf.matmul(outputs[n], kernel) for n, kernel in enumerate(kernels)]
        results += [tf.matmul(outputs[n], outputs[n + 1], transpose_a=True) for n in range(len(kernels))]
        results += [tf.matmul(outputs[n + 1], kernel, transpose_b=True) for n, kernel in enumerate(kernels) if n > 0]
        return results

    return lambda: [r.numpy() for r in products()]


def keras_model(net: Net):
    from symbp.witnesses.keras import build_keras_model
    return build_keras_model(net.spec, net.params)


def step_candidates(net: Net, with_keras: bool) -> dict:
    module, hidden = net.module, net.spec.layers[0].activation
    learning_rate = module.LEARNING_RATE
    current = {"generated": net.params, "hand-written": net.params}

    def generated():
        current["generated"] = module.step(current["generated"], net.x, net.y)[0]

    def hand_written():
        current["hand-written"] = handwritten.step(current["hand-written"], net.x, net.y, learning_rate, hidden)

    candidates = {"generated": generated, "hand-written": hand_written}
    if with_keras:
        model = keras_model(net)
        candidates["Keras"] = lambda: model.train_on_batch(net.x, net.y)
    if net.batch > 1:
        candidates["GEMM"] = gemm_only(net)
        if with_keras:
            candidates["GEMM (TensorFlow)"] = tensorflow_gemm_only(net)
    return candidates


def check_same_step(net: Net) -> float:
    """Largest difference between the generated and the hand-written step (both float32)."""
    hidden = net.spec.layers[0].activation
    ours = net.module.step(net.params, net.x, net.y)[0]
    theirs = handwritten.step(net.params, net.x, net.y, net.module.LEARNING_RATE, hidden)
    assert all(v.dtype == np.float32 for v in ours.values()), "generated step left float32"
    return max(float(np.max(np.abs(ours[k] - theirs[k]))) for k in ours)


def bench_steps(quick: bool, single_threaded: bool = False) -> list[list[str]]:
    """Rows of the step table. ``single_threaded``: wide nets only, NumPy's BLAS and Keras
    both on one thread (Keras's threads are fixed when TensorFlow starts: see main)."""
    rows = []
    nets = [] if single_threaded else [(seed_net(), 200)]
    wide = [([784, 512, 512, 10], 256), ([784, 1024, 1024, 10], 1024)]
    nets += [(wide_net(widths, batch), 1) for widths, batch in wide]
    for net, calls in nets:
        difference = check_same_step(net)
        thread_settings = [1] if single_threaded else [None] if net.batch == 1 else [None, 1]
        for threads in thread_settings:
            faults = {}
            with threadpool_limits(threads):
                times = interleaved(step_candidates(net, with_keras=True),
                                    rounds=3 if quick else 15, calls=calls if not quick else max(1, calls // 4),
                                    page_faults=faults)
            flops = step_flops(net.widths, net.batch)
            gen, hand, keras = times["generated"], times["hand-written"], times["Keras"]
            rows.append([
                net.label, "all" if threads is None else "1, Keras 1" if single_threaded else str(threads),
                _ms(keras), _ms(gen), _ms(hand),
                f"{keras / gen:.2f}x", f"{gen / hand:.2f}x",
                f"{flops / gen / 1e9:.1f}" if net.batch > 1 else "-",
                f"{flops / times['GEMM'] / 1e9:.1f}" if "GEMM" in times else "-",
                f"{flops / times['GEMM (TensorFlow)'] / 1e9:.1f}" if "GEMM" in times else "-",
                f"{faults['generated']:.0f} / {faults['hand-written']:.0f}",
                f"{difference:.1e}"])
    return rows


#: glibc malloc settings that keep freed memory instead of returning it to the system, so a
#: step's fresh arrays reuse pages already touched (no page faults)
MALLOC_KEEPS_MEMORY = {"MALLOC_MMAP_THRESHOLD_": str(2 ** 30), "MALLOC_TRIM_THRESHOLD_": str(2 ** 32)}


def single_threaded_rows(quick: bool) -> list[list[str]]:
    """bench_steps(single_threaded=True) in fresh processes whose TensorFlow has one thread:
    with the default malloc, and with MALLOC_KEEPS_MEMORY."""
    command = [sys.executable, str(Path(__file__).resolve()), "--single-threaded-steps"] + (["--quick"] if quick else [])
    rows = []
    for extra, note in (({}, ""), (MALLOC_KEEPS_MEMORY, ", malloc keeps memory")):
        result = subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, **extra})
        rows += [[row[0], row[1] + note, *row[2:]] for row in json.loads(result.stdout.strip().splitlines()[-1])]
    return rows


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}" if seconds < 0.01 else f"{seconds * 1e3:.1f}"


def bench_train(quick: bool) -> list[list[str]]:
    """One batch of train(): its one shared forward pass against loss() then step() (two)."""
    rows = []
    for net, calls in [(seed_net(), 200), (wide_net([784, 512, 512, 10], 256), 1)]:
        module, params, x, y = net.module, net.params, net.x, net.y

        def one_pass():
            forward_pass = module._forward(params, x)
            module.loss(params, x, y, forward_pass)
            module.step(params, x, y, None, module.backward(params, x, y, forward_pass)[0])

        def two_passes():
            module.loss(params, x, y)
            module.step(params, x, y)

        with threadpool_limits(1):
            times = interleaved({"one": one_pass, "two": two_passes}, rounds=3 if quick else 9,
                                calls=calls if not quick else max(1, calls // 4))
        rows.append([net.label, _ms(times["two"]), _ms(times["one"]), f"{times['two'] / times['one']:.2f}x"])
    return rows


# ---------------------------------------------------------------- 3: derivation + codegen
def clear_derivation_caches() -> None:
    from symbp.derivation import derive
    from symbp.emit import printers
    for cached in (derive.derive_layer, derive.derive_activation, derive.derive_loss, printers.stable_forms):
        cached.cache_clear()


def codegen_seconds(widths: list[int], repeats: int) -> float:
    """Median time of a cold derivation (caches cleared) plus the module source, of a spec built
    below the validator (its limits reject the 50-layer and 2048-wide rows)."""
    from symbp.emit.codegen import module_source
    spec = wide_spec(widths, rows=2, validate=False)
    samples = []
    for _ in range(repeats):
        clear_derivation_caches()
        start = time.perf_counter()
        module_source(spec)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


FRESH_CODEGEN = """
import sys, time
sys.path[:0] = [{root!r}, {bench!r}]
start = time.perf_counter()
from nets import wide_spec
from symbp.emit.codegen import module_source
spec = wide_spec([1024] * 20 + [10], rows=2)
module_source(spec)
print(time.perf_counter() - start)
"""


def bench_codegen(quick: bool) -> tuple[list[list[str]], str]:
    repeats = 1 if quick else 3
    depths = [2, 5, 10, 20, 50]
    widths = [4, 64, 256, 1024, 2048]
    rows = []
    for depth in depths:
        rows.append([f"depth {depth} (width 64)", f"{codegen_seconds([64] * depth + [10], repeats):.3f}"])
    for width in widths:
        rows.append([f"width {width} (depth 3)", f"{codegen_seconds([width] * 3 + [10], repeats):.3f}"])
    fresh = subprocess.run([sys.executable, "-c", FRESH_CODEGEN.format(root=str(ROOT), bench=str(BENCH))],
                           capture_output=True, text=True, check=True)
    note = (f"20 layers x 1024 wide, in a fresh process (imports, spec, cold derivation, source): "
            f"{float(fresh.stdout.strip()):.2f} s (target < 3 s)")
    return rows, note


# ---------------------------------------------------------------- 3: handouts
FRESH_HANDOUTS = """
import sys, tempfile, time
from pathlib import Path
start = time.perf_counter()
sys.path.insert(0, {root!r})
from symbp.emit.outputs import rendered_outputs
from symbp.spec import load_spec
rendered_outputs(load_spec(), Path(tempfile.gettempdir()))
print(time.perf_counter() - start)
"""


def bench_handouts(quick: bool) -> list[list[str]]:
    """The seed's module and both .tex handouts, rendered in memory (``symbp derive`` without
    writing, PDF or Keras check): in this process with a cold derivation (symbp's caches
    cleared, SymPy's imports and caches warm), and in a fresh process, imports included."""
    from symbp.emit.outputs import rendered_outputs
    from symbp.spec import load_spec
    spec = load_spec()
    repeats = 1 if quick else 5
    samples = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(repeats):
            clear_derivation_caches()
            start = time.perf_counter()
            files = rendered_outputs(spec, Path(folder))
            samples.append(time.perf_counter() - start)
    tex = [p for p in files if str(p).endswith(".tex")]
    if not tex:
        return [["seed handouts", "n/a (handouts not built)", ""]]
    fresh = [float(subprocess.run([sys.executable, "-c", FRESH_HANDOUTS.format(root=str(ROOT))],
                                  capture_output=True, text=True, check=True).stdout)
             for _ in range(1 if quick else 3)]
    what = f"{len(tex)} .tex + the module"
    return [[f"seed, in process (cold derivation; {what})", f"{statistics.median(samples):.2f} s", "target < 2 s"],
            [f"seed, fresh process (imports, spec, derivation; {what})", f"{statistics.median(fresh):.2f} s",
             "the cold figure"]]


# ---------------------------------------------------------------- 4: start-up
STARTUP_PROBE = """
import sys
from symbp.cli import main
main(["codegen", "-o", {folder!r}], standalone_mode=False)
heavy = sorted(m for m in ("tensorflow", "keras") if m in sys.modules)
print(",".join(heavy) or "none")
"""


def bench_startup(quick: bool) -> list[list[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run_help():
        subprocess.run([sys.executable, "-m", "symbp", "--help"], env=env, capture_output=True, check=True)

    def run_bare():
        subprocess.run([sys.executable, "-c", "pass"], env=env, capture_output=True, check=True)

    times = interleaved({"help": run_help, "bare": run_bare}, rounds=3 if quick else 9, warmup=1)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        probe = subprocess.run([sys.executable, "-c", STARTUP_PROBE.format(folder=folder)], env=env,
                               capture_output=True, text=True, check=True)
        codegen_time = time.perf_counter() - start
    return [["symbp --help", f"{times['help']:.3f} s", "target < 0.3 s"],
            ["python -c pass (the interpreter alone)", f"{times['bare']:.3f} s",
             f"so symbp's own share of --help: {times['help'] - times['bare']:.3f} s"],
            ["symbp codegen (seed), whole process", f"{codegen_time:.2f} s",
             f"imports of TensorFlow/Keras: {probe.stdout.strip().splitlines()[-1]}"]]


# ---------------------------------------------------------------- output
def table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


STEP_HEADER = ["net (float32)", "BLAS threads", "Keras ms", "generated ms", "hand-written ms",
               "Keras / generated", "generated / hand-written", "generated GFLOP/s",
               "GEMM GFLOP/s", "tf.matmul GEMM GFLOP/s", "page faults / step, gen / hand",
               "max abs(gen - hand)"]


def _load_average() -> str:
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def report(quick: bool) -> str:
    load_average_at_start = _load_average()
    parts = [f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python bench/run_all.py`.",
             "", table(["machine", ""], machine()), ""]
    print(parts[-2], flush=True)
    steps = table(STEP_HEADER, bench_steps(quick) + single_threaded_rows(quick))
    print("\n" + steps, flush=True)
    train = table(["train, per batch (BLAS 1 thread)", "loss() then step() ms", "one forward pass ms",
                   "speed-up"], bench_train(quick))
    print("\n" + train, flush=True)
    codegen_rows, fresh = bench_codegen(quick)
    codegen = table(["spec (relu, softmax output)", "derivation + codegen s"], codegen_rows) + "\n\n" + fresh
    print("\n" + codegen, flush=True)
    handouts = table(["handout rendering", "time", "note"], bench_handouts(quick))
    print("\n" + handouts, flush=True)
    startup = table(["start-up", "time", "note"], bench_startup(quick))
    print("\n" + startup, flush=True)
    parts += ["### The step (items 1, 2, 5)", "", steps, "", train, "",
              "### Derivation + codegen (item 3)", "", codegen, "",
              handouts, "",
              "### Start-up (item 4)", "", startup, "",
              f"Load average (1, 5, 15 min): {load_average_at_start} at the start, {_load_average()} at the end."]
    return "\n".join(parts) + "\n"


BEGIN, END = "<!-- figures: begin -->", "<!-- figures: end -->"


def write_readme(figures: str) -> None:
    readme = BENCH / "README.md"
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    readme.write_text(pattern.sub(lambda _: f"{BEGIN}\n{figures}{END}", text), encoding="utf-8")
    print(f"\nupdated {readme}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-readme", action="store_true", help="Replace the figures in bench/README.md.")
    parser.add_argument("--quick", action="store_true", help="Fewer rounds (a smoke run, noisier).")
    parser.add_argument("--keep-openblas-env", action="store_true",
                        help="Measure with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE as set.")
    parser.add_argument("--single-threaded-steps", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single_threaded_steps:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        print(json.dumps(bench_steps(args.quick, single_threaded=True)))
        return
    figures = report(args.quick)
    if args.write_readme:
        write_readme(figures)


if __name__ == "__main__":
    main()
