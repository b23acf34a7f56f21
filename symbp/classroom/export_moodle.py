"""Moodle XML of a class: ``symbp export moodle CLASS -o quiz.xml``.

``<quiz>``: a category per assignment (``$course$/top/symbp/<name>``) and one below it per
student (``.../<name>/<student>``) holding that student's questions: one ``numerical`` question
per entry of each quantity, named ``<student> <quantity>[r,c]`` (a CNN's quantity of more than two
axes: by the 2-D slice the sheet shows and the entry in it, ``<student> delta1[0,:,:,2][r,c]``), with the student's own number as
the ``fraction="100"`` answer and :func:`symbp.classroom.lms.tolerance` as its ``<tolerance>``
(Moodle accepts answer +- tolerance), then a ``fraction="0"`` answer per catalogued mistake
(:mod:`symbp.classroom.mistakes`) whose number differs, its feedback naming the mistake. Moodle imports such a file with Question bank > Import >
Moodle XML format; a random question per category then gives each student their own. Every text
is escaped by ElementTree, and the HTML in it by :func:`html.escape`: nothing from a spec
becomes markup; the spec's title is written by :func:`symbp.emit.render.literal_lms_html`, so it
becomes no math either (Moodle's TeX filter and MathJax leave it as text).

``--moodle-format cloze`` writes instead one ``cloze`` (embedded answers) question per student,
every entry (a CNN's: a block per 2-D slice of the sheet) a ``{1:NUMERICAL:=v:tol#feedback~%0%distractor:tol#feedback}`` subquestion: the
student's number, then each mistake's. Inside a subquestion Moodle reads ``}``, ``#``, ``~``,
``/``, ``"`` and ``\\`` as syntax, so each is escaped with a backslash (:func:`cloze_escape`);
outside one, braces become HTML entities, so no text can open a subquestion.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET

from ..emit.render import html_without_braces, literal_lms_html, plain_lms_label
from .lms import (ClassFolder, Entry, Quantity, describe, distinct_distractors, mistake_answers, slice_axes,
                  tolerance)

#: what Moodle's cloze syntax reads inside a subquestion: escaped with a backslash there
CLOZE_SPECIAL = '\\}#~/"'


def _text(parent: ET.Element, tag: str, text: str, **attrs) -> ET.Element:
    node = ET.SubElement(parent, tag, attrs)
    ET.SubElement(node, "text").text = text
    return node


def category(quiz: ET.Element, path: str) -> None:
    _text(ET.SubElement(quiz, "question", type="category"), "category", path)


def matrix_shape(quantity: str, shape) -> tuple[int, int]:
    """(rows, columns) of the matrices a quantity of ``shape`` shows as: itself, a vector as one
    row, an array of more than two axes as its 2-D slices (:func:`symbp.classroom.lms.slice_axes`)."""
    if len(shape) > 2:
        first, second = slice_axes(quantity)
        return shape[first], shape[second]
    return (shape[0], shape[1]) if len(shape) == 2 else (1, shape[-1] if shape else 1)


def question_html(title: str, student: str, entry: Entry, shape, rule: str | None = None) -> str:
    """The question's HTML: which student, which quantity and entry, the quantity's rule as
    ``\\(TeX\\)`` for the LMS's MathJax filter (every string escaped)."""
    rows, cols = matrix_shape(entry.quantity, shape)
    row, col = entry.cell or entry.index or (0, 0)
    sheet = f" {entry.matrix} (the matrix of that name on the sheet)" if entry.matrix else ""
    where = "" if entry.index is None else \
        f"entry [{row}, {col}] (row, column, from 0) of the {rows} x {cols} matrix{sheet} of "
    return (f"<p>{literal_lms_html(title)}: worked sheet of <b>{html.escape(student)}</b>.</p>"
            f"<p>Give {html.escape(where)}{html.escape(describe(entry.quantity))} "
            f"(<code>{html.escape(entry.label)}</code>), as your sheet computes it.</p>"
            + (f"<p>\\({html.escape(rule)}\\)</p>" if rule else ""))


def _question(quiz: ET.Element, kind: str, name: str, text: str, default_grade: str | None = None) -> ET.Element:
    """A ``<question type=kind>`` with its name, HTML text and Moodle's usual penalty (a third a try)."""
    question = ET.SubElement(quiz, "question", type=kind)
    _text(question, "name", name)
    _text(question, "questiontext", text, format="html")
    _text(question, "generalfeedback", "", format="html")
    if default_grade is not None:
        ET.SubElement(question, "defaultgrade").text = default_grade
    ET.SubElement(question, "penalty").text = "0.3333333"
    ET.SubElement(question, "hidden").text = "0"
    return question


