"""nbgrader cells for the assignment notebooks (``--nbgrader`` on ``derive`` and ``variants``).

Every cell gets nbgrader's metadata (``nbgrader: {grade, solution, locked, grade_id, points,
schema_version}``): the cells tagged ``answer`` are solution cells, every other cell is locked,
and after each answer cell comes an autograder test cell worth one point per answer quantity
of that cell. The test cell calls :func:`autograde_cell`, symbp's grading of those quantities
(carried-forward credit and the diagnosed mistake included), whose value (the last expression)
nbgrader takes as the cell's partial credit, instead of one assert that gives 0 or all.

The solution notebook is nbgrader's *source* version: answers between ``### BEGIN SOLUTION`` /
``### END SOLUTION`` and the call between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``,
which nbgrader's ``generate_assignment`` removes. The student's copy is the release version: the
same cells with the hidden part removed, so a student's kernel never needs symbp; nbgrader's
``autograde`` restores the hidden part, so the kernel it grades in needs symbp installed.

nbgrader keeps one source notebook per assignment and, at autograde, puts back the source of
every locked and test cell. So the test cells are the same for every student of a class
(:class:`GradedClass`: the class's spec, whose givens do not matter, and a fingerprint of each
student's givens), and the student's own givens (``x``, ``y``, the parameters before the step)
are read from the kernel, checked against the fingerprints (changed givens score 0), put into
the class's spec and graded. In a class of several students (``variants``) the cells that hold
the givens are not locked, since nbgrader would put the first student's numbers back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import warnings
from dataclasses import dataclass

import numpy as np

from .grading import describe_mistake
from ..standalone_draws import in_key_order

SCHEMA_VERSION = 3
_ASSIGNED = re.compile(r"^([A-Za-z_]\w*) = ", re.MULTILINE)
#: a student's givens not among the class's: every quantity of the cell scores 0
CHANGED_GIVENS = ("the givens ({names}) are not this assignment's: run the notebook from the top "
                  "without changing them")


def givens(spec) -> dict[str, np.ndarray]:
    """The numbers a student's notebook starts from: the first batch's ``x`` and ``y`` and
    every parameter before the step (the notebook's names: W0, b0, ...)."""
    return {"x": np.array(spec.x[:spec.batch_size], dtype=np.float64),
            "y": np.array(spec.y[:spec.batch_size], dtype=np.float64),
            **{name: np.asarray(value, dtype=np.float64) for name, value in spec.initial_params().items()}}


def fingerprint(values: dict[str, np.ndarray]) -> str:
    """sha256 of the givens' names, shapes and float64 bytes (16 hex digits): the notebook's
    literals are the spec's floats written exactly, so the kernel's arrays give the same bytes."""
    digest = hashlib.sha256()
    for name in sorted(values):
        array = np.ascontiguousarray(values[name], dtype=np.float64)
        digest.update(f"{name}{array.shape}".encode() + array.tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class GradedClass:
    """What every test cell of a class holds: the class's spec (TOML) and the fingerprints of
    its students' givens (one for ``derive``, one per student for ``variants``)."""
    spec_toml: str
    fingerprints: tuple[str, ...]

    @classmethod
    def of(cls, spec, students) -> "GradedClass":
        """``spec`` the class's (its givens are replaced by each student's), ``students`` their specs."""
        return cls(dataclasses.replace(spec.with_initial_params(), variants=None).to_toml(),
                   tuple(sorted({fingerprint(givens(s)) for s in students})))

    @property
    def one_student(self) -> bool:
        return len(self.fingerprints) == 1


def _metadata(grade: bool, solution: bool, locked: bool, grade_id: str, points: int | None = None) -> dict:
    out = {"grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id,
           "schema_version": SCHEMA_VERSION}
    if points is not None:
        out["points"] = points
    return out


def test_source(graded: GradedClass, quantities: list[str], hidden: bool) -> str:
    """The autograder cell: ``autograde_cell`` on this cell's quantities (in hidden tests)."""
    lines = ["# symbp grades this cell's answers: partial credit, carried forward, the mistake named",
             "### BEGIN HIDDEN TESTS"]
    if hidden:
        lines += ["from symbp.classroom.nbgrader import autograde_cell",
                  f"autograde_cell(globals(), {graded.spec_toml!r}, {list(graded.fingerprints)!r}, {quantities!r})"]
    return "\n".join(lines + ["### END HIDDEN TESTS"])


def _plain_cell_metadata(cell, cell_id: str, given_names: set, graded: GradedClass) -> dict:
    """A cell that is neither answer nor test: locked, except one that assigns a given in a
    class of several students (nbgrader would restore the first student's numbers)."""
    assigns_givens = cell.cell_type == "code" and given_names & set(_ASSIGNED.findall(cell.source))
    if assigns_givens and not graded.one_student:
        return _metadata(False, False, False, f"givens-{cell_id}")
    return _metadata(False, False, True, f"locked-{cell_id}")


def add_nbgrader_cells(nb, spec, key_quantities: set[str], source_version: bool, graded: GradedClass | None = None):
    """``nb`` (nbformat v4) with nbgrader metadata and a test cell after each answer cell;
    ``graded``: the class the test cells grade (``spec`` alone when None)."""
    from nbformat import v4
    graded = graded or GradedClass.of(spec, [spec])
    given_names = set(givens(spec))
    cells = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        cell_id = cell.get("id", f"cell-{len(cells)}")
        if "answer" not in tags:
            cell.metadata["nbgrader"] = _plain_cell_metadata(cell, cell_id, given_names, graded)
            cells.append(cell)
            continue
        cell.metadata["nbgrader"] = _metadata(False, True, False, f"answer-{cell_id}")
        if source_version:
            cell.source = f"### BEGIN SOLUTION\n{cell.source}\n### END SOLUTION"
        cells.append(cell)
        quantities = [name for name in _ASSIGNED.findall(cell.source) if name in key_quantities]
        if quantities:
            test = v4.new_code_cell(test_source(graded, quantities, source_version), id=f"test-{cell_id}")
            test.metadata["nbgrader"] = _metadata(True, False, True, f"test-{cell_id}", len(quantities))
            cells.append(test)
    nb.cells = cells
    return nb


def student_spec(namespace: dict, spec, fingerprints: list[str]):
    """The class's ``spec`` with the kernel's givens, or None when they are not a student's of the class."""
    try:
        found = {name: np.asarray(namespace[name], dtype=np.float64) for name in givens(spec)}
    except (KeyError, TypeError, ValueError):
        return None
    if fingerprint(found) not in fingerprints:
        return None
    params = {name: value for name, value in found.items() if name not in ("x", "y")}
    return dataclasses.replace(spec, x=found["x"].tolist(), y=found["y"].tolist(), layers=spec.with_params(params))


def autograde_cell(namespace: dict, spec_toml: str, fingerprints: list[str], quantities: list[str]) -> float:
    """Runs in nbgrader's autograde kernel: grade every answer so far (for carried-forward
    credit) against the student's own givens, print the status of ``quantities`` and return
    their score (nbgrader's partial credit). Warnings are kept off stderr: nbgrader gives a
    test cell that writes there 0 points."""
    import tomllib
    from ..spec.model import Spec
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        spec = Spec.from_dict(tomllib.loads(spec_toml))
        student = student_spec(namespace, spec, fingerprints)
        if student is None:
            print(CHANGED_GIVENS.format(names=", ".join(givens(spec))))
            return 0.0
        grade = _grade_namespace(namespace, student)
    for name in quantities:
        result = grade.quantities[name]
        print(f"{name}: {result.status}" + (f". {describe_mistake(result.diagnosis, name)}" if result.diagnosis else ""))
    return float(sum(grade.quantities[name].score for name in quantities))


def _grade_namespace(namespace: dict, spec):
    """symbp's grading of the kernel's answers (arrays of the key's shapes) for ``spec``."""
    from ..emit.codegen import derive_spec
    from ..witnesses.module import spec_module
    from .grading import GradingOptions, grade_student
    from .rules_of_step import step_namespace, step_rules
    from .variants import answers
    module = spec_module(spec)
    rules = step_rules(derive_spec(spec), spec.fixed_params)
    key = {k: np.asarray(v, dtype=np.float64) for k, v in answers(spec, module).items()}
    given = {}
    for name, expected in key.items():
        try:
            value = np.asarray(namespace[name], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            continue
        if value.size == expected.size:   # another shape (transposed): its entries in the key's order
            given[name] = in_key_order(value, expected.shape)
    return grade_student(rules, step_namespace(spec, module), key, given, GradingOptions())


def key_quantities(spec) -> set[str]:
    """The answer key's quantity names for ``spec`` (:func:`symbp.classroom.variants.answer_names`:
    a CNN's feature maps a{l} too), the quantities a test cell grades."""
    from .variants import answer_names
    return set(answer_names(spec))
