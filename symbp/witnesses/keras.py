"""The Keras check: the same model trained by ``model.fit``, compared with the generated module.

Imports TensorFlow only when called. float64 runs set ``keras.config.set_floatx("float64")``
before building the model and its optimizer (and restore it after), as KERAS-SEMANTICS.md says.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..rules.layers import layers as layer_rules

from ..emit.codegen import module_source
from ..derivation.naming import ParamName
from ..spec.model import Spec
from .tolerance import TOLERANCES, Tolerance

#: the relative tolerance per dtype (symbp.witnesses.tolerance states the comparison)
TOLERANCE = {dtype: tolerance.relative for dtype, tolerance in TOLERANCES.items()}
#: a difference past the tolerance is rounding growth when it is at most this many times the
#: spread that nudging every step of symbp's own run by one ulp makes (see explain_rounding_growth)
ROUNDING_GROWTH_FACTOR = 10.0
#: ... and the losses of the first this many epochs (the formulas, before rounding grows) agree
EARLY_EPOCHS = 10
#: training work (epochs x samples x parameters, ~ a third of its floating-point operations)
#: past which check and derive print their progress: a few seconds of training
PROGRESS_WORK = 3 * 10**9
#: seconds between two progress lines (the last epoch is always reported)
PROGRESS_INTERVAL = 2.0


def training_work(spec: Spec) -> int:
    """epochs x samples x parameters: what a training's time grows with."""
    widths = spec.widths
    parameters = sum((fan_in + 1) * units for fan_in, units in zip(widths, widths[1:]))
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


def _keras():
    """Import Keras (TensorFlow backend) with TensorFlow's start-up chatter kept off stderr."""
    if "keras" in sys.modules:
        return sys.modules["keras"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with _quiet_stderr():
        import keras
        import tensorflow  # noqa: F401  (its C++ logging starts here)
    return keras


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null for the block (C++ logging ignores sys.stderr)."""
    if os.environ.get("SYMBP_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def keras_floatx(dtype: str):
    """Keras's floatx *and* its global dtype policy set to ``dtype`` for the block, then restored.

    A layer takes the global policy when it is made, and Keras caches that policy the first time
    it is read: setting floatx alone does not change the dtype of later layers in the process.
    """
    keras = _keras()
    from keras.src.backend.common import global_state
    # the policy as stored, None when never set: keras.config.dtype_policy() would pin one (of
    # the floatx of the moment) and restoring that would fix later layers' dtype for good
    previous = keras.config.floatx(), global_state.get_global_attribute("dtype_policy", None)
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield keras
    finally:
        keras.config.set_floatx(previous[0])
        global_state.set_global_attribute("dtype_policy", previous[1])


def build_keras_model(spec: Spec, params: dict[str, np.ndarray]):
    """The spec's network as a compiled Keras Sequential model holding ``params``."""
    keras = _keras()
    model = keras.Sequential([keras.Input(shape=tuple(np.shape(spec.x)[1:]))] + [
        keras_layer(keras, layer) for layer in spec.layers])
    # numbers as floats: Keras's SGD rejects an integer momentum
    settings = {k: v if isinstance(v, bool) else float(v)
                for k, v in spec.optimizer.items() if k != "name" and v is not None}
    optimizer_class = type(keras.optimizers.get(spec.optimizer["name"]))
    model.compile(optimizer=optimizer_class(**settings), loss=keras_loss(spec.loss), jit_compile=False)
    model.set_weights([params[name] for name in spec.param_names])
    return model


def keras_layer(keras, layer):
    """The Keras layer of one [[layers]] table: its class by name, the spec's Keras arguments."""
    if layer.type == "Dense":
        return keras.layers.Dense(layer.units, activation=layer.activation)
    arguments = dict(layer.arguments)
    if layer_rules[layer.type].parameters:
        arguments["activation"] = layer.activation
    return getattr(keras.layers, layer_rules[layer.type].name)(**arguments)


def keras_loss(loss: dict):
    """The spec's loss for ``compile``: its name, or its Keras class when it has arguments."""
    arguments = {k: float(v) for k, v in loss.items() if k != "name"}
    if not arguments:
        return loss["name"]
    keras = _keras()
    return getattr(keras.losses, "".join(part.title() for part in loss["name"].split("_")))(**arguments)


def keras_train(spec: Spec, dtype: str = "float64") -> tuple[dict[str, np.ndarray], list[float]]:
    """Train the spec's network with ``model.fit(shuffle=False)``; (final params, epoch losses)."""
    with keras_floatx(dtype) as keras:
        keras.utils.set_random_seed(spec.seed)
        params = {k: v.astype(dtype) for k, v in spec.initial_params().items()}
        model = build_keras_model(spec, params)
        report = training_progress(spec, "Keras model.fit")
        callbacks = [] if report is None else [
            keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: report(epoch + 1))]
        history = model.fit(np.array(spec.x, dtype=dtype), np.array(spec.y, dtype=dtype),
                            batch_size=spec.batch_size, epochs=spec.epochs, shuffle=False, verbose=0,
                            callbacks=callbacks)
        weights = model.get_weights()
    return dict(zip(spec.param_names, weights)), [float(v) for v in history.history["loss"]]


