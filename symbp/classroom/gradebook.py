"""A class graded: read CLASS and SUBMISSIONS, grade every student, render the outputs.

Outputs (rendered in memory, written all at once by :func:`symbp.io.files.write_all`):

* ``grades.json``: ``{"students": {id: {"score", "max_score", "quantities": {q: {"status",
  "score", "max_score", "diagnosis"}}, ["error"]}}, "problems": [...]}``;
* ``grades.csv``: student, score, max_score, then one column per quantity (its score); every
  cell that a spreadsheet would read as a formula is prefixed with ``'`` (OWASP's advice);
* ``feedback/<student>.md``: per quantity its status, and for a diagnosed mistake a sentence
  naming it, the rule to use and where it first shows; a note on input that could not be read
  quotes the student's text as a code span (:func:`markdown_literal`), never as Markdown;
* with ``gradescope``: ``results.json`` in Gradescope's format, for one submission (Markdown
  outputs, the note as in the feedback).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional

import numpy as np

from ..derivation import naming
from ..errors import UnusableInput, printable
from ..spec.model import Spec, SpecError, load_spec
from .grading import (CARRIED_FORWARD, GradingOptions, StudentGrade, describe_mistake, grade_student,
                      missing_grade)
from .rules_of_step import FEATURE_MAP, step_namespace, step_rules
from .submissions import Submission, read_csv, read_notebooks
from .variants import KEY_JSON, SOLUTIONS

GRADES_JSON, GRADES_CSV, FEEDBACK, GRADESCOPE = "grades.json", "grades.csv", "feedback", "results.json"
#: a spreadsheet reads a cell starting with one of these as a formula
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class ClassGrades:
    grades: dict[str, StudentGrade]
    quantities: list[str]
    problems: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- reading the class
def load_key(directory: Path) -> dict[str, dict]:
    path = Path(directory) / KEY_JSON
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnusableInput(f"{directory}: no {KEY_JSON} (a folder `symbp variants` wrote)") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise UnusableInput(f"{path}: not an answer key ({err})") from None
    if not isinstance(key, dict) or not key or not all(isinstance(v, dict) for v in key.values()):
        raise UnusableInput(f"{path}: not an answer key (expected student -> answers)")
    return key


def key_printed_names(key: dict, param_names) -> dict[str, str]:
    """The key's names where the class was written with ``--first-index 1`` (module name dW0 ->
    printed dW1, as the key files and the CSV columns name them), else {}. Unambiguous: such a
    key has no dW0 and has the last layer's dW<L>, which the module's names never reach."""
    printed = naming.printed_answer_names(param_names, 1)
    first = next(iter(key.values()))
    if all(name in first for name in printed) or not all(shown in first for shown in printed.values()):
        return {}
    return printed


def student_spec(directory: Path, student: str) -> Spec:
    """The student's spec, CLASS/solutions/<id>/<name>.toml (the one .toml there)."""
    found = sorted((Path(directory) / SOLUTIONS / student).glob("*.toml"))
    if len(found) != 1:
        raise UnusableInput(f"{Path(directory) / SOLUTIONS / student}: expected one spec (.toml), found {len(found)}")
    return load_spec(found[0])


def _class_model(directory: Path, key: dict):
    from ..emit.codegen import derive_spec
    from ..witnesses.module import spec_module
    first = student_spec(directory, next(iter(key)))
    return derive_spec(first), spec_module(first), first.fixed_params


# ---------------------------------------------------------------- grading
def grade_class(directory: Path, submissions: Path, options: GradingOptions, *,
                timeout: int = 60, jobs: Optional[int] = None) -> ClassGrades:
    """Grade every submission of SUBMISSIONS (a CSV file or a folder of notebooks) of CLASS."""
    directory, submissions = Path(directory), Path(submissions)
    key = load_key(directory)
    model, module, fixed = _class_model(directory, key)
    rules = step_rules(model, fixed)
    if submissions.is_dir():   # a notebook gives the forward pass: its feature maps are no answers
        rules = [rule for rule in rules if rule.kind != FEATURE_MAP]
    quantities = [rule.quantity for rule in rules]
    printed = key_printed_names(key, module.PARAM_NAMES)
    options = replace(options, names=tuple(printed.items()))
    module_name = {shown: name for name, shown in printed.items()}
    key = {student: {module_name.get(name, name): value for name, value in entry.items()}
           for student, entry in key.items()}
    first = next(iter(key.values()))
    missing = [q for q in quantities if q not in first]
    if missing:
        raise UnusableInput(f"{directory / KEY_JSON}: no {', '.join(missing)} (not this class's key)")
    shapes = {q: np.shape(first[q]) for q in quantities}
    if submissions.is_dir():
        read, problems = read_notebooks(submissions, shapes, set(key), timeout, jobs)
    elif submissions.is_file():
        try:
            read, problems = read_csv(submissions, shapes, set(key), printed)
        except ValueError as err:
            raise UnusableInput(str(err)) from None
    else:
        raise UnusableInput(f"{submissions}: no such file or folder")
    grades = {student: _grade_one(directory, student, key[student], read[student], rules, module, options)
              .renamed(printed) for student in key if student in read}
    absent = [student for student in key if student not in read]
    if absent:
        problems.append(f"{len(absent)} student(s) of the class without a submission: {', '.join(absent[:20])}"
                        + (" ..." if len(absent) > 20 else ""))
    return ClassGrades(grades, [printed.get(q, q) for q in quantities], problems)


