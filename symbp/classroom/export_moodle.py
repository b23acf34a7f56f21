"""Moodle XML of a class: ``symbp export moodle CLASS -o quiz.xml``.

``<quiz>``: a category per assignment (``$course$/top/symbp/<name>``) and one below it per
student (``.../<name>/<student>``) holding that student's questions: one ``numerical`` question
per entry of each quantity, named ``<student> <quantity>[r,c]``, with the student's own number as
the ``fraction="100"`` answer and :func:`symbp.classroom.lms.tolerance` as its ``<tolerance>``
(Moodle accepts answer +- tolerance), then a ``fraction="0"`` answer per catalogued mistake
(:mod:`symbp.classroom.mistakes`) whose number differs, its feedback naming the mistake. Moodle imports such a file with Question bank > Import >
Moodle XML format; a random question per category then gives each student their own. Every text
is escaped by ElementTree, and the HTML in it by :func:`html.escape`: nothing from a spec
becomes markup.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET

from .lms import ClassFolder, Entry, describe, distinct_distractors, mistake_answers, tolerance


def _text(parent: ET.Element, tag: str, text: str, **attrs) -> ET.Element:
    node = ET.SubElement(parent, tag, attrs)
    ET.SubElement(node, "text").text = text
    return node


def category(quiz: ET.Element, path: str) -> None:
    _text(ET.SubElement(quiz, "question", type="category"), "category", path)


def question_html(title: str, student: str, entry: Entry, shape, rule: str | None = None) -> str:
    """The question's HTML: which student, which quantity and entry, the quantity's rule as
    ``\\(TeX\\)`` for the LMS's MathJax filter (every string escaped)."""
    rows, cols = (shape[0], shape[1]) if len(shape) == 2 else (1, shape[-1] if shape else 1)
    where = "" if entry.index is None else \
        f"entry [{entry.index[0]}, {entry.index[1]}] (row, column, from 0) of the {rows} x {cols} matrix of "
    return (f"<p>{html.escape(title)}: worked sheet of <b>{html.escape(student)}</b>.</p>"
            f"<p>Give {html.escape(where)}{html.escape(describe(entry.quantity))} "
            f"(<code>{html.escape(entry.label)}</code>), as your sheet computes it.</p>"
            + (f"<p>\\({html.escape(rule)}\\)</p>" if rule else ""))


def numerical_question(quiz: ET.Element, title: str, student: str, entry: Entry, shape, rule=None,
                       distractors: list[tuple[float, str]] = ()) -> None:
    question = ET.SubElement(quiz, "question", type="numerical")
    _text(question, "name", f"{student} {entry.label}")
    _text(question, "questiontext", question_html(title, student, entry, shape, rule), format="html")
    _text(question, "generalfeedback", "", format="html")
    ET.SubElement(question, "defaultgrade").text = "1"
    ET.SubElement(question, "penalty").text = "0.3333333"
    ET.SubElement(question, "hidden").text = "0"
    answer = _text(question, "answer", repr(entry.value), fraction="100", format="moodle_auto_format")
    ET.SubElement(answer, "tolerance").text = repr(tolerance(entry.value))
    _text(answer, "feedback", "Right.", format="html")
    for value, description in distinct_distractors(entry.value, list(distractors)):
        wrong = _text(question, "answer", repr(value), fraction="0", format="moodle_auto_format")
        ET.SubElement(wrong, "tolerance").text = repr(tolerance(value))
        _text(wrong, "feedback", html.escape(f"Not right: {description}."), format="html")
    for tag, value in (("unitgradingtype", "0"), ("unitpenalty", "0.1"), ("showunits", "3"), ("unitsleft", "0")):
        ET.SubElement(question, tag).text = value


def moodle_xml(klass: ClassFolder) -> str:
    """The class's questions as a Moodle XML file's text."""
    quiz = ET.Element("quiz")
    root = f"$course$/top/symbp/{klass.name}"
    category(quiz, root)
    for student, quantities in klass.students.items():
        category(quiz, f"{root}/{student}")
        mistakes = mistake_answers(klass.specs[student])
        for quantity in quantities.values():
            for entry in quantity.entries():
                numerical_question(quiz, klass.title, student, entry, quantity.shape,
                                   klass.rules.get(quantity.name), mistakes.get((entry.quantity, entry.index), []))
    ET.indent(quiz)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(quiz, encoding="unicode") + "\n"