def module_train(spec: Spec, dtype: str = "float64", module=None):
    """Train with the generated module's ``train`` on arrays of ``dtype``."""
    module = module or spec_module(spec)
    params = {k: v.astype(dtype) for k, v in module.initial_params().items()}
    return module.train(params, module.X.astype(dtype), module.Y.astype(dtype),
                        progress=training_progress(spec, "generated module"))


@dataclass
class Comparison:
    name: str
    keras: np.ndarray
    symbp: np.ndarray
    max_abs_diff: float
    match: bool
    #: the largest difference allowed: tolerance * max(1, max |keras|) (symbp.witnesses.tolerance)
    allowed: float = 0.0
    #: set when a difference past ``allowed`` was found to be rounding growth: how far one-ulp
    #: nudges of every step move symbp's own result
    rounding_spread: float | None = None

    def verdict(self) -> str:
        """The seed's words, and how close: 'They match! (largest difference 1e-12, allowed 1e-9)'."""
        numbers = f"largest difference {self.max_abs_diff:.3g}, allowed {self.allowed:.3g}"
        if self.rounding_spread is not None:
            return (f"They match to rounding ({numbers}; nudging every step of symbp's own run "
                    f"by one ulp moves it by {self.rounding_spread:.3g}: the difference is rounding "
                    f"grown over the run, and the first epochs' losses agree)")
        said = "They match!" if self.match else "They don't match."
        return f"{said} ({numbers})"


@dataclass
class CheckReport:
    dtype: str
    tolerance: float
    parameters: list[Comparison] = field(default_factory=list)
    losses: Comparison | None = None
    #: when they differ: a value of the training at a kink (see ``kink_at_rounding``), the likely why
    kink: object | None = None

    @property
    def match(self) -> bool:
        return all(c.match for c in self.parameters) and (self.losses is None or self.losses.match)

    def to_json(self) -> dict:
        return {"match": self.match, "tolerance": self.tolerance, "dtype": self.dtype,
                "parameters": {c.name: {"max_abs_diff": c.max_abs_diff, "match": c.match,
                                        "allowed": c.allowed, "rounding_spread": c.rounding_spread}
                               for c in self.parameters},
                "epoch_losses": {"max_abs_diff": self.losses.max_abs_diff, "match": self.losses.match,
                                 "allowed": self.losses.allowed,
                                 "rounding_spread": self.losses.rounding_spread,
                                 "keras": self.losses.keras.tolist(), "symbp": self.losses.symbp.tolist()},
                "kink": None if self.kink is None else self.kink._asdict()}

    def describe(self, spec: Spec, bias_symbol: str = "theta") -> str:
        """The seed's section 3: each parameter from Keras, then from symbp, then the verdict.
        The biases are called as the handouts call them (``bias_symbol``: theta or b)."""
        depth = len(spec.layers)
        biases = "biases (thetas)" if bias_symbol == "theta" else "biases"

        def between(n: int) -> str:
            lower = "input layer" if n == 0 else f"hidden layer {n}"
            upper = "output layer" if n + 1 == depth else f"hidden layer {n + 1}"
            return lower, upper

        blocks = []
        with np.printoptions(precision=8, suppress=False):
            for c in self.parameters:
                param = ParamName.parse(c.name)
                lower, upper = between(param.layer)
                what = (f"weights between {lower} and {upper}" if param.kind == "kernel"
                        else f"{biases} in the {upper}")
                blocks.append(f"Checking {c.name} ({what}):\n\nKeras:\n{c.keras}\nsymbp:\n{c.symbp}\n"
                              f"{c.verdict()}")
            if self.losses is not None:
                blocks.append(f"Checking the loss of each epoch:\n\nKeras: {self.losses.keras}\n"
                              f"symbp: {self.losses.symbp}\n{self.losses.verdict()}")
        summary = ("Everything matches Keras." if self.match else "Some parameters do NOT match Keras.")
        if not self.match and self.kink is not None:
            summary += (f"\nWhy: {self.kink.describe()}: there the rule's branch depends on rounding "
                        f"(NumPy and Keras can round it to +-1e-17 with different signs and take different "
                        f"branches); move the data or weights off the kink")
        rule = (f"allowed: {self.tolerance:g} x max(1, largest |Keras value|) of each quantity"
                + (f"; differences past that count as rounding growth when at most "
                   f"{ROUNDING_GROWTH_FACTOR:g}x what one-ulp nudges of every step make"
                   if any(c.rounding_spread is not None for c in self.comparisons) else ""))
        return "\n\n----------\n\n".join(blocks) + f"\n\n==========\n{summary} ({self.dtype}; {rule})\n"

    @property
    def comparisons(self) -> list[Comparison]:
        return self.parameters + ([self.losses] if self.losses is not None else [])