def _grade_one(directory: Path, student: str, entry: dict, submission: Submission, rules, module,
               options: GradingOptions) -> StudentGrade:
    """One student; anything wrong with this student's files is this student's error only."""
    try:
        namespace = step_namespace(student_spec(directory, student), module)
        expected = {rule.quantity: np.asarray(entry[rule.quantity], dtype=np.float64) for rule in rules}
    except (UnusableInput, SpecError, KeyError, ValueError) as err:
        return missing_grade(rules, options, f"the class's files for {student}: {err}")
    if submission.error is not None and not submission.answers:
        return missing_grade(rules, options, submission.error)
    try:
        grade = grade_student(rules, namespace, expected, submission.answers, options)
    except Exception as err:   # a bug met on one student's numbers must not cost the others their grades
        return missing_grade(rules, options, f"internal error grading {student} ({type(err).__name__}): "
                                             "please report it")
    grade.error = submission.error
    return grade


# ---------------------------------------------------------------- outputs
def spreadsheet_safe(cell) -> str:
    """A cell as text a spreadsheet shows as text: one starting like a formula gets a ``'``."""
    text = str(cell)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def markdown_literal(text: str) -> str:
    """``text`` (a student's, or a message quoting it) as a Markdown code span: shown as written.

    In a code span CommonMark reads no emphasis, link, autolink, raw HTML or entity, and a GFM
    renderer links no bare address (escaping each special character with a backslash would
    still let one link ``https://...``). The fence is one backtick longer than the longest run
    in the text, so none inside closes it; the text is made one line of printable characters
    (:func:`symbp.errors.printable`, line breaks as spaces), so no blank line ends the span's
    paragraph; the space padding each side is one CommonMark strips."""
    line = printable(text).replace("\n", " ")
    fence = "`" * (1 + max((len(run) for run in re.findall("`+", line)), default=0))
    return f"{fence} {line} {fence}"


def error_note(error: str) -> str:
    """The feedback's line on this student's input that could not be read (it may quote the student)."""
    return f"Note: {markdown_literal(error)}"


def grades_json(result: ClassGrades) -> str:
    return json.dumps({"students": {s: g.to_json() for s, g in result.grades.items()},
                       "problems": result.problems}, indent=1) + "\n"


def grades_csv(result: ClassGrades) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "score", "max_score", *result.quantities])
    for student, grade in result.grades.items():
        row = [student, repr(grade.score), repr(grade.max_score),
               *(repr(grade.quantities[q].score) for q in result.quantities)]
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return buffer.getvalue()


STATUS_WORDS = {"correct": "correct", "carried_forward": "wrong, but right from your own earlier answers "
                "(error carried forward)", "wrong": "wrong", "missing": "missing"}


def feedback_markdown(student: str, grade: StudentGrade) -> str:
    lines = [f"# Feedback for {student}", "", f"Score: {grade.score:g} of {grade.max_score:g}", ""]
    if grade.error:
        lines += [error_note(grade.error), ""]
    lines += ["| quantity | status | score |", "|---|---|---|"]
    lines += [f"| `{q}` | {STATUS_WORDS[g.status]} | {g.score:g} / {g.max_score:g} |"
              for q, g in grade.quantities.items()]
    diagnosed = [(q, g.diagnosis) for q, g in grade.quantities.items() if g.diagnosis]
    if diagnosed:
        lines += ["", "## What went wrong", ""]
        lines += [f"- `{q}`: {describe_mistake(mistake, q)}" for q, mistake in diagnosed]
    if any(g.status == CARRIED_FORWARD for g in grade.quantities.values()):
        lines += ["", "Quantities marked carried forward follow the right rule from an earlier "
                      "wrong answer of yours; they get credit."]
    return "\n".join(lines) + "\n"


def gradescope_results(student: str, grade: StudentGrade) -> str:
    """Gradescope's autograder results.json for one submission, its outputs Markdown (``md``)."""
    tests = [{"name": q, "score": g.score, "max_score": g.max_score, "visibility": "visible",
              "output": STATUS_WORDS[g.status] + (f". {describe_mistake(g.diagnosis, q)}" if g.diagnosis else "")}
             for q, g in grade.quantities.items()]
    out = {"score": grade.score, "output_format": "md", "test_output_format": "md", "tests": tests}
    if grade.error:
        out["output"] = error_note(grade.error)
    return json.dumps(out, indent=1) + "\n"


def grade_files(result: ClassGrades, out: Path, gradescope: bool = False) -> dict[Path, str]:
    """Every output file, in memory."""
    out = Path(out)
    files = {out / GRADES_JSON: grades_json(result), out / GRADES_CSV: grades_csv(result)}
    files.update({out / FEEDBACK / f"{student}.md": feedback_markdown(student, grade)
                  for student, grade in result.grades.items()})
    if gradescope:
        if len(result.grades) != 1:
            raise UnusableInput(f"--gradescope grades one submission; SUBMISSIONS holds {len(result.grades)}")
        (student, grade), = result.grades.items()
        files[out / GRADESCOPE] = gradescope_results(student, grade)
    return files
