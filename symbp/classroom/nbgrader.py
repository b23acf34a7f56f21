"""nbgrader cells for the assignment notebooks (``--nbgrader`` on ``derive`` and ``variants``).

Every cell gets nbgrader's metadata (``nbgrader: {grade, solution, locked, grade_id, points,
schema_version}``): the cells tagged ``answer`` are solution cells, every other cell is locked,
and after each answer cell comes an autograder test cell worth one point per answer quantity
of that cell. The test cell calls :func:`autograde_cell`, symbp's grading of those quantities
(carried-forward credit and the diagnosed mistake included), whose value (the last expression)
nbgrader takes as the cell's partial credit, instead of one assert that gives 0 or all.

The solution notebook is nbgrader's *source* version: answers between ``### BEGIN SOLUTION`` /
``### END SOLUTION`` and the call (it holds the student's spec, i.e. the answers) between
``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``, which nbgrader's ``generate_assignment``
removes. The student's copy is the release version: the same cells with the hidden part removed.
"""

from __future__ import annotations

import re

import numpy as np

SCHEMA_VERSION = 3
_ASSIGNED = re.compile(r"^([A-Za-z_]\w*) = ", re.MULTILINE)


def _metadata(grade: bool, solution: bool, locked: bool, grade_id: str, points: int | None = None) -> dict:
    out = {"grade": grade, "solution": solution, "locked": locked, "grade_id": grade_id,
           "schema_version": SCHEMA_VERSION}
    if points is not None:
        out["points"] = points
    return out


def test_source(spec_toml: str, quantities: list[str], hidden: bool) -> str:
    """The autograder cell: ``autograde_cell`` on this cell's quantities (in hidden tests)."""
    lines = ["# symbp grades this cell's answers: partial credit, carried forward, the mistake named",
             "### BEGIN HIDDEN TESTS"]
    if hidden:
        lines += ["from symbp.classroom.nbgrader import autograde_cell",
                  f"autograde_cell(globals(), {spec_toml!r}, {quantities!r})"]
    return "\n".join(lines + ["### END HIDDEN TESTS"])


def add_nbgrader_cells(nb, spec, key_quantities: set[str], source_version: bool):
    """``nb`` (nbformat v4) with nbgrader metadata and a test cell after each answer cell."""
    from nbformat import v4
    spec_toml = spec.to_toml()
    cells = []
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        cell_id = cell.get("id", f"cell-{len(cells)}")
        if "answer" not in tags:
            cell.metadata["nbgrader"] = _metadata(False, False, True, f"locked-{cell_id}")
            cells.append(cell)
            continue
        cell.metadata["nbgrader"] = _metadata(False, True, False, f"answer-{cell_id}")
        if source_version:
            cell.source = f"### BEGIN SOLUTION\n{cell.source}\n### END SOLUTION"
        cells.append(cell)
        quantities = [name for name in _ASSIGNED.findall(cell.source) if name in key_quantities]
        if quantities:
            test = v4.new_code_cell(test_source(spec_toml, quantities, source_version), id=f"test-{cell_id}")
            test.metadata["nbgrader"] = _metadata(True, False, True, f"test-{cell_id}", len(quantities))
            cells.append(test)
    nb.cells = cells
    return nb


def autograde_cell(namespace: dict, spec_toml: str, quantities: list[str]) -> float:
    """Runs in the student's kernel: grade every answer so far (for carried-forward credit),
    print the status of ``quantities`` and return their score (nbgrader's partial credit)."""
    import tomllib
    from ..emit.codegen import derive_spec
    from ..spec.model import Spec
    from ..witnesses.module import spec_module
    from .grading import GradingOptions, describe_mistake, grade_student
    from .rules_of_step import step_namespace, step_rules
    from .variants import answers
    spec = Spec.from_dict(tomllib.loads(spec_toml))
    module = spec_module(spec)
    rules = step_rules(derive_spec(spec))
    key = {k: np.asarray(v, dtype=np.float64) for k, v in answers(spec, module).items()}
    given = {}
    for name, expected in key.items():
        try:
            value = np.asarray(namespace[name], dtype=np.float64)
        except (KeyError, TypeError, ValueError):
            continue
        if value.shape == expected.shape:
            given[name] = value
    grade = grade_student(rules, step_namespace(spec, module), key, given, GradingOptions())
    for name in quantities:
        result = grade.quantities[name]
        print(f"{name}: {result.status}" + (f". {describe_mistake(result.diagnosis, name)}" if result.diagnosis else ""))
    return float(sum(grade.quantities[name].score for name in quantities))


def key_quantities(spec) -> set[str]:
    """The answer key's quantity names for ``spec`` (as :func:`symbp.classroom.variants.answers`)."""
    from ..derivation import naming
    from ..derivation.naming import ParamName
    names = {"loss"} | {naming.DELTA.format(l=l) for l in range(1, len(spec.layers) + 1)}
    for name in spec.param_names:
        names |= {ParamName.parse(name).gradient, naming.UPDATED.format(param=name)}
    return names
