"""One assignment per student: the spec's numbers drawn afresh, its handouts, one answer key.

``symbp variants SPEC --count N --seed S -o DIR`` draws N variants of SPEC as its ``[variants]``
table says (see README): every drawn value a multiple of ``step`` within ``range``, so the
arithmetic stays hand-friendly. A draw is rejected when it is degenerate on the notebook's step
(the first batch): a pre-activation with |z| > ``max_abs_z`` (a saturated unit), a unit whose
error gradient delta is zero for every row, a parameter with a zero gradient, anything not
finite; or when it repeats an earlier draw. Draws come from ``numpy.random.default_rng(seed)``
in order, so a seed gives the same class every time.

Each student's folder holds their spec, everything ``symbp derive`` writes (and the notebooks
with ``notebook=True``). ``answer_key.json`` / ``.csv`` give, per student, the answers of the
notebook's training step on the first batch: loss, every delta, every gradient and every updated
parameter, computed by the generated module. ``check=True`` trains each variant's step with
Keras ``model.fit`` (float64) and compares. Rendering and checks run in worker processes, one
per core unless ``jobs`` says otherwise; the result does not depend on the number of workers.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path
from typing import Optional

import numpy as np

from . import naming
from .errors import UnusableInput
from .files import write_all
from .keras_check import spec_module
from .rules import losses
from .spec import VARIANT_DEFAULTS, VARIANT_ITEMS, LayerSpec, Spec

KEY_JSON, KEY_CSV = "answer_key.json", "answer_key.csv"
TOLERANCE = 1e-9
#: a unit's delta counts as zero below this, for every row of the batch
ZERO_GRADIENT = 1e-6
TRIES_PER_VARIANT = 200


@dataclass(frozen=True)
class Grid:
    """Multiples of ``step`` from ``low`` to ``high`` (inclusive)."""
    step: float
    low: float
    high: float

    def draw(self, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        first = math.ceil(self.low / self.step - 1e-9)
        last = math.floor(self.high / self.step + 1e-9)
        multiples = rng.integers(first, last + 1, size=shape)
        step = Decimal(repr(float(self.step)))
        return np.array([float(int(k) * step) for k in multiples.flat], dtype=np.float64).reshape(shape)


def settings_of(spec: Spec) -> tuple[list[str], dict[str, Grid], float]:
    """(what varies, its grid per item, max |z|) from the spec's [variants] and the defaults."""
    table = {**VARIANT_DEFAULTS, **(spec.variants or {})}
    grids = {}
    for item in VARIANT_ITEMS:
        own = table.get(item, {})
        low, high = own.get("range", table["range"])
        grids[item] = Grid(own.get("step", table["step"]), low, high)
    return list(table["vary"]), grids, float(table["max_abs_z"])


def student_ids(count: int) -> list[str]:
    width = max(2, len(str(count)))
    return [f"student_{k:0{width}d}" for k in range(1, count + 1)]


# ---------------------------------------------------------------- drawing
def _draw_labels(spec: Spec, grid: Grid, rng: np.random.Generator, shape) -> np.ndarray:
    """Labels the loss accepts: one-hot rows for categorical cross-entropy, class indices for
    the sparse one, 0/1 for binary."""
    rows, units = shape
    if losses[spec.loss["name"]].sparse_labels:
        return rng.integers(0, spec.widths[-1], size=(rows, 1)).astype(np.float64)
    if losses[spec.loss["name"]].labels_are_distributions:
        return np.eye(units)[rng.integers(0, units, size=rows)]
    if spec.loss["name"] == "binary_crossentropy":
        return rng.integers(0, 2, size=shape).astype(np.float64)
    return grid.draw(rng, shape)


def _degenerate(module, spec: Spec, params: dict, x: np.ndarray, y: np.ndarray, max_abs_z: float) -> bool:
    zs, _ = module._forward(params, x)
    if any(not np.all(np.isfinite(z)) or np.max(np.abs(z)) > max_abs_z for z in zs):
        return True
    rows = spec.batch_size
    grads, deltas = module.backward(params, x[:rows], y[:rows])
    if any(not np.all(np.isfinite(d)) or np.any(np.max(np.abs(d), axis=0) < ZERO_GRADIENT) for d in deltas):
        return True
    return any(not np.all(np.isfinite(g)) or np.max(np.abs(g)) < ZERO_GRADIENT for g in grads.values())


def draw_variants(spec: Spec, count: int, seed: int) -> list[Spec]:
    """``count`` distinct, non-degenerate variants of ``spec``, drawn in order from ``seed``."""
    if count < 1:
        raise UnusableInput(f"--count must be at least 1, found {count}")
    vary, grids, max_abs_z = settings_of(spec)
    base = dataclasses.replace(spec.with_initial_params(), variants=None)
    module = spec_module(base)
    rng = np.random.default_rng(seed)
    params0, x0, y0 = base.initial_params(), np.array(base.x), np.array(base.y)
    seen, out = set(), []
    for _ in range(TRIES_PER_VARIANT * count):
        params = dict(params0)
        for name in base.param_names:
            if ("weights" if name.startswith("W") else "bias") in vary:
                params[name] = grids["weights" if name.startswith("W") else "bias"].draw(rng, params0[name].shape)
        x = grids["x"].draw(rng, x0.shape) if "x" in vary else x0
        y = _draw_labels(base, grids["y"], rng, y0.shape) if "y" in vary else y0
        key = b"".join(a.tobytes() for a in (*params.values(), x, y))
        if key in seen or _degenerate(module, base, params, x, y, max_abs_z):
            continue
        seen.add(key)
        layers = [LayerSpec(layer.units, layer.activation, params[f"W{n}"].tolist(), params[f"b{n}"].tolist())
                  for n, layer in enumerate(base.layers)]
        out.append(dataclasses.replace(base, x=x.tolist(), y=y.tolist(), layers=layers))
        if len(out) == count:
            return out
    raise UnusableInput(f"drew only {len(out)} distinct, non-degenerate variants of {count} in "
                        f"{TRIES_PER_VARIANT * count} tries: widen [variants] range, vary more items "
                        f"or raise max_abs_z (now {max_abs_z})")