def numerical_question(quiz: ET.Element, title: str, student: str, entry: Entry, shape, rule=None,
                       distractors: list[tuple[float, str]] = ()) -> None:
    question = _question(quiz, "numerical", f"{student} {entry.label}",
                         question_html(title, student, entry, shape, rule), default_grade="1")
    answer = _text(question, "answer", repr(entry.value), fraction="100", format="moodle_auto_format")
    ET.SubElement(answer, "tolerance").text = repr(tolerance(entry.value))
    _text(answer, "feedback", "Right.", format="html")
    for value, description in distinct_distractors(entry.value, list(distractors)):
        wrong = _text(question, "answer", repr(value), fraction="0", format="moodle_auto_format")
        ET.SubElement(wrong, "tolerance").text = repr(tolerance(value))
        _text(wrong, "feedback", html.escape(f"Not right: {description}."), format="html")
    for tag, value in (("unitgradingtype", "0"), ("unitpenalty", "0.1"), ("showunits", "3"), ("unitsleft", "0")):
        ET.SubElement(question, tag).text = value


# ---------------------------------------------------------------- cloze
def cloze_escape(text: str) -> str:
    """``text`` inside a cloze subquestion: each ``\\``, ``}``, ``#``, ``~``, ``/``, ``"`` behind a
    backslash (Moodle's rule for answers and feedback)."""
    return "".join("\\" + char if char in CLOZE_SPECIAL else char for char in text)


def _feedback(text: str) -> str:
    """A subquestion's feedback: HTML (quotes left as they are: their entities hold a ``#``), escaped for cloze."""
    return cloze_escape(html.escape(text, quote=False))


def cloze_numerical(entry: Entry, distractors: list[tuple[float, str]] = ()) -> str:
    """``{1:NUMERICAL:=v:tol#Right.~%0%d:tol#Not right: ...}``: the entry's number, then each
    mistake's whose tolerance overlaps no other (:func:`distinct_distractors`)."""
    answers = [f"={entry.value!r}:{tolerance(entry.value)!r}#{_feedback('Right.')}"]
    answers += [f"%0%{value!r}:{tolerance(value)!r}#{_feedback(f'Not right: {description}.')}"
                for value, description in distinct_distractors(entry.value, list(distractors))]
    return "{1:NUMERICAL:" + "~".join(answers) + "}"


def cloze_text(title: str, student: str, quantities: dict[str, Quantity], rules: dict, mistakes: dict) -> str:
    """The student's one question: per quantity what it is, its rule as ``\\(TeX\\)`` and a
    subquestion per entry (row, column from 0)."""
    parts = [f"<p>{literal_lms_html(title)}: worked sheet of <b>{html_without_braces(student)}</b>. Give each number "
             f"as your sheet computes it (entries [row, column], from 0).</p>"]
    for quantity in quantities.values():
        rule = rules.get(quantity.name)
        parts.append(f"<p>{html_without_braces(describe(quantity.name))} (<code>{html_without_braces(quantity.name)}</code>)"
                     + (f": \\({html_without_braces(rule)}\\)" if rule else "") + "</p>")
        for matrix, entries in quantity.matrices():
            parts.append(cloze_block(matrix if matrix != quantity.name else "", entries, mistakes))
    return "".join(parts)


def cloze_block(matrix: str, entries: list[Entry], mistakes: dict) -> str:
    """One matrix of the sheet (a 2-D slice ``delta1[0,:,:,2]`` of a CNN's quantity, headed by
    its name; a matrix of at most two axes unheaded): a subquestion per entry."""
    head = f"<p>The matrix <code>{html_without_braces(matrix)}</code> of your sheet:</p>" if matrix else ""
    return head + "<ul>" + "".join(
        f"<li><code>{html_without_braces(entry.label)}</code> = "
        f"{cloze_numerical(entry, mistakes.get((entry.quantity, entry.index), []))}</li>" for entry in entries) + "</ul>"


def cloze_question(quiz: ET.Element, klass: ClassFolder, student: str, quantities: dict[str, Quantity],
                   mistakes: dict) -> None:
    """The student's one cloze question, named by the student and the class's plain label."""
    _question(quiz, "cloze", f"{student} {plain_lms_label(klass.title, klass.name)}",
              cloze_text(klass.title, student, quantities, klass.rules, mistakes))


#: the shapes of a Moodle export: one numerical question per entry, or one cloze per student
MOODLE_FORMATS = ("numerical", "cloze")


def moodle_xml(klass: ClassFolder, moodle_format: str = "numerical") -> str:
    """The class's questions as a Moodle XML file's text (``moodle_format``: one of MOODLE_FORMATS)."""
    quiz = ET.Element("quiz")
    root = f"$course$/top/symbp/{klass.name}"
    category(quiz, root)
    for student, quantities in klass.students.items():
        category(quiz, f"{root}/{student}")
        mistakes = mistake_answers(klass.specs[student])
        if moodle_format == "cloze":
            cloze_question(quiz, klass, student, quantities, mistakes)
            continue
        for quantity in quantities.values():
            for entry in quantity.entries():
                numerical_question(quiz, klass.title, student, entry, quantity.shape,
                                   klass.rules.get(quantity.name), mistakes.get((entry.quantity, entry.index), []))
    ET.indent(quiz)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(quiz, encoding="unicode") + "\n"
