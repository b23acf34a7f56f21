"""Per-student variants: a class of 30, distinct, on the grid, not degenerate, Keras-verified,
reproducible from the seed, the same on one core as on all."""

import csv
import io
import json
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from symbp.errors import UnusableInput
from symbp.witnesses.module import load_module
from symbp.spec import Spec, SpecError, load_spec
from symbp.classroom.variants import KEY_CSV, KEY_JSON, SOLUTIONS, STUDENTS, draw_variants, render_variants

CLASS = 30
SEED = 7
OUT = Path("class")


@pytest.fixture(scope="module")
def seed_spec():
    return load_spec()


@pytest.fixture(scope="module")
def checked_class(seed_spec):
    """The class drawn from the built-in example, rendered and Keras-checked by two workers."""
    return render_variants(seed_spec, CLASS, SEED, OUT, jobs=2, check=True)


def on_grid(values, step, low, high):
    return all(Decimal(repr(float(v))) % Decimal(repr(step)) == 0 and low <= v <= high for v in np.ravel(values))


def test_a_class_of_30_distinct_variants_on_the_grid(seed_spec, checked_class):
    specs = list(checked_class.specs.values())
    assert len(specs) == CLASS
    drawn = {json.dumps([s.x, [l.weights for l in s.layers]]) for s in specs}
    assert len(drawn) == CLASS
    for spec in specs:
        assert on_grid(spec.x, 0.1, 0.0, 1.5)
        assert all(on_grid(layer.weights, 0.1, -1.5, 1.5) for layer in spec.layers)
        # what the [variants] table leaves alone stays the spec's own
        assert [l.bias for l in spec.layers] == [l.bias for l in seed_spec.layers]
        assert spec.y == seed_spec.y and spec.optimizer == seed_spec.optimizer


def test_no_saturated_unit_and_no_zero_gradient(checked_class):
    for student, spec in checked_class.specs.items():
        a = np.array(spec.x)
        for layer in spec.layers:
            z = a @ np.array(layer.weights) + np.array(layer.bias)
            assert np.max(np.abs(z)) <= 2.5, student  # max_abs_z of the example's [variants]
            a = np.tanh(z)
        for name, value in checked_class.key[student].items():
            if name.startswith(("delta", "dW", "db")):
                assert np.all(np.max(np.abs(np.atleast_2d(value)), axis=0) > 0), (student, name)


def test_every_answer_key_matches_keras(checked_class):
    assert len(checked_class.witness_diff) == CLASS
    assert checked_class.match
    assert max(checked_class.witness_diff.values()) <= 1e-9
    assert all(entry["framework_match"] is True and entry["framework"] == "keras" for entry in checked_class.key.values())


def test_answer_key_is_each_students_own_module(checked_class):
    key = json.loads(checked_class.files[OUT / KEY_JSON])
    rows = list(csv.DictReader(io.StringIO(checked_class.files[OUT / KEY_CSV])))
    assert [r["student"] for r in rows] == list(key) == list(checked_class.specs)
    for row, (student, spec) in zip(rows, checked_class.specs.items()):
        module = load_module(checked_class.files[OUT / SOLUTIONS / student / f"{spec.name}.py"], spec.name)
        params, losses = module.train()
        assert key[student]["loss"] == losses[0] == float(row["loss"])
        for name in spec.param_names:
            np.testing.assert_array_equal(key[student][f"{name}_updated"], params[name])
        assert float(row["W2_updated[2][3]"]) == key[student]["W2_updated"][2][3]
        assert Spec.from_dict(__import__("tomllib").loads(checked_class.files[OUT / SOLUTIONS / student / f"{spec.name}.toml"]),
                              student).x == spec.x


def test_serial_run_gives_the_same_files_and_the_seed_reproduces(seed_spec, checked_class):
    serial = render_variants(seed_spec, CLASS, SEED, OUT, jobs=1)
    keys = {OUT / KEY_JSON, OUT / KEY_CSV}
    assert {p: t for p, t in serial.files.items() if p not in keys} == {
        p: t for p, t in checked_class.files.items() if p not in keys}
    # the checked class's key ends each entry with Keras's verdict; the rest is the same
    verdicts = ("framework", "framework_max_abs_diff", "framework_match")
    assert serial.key == {s: {n: v for n, v in entry.items() if n not in verdicts}
                          for s, entry in checked_class.key.items()}
    other = draw_variants(seed_spec, 3, SEED + 1)
    assert [s.x for s in other] != [s.x for s in list(checked_class.specs.values())[:3]]


RELU_SOFTMAX = {
    "name": "relu_net", "data": {"x": [[0.5, -0.4, 0.3]], "y": [[0, 0, 1]]},
    "layers": [{"units": 4, "activation": "relu", "bias": [0.0, 0.0, 0.0, 0.0]},
               {"units": 3, "activation": "softmax"}],
    "loss": {"name": "categorical_crossentropy"}, "optimizer": {"name": "sgd", "learning_rate": 0.5},
    "training": {"batch_size": 1},
    "variants": {"vary": ["weights", "y"], "step": 0.5, "range": [-1, 1]},
}