# ---------------------------------------------------------------- answers
def answers(spec: Spec, module=None) -> dict:
    """The notebook's answers: one step on the first batch (loss, deltas, gradients, updates)."""
    module = module or spec_module(spec)
    params = spec.initial_params()
    x, y = np.array(spec.x[:spec.batch_size]), np.array(spec.y[:spec.batch_size])
    grads, deltas = module.backward(params, x, y)
    updated, _ = module.step(params, x, y)
    out = {"loss": module.loss(params, x, y)}
    out.update({naming.DELTA.format(l=l): d.tolist() for l, d in enumerate(deltas, start=1)})
    out.update({"d" + name: grads[name].tolist() for name in spec.param_names})
    out.update({naming.UPDATED.format(param=name): updated[name].tolist() for name in spec.param_names})
    return out


def key_csv(key: dict[str, dict]) -> str:
    """One row per student, one column per number (``W0_updated[2][1]``)."""
    def cells(name, value):
        if isinstance(value, list):
            for n, item in enumerate(value):
                yield from cells(f"{name}[{n}]", item)
        else:
            yield name, repr(float(value))
    rows = {student: dict(cell for name, value in entry.items() for cell in cells(name, value))
            for student, entry in key.items()}
    header = ["student", *next(iter(rows.values()))]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for student, row in rows.items():
        writer.writerow([student, *row.values()])
    return buffer.getvalue()


# ---------------------------------------------------------------- per student (worker processes)
def keras_answers_check(spec: Spec, expected: dict) -> float:
    """Largest |Keras - answer| over the loss and the updated parameters of the first-batch step."""
    import logging
    from .keras_check import keras_train
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # one new model per student retraces
    step = dataclasses.replace(spec, x=spec.x[:spec.batch_size], y=spec.y[:spec.batch_size],
                               training={**spec.training, "epochs": 1})
    params, epoch_losses = keras_train(step, "float64")
    diffs = [abs(epoch_losses[0] - expected["loss"])]
    diffs += [float(np.max(np.abs(params[name] - np.array(expected[naming.UPDATED.format(param=name)]))))
              for name in spec.param_names]
    return max(diffs) if all(math.isfinite(d) for d in diffs) else math.inf


def student_files(spec: Spec, folder: Path, notebook: bool) -> dict[Path, str]:
    from .outputs import rendered_outputs
    files = {folder / f"{spec.name}.toml": spec.to_toml()}
    files.update(rendered_outputs(spec, folder))
    if notebook:
        from .notebook import rendered_notebooks
        files.update(rendered_notebooks(spec, folder))
    return files


def _student_work(task: tuple) -> tuple[dict[Path, str], Optional[float]]:
    spec, folder, notebook, expected = task
    files = student_files(spec, folder, notebook)
    return files, (keras_answers_check(spec, expected) if expected is not None else None)


@dataclass
class ClassSet:
    """Everything ``symbp variants`` writes, in memory: files by path, the key, Keras's verdicts."""
    specs: dict[str, Spec]
    key: dict[str, dict]
    files: dict[Path, str] = field(default_factory=dict)
    keras_diff: dict[str, float] = field(default_factory=dict)

    @property
    def match(self) -> bool:
        return all(d <= TOLERANCE for d in self.keras_diff.values())


def render_variants(spec: Spec, count: int, seed: int, directory: Path, *, notebook: bool = False,
                    check: bool = False, jobs: Optional[int] = None, progress: bool = False) -> ClassSet:
    """Draw the class, compute its answer key, render every student's files (and check them)."""
    directory = Path(directory)
    drawn = draw_variants(spec, count, seed)
    ids = student_ids(count)
    base_module = spec_module(drawn[0])
    specs = {student: dataclasses.replace(s, title=f"{s.title[:180]} ({student})" if s.title else student)
             for student, s in zip(ids, drawn)}
    key = {student: answers(s, base_module) for student, s in specs.items()}
    tasks = [(s, directory / student, notebook, key[student] if check else None) for student, s in specs.items()]
    jobs = jobs or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()) or 1
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=count, unit="student", desc="variants" + (" + Keras" if check else ""),
                   disable=None)  # None: shown on a terminal only
    results = []
    try:
        if jobs == 1:
            for task in tasks:
                results.append(_student_work(task))
                if bar is not None:
                    bar.update()
        else:
            # spawn: workers start clean (TensorFlow does not survive a fork)
            with ProcessPoolExecutor(max_workers=min(jobs, count), mp_context=get_context("spawn")) as pool:
                for result in pool.map(_student_work, tasks):
                    results.append(result)
                    if bar is not None:
                        bar.update()
    finally:
        if bar is not None:
            bar.close()
    out = ClassSet(specs, key)
    for student, (files, diff) in zip(ids, results):
        out.files.update(files)
        if diff is not None:
            out.keras_diff[student] = diff
    out.files[directory / KEY_JSON] = json.dumps(key, indent=1) + "\n"
    out.files[directory / KEY_CSV] = key_csv(key)
    return out


def write_variants(spec: Spec, count: int, seed: int, directory: Path, **options) -> ClassSet:
    """``render_variants``, then write every file (only once all are ready)."""
    result = render_variants(spec, count, seed, directory, **options)
    write_all(result.files)
    return result
