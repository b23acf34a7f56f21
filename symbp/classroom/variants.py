"""One assignment per student: the spec's numbers drawn afresh, its handouts, one answer key.

``symbp variants SPEC --count N --seed S -o DIR`` draws N variants of SPEC as its ``[variants]``
table says (see README): every drawn value a multiple of ``step`` within ``range``, so the
arithmetic stays hand-friendly. A draw is rejected when it is degenerate on the notebook's step
(the first batch): a pre-activation with |z| > ``max_abs_z`` (a saturated unit), a unit whose
error gradient delta is zero for every row, a parameter with a zero gradient, anything not
finite; when a pre-activation of a piecewise activation, or an argument of a piecewise loss,
comes within ``kink_margin`` of a kink at any step of the whole training (relu at 0: there
NumPy and Keras round an exact 0 to +-1e-17 with different signs; see :mod:`symbp.derivation.kinks`),
or the two largest entries of a max-pooling window come within ``kink_margin`` of each other (a
tie: which entry the max and its gradient take is a coin toss to a student and to rounding); or
when it repeats an earlier draw. A convolution's kernels and biases are drawn on the same grid
as a Dense layer's weights (``weights``, ``bias``), its images as ``x``; its pre-activations
count as a Dense layer's, and "a unit whose delta is zero for every row" is a filter (a
channel) whose delta is zero at every row and position (max pooling leaves most positions without
a gradient by design). Draws come from ``numpy.random.default_rng(seed)`` in order,
so a seed gives the same class every time.

What a student may see and what gives the answers away go to separate folders:
``CLASS/students/<id>/`` holds the student's handout (and notebook with ``notebook=True``),
to hand out; ``CLASS/solutions/<id>/`` holds the spec, the generated module, the solution
handout and notebook, for the instructor. ``answer_key.json`` / ``.csv`` (in CLASS) give, per student, the answers of the
notebook's training step on the first batch: loss, every delta, every gradient and every updated
parameter, computed by the generated module; for a CNN also each convolution's feature map and
each pooling layer's pooled map (``a{l}``, as the module's trace names them). ``check=True`` trains
each variant's step with its framework's witness (Keras ``model.fit`` or torch.optim, float64) and
compares; a student who differs is drawn again (at most ``CHECK_REDRAWS`` times) and every key entry
ends with the witness's verdict (VERDICTS). Rendering and checks run in worker processes, one
per core unless ``jobs`` says otherwise; the result does not depend on the number of workers.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..derivation import naming
from ..errors import UnusableInput
from ..io.files import write_all
from ..derivation.kinks import layer_kinks_of, pool_geometries, spec_loss_kinks
from ..derivation.naming import ParamName
from ..derivation.network import layers_from_spec
from .rules_of_step import map_layer
from ..standalone_draws import DrawRules, Grid, draw_once, first_step, rejected
from ..witnesses.tolerance import TOLERANCES
from ..witnesses.module import spec_module
from ..rules import loss_registry
from ..spec import VARIANT_DEFAULTS, VARIANT_ITEMS, Spec
from ..spec.validate import BINARY_LOSSES

KEY_JSON, KEY_CSV = "answer_key.json", "answer_key.csv"
#: CLASS/students/<id>/ is handed out; CLASS/solutions/<id>/ stays with the instructor
STUDENTS, SOLUTIONS = "students", "solutions"
#: Keras's float64 run against the answer key (symbp.witnesses.tolerance: relative to each value's scale)
TOLERANCE = TOLERANCES["float64"]
#: a unit's delta counts as zero below this, for every row of the batch
ZERO_GRADIENT = 1e-6
TRIES_PER_VARIANT = 200
#: a student whose answers Keras does not reproduce (with --check) is drawn again at most this often
CHECK_REDRAWS = 3


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
def label_kind(spec: Spec) -> str:
    """How labels the loss accepts are drawn (a key of standalone_draws.LABEL_DRAWS): class
    indices for the sparse cross-entropy (or one taking either, the spec's labels indices),
    one-hot rows for categorical cross-entropy, 0/1 for a binary loss, else the ``y`` grid."""
    rule = loss_registry(spec.framework)[spec.loss.name]
    if rule.sparse_labels or (rule.either_labels and spec.class_indices):
        return "sparse"
    if rule.labels_are_distributions:
        return "one_hot"
    return "binary" if spec.loss.name in BINARY_LOSSES else "grid"


def kink_margin_of(spec: Spec) -> float:
    """[variants] kink_margin: how near a kink (relu at 0, huber at +-delta) a value may come."""
    return float({**VARIANT_DEFAULTS, **(spec.variants or {})}["kink_margin"])


def draw_rules(spec: Spec) -> DrawRules:
    """What ``symbp variants`` draws of ``spec`` and what it rejects, as plain numbers (the
    [variants] table over its defaults, the kinks of the spec's rules, its max-pooling windows):
    symbp's draws and a PrairieLearn question's (draw.json) read the same DrawRules."""
    vary, grids, max_abs_z = settings_of(spec)
    return DrawRules(
        vary=vary, grids=grids, label_kind=label_kind(spec), classes=spec.widths[-1],
        params=[(str(name), p.spec_key) for layer in layers_from_spec(spec)   # "weights" (kernels), "bias"
                for p, name in zip(layer.rule.parameters, layer.param_names)],
        batch_size=spec.batch_size, epochs=spec.epochs, max_abs_z=max_abs_z, zero_gradient=ZERO_GRADIENT,
        kink_margin=kink_margin_of(spec), layer_kinks=layer_kinks_of(spec),
        loss_kinks=spec_loss_kinks(spec.loss, spec.framework), pools=pool_geometries(spec), tries=TRIES_PER_VARIANT)


def _draws(spec: Spec, seed: int) -> Iterator[Optional[Spec]]:
    """One item per try, for ever: a new distinct variant that is not rejected (degenerate, near a
    kink or a tie: :func:`symbp.standalone_draws.rejected`), or None."""
    rules = draw_rules(spec)
    base = dataclasses.replace(spec.with_initial_params(), variants=None)
    module = spec_module(base)
    rng = np.random.default_rng(seed)
    params0, x0, y0 = base.initial_params(), np.array(base.x), np.array(base.y)
    seen = set()
    while True:
        params, x, y = draw_once(rules, rng, params0, x0, y0)
        key = b"".join(a.tobytes() for a in (*params.values(), x, y))
        if key in seen or rejected(module, rules, params, x, y):
            yield None
            continue
        seen.add(key)
        yield dataclasses.replace(base, x=x.tolist(), y=y.tolist(), layers=base.with_params(params))


def _take(spec: Spec, draws: Iterator[Optional[Spec]], count: int) -> list[Spec]:
    """The next ``count`` variants of ``draws`` within TRIES_PER_VARIANT tries each, or a
    clear error (exit 2) naming the settings to change."""
    if count < 1:
        raise UnusableInput(f"--count must be at least 1, found {count}")
    out: list[Spec] = []
    for _, variant in zip(range(TRIES_PER_VARIANT * count), draws):
        if variant is not None:
            out.append(variant)
            if len(out) == count:
                return out
    table = {**VARIANT_DEFAULTS, **(spec.variants or {})}
    raise UnusableInput(f"drew only {len(out)} distinct, non-degenerate variants of {count} in "
                        f"{TRIES_PER_VARIANT * count} tries: widen [variants] range, vary more items "
                        f"or raise max_abs_z (now {table['max_abs_z']}), or lower kink_margin "
                        f"(now {table['kink_margin']}: how near a kink, or a tie in max pooling, a value may come)")


def draw_variants(spec: Spec, count: int, seed: int) -> list[Spec]:
    """``count`` distinct, non-degenerate variants of ``spec``, drawn in order from ``seed``."""
    return _take(spec, _draws(spec, seed), count)


# ---------------------------------------------------------------- answers
def feature_map_layers(spec: Spec) -> list[int]:
    """l of each layer whose output a{l} is a quantity of the key: a CNN's feature and pooled maps
    (:func:`symbp.classroom.rules_of_step.map_layer`)."""
    return [layer.number for layer in layers_from_spec(spec) if map_layer(layer)]


def answer_names(spec: Spec) -> list[str]:
    """The answer key's quantity names, in :func:`answers`' order: the loss, the feature maps,
    each delta, each gradient, each updated parameter (what the notebooks' answer cells assign)."""
    return (["loss", *(naming.OUTPUT.format(l=l) for l in feature_map_layers(spec))]
            + [naming.DELTA.format(l=l) for l in range(1, len(spec.layers) + 1)]
            + [ParamName.parse(name).gradient for name in spec.param_names]
            + [naming.UPDATED.format(param=name) for name in spec.param_names])


def answers(spec: Spec, module=None) -> dict:
    """The notebook's answers: one step on the first batch (loss, a CNN's feature and pooled maps,
    deltas, gradients, updates)."""
    module = module or spec_module(spec)
    x, y = np.array(spec.x[:spec.batch_size]), np.array(spec.y[:spec.batch_size])
    step = first_step(module, spec.initial_params(), x, y, feature_map_layers(spec))
    return {name: value.tolist() if isinstance(value, np.ndarray) else value for name, value in step.items()}


def key_csv(key: dict[str, dict]) -> str:
    """One row per student, one column per number (``W0_updated[2][1]``)."""
    def cells(name, value):
        if isinstance(value, list):
            for n, item in enumerate(value):
                yield from cells(f"{name}[{n}]", item)
        elif isinstance(value, bool) or value is None:   # framework_match, a non-finite framework_max_abs_diff
            yield name, {True: "true", False: "false", None: ""}[value]
        elif isinstance(value, str):   # framework: a witness's registered name ("keras", "torch")
            yield name, value
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
def witness_answers_check(spec: Spec, expected: dict) -> float:
    """Largest scaled difference |witness - answer| / max(1, max |witness|) (Keras or PyTorch, the
    spec's framework) over the loss and each
    updated parameter of the first-batch step (symbp.witnesses.tolerance; compare with TOLERANCE.relative)."""
    import logging
    from ..witnesses.base import witness
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # one new model per student retraces
    step = dataclasses.replace(spec, x=spec.x[:spec.batch_size], y=spec.y[:spec.batch_size],
                               training=dataclasses.replace(spec.training, epochs=1))
    run = witness(spec.framework).train(step, "float64")
    params, epoch_losses = run.params, run.epoch_losses
    diffs = [TOLERANCE.scaled_difference(epoch_losses[0], expected["loss"])]
    diffs += [TOLERANCE.scaled_difference(params[name], expected[naming.UPDATED.format(param=name)])
              for name in spec.param_names]
    return max(diffs) if all(math.isfinite(d) for d in diffs) else math.inf


def handed_out_paths(spec: Spec, folder: Path) -> set[Path]:
    """The files of ``folder`` a student may have: the student's handout and notebook only."""
    from ..emit.handouts import handout_paths
    from ..emit.notebook import notebook_paths
    return {handout_paths(spec, folder)["student"], notebook_paths(spec, folder)["student"]}


def student_files(spec: Spec, directory: Path, student: str, notebook: bool,
                  handout: Optional[dict] = None) -> dict[Path, str]:
    """One student's files: the handout (and notebook) to hand out under CLASS/students/<id>/,
    and under CLASS/solutions/<id>/ everything that gives the answers away: the solution handout
    and notebook, the generated module (it computes them) and the spec (symbp derives them).
    ``handout``: the handouts' options (rendered_outputs' first_index, student_derivatives, name_line)."""
    from ..emit.outputs import rendered_outputs
    solutions = Path(directory) / SOLUTIONS / student
    files = {solutions / f"{spec.name}.toml": spec.to_toml()}
    files.update(rendered_outputs(spec, solutions, notebook=notebook, **(handout or {})))
    handed_out = handed_out_paths(spec, solutions)
    return {(Path(directory) / STUDENTS / student / path.name if path in handed_out else path): text
            for path, text in files.items()}


def _student_work(task: tuple) -> tuple[dict[Path, str], Optional[float]]:
    spec, directory, student, notebook, expected, handout = task
    files = student_files(spec, directory, student, notebook, handout)
    return files, (witness_answers_check(spec, expected) if expected is not None else None)


def _worker_start(parent: int) -> None:
    """In each worker: leave Ctrl-C to the parent (it stops the pool), and die with the parent
    even when it is killed outright (Linux's PR_SET_PDEATHSIG), instead of living on as an orphan."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)   # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:   # the parent died before prctl took effect
        os._exit(1)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now (``shutdown`` alone would wait for every queued student)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(10)


@dataclass
class ClassSet:
    """Everything ``symbp variants`` writes, in memory: files by path, the key, the witness's differences."""
    specs: dict[str, Spec]
    key: dict[str, dict]
    files: dict[Path, str] = field(default_factory=dict)
    witness_diff: dict[str, float] = field(default_factory=dict)

    @property
    def match(self) -> bool:
        return all(d <= TOLERANCE.relative for d in self.witness_diff.values())


def _titled(variant: Spec, student: str) -> Spec:
    return dataclasses.replace(variant, title=f"{variant.title[:180]} ({student})" if variant.title else student)


def _redraw_mismatches(out: ClassSet, spec: Spec, draws: Iterator[Optional[Spec]], directory: Path,
                       notebook: bool, module, handout: dict) -> None:
    """Draw again each student whose answers the witness does not reproduce, up to CHECK_REDRAWS
    times, from the class's own stream of draws (in student order, in this process: the class
    stays a function of the seed). One that still differs stays, and the key says so."""
    for student in list(out.witness_diff):
        for _ in range(CHECK_REDRAWS):
            if out.witness_diff[student] <= TOLERANCE.relative:
                break
            try:
                variant = _titled(_take(spec, draws, 1)[0], student)
            except UnusableInput:
                return  # no draw left: the remaining mismatches are marked, exit status 1
            expected = answers(variant, module)
            files, diff = _student_work((variant, directory, student, notebook, expected, handout))
            out.specs[student], out.key[student], out.witness_diff[student] = variant, expected, diff
            out.files.update(files)


#: the verdict fields an answer key entry ends with under ``--check``: the witness that trained
#: the step (the spec's framework, "keras" or "torch"), its largest scaled difference and whether
#: that is within TOLERANCE. Keys written before they were named by the witness say
#: ``keras_max_abs_diff`` / ``keras_match`` whatever the framework (OLD_VERDICTS: readers skip both)
VERDICTS = ("framework", "framework_max_abs_diff", "framework_match")
OLD_VERDICTS = ("keras_max_abs_diff", "keras_match")


def _mark_verdicts(out: ClassSet, framework: str) -> None:
    """Each key entry ends with its witness's verdict (VERDICTS: ``framework``,
    ``framework_max_abs_diff``, None when not finite, and ``framework_match``), so a key that
    disagrees with Keras or PyTorch says so itself, and says which."""
    for student, diff in out.witness_diff.items():
        out.key[student].update(zip(VERDICTS, (framework, diff if math.isfinite(diff) else None,
                                               diff <= TOLERANCE.relative)))


def render_variants(spec: Spec, count: int, seed: int, directory: Path, *, notebook: bool = False,
                    check: bool = False, jobs: Optional[int] = None, progress: bool = False,
                    pdf: bool = False, nbgrader: bool = False, tex_timeout: Optional[float] = None,
                    **scaffolding) -> ClassSet:
    """Draw the class, compute its answer key, render every student's files (and check them).

    ``pdf`` compiles every handout (:func:`compile_class`; a TeX run past ``tex_timeout`` seconds
    is stopped, TexTimedOut); ``nbgrader``: notebooks with nbgrader's cells (implies ``notebook``);
    ``scaffolding``: the handouts' options
    (symbp.emit.handouts.HandoutOptions: ``first_index`` 1 numbers the first layer's parameters
    W1 in the handouts and the key files; ``digits``, ``ask``, ``student_derivatives``,
    ``student_rules``, ``name_line``), over the spec's [handout] table."""
    from ..emit.handouts import HandoutOptions
    first_index = HandoutOptions.for_spec(spec, **scaffolding).first_index   # checked before any draw
    directory = Path(directory)
    draws = _draws(spec, seed)
    drawn = _take(spec, draws, count)
    ids = student_ids(count)
    base_module = spec_module(drawn[0])
    specs = {student: _titled(s, student) for student, s in zip(ids, drawn)}
    key = {student: answers(s, base_module) for student, s in specs.items()}
    if nbgrader:   # every student's test cells alike (nbgrader keeps one source per assignment)
        from .nbgrader import GradedClass
        nbgrader = GradedClass.of(spec, specs.values())
    handout = {**scaffolding, "nbgrader": nbgrader}
    notebook = notebook or nbgrader
    tasks = [(s, directory, student, notebook, key[student] if check else None, handout)
             for student, s in specs.items()]
    jobs = jobs or (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()) or 1
    results = _run_students(tasks, jobs, progress, "variants" + (" + Keras" if check else ""))
    out = ClassSet(specs, key)
    for student, (files, diff) in zip(ids, results):
        out.files.update(files)
        if diff is not None:
            out.witness_diff[student] = diff
    if check:
        _redraw_mismatches(out, spec, draws, directory, notebook, base_module, handout)
        _mark_verdicts(out, spec.framework)
    out.files.update(key_files(out.key, directory, naming.printed_answer_names(spec.param_names, first_index)))
    if pdf:
        out.files.update(compile_class(out.files, jobs, progress, tex_timeout))
    return out


def key_files(key: dict, directory: Path, shown: dict[str, str]) -> dict[Path, str]:
    """The class's answer key as JSON and CSV, each answer under its printed name (``shown``:
    dW0 -> dW1 with --first-index 1)."""
    printed = {student: {shown.get(name, name): value for name, value in entry.items()}
               for student, entry in key.items()}
    return {directory / KEY_JSON: json.dumps(printed, indent=1) + "\n", directory / KEY_CSV: key_csv(printed)}


def _run_students(tasks: list[tuple], jobs: int, progress: bool, description: str) -> list:
    """Every student's task through :func:`_student_work`, in order: here with ``jobs`` 1, else in
    a pool of spawned workers (TensorFlow does not survive a fork); a progress bar on a terminal."""
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(tasks), unit="student", desc=description, disable=None)  # None: terminal only
    results = []
    try:
        if jobs == 1:
            for task in tasks:
                results.append(_student_work(task))
                if bar is not None:
                    bar.update()
        else:
            pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=get_context("spawn"),
                                       initializer=_worker_start, initargs=(os.getpid(),))
            try:
                for result in pool.map(_student_work, tasks):
                    results.append(result)
                    if bar is not None:
                        bar.update()
            except BaseException:   # an error, Ctrl-C, SIGTERM: no worker outlives this call
                _stop_workers(pool)
                raise
            pool.shutdown()
    finally:
        if bar is not None:
            bar.close()
    return results


def compile_class(files: dict[Path, str], jobs: int, progress: bool = False,
                  timeout: Optional[float] = None) -> dict[Path, bytes]:
    """Every handout among ``files`` as PDF, beside its .tex (``jobs`` pdflatex runs at once, one
    precompiled preamble: symbp.io.pdf.compile_many; each run at most ``timeout`` seconds,
    default TEX_TIMEOUT), with a progress bar on a terminal."""
    from ..io.pdf import TEX_TIMEOUT, compile_many
    sources = {path: text for path, text in files.items() if path.suffix == ".tex"}
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(sources), unit="pdf", desc="PDFs", disable=None)
    try:
        return compile_many(sources, jobs, None if bar is None else bar.update, timeout or TEX_TIMEOUT)
    finally:
        if bar is not None:
            bar.close()


def write_variants(spec: Spec, count: int, seed: int, directory: Path, **options) -> ClassSet:
    """``render_variants``, then write every file (only once all are ready)."""
    result = render_variants(spec, count, seed, directory, **options)
    write_all(result.files)
    return result