def test_dead_relu_units_are_rejected_and_labels_stay_one_hot():
    spec = Spec.from_dict(RELU_SOFTMAX, "relu_net")
    drawn = draw_variants(spec, 20, 0)
    assert len({json.dumps([s.y, [l.weights for l in s.layers]]) for s in drawn}) == 20
    for variant in drawn:
        z = np.array(variant.x) @ np.array(variant.layers[0].weights)
        assert np.all(z > 0)  # one row: a unit with z <= 0 has no gradient
        y = np.array(variant.y)
        assert set(y.ravel()) <= {0.0, 1.0} and np.all(y.sum(axis=1) == 1)
        assert all(on_grid(l.weights, 0.5, -1, 1) for l in variant.layers)


def test_impossible_variants_are_a_clear_error():
    table = {**RELU_SOFTMAX, "variants": {"vary": ["x"], "range": [1, 2], "max_abs_z": 0.01}}
    with pytest.raises(UnusableInput, match="max_abs_z"):
        draw_variants(Spec.from_dict(table, "t"), 2, 0)


def test_variants_table_is_validated():
    table = {**RELU_SOFTMAX, "variants": {"vary": ["weights", "labels"], "step": 0, "range": [0.1, 0.15]}}
    with pytest.raises(SpecError) as err:
        Spec.from_dict(table, "t")
    assert "variants.vary: unknown item 'labels'" in str(err.value)
    assert "variants.step: must be positive" in str(err.value)


def test_cli_writes_the_class_checks_it_and_notebooks(tmp_path, symbp_cli):
    result = symbp_cli("variants", "--count", "3", "--seed", "1", "-o", str(tmp_path), "--notebook", "--check",
                       "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert "3 of 3 match" in result.stdout
    for student in ("student_01", "student_02", "student_03"):
        assert sorted(p.name for p in (tmp_path / STUDENTS / student).iterdir()) == [
            "cs4820_a7_student.ipynb", "cs4820_a7_student.tex"]
        for name in ("cs4820_a7.toml", "cs4820_a7.py", "cs4820_a7_solution.tex", "cs4820_a7_solution.ipynb"):
            assert (tmp_path / SOLUTIONS / student / name).is_file()
    key = json.loads((tmp_path / KEY_JSON).read_text())
    assert list(key) == ["student_01", "student_02", "student_03"]
    assert (tmp_path / KEY_CSV).read_text().startswith("student,loss,")


NUMBER = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?")


def precise_numbers(value):
    """The numbers of an answer that could only come from working it out (not a grid value)."""
    for number in np.ravel(value):
        if abs(number) >= 1e-4 and round(float(number), 3) != number:
            yield float(number)


def test_nothing_handed_to_students_holds_an_answer(seed_spec):
    """CLASS/students/<id>/ has the student's handout and notebook only; no number of the
    back-propagation part of the key (deltas, gradients, updated parameters) appears in them,
    to 6 significant digits in any printing. The forward pass and the loss are givens (the
    student's handout and notebook show them, as the seed assignment does), so an answer equal
    to one of its numbers (the output delta p - y where y is 0) is not a leak."""
    rendered = render_variants(seed_spec, 2, SEED, OUT, notebook=True, jobs=1)
    handed_out = {p: t for p, t in rendered.files.items() if p.parts[:2] == (OUT.name, STUDENTS)}
    assert {p.relative_to(OUT / STUDENTS).as_posix() for p in handed_out} == {
        f"{s}/cs4820_a7_student.{ext}" for s in rendered.specs for ext in ("tex", "ipynb")}
    assert all(p.parts[:2] in {(OUT.name, STUDENTS), (OUT.name, SOLUTIONS)} or p.parent == OUT
               for p in rendered.files)
    for path, text in handed_out.items():
        student = path.parent.name
        shown = [float(t) for t in NUMBER.findall(text)]
        spec = rendered.specs[student]
        module = load_module(rendered.files[OUT / SOLUTIONS / student / f"{spec.name}.py"], spec.name)
        zs, outputs = module._forward(spec.initial_params(), np.array(spec.x[:spec.batch_size]))
        given = [v for array in (*zs, *outputs) for v in np.ravel(array)]  # delta3 = p - y shares p's numbers
        answers = [v for name, value in rendered.key[student].items() if name != "loss"
                   for v in precise_numbers(value) if not any(abs(v - g) <= 1e-12 for g in given)]
        assert len(answers) > 20
        leaked = [a for a in answers if any(abs(a - t) <= 5e-6 * abs(a) for t in shown)]
        assert not leaked, (path, leaked[:5])
    # the same check finds the answers in the solutions: it can see a leak
    solution = rendered.files[OUT / SOLUTIONS / "student_01" / "cs4820_a7_solution.tex"]
    shown = [float(t) for t in NUMBER.findall(solution)]
    assert any(abs(a - t) <= 5e-6 * abs(a) for a in precise_numbers(rendered.key["student_01"]["dW0"]) for t in shown)


@pytest.mark.parametrize("example", ["cs4820_a7.toml", "cnn_6x6.toml"])
def test_the_key_s_quantities_are_named_as_symbp_names_them(example):
    """The key (standalone_draws.first_step: NumPy only, shared with PrairieLearn, so it spells
    the names out) names each quantity as symbp's naming does, in answer_names' order."""
    from symbp.classroom.variants import answer_names, answers
    spec = load_spec(Path(__file__).resolve().parents[1] / "symbp" / "examples" / example)
    assert list(answers(spec)) == answer_names(spec)
