"""Grading: every student's answers against the class's key, with the mistake behind a wrong one.

``symbp grade CLASS SUBMISSIONS -o OUT``: CLASS is a folder ``symbp variants`` wrote (its
``answer_key.json`` and each student's spec under ``solutions/<id>/``); SUBMISSIONS a CSV in the
answer key's format or a folder of notebooks (:mod:`symbp.classroom.submissions` reads both).

Each quantity of the key (all its entries at once) gets a status, in back-propagation order
(:func:`symbp.classroom.rules_of_step.step_rules`):

* ``correct``: every entry within ``|answer - key| <= atol + rtol |key|``;
* ``carried_forward``: wrong, but what the correct rule gives from the student's own earlier
  answers (error-carried-forward credit, ``carried_forward_credit`` of its points);
* ``wrong``, with ``diagnosis`` the id of the first mistake of
  :data:`symbp.classroom.mistakes.MISTAKES` whose mutated rule, from the student's own earlier
  answers, gives the student's numbers (so mistakes stack; None when none does);
* ``missing``: no entry given.

A later rule reads the student's answer where one is given (a missing entry: the key's), so a
mistake is diagnosed where it first shows and what follows from it is carried forward.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .mistakes import MISTAKES, mutated
from .rules_of_step import LOSS, StepRule
from ..standalone_draws import first_mistake

CORRECT, CARRIED_FORWARD, WRONG, MISSING = "correct", "carried_forward", "wrong", "missing"


@dataclass(frozen=True)
class GradingOptions:
    """How answers are compared and scored (the defaults accept 4 significant digits)."""
    rtol: float = 1e-3
    atol: float = 1e-4
    carried_forward_credit: float = 1.0
    points: tuple = ()          # ((quantity or glob such as "dW*", points), ...): later ones win
    names: tuple = ()           # ((quantity as graded, as the key prints it), ...): --first-index 1

    def shown(self, quantity: str) -> str:
        """The quantity as the answer key names it (dW0 -> dW1 for a --first-index 1 class)."""
        return dict(self.names).get(quantity, quantity)

    def points_of(self, quantity: str) -> float:
        """The points of ``quantity``, its pattern matched against the key's name for it."""
        value, shown = 1.0, self.shown(quantity)
        for pattern, points in self.points:
            if fnmatch.fnmatchcase(shown, pattern):
                value = float(points)
        return value

    def close(self, answer: np.ndarray, expected: np.ndarray) -> bool:
        """Every entry within tolerance (a missing or non-finite entry never is)."""
        if answer is None or np.shape(answer) != np.shape(expected):
            return False
        with np.errstate(invalid="ignore"):
            return bool(np.all(np.abs(answer - expected) <= self.atol + self.rtol * np.abs(expected)))


@dataclass
class QuantityGrade:
    status: str
    score: float
    max_score: float
    diagnosis: Optional[str] = None

    def to_json(self) -> dict:
        return {"status": self.status, "score": self.score, "max_score": self.max_score,
                "diagnosis": self.diagnosis}


@dataclass
class StudentGrade:
    quantities: dict[str, QuantityGrade] = field(default_factory=dict)
    error: Optional[str] = None     # bad input for this student (graded as all missing)

    @property
    def score(self) -> float:
        return float(sum(q.score for q in self.quantities.values()))

    @property
    def max_score(self) -> float:
        return float(sum(q.max_score for q in self.quantities.values()))

    def renamed(self, names: dict[str, str]) -> "StudentGrade":
        """The same grade with each quantity under ``names``' name for it (the key's names)."""
        return StudentGrade({names.get(q, q): g for q, g in self.quantities.items()}, self.error)

    def to_json(self) -> dict:
        out = {"score": self.score, "max_score": self.max_score,
               "quantities": {name: q.to_json() for name, q in self.quantities.items()}}
        if self.error is not None:
            out["error"] = self.error
        return out


def diagnose(rule: StepRule, answer: np.ndarray, expected: np.ndarray, namespace: dict,
             options: GradingOptions) -> Optional[str]:
    """The first mistake whose mutated rule, from ``namespace`` (the student's own earlier
    answers), gives ``answer`` while differing from the key (:func:`symbp.standalone_draws.first_mistake`);
    None when none does."""
    candidates = ((mistake_id, changed.evaluate(namespace)) for mistake_id in MISTAKES
                  if (changed := mutated(mistake_id, rule)) is not None)
    return first_mistake(candidates, answer, expected, options.close)


def grade_quantity(rule: StepRule, answer: Optional[np.ndarray], expected: np.ndarray, namespace: dict,
                   options: GradingOptions) -> QuantityGrade:
    """One quantity's status, score and diagnosis (see the module docstring)."""
    points = options.points_of(rule.quantity)
    if answer is None or np.all(np.isnan(answer)):
        return QuantityGrade(MISSING, 0.0, points)
    if options.close(answer, expected):
        return QuantityGrade(CORRECT, points, points)
    if rule.kind != LOSS:
        from_own = rule.evaluate(namespace)
        if from_own is not None and options.close(answer, from_own):
            return QuantityGrade(CARRIED_FORWARD, points * options.carried_forward_credit, points)
        return QuantityGrade(WRONG, 0.0, points, diagnose(rule, answer, expected, namespace, options))
    return QuantityGrade(WRONG, 0.0, points)


def grade_student(rules: list[StepRule], namespace: dict, key: dict[str, np.ndarray],
                  answers: dict[str, np.ndarray], options: GradingOptions) -> StudentGrade:
    """Every quantity in back-propagation order; each answer (missing entries: the key's)
    joins the namespace the later rules read."""
    namespace = dict(namespace)
    grade = StudentGrade()
    for rule in rules:
        expected = key[rule.quantity]
        answer = answers.get(rule.quantity)
        grade.quantities[rule.quantity] = grade_quantity(rule, answer, expected, namespace, options)
        namespace[rule.quantity] = expected if answer is None else np.where(np.isnan(answer), expected, answer)
    return grade


def missing_grade(rules: list[StepRule], options: GradingOptions, error: str) -> StudentGrade:
    """A student whose input could not be read: every quantity missing, and why."""
    return StudentGrade({r.quantity: QuantityGrade(MISSING, 0.0, options.points_of(r.quantity)) for r in rules},
                        error)


def describe_mistake(mistake_id: str, quantity: str) -> str:
    """The feedback sentence for a diagnosed mistake."""
    mistake = MISTAKES[mistake_id]
    return (f"Likely mistake `{mistake.id}`: {mistake.description}. The rule to use: "
            f"`{mistake.rule}`. It first shows in `{quantity}`.")
