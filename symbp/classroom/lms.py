"""What every LMS export reads from a class folder and shares: quantities, entries, tolerance.

A class folder is what ``symbp variants`` writes: ``CLASS/answer_key.json`` (per student, each
quantity of the first-batch step: ``loss``, ``delta1``, ``dW0``, ``W0_updated``, ...) and
``CLASS/solutions/<student>/<name>.toml`` (the student's spec). An export turns each quantity's
entries into questions carrying the student's id in their name; the numbers come from the answer
key only (a presenter never recomputes one). A student's answer counts as right when it is within
:func:`tolerance` of the key: students work with the handout's rounded numbers, so the tolerance
allows rounding in the last shown decimals.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..classroom.variants import KEY_JSON, OLD_VERDICTS, SOLUTIONS, VERDICTS as KEY_VERDICTS
from ..errors import UnusableInput, printable

#: a submitted number is right within ABSOLUTE + RELATIVE * |answer| (hand-worked with 8 decimals
#: shown, rounded at each step: a few units in the 4th decimal at most)
ABSOLUTE, RELATIVE = 5e-4, 1e-3
#: keys of an answer-key entry that are verdicts, not quantities (and those of older keys)
VERDICTS = KEY_VERDICTS + OLD_VERDICTS
_QUANTITY = re.compile(r"^(loss|a\d+|delta\d+|d[A-Za-z]+\d+|[A-Za-z]+\d+_updated)$")


def tolerance(value: float) -> float:
    """How far a submitted number may be from ``value`` and count as right."""
    return ABSOLUTE + RELATIVE * abs(float(value))


@dataclass(frozen=True)
class Entry:
    """One number to ask for: the quantity, its index in the key's array (None for a scalar; a
    vector as row 0 of a 1 x n matrix), its value, and, for a quantity of more than two axes, the
    matrix of the sheet it sits in (``delta1[0,:,:,2]``) and its (row, column) there."""
    quantity: str
    index: tuple[int, ...] | None
    value: float
    matrix: str = ""
    cell: tuple[int, int] | None = None

    @property
    def label(self) -> str:
        """``dW1[2,0]``, ``loss``, ``delta1[0,:,:,2][1,0]``: how the entry is named in a question
        (a CNN's: the matrix as the sheet labels it, then the entry in it)."""
        if self.index is None:
            return self.quantity
        row, col = self.cell or self.index
        return f"{self.matrix or self.quantity}[{row},{col}]"

    @property
    def ident(self) -> str:
        """An identifier-safe form of the index: ``dW1_2_0``, ``delta1_0_1_0_2``."""
        return self.quantity if self.index is None else "_".join([self.quantity, *map(str, self.index)])


def slice_axes(quantity: str) -> tuple[int, int]:
    """The two axes a quantity of more than two axes shows whole, as the handouts print it: a
    feature map's delta per sample and channel (rows, columns of positions), a kernel's gradient
    or update per input channel and filter (offsets down and across)."""
    from ..emit.latex import ACTIVATION_AXES, PARAMETER_AXES
    return ACTIVATION_AXES if re.fullmatch(r"a\d+|delta\d+", quantity) else PARAMETER_AXES


@dataclass(frozen=True)
class Quantity:
    name: str
    value: object      # float or nested lists

    @property
    def shape(self) -> tuple[int, ...]:
        return np.shape(self.value)

    def matrices(self) -> list[tuple[str, list[Entry]]]:
        """The matrices the sheet shows, each (its label, its entries row by row): one (the
        quantity; a vector as a 1 x n row) for at most two axes, else one per 2-D slice of
        :func:`symbp.emit.latex.tensor_slices` (``delta1[0,:,:,2]``), in the handouts' order."""
        if np.ndim(self.value) == 0:
            return [(self.name, [Entry(self.name, None, float(self.value))])]
        array = np.asarray(self.value, dtype=np.float64)
        if array.ndim <= 2:
            rows = array.reshape(1, -1) if array.ndim == 1 else array
            return [(self.name, [Entry(self.name, (r, c), float(rows[r, c]))
                                 for r in range(rows.shape[0]) for c in range(rows.shape[1])])]
        from ..emit.latex import tensor_slices
        out = []
        for index, label in tensor_slices(array.shape, slice_axes(self.name)):
            matrix = f"{self.name}[{label}]"
            rows, cols = array[index].shape
            out.append((matrix, [Entry(self.name, _full_index(index, r, c), float(array[index][r, c]), matrix, (r, c))
                                 for r in range(rows) for c in range(cols)]))
        return out

    def entries(self) -> list[Entry]:
        """Every entry, matrix by matrix, row by row."""
        return [entry for _, entries in self.matrices() for entry in entries]


def _full_index(index: tuple, row: int, col: int) -> tuple[int, ...]:
    """The entry (row, col) of the slice ``index`` (two slice(None) axes) as an index of the whole array."""
    whole = iter((row, col))
    return tuple(next(whole) if isinstance(i, slice) else int(i) for i in index)


def describe(quantity: str) -> str:
    """What a quantity is, in words: ``dW1`` -> the gradient of the loss by W1."""
    if quantity == "loss":
        return "the batch loss L"
    if re.fullmatch(r"a\d+", quantity):
        return f"the output a{quantity[1:]} of layer {quantity[1:]} (its feature maps)"
    if quantity.startswith("delta"):
        return f"the error gradient delta{quantity[5:]} = dL/dz{quantity[5:]}"
    if quantity.endswith("_updated"):
        return f"{quantity[:-8]} after the first update"
    return f"the gradient dL/d{quantity[1:]}"


def quantity_rules(spec, first_index: int = 0) -> dict[str, str]:
    """Each quantity's rule as the worked solution states it, in TeX (``\\delta_{2} = ...``):
    the LaTeX presenter's first line of the step that computes it (the handouts' notation, the
    bias as theta, parameters counted from ``first_index``), under the key's name for the
    quantity. The loss, a mean of per-sample losses, has no such line and is left out."""
    from ..derivation.naming import printed_answer_names
    from ..emit.handout_latex import LatexPresenter
    from ..emit.handouts import HandoutOptions, Notation, worked_solution
    from ..emit.worked_solution import Equation
    options = HandoutOptions(first_index=first_index)
    work = worked_solution(spec, options)
    notation = Notation(options.bias_symbol, first_index)
    shown = printed_answer_names(spec.param_names, first_index)
    presenter = LatexPresenter(options.digits, notation.param)
    lines = {item.lhs: presenter.rule_line(item) for section in work.backprop for step in section.steps
             for item in step.items if isinstance(item, Equation) and item.lhs}
    wanted = {**{f"delta{l}": rf"\delta_{{{l}}}" for l in range(1, len(spec.layers) + 1)},
              **{f"d{p}": notation.grad(p) for p in spec.param_names},
              **{f"{p}_updated": notation.param(p) + r"^{\mathrm{new}}" for p in spec.param_names}}
    return {shown.get(quantity, quantity): lines[lhs] for quantity, lhs in wanted.items() if lhs in lines}


@dataclass
class ClassFolder:
    """The class as an export reads it: the assignment's name, per student the quantities, and
    each quantity's rule in TeX (:func:`quantity_rules`)."""
    name: str
    title: str
    students: dict[str, dict[str, Quantity]]
    specs: dict[str, Path]
    rules: dict[str, str]
    first_index: int = 0    # 1: the key counts parameters from 1 (variants --first-index 1: dW1 first)

    def quantity_names(self) -> list[str]:
        return list(next(iter(self.students.values())))


def read_class(folder: Path, quantities: tuple[str, ...] = ()) -> ClassFolder:
    """The class in ``folder`` (written by ``symbp variants``), keeping ``quantities`` (all when
    empty); a missing or malformed file is an input error naming it."""
    folder = Path(folder)
    key = _read_key(folder / KEY_JSON)
    students, specs = {}, {}
    name = title = None
    rules: dict[str, str] = {}
    first_index = 0
    for student, entry in key.items():
        spec_files = sorted((folder / SOLUTIONS / student).glob("*.toml"))
        if len(spec_files) != 1:
            raise UnusableInput(f"{printable(str(folder / SOLUTIONS / student))}: expected the student's "
                                f"spec (one .toml), found {len(spec_files)}: is {printable(str(folder))} "
                                f"a folder written by symbp variants?")
        specs[student] = spec_files[0]
        students[student] = _quantities(entry, student, folder / KEY_JSON)   # before its spec is presented
        if name is None:
            from ..spec.model import load_spec
            spec = load_spec(spec_files[0])
            name, title = spec.name, (spec.title or spec.name).removesuffix(f" ({student})")
            first_index = key_first_index(entry, spec.param_names)
            rules = quantity_rules(spec, first_index)
    selected = _select(quantities, next(iter(students.values())))
    return ClassFolder(name, title, {s: {q: qs[q] for q in selected} for s, qs in students.items()}, specs, rules,
                       first_index)


def key_first_index(entry: dict, param_names) -> int:
    """1 when an answer-key entry names the parameters from 1 (``variants --first-index 1``:
    it has the last layer's dW<L>, which names counted from 0 never reach), else 0."""
    from ..derivation.naming import printed_answer_names
    shown = printed_answer_names(param_names, 1)
    return int(not all(name in entry for name in shown) and all(name in entry for name in shown.values()))


#: the largest answer key read (a class of 1000 students of the largest network is far less)
MAX_KEY_BYTES = 256 * 2**20


def _read_key(path: Path) -> dict:
    """The answer key's JSON; a FIFO, device or folder in its place is refused unread."""
    if path.exists() and not path.is_file():
        raise UnusableInput(f"{printable(str(path))}: not a regular file")
    if path.is_file() and path.stat().st_size > MAX_KEY_BYTES:
        raise UnusableInput(f"{printable(str(path))}: larger than {MAX_KEY_BYTES // 2**20} MB")
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnusableInput(f"{printable(str(path))}: no answer key: CLASS must be a folder written "
                            f"by symbp variants") from None
    except (OSError, ValueError) as err:
        raise UnusableInput(f"{printable(str(path))}: not a readable answer key ({printable(str(err))})") from None
    if not isinstance(key, dict) or not key or not all(isinstance(v, dict) for v in key.values()):
        raise UnusableInput(f"{printable(str(path))}: expected an object of students, each an object of quantities")
    for student in key:
        if not re.fullmatch(r"[A-Za-z0-9_]{1,64}", student):
            raise UnusableInput(f"{printable(str(path))}: student id {printable(student)!s} is not "
                                f"letters, digits and _ (at most 64)")
    return key


def _quantities(entry: dict, student: str, path: Path) -> dict[str, Quantity]:
    out = {}
    for name, value in entry.items():
        if name in VERDICTS:
            continue
        array = np.asarray(value, dtype=object)
        if not _QUANTITY.match(name) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in array.flat):
            raise UnusableInput(f"{printable(str(path))}: {student}.{printable(name)} is not a quantity "
                                f"of finite numbers")
        out[name] = Quantity(name, value)
    return out


