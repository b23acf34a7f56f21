"""Reading students' answers: a CSV in the answer key's format, or a folder of notebooks.

Both give ``{student: Submission}``; a student whose input cannot be used gets a Submission with
``error`` set (the others are graded all the same). A cell's text is data only: it is parsed as
a number or reported; it never becomes code, and messages quote it escaped and shortened.

Notebooks run as nbgrader's autograde runs them: each in its own kernel process (nbclient),
with a time limit per cell, several at once (one per core), never in symbp's process. After the
student's cells, one cell added by symbp prints the answer variables as JSON after a marker
line; only that cell's output is read, and only it prints (a first cell added by symbp
silences the student's prints, shown values and displays), sending numbers only for answers of
the key's sizes; what comes back is read as numbers or the reader's notes (:func:`read_answer`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..standalone_draws import in_key_order

#: a CSV submission file larger than this is refused (500 students of a large network fit)
MAX_CSV_BYTES = 64 * 2**20
MAX_NOTEBOOK_BYTES = 16 * 2**20
NOTEBOOK_TIMEOUT = 60


@dataclass
class Submission:
    answers: dict[str, np.ndarray] = field(default_factory=dict)
    error: Optional[str] = None


def quoted(text: str, limit: int = 40) -> str:
    """Student text in a message: escaped (no control characters), at most ``limit`` characters."""
    text = ascii(str(text))[1:-1]
    return repr(text[:limit] + ("..." if len(text) > limit else ""))


def cell_columns(name: str, shape: tuple) -> list[str]:
    """The key's columns of a quantity: ``W0_updated[2][1]`` (one per entry; a scalar: its name)."""
    return [name + "".join(f"[{i}]" for i in index) for index in np.ndindex(*shape)] if shape else [name]


def parse_row(row: dict, shapes: dict[str, tuple], printed: Optional[dict] = None) -> Submission:
    """One CSV row as arrays of the key's shapes; an empty (or absent) cell is NaN (missing).
    ``printed``: a quantity's column name where the key prints it otherwise (dW0 -> dW1, --first-index 1)."""
    answers, problems = {}, []
    for name, shape in shapes.items():
        values = []
        for column in cell_columns((printed or {}).get(name, name), shape):
            cell = (row.get(column) or "").strip()
            try:
                value = float(cell) if cell else math.nan
            except ValueError:
                value, problem = math.nan, "not a number"
            else:
                problem = None if not cell or math.isfinite(value) else "not a finite number"
            if problem:
                problems.append(f"{column}: {problem}: {quoted(cell)}")
                value = math.nan
            values.append(value)
        answers[name] = np.array(values, dtype=np.float64).reshape(shape)
    error = f"{len(problems)} cell(s) not read as numbers (graded as missing): " + "; ".join(problems[:5]) \
        if problems else None
    return Submission(answers, error)


def read_csv(path: Path, shapes: dict[str, tuple], students: set[str],
             printed: Optional[dict] = None) -> tuple[dict[str, Submission], list[str]]:
    """({student: Submission}, problems of rows that name no student of the class); ``printed``:
    as :func:`parse_row`. A cell may be as long as the file: one that is no number is its
    student's problem, as any other (:func:`cells_as_long_as`)."""
    raw = Path(path).read_bytes()[:MAX_CSV_BYTES + 1]
    if len(raw) > MAX_CSV_BYTES:
        raise ValueError(f"{path}: larger than {MAX_CSV_BYTES // 2**20} MB")
    with cells_as_long_as(MAX_CSV_BYTES):
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8-sig", errors="replace"), newline=""))
        if not reader.fieldnames or "student" not in reader.fieldnames:
            raise ValueError(f"{path}: no 'student' column in the first row (the answer key's format)")
        out, problems = {}, header_problems(reader.fieldnames, shapes, printed)
        for line, row in enumerate(reader, start=2):
            student = (row.get("student") or "").strip()
            if None in row:   # more cells than the header has columns
                problems.append(f"line {line}: more cells than columns")
            if student not in students:
                problems.append(f"line {line}: unknown student {quoted(student)}")
                continue
            if student in out:
                problems.append(f"line {line}: {student} again (the first row counts)")
                continue
            out[student] = parse_row(row, shapes, printed)
    return out, problems