def _compare(name: str, keras_value, symbp_value, tolerance: Tolerance) -> Comparison:
    """|keras - symbp| against ``tolerance.bound(keras)`` (symbp.witnesses.tolerance); never a match when
    the shapes differ or either side holds inf or nan."""
    keras_value = np.asarray(keras_value, dtype=np.float64)
    symbp_value = np.asarray(symbp_value, dtype=np.float64)
    allowed = tolerance.bound(keras_value)
    if keras_value.shape != symbp_value.shape:
        return Comparison(name, keras_value, symbp_value, float("inf"), False, allowed)
    with np.errstate(over="ignore", invalid="ignore"):   # 3e38 - (-3e38) in float64 is inf: no match
        diff = float(np.max(np.abs(keras_value - symbp_value))) if keras_value.size else 0.0
    finite = bool(np.all(np.isfinite(keras_value)) and np.all(np.isfinite(symbp_value)))
    return Comparison(name, keras_value, symbp_value, diff, finite and diff <= allowed, allowed)


def nudged_train(spec: Spec, dtype: str = "float64", seed: int = 0):
    """The generated module's ``train`` with every step's new parameters nudged by one ulp, up
    or down at random: as if each step had rounded differently, as Keras's kernels may."""
    module = load_module(module_source(spec), spec.name)
    exact_step, rng = module.step, np.random.default_rng(seed)

    def nudged_step(*args, **kwargs):
        params, state = exact_step(*args, **kwargs)
        return {name: w + rng.choice((-1.0, 1.0), size=np.shape(w)).astype(w.dtype) * np.abs(np.spacing(w))
                for name, w in params.items()}, state

    module.step = nudged_step   # train looks step up in the module's globals at each call
    return module_train(spec, dtype, module)


def explain_rounding_growth(report: CheckReport, spec: Spec, run: tuple, tolerance: Tolerance) -> None:
    """Mark the differences past the tolerance that are rounding grown over a long run as matches.

    A long run amplifies rounding (Adam over 10,000 epochs drifts past 1e-9 after ~1,700 while
    its formulas agree to 3e-15 at 1,000). Witness: symbp's own run with every step nudged by one
    ulp (``nudged_train``); its spread from the exact run is how far rounding alone moves the
    result. A difference counts as rounding growth when the first EARLY_EPOCHS epochs' losses
    agree within the tolerance (the formulas are right) and it is at most
    ROUNDING_GROWTH_FACTOR x that spread; ``rounding_spread`` then records the spread.
    """
    early = min(EARLY_EPOCHS, len(report.losses.keras))
    if report.losses.symbp.shape != report.losses.keras.shape \
            or not tolerance.agree(report.losses.keras[:early], report.losses.symbp[:early]):
        return
    params, losses = run
    with np.errstate(all="ignore"):   # the nudged run overflows where the exact one does
        nudged_params, nudged_losses = nudged_train(spec, report.dtype)
    spreads = {name: float(np.max(np.abs(np.asarray(params[name], dtype=np.float64) - nudged_params[name])))
               for name in spec.param_names}
    spreads["loss"] = float(np.max(np.abs(np.asarray(losses) - np.asarray(nudged_losses))))
    for c in report.comparisons:
        past = c.max_abs_diff > c.allowed and np.isfinite(c.max_abs_diff)
        if past and c.max_abs_diff <= ROUNDING_GROWTH_FACTOR * spreads[c.name]:
            c.match, c.rounding_spread = True, spreads[c.name]


def check(spec: Spec, dtype: str = "float64", module=None) -> CheckReport:
    """Train with Keras and with the generated module; compare every parameter and epoch loss
    (symbp.witnesses.tolerance), then look for rounding growth behind any difference past the tolerance."""
    if dtype not in TOLERANCES:
        raise ValueError(f"dtype must be float64 or float32, not {dtype!r}")
    tolerance = TOLERANCES[dtype]
    keras_params, keras_losses = keras_train(spec, dtype)
    params, losses = module_train(spec, dtype, module)
    report = CheckReport(dtype, tolerance.relative)
    for name in spec.param_names:
        report.parameters.append(_compare(name, keras_params[name], params[name], tolerance))
    report.losses = _compare("loss", keras_losses, losses, tolerance)
    if not report.match:
        explain_rounding_growth(report, spec, (params, losses), tolerance)
    for c in report.parameters:   # float32 in must give float32 out, whatever the numbers
        if params[c.name].dtype != np.dtype(dtype):
            c.match = False
    if not report.match:
        report.kink = kink_at_rounding(spec, module)
    return report


#: a value this near a kink can be on either side of it after rounding
AT_KINK = 1e-9


def kink_at_rounding(spec: Spec, module=None):
    """The pre-activation of a piecewise activation, or argument of a piecewise loss, nearest
    its kink over the whole training, when it is within AT_KINK of it (else None)."""
    from ..derivation.kinks import nearest_kink
    module = module or load_module(module_source(spec), spec.name)
    hit = nearest_kink(spec, module)
    return hit if hit is not None and hit.distance <= AT_KINK * max(1.0, abs(hit.kink)) else None