def _select(quantities: tuple[str, ...], available: dict) -> list[str]:
    if not quantities:
        return list(available)
    unknown = [q for q in quantities if q not in available]
    if unknown:
        raise UnusableInput(f"--quantities: {', '.join(printable(q) for q in unknown)} not in the answer key "
                            f"(one of {', '.join(available)})")
    return list(dict.fromkeys(quantities))


# ---------------------------------------------------------------- mistake distractors
def mistake_answers(spec_path) -> dict[tuple[str, tuple | None], list[tuple[float, str]]]:
    """{(quantity, index): [(value, what went wrong)]}: the numbers each catalogued mistake
    (:data:`symbp.classroom.mistakes.MISTAKES`) gives for this student's spec, every earlier
    quantity right; Moodle grades a submission that lands on one with 0 and names the mistake."""
    from .mistakes import MISTAKES, mistake_values
    from ..spec.model import load_spec
    from ..witnesses.module import spec_module
    spec = load_spec(spec_path)
    module = spec_module(spec)
    out: dict = {}
    for mistake_id, mistake in MISTAKES.items():
        for quantity, values in mistake_values(spec, mistake_id, module).items():
            for entry in Quantity(quantity, np.asarray(values).tolist()).entries():
                out.setdefault((quantity, entry.index), []).append((entry.value, mistake.description))
    return out


def distinct_distractors(correct: float, candidates: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """The candidates whose tolerance interval overlaps neither the right answer's nor an earlier
    kept one's (Moodle takes the first answer a submission matches)."""
    kept: list[tuple[float, str]] = []
    for value, description in candidates:
        if all(abs(value - other) > tolerance(value) + tolerance(other) for other, _ in [(correct, ""), *kept]):
            kept.append((value, description))
    return kept