def header_problems(header: list[str], shapes: dict[str, tuple], printed: Optional[dict] = None) -> list[str]:
    """What the first row of a CSV submission names that the key does not (ignored), names twice
    (the last counts, as csv.DictReader reads it) or leaves out (those cells graded as
    missing): each said once per file, not silently."""
    expected = ["student"] + [column for name, shape in shapes.items()
                              for column in cell_columns((printed or {}).get(name, name), shape)]
    said = lambda columns: ", ".join(map(quoted, columns[:5])) + (f" ({len(columns)} in all)" if len(columns) > 5 else "")
    counts, known = Counter(header), set(expected)
    checks = [([c for c in counts if c not in known], "columns the answer key does not have (ignored)"),
              ([c for c, n in counts.items() if n > 1], "columns named twice (the last one counts)"),
              ([c for c in expected if c not in counts], "columns of the answer key missing (their cells graded as missing)")]
    return [f"line 1: {what}: {said(columns)}" for columns, what in checks if columns]


@contextmanager
def cells_as_long_as(characters: int):
    """The csv module's field size limit raised to ``characters`` inside the block. Its default
    (131,072) makes one longer cell an error that stops reading the whole file; the file's own
    size limit bounds a cell already, and with it csv (not strict) raises nothing on any text."""
    previous = csv.field_size_limit(characters)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


# ---------------------------------------------------------------- notebooks
def _reader_cell(sizes: dict[str, int], marker: str) -> str:
    """symbp's last cell: the answer variables as JSON after ``marker`` (``sizes``: the key's
    names and each quantity's entries). Only an answer of the right size is sent as numbers; any
    other as {"shape": ...}, and one that is no array of numbers as {"not_numbers": true}: a
    student's 40-million-entry array would otherwise be printed, carried and parsed in full. It
    imports all it uses itself: a student's ``%reset -f`` leaves nothing of the first cell's."""
    return ("import json as _symbp_json, numpy as _symbp_np, sys as _symbp_sys\n"
            "for _symbp_stream in (_symbp_sys.stdout, _symbp_sys.stderr):\n"
            "    vars(_symbp_stream).pop('write', None)\n"
            f"_symbp_sizes = {sizes!r}\n"
            "_symbp_out = {}\n"
            "for _symbp_name, _symbp_size in _symbp_sizes.items():\n"
            "    if _symbp_name not in globals():\n"
            "        continue\n"
            "    try:\n"
            "        _symbp_value = _symbp_np.asarray(globals()[_symbp_name], dtype=float)\n"
            "    except Exception:\n"
            "        _symbp_out[_symbp_name] = {'not_numbers': True}\n"
            "        continue\n"
            "    _symbp_out[_symbp_name] = _symbp_value.tolist() if _symbp_value.size == _symbp_size \\\n"
            "        else {'shape': list(_symbp_value.shape)}\n"
            f"print({marker!r} + _symbp_json.dumps(_symbp_out))\n")


#: symbp's first cell: the student's cells print and display nothing (only symbp's last cell is
#: read), so a cell printing 300 MB sends nothing. The kernel's own streams stay in place, their
#: write overridden (the kernel tells the streams in sys.stdout which cell each output belongs
#: to); a cell's last value and display() write no data, so their messages are not sent.
_QUIET_CELL = ("import sys as _symbp_sys\n"
               "for _symbp_stream in (_symbp_sys.stdout, _symbp_sys.stderr):\n"
               "    _symbp_stream.write = len\n"
               "get_ipython().displayhook.write_format_data = lambda *args, **kwargs: None\n"
               "get_ipython().display_pub.publish = lambda *args, **kwargs: None\n")


def _answer_reader(notebook, **options):
    """nbclient's client for ``notebook``, keeping no output but its last cell's (symbp's, the
    only one read): a student's cell printing 300 MB took symbp's own process to 735 MB."""
    from nbclient import NotebookClient
    last = len(notebook.cells) - 1

    class AnswerReader(NotebookClient):
        def output(self, outs, msg, display_id, cell_index):
            return super().output(outs, msg, display_id, cell_index) if cell_index == last else None
    return AnswerReader(notebook, **options)


def _stream_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def cells_to_run(cells) -> int:
    """The cells up to the last one tagged ``answer`` (all without tags): the Keras comparison
    after them checks the student's work but holds no answer, and loading TensorFlow in every
    kernel would take most of a class's time."""
    tagged = [n for n, cell in enumerate(cells) if "answer" in cell.get("metadata", {}).get("tags", [])]
    return tagged[-1] + 1 if tagged else len(cells)


