"""Grading: each catalogued mistake injected into otherwise correct answers is named where it
first shows, what follows from it is carried forward, random numbers get no diagnosis."""

import numpy as np
import pytest

from symbp.classroom.grading import GradingOptions, grade_student
from symbp.classroom.mistakes import MISTAKES, mistake_values
from symbp.classroom.rules_of_step import step_namespace, step_rules
from symbp.classroom.variants import answers
from symbp.emit.codegen import derive_spec
from symbp.spec import dense, network
from symbp.spec.model import load_spec
from symbp.witnesses.module import spec_module

X3 = [[0.5, -0.3, 0.9], [0.2, 0.8, -0.4], [-0.7, 0.1, 0.6], [0.3, -0.6, -0.2]]

#: several depths, activations, losses, optimizers and batch sizes
NETWORKS = {
    "seed_B1": lambda: load_spec(None),
    "softmax_ce_B4": lambda: network(
        "ce4", x=X3, y=[[0, 1, 0], [1, 0, 0], [0, 0, 1], [0, 1, 0]],
        layers=[dense(3, "tanh", weights=[[0.5, -0.2, 0.3], [0.1, 0.4, -0.6], [-0.3, 0.2, 0.7]],
                      bias=[0.1, -0.1, 0.2]),
                dense(3, "softmax", weights=[[0.4, -0.5, 0.2], [-0.3, 0.6, 0.1], [0.2, 0.3, -0.4]],
                      bias=[0.0, 0.1, -0.1])],
        loss="categorical_crossentropy", optimizer={"name": "sgd", "learning_rate": 0.1}, batch_size=4),
    "sigmoid_mse_3layers_B3": lambda: network(
        "mse3", x=X3[:3], y=[[0.3, -0.2], [-0.5, 0.4], [0.1, 0.6]],
        layers=[dense(3, "sigmoid", weights=[[0.5, -0.2, 0.3], [0.1, 0.4, -0.6], [-0.3, 0.2, 0.7]],
                      bias=[0.1, -0.1, 0.2]),
                dense(3, "tanh", weights=[[0.4, -0.5, 0.2], [-0.3, 0.6, 0.1], [0.2, 0.3, -0.4]],
                      bias=[0.0, 0.1, -0.1]),
                dense(2, "sigmoid", weights=[[0.3, -0.4], [0.5, 0.2], [-0.6, 0.1]], bias=[0.05, -0.05])],
        loss="mean_squared_error", optimizer={"name": "sgd", "learning_rate": 0.5}, batch_size=3),
    "softmax_mse_adam_B2": lambda: network(
        "smx", x=X3[:2], y=[[0, 1, 0], [1, 0, 0]],
        layers=[dense(3, "relu", weights=[[0.5, -0.2, 0.3], [0.1, 0.4, -0.6], [-0.3, 0.2, 0.7]],
                      bias=[0.1, 0.2, 0.3]),
                dense(3, "softmax", weights=[[0.4, -0.5, 0.2], [-0.3, 0.6, 0.1], [0.2, 0.3, -0.4]],
                      bias=[0.0, 0.1, -0.1])],
        loss="mean_squared_error", optimizer={"name": "adam", "learning_rate": 0.01}, batch_size=2),
}


class Class:
    """One network: its rules, the step's numbers and the answer key."""

    def __init__(self, spec):
        self.spec = spec
        self.module = spec_module(spec)
        self.rules = step_rules(derive_spec(spec))
        self.namespace = step_namespace(spec, self.module)
        self.key = {k: np.asarray(v, dtype=np.float64) for k, v in answers(spec, self.module).items()}

    def student_with(self, quantity: str, value: np.ndarray) -> dict:
        """Answers right everywhere except ``quantity``; everything after it follows the correct
        rules from the student's own numbers (error carried forward)."""
        scope = dict(self.namespace)
        scope.update(self.key)
        out = {}
        for rule in self.rules:
            if rule.quantity == quantity:
                out[rule.quantity] = value
            elif quantity in out and rule.kind != "loss":
                out[rule.quantity] = rule.evaluate(scope)
            else:
                out[rule.quantity] = self.key[rule.quantity]
            scope[rule.quantity] = out[rule.quantity]
        return out