def run_notebook(path: Path, sizes: dict[str, int], timeout: int) -> dict:
    """Execute one notebook in a fresh kernel (its own process) and read the answer variables."""
    import nbformat
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"larger than {MAX_NOTEBOOK_BYTES // 2**20} MB")
    notebook = nbformat.read(str(path), as_version=4)
    notebook.cells = [nbformat.v4.new_code_cell(_QUIET_CELL), *notebook.cells[:cells_to_run(notebook.cells)]]
    marker = f"symbp-answers-{secrets.token_hex(8)}:"
    notebook.cells.append(nbformat.v4.new_code_cell(_reader_cell(sizes, marker)))
    client = _answer_reader(notebook, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    # the kernel process's own stdout and stderr (its start-up warnings, a student's writes to
    # sys.__stderr__, a traceback as a timed-out kernel stops) are not the grader's terminal's
    client.execute(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    text = _stream_text(notebook.cells[-1])
    found = [line for line in text.splitlines() if line.startswith(marker)]
    if not found:
        raise ValueError("the notebook's kernel stopped before its answers could be read")
    values = json.loads(found[-1][len(marker):])
    if not isinstance(values, dict):
        raise ValueError("the notebook's answers were not read as the reader cell writes them")
    return values


def _timed_out(err: Exception) -> bool:
    return "Timeout" in type(err).__name__ or "timed out" in str(err)


def notebook_submission(path: Path, shapes: dict[str, tuple], timeout: int) -> Submission:
    """One student's notebook as a Submission (a time-out or a broken file: an error). A run
    that fails otherwise is tried once more: a kernel may fail to start on a busy machine."""
    sizes = {name: int(np.prod(shape)) for name, shape in shapes.items()}
    try:
        try:
            values = run_notebook(path, sizes, timeout)
        except Exception as err:
            if _timed_out(err):
                raise
            values = run_notebook(path, sizes, timeout)
    except Exception as err:   # the student's notebook, not symbp: reported for this student
        reason = "timed out" if _timed_out(err) else \
            f"could not be run ({type(err).__name__})"
        return Submission({}, f"{path.name}: {reason}")
    answers, problems = {}, []
    for name, shape in shapes.items():
        if name not in values:
            continue
        array, problem = read_answer(values[name], shape)
        if problem:
            problems.append(f"{name} {problem}")
        if array is not None:
            answers[name] = array
    return Submission(answers, "; ".join(problems) or None)


def read_answer(value, shape: tuple) -> tuple[Optional[np.ndarray], Optional[str]]:
    """One answer as the reader cell sent it: the array in the key's ``shape`` (or None) and
    what to say of it. The student's kernel wrote it (a cell can replace json.dumps), so only
    numbers or the reader's two notes are read, and every word said is symbp's."""
    if isinstance(value, dict):   # the reader's note: its shape, or no numbers at all
        found = value.get("shape")
        if isinstance(found, list) and len(found) <= 32 and \
                all(isinstance(n, int) and not isinstance(n, bool) and 0 <= n for n in found):
            return None, f"has shape {tuple(found)}, expected {shape}"
        return None, "is not an array of numbers"
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None, "is not an array of numbers"
    if array.shape == shape:
        return array, None
    if array.size != int(np.prod(shape)):
        return None, f"has shape {array.shape}, expected {shape}"
    # as many entries (a gradient computed transposed): read in the key's order, as a CSV row
    return in_key_order(array, shape), f"has shape {array.shape}, expected {shape}: its entries read row by row"


def read_notebooks(folder: Path, shapes: dict[str, tuple], students: set[str], timeout: int = NOTEBOOK_TIMEOUT,
                   jobs: Optional[int] = None) -> tuple[dict[str, Submission], list[str]]:
    """Each ``<student>.ipynb`` of ``folder`` run in its own kernel, ``jobs`` at once (cores)."""
    paths = {p.stem: p for p in sorted(Path(folder).glob("*.ipynb"))}
    problems = [f"{quoted(p.name)}: names no student of the class" for s, p in paths.items() if s not in students]
    paths = {s: p for s, p in paths.items() if s in students}
    if jobs is None:
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    # threads only wait: each notebook runs in its own kernel process
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = pool.map(lambda item: (item[0], notebook_submission(item[1], shapes, timeout)), paths.items())
        return dict(results), problems