@pytest.fixture(scope="module", params=sorted(NETWORKS))
def klass(request):
    return Class(NETWORKS[request.param]())


def _order(klass):
    return [rule.quantity for rule in klass.rules]


def test_correct_rules_reproduce_the_key(klass):
    """The rules the grader evaluates, from the key's own numbers, give the key."""
    scope = dict(klass.namespace)
    scope.update(klass.key)
    for rule in klass.rules[1:]:
        np.testing.assert_allclose(rule.evaluate(scope), klass.key[rule.quantity], rtol=1e-12, atol=1e-15)


def test_correct_answers_score_full(klass):
    grade = grade_student(klass.rules, klass.namespace, klass.key, dict(klass.key), GradingOptions())
    assert {q.status for q in grade.quantities.values()} == {"correct"}
    assert grade.score == grade.max_score == len(klass.rules)


def test_rounded_answers_are_correct(klass):
    rounded = {k: np.array([float(f"{v:.4g}") for v in np.ravel(a)]).reshape(np.shape(a))
               for k, a in klass.key.items()}
    grade = grade_student(klass.rules, klass.namespace, klass.key, rounded, GradingOptions())
    assert {q.status for q in grade.quantities.values()} == {"correct"}


def test_each_mistake_is_named_where_it_first_shows(klass):
    """Every mistake that changes an answer of this network (test_every_mistake_shows_in_some_network:
    each does in one of them), made at one quantity where it shows, is diagnosed there; all later
    quantities get full credit (right, or right from the student's own numbers)."""
    options = GradingOptions()
    order = _order(klass)
    for mistake in MISTAKES:
        shown = {q: v for q, v in mistake_values(klass.spec, mistake, klass.module).items()
                 if not options.close(v, klass.key[q])}
        if not shown:
            continue
        for first in shown:   # made at each quantity where it shows, the rest done right
            grade = grade_student(klass.rules, klass.namespace, klass.key,
                                  klass.student_with(first, shown[first]), options)
            got = grade.quantities[first]
            assert (got.status, got.diagnosis) == ("wrong", mistake), (mistake, first)
            after = order[order.index(first) + 1:]
            assert all(grade.quantities[q].score == grade.quantities[q].max_score for q in after), \
                (mistake, {q: grade.quantities[q].status for q in after})
            if first.startswith("delta"):
                assert any(grade.quantities[q].status == "carried_forward" for q in after), mistake


def test_every_mistake_shows_in_some_network():
    """Across the networks above, each catalogued mistake changes some answer (none is dead)."""
    seen = set()
    for build in NETWORKS.values():
        spec = build()
        module = spec_module(spec)
        seen |= {m for m in MISTAKES if mistake_values(spec, m, module)}
    assert seen == set(MISTAKES)


def test_random_numbers_get_no_diagnosis(klass):
    rng = np.random.default_rng(0)
    for quantity in _order(klass)[1:]:
        noise = rng.uniform(-3, 3, size=klass.key[quantity].shape)
        grade = grade_student(klass.rules, klass.namespace, klass.key,
                              klass.student_with(quantity, noise), GradingOptions())
        assert (grade.quantities[quantity].status, grade.quantities[quantity].diagnosis) == ("wrong", None)


def test_missing_answers_and_carried_forward_credit(klass):
    first_delta = _order(klass)[1]
    answers_ = klass.student_with(first_delta, klass.key[first_delta] * 2.5)
    answers_.pop("loss")
    grade = grade_student(klass.rules, klass.namespace, klass.key, answers_,
                          GradingOptions(carried_forward_credit=0.5, points=(("d*", 2.0),)))
    assert grade.quantities["loss"].status == "missing"
    carried = [q for q, g in grade.quantities.items() if g.status == "carried_forward"]
    assert carried
    for q in carried:
        g = grade.quantities[q]
        assert g.score == 0.5 * g.max_score
        assert g.max_score == (2.0 if q.startswith("d") else 1.0)
