"""Variants, answer keys and grading for CNNs (issue 13).

* drawing: kernels, biases and images on the spec's grid; a draw whose max-pooling window has a
  tie (its maximum within kink_margin of a rival entry whose choice changes a number) or whose
  convolution has a pre-activation at a kink is drawn again, over every step of the training;
* the key: every number (feature and pooled maps, deltas, kernel/bias gradients, updates) is what
  each student's own generated module computes; multi-index CSV columns; Keras's verdict;
* grading: correct / carried_forward / wrong (with the mistake) / missing on a CNN class.

The oracles here are plain loops over windows, not the module's helpers.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from symbp.classroom import variants
from symbp.classroom.gradebook import grade_class
from symbp.classroom.grading import GradingOptions
from symbp.classroom.mistakes import MISTAKES, mistake_values
from symbp.classroom.variants import KEY_CSV, KEY_JSON, SOLUTIONS, answers, draw_variants, render_variants
from symbp.derivation.kinks import nearest_kink, nearest_tie
from symbp.spec import Spec
from symbp.witnesses.module import load_module, spec_module

MARGIN = 0.005   # below the grid's resolution of z (0.1 x 0.1): exact ties and zeros


def cnn_table(activation="relu", vary=("weights", "bias", "x", "y"), margin=MARGIN, epochs=2, pool="MaxPooling2D"):
    rng = np.random.default_rng(7)
    return {
        "name": "tiny_cnn", "seed": 0,
        "data": {"x": (rng.integers(0, 11, (3, 5, 5, 1)) / 10).tolist(), "y": np.eye(3)[[0, 1, 2]].tolist()},
        "layers": [{"type": "Conv2D", "filters": 2, "kernel_size": 2, "activation": activation},
                   {"type": pool, "pool_size": 2}, {"type": "Flatten"}, {"units": 3, "activation": "softmax"}],
        "loss": {"name": "categorical_crossentropy"}, "optimizer": {"name": "sgd", "learning_rate": 0.5},
        "training": {"batch_size": 2, "epochs": epochs},
        "variants": {"vary": list(vary), "kink_margin": margin, "x": {"range": [0.0, 1.0]},
                     "weights": {"range": [-0.5, 0.5]}}}


def cnn_spec(**changes) -> Spec:
    return Spec.from_dict(cnn_table(**changes), "t")


# ---------------------------------------------------------------- oracles (plain loops)
def steps(spec: Spec):
    """(params, x batch, y batch) before every step of the whole training, the module stepping."""
    module = spec_module(spec)
    params, state = spec.initial_params(), None
    x, y = np.array(spec.x), np.array(spec.y)
    for _ in range(spec.epochs):
        for start in range(0, len(x), spec.batch_size):
            xb, yb = x[start:start + spec.batch_size], y[start:start + spec.batch_size]
            yield module, params, xb, yb
            params, state = module.step(params, xb, yb, state)


def pool_windows(a: np.ndarray, size: int = 2):
    """((row, i, j, channel), [(entry, (r, s)) ...]) of 2x2 stride-2 valid windows, by loops."""
    n, h, w, c = a.shape
    for row, i, j, ch in itertools.product(range(n), range((h - size) // size + 1), range((w - size) // size + 1), range(c)):
        yield (row, i, j, ch), [(a[row, i * size + u, j * size + v, ch], (row, i * size + u, j * size + v, ch))
                               for u, v in itertools.product(range(size), range(size))]


def tied_windows(spec: Spec, margin: float) -> list:
    """Windows of the relu feature map whose maximum is within ``margin`` of a rival entry, one of
    the two live (z > 0), at any step of the training."""
    found = []
    for module, params, xb, yb in steps(spec):
        z1 = module._forward(params, xb)[0][0]
        a1 = np.maximum(z1, 0)
        for where, entries in pool_windows(a1):
            values = [value for value, _ in entries]
            top = int(np.argmax(values))
            for k, (value, at) in enumerate(entries):
                live = z1[entries[top][1]] > 0 or z1[at] > 0
                if k != top and live and values[top] - value < margin:
                    found.append((where, values))
    return found


def conv_pre_activations(spec: Spec) -> np.ndarray:
    return np.concatenate([module._forward(params, xb)[0][0].ravel() for module, params, xb, _ in steps(spec)])


# ---------------------------------------------------------------- drawing
def test_drawn_images_kernels_and_biases_lie_on_the_grid():
    for variant in draw_variants(cnn_spec(), 4, 2):
        params = variant.initial_params()
        for values, (low, high) in ((params["W0"], (-0.5, 0.5)), (np.array(variant.x), (0.0, 1.0)),
                                    (params["b0"], (-1.0, 1.0))):
            assert np.all(values >= low) and np.all(values <= high)
            np.testing.assert_array_equal(values, np.round(values, 1))
        assert np.shape(variant.x) == (3, 5, 5, 1) and params["W0"].shape == (2, 2, 1, 2)


def test_no_drawn_variant_has_a_tie_or_a_conv_unit_at_a_kink():
    """Over every step of the whole training (two epochs of batches of 2), by plain loops."""
    for variant in draw_variants(cnn_spec(), 6, 3):
        assert tied_windows(variant, MARGIN) == []
        assert np.min(np.abs(conv_pre_activations(variant))) >= MARGIN


def test_with_the_margin_off_draws_do_tie_and_reach_the_kink():
    """The checks above are not vacuous: without the margin the same grid gives ties and zeros."""
    drawn = draw_variants(cnn_spec(margin=0), 8, 3)
    assert any(tied_windows(variant, 1e-12) for variant in drawn)
    assert any(np.min(np.abs(conv_pre_activations(variant))) < 1e-12 for variant in drawn)


def forced_first_try(monkeypatch, forced: dict):
    """Grid.draw gives ``forced[call]`` on the first try's calls (in parameter order, then x)."""
    original, calls = variants.Grid.draw, itertools.count()
    def draw(grid, rng, shape):
        drawn = original(grid, rng, shape)
        n = next(calls)
        return np.broadcast_to(forced[n], shape).copy() if n in forced else drawn
    monkeypatch.setattr(variants.Grid, "draw", draw)


def first_try(spec: Spec, monkeypatch, forced: dict):
    """(the first try of the draws of ``spec``, that try's variant as drawn with the margin off)."""
    forced_first_try(monkeypatch, forced)
    first = next(variants._draws(spec, 0))
    forced_first_try(monkeypatch, forced)
    table = cnn_table(vary=("weights", "bias"), margin=0)
    table["data"] = {"x": spec.x, "y": spec.y}
    return first, next(variants._draws(Spec.from_dict(table, "t"), 0))


def test_a_forced_tie_is_drawn_again(monkeypatch):
    """W0 = 0 and b0 = 0.5: every feature map entry is 0.5, every window four equal live maxima."""
    spec = cnn_spec(vary=("weights", "bias"))
    first, unchecked = first_try(spec, monkeypatch, {0: 0.0, 1: 0.5})
    assert first is None   # drawn again
    assert unchecked is not None and np.all(unchecked.initial_params()["W0"] == 0)   # only the tie stood in its way
    hit = nearest_tie(unchecked, spec_module(unchecked))
    assert hit.gap == 0 and "MaxPooling2D" in hit.where and hit.largest == 0.5
    assert nearest_kink(unchecked, spec_module(unchecked)).distance > MARGIN


def test_a_conv_unit_at_a_kink_is_drawn_again(monkeypatch):
    """b0[0] = -(the first window times the first filter): that z is 0 (up to rounding); the
    kernels' entries are far from the grid, so no pooling window ties."""
    spec = cnn_spec(vary=("weights", "bias"))
    x = np.array(spec.x)
    kernel = np.array([[[[0.31, 0.13]], [[-0.17, 0.29]]], [[[0.23, -0.07]], [[0.11, 0.37]]]])
    forced = {0: kernel, 1: np.array([-np.sum(kernel[:, :, 0, 0] * x[0, 0:2, 0:2, 0]), 0.3])}
    first, unchecked = first_try(spec, monkeypatch, forced)
    assert first is None
    assert unchecked is not None
    hit = nearest_kink(unchecked, spec_module(unchecked))
    assert hit.distance < 1e-12 and hit.where.startswith("layer 0 (relu) z") and hit.epoch == 1 and hit.batch == 1
    assert nearest_tie(unchecked, spec_module(unchecked)).gap > MARGIN   # only the kink stood in its way


def test_one_replay_of_the_training_serves_both_searches_and_stops_where_one_comes_near(monkeypatch):
    """An accepted draw replays its training once (not once per search), every step of it; a draw
    whose first step holds a tie stops there."""
    from symbp import standalone_draws
    from symbp.classroom.variants import draw_rules
    replay, replays = standalone_draws.training_steps, []

    def counted(*args):
        replays.append(0)
        for step in replay(*args):
            replays[-1] += 1
            yield step
    monkeypatch.setattr(standalone_draws, "training_steps", counted)
    spec = cnn_spec(vary=("weights", "bias"))
    module, rules = spec_module(spec), draw_rules(spec)
    params, x, y = spec.initial_params(), np.array(spec.x), np.array(spec.y)
    assert rules.layer_kinks[0] and rules.pools   # both searches have something to look at
    assert not standalone_draws.near_a_kink(module, rules, params, x, y)
    assert replays == [spec.epochs * 2]   # batches of 2 and 1 rows
    replays.clear()
    tied = {**params, "W0": np.zeros_like(params["W0"]), "b0": np.full_like(params["b0"], 0.5)}
    assert standalone_draws.near_a_kink(module, rules, tied, x, y)
    assert replays == [1]


def test_average_pooling_and_input_ties_are_no_ties():
    """Average pooling selects nothing; max pooling straight on the images passes no gradient to a
    parameter, so equal pixels decide nothing."""
    assert nearest_tie(cnn_spec(pool="AveragePooling2D"), spec_module(cnn_spec(pool="AveragePooling2D"))) is None
    table = cnn_table()
    table["layers"] = [{"type": "MaxPooling2D", "pool_size": 2}, {"type": "Flatten"}, {"units": 3, "activation": "softmax"}]
    table["data"]["x"] = np.full((3, 4, 4, 1), 0.5).tolist()
    spec = Spec.from_dict(table, "t")
    assert nearest_tie(spec, spec_module(spec)).gap == np.inf


# ---------------------------------------------------------------- the key
def test_the_answer_key_is_each_students_own_module_trace():
    result = render_variants(cnn_spec(), 3, 5, Path("c"), jobs=1)
    key = json.loads(result.files[Path("c") / KEY_JSON])
    for student, entry in key.items():
        folder = Path("c") / SOLUTIONS / student
        spec = Spec.from_dict(tomllib.loads(result.files[folder / "tiny_cnn.toml"]), student)
        module = load_module(result.files[folder / "tiny_cnn.py"], f"tiny_cnn_{student}")
        params = spec.initial_params()
        trace = module.trace(params, np.array(spec.x[:2]), np.array(spec.y[:2]))
        expected = {"loss": trace["loss"], "a1": trace["a1"], "a2": trace["a2"],
                    **{f"delta{l}": trace[f"delta{l}"] for l in range(1, 5)},
                    **{f"d{name}": trace[f"d{name}"] for name in params},
                    **{f"{name}_updated": trace["updated"][name] for name in params}}
        assert set(entry) == set(expected)
        for name, value in expected.items():
            np.testing.assert_array_equal(np.array(entry[name]), value, err_msg=f"{student} {name}")
        assert np.shape(entry["a1"]) == (2, 4, 4, 2) and np.shape(entry["a2"]) == (2, 2, 2, 2)
    header = next(csv.reader(io.StringIO(result.files[Path("c") / KEY_CSV])))
    assert {"a1[1][3][2][0]", "a2[0][1][1][1]", "delta1[1][3][3][1]", "dW0[1][0][0][1]", "db0[1]",
            "W0_updated[0][1][0][0]"} <= set(header)


def test_variants_check_gives_keras_verdicts():
    result = render_variants(cnn_spec(), 2, 1, Path("c"), jobs=1, check=True)
    key = json.loads(result.files[Path("c") / KEY_JSON])
    assert result.match and all(entry["framework_match"] and entry["framework"] == "keras" for entry in key.values())
    assert all(entry["framework_max_abs_diff"] <= 1e-9 for entry in key.values())


def test_the_cli_writes_a_cnn_class(tmp_path, symbp_cli):
    path = tmp_path / "tiny_cnn.toml"
    path.write_text(cnn_spec().to_toml())
    made = symbp_cli("variants", str(path), "-n", "2", "-j", "1", "-o", str(tmp_path / "class"))
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "class" / "students" / "student_01" / "tiny_cnn_student.tex").exists()
    assert "a2" in json.loads((tmp_path / "class" / KEY_JSON).read_text())["student_02"]


def test_a_cnn_class_sheets_ask_the_entries_asked(tmp_path, symbp_cli):
    """``variants --ask`` on a CNN class (was an internal unpacking error, exit 2): each student's
    sheet asks the entries of the answer key's arrays of four axes (the kernel's update, a slice
    of delta1, the pooled map); a quantity the class has not exits 2 naming those it has."""
    from test_scaffolding import boxes
    result = render_variants(cnn_spec(), 2, 3, Path("c"), jobs=1, ask=("W0", "delta1[0,0:2,0:2,1]", "a2"))
    for student, entry in json.loads(result.files[Path("c") / KEY_JSON]).items():
        sheet = result.files[Path("c") / "students" / student / "tiny_cnn_student.tex"]
        assert boxes(sheet) == np.size(entry["W0_updated"]) + 2 * 2 + np.size(entry["a2"]) == 8 + 4 + 16
    path = tmp_path / "tiny_cnn.toml"
    path.write_text(cnn_spec().to_toml())
    made = symbp_cli("variants", str(path), "-n", "1", "-j", "1", "-o", str(tmp_path / "class"), "--ask", "W1")
    assert made.returncode == 2 and not (tmp_path / "class").exists()
    assert "--ask 'W1': the sheet has no 'W1' to ask" in made.stderr and "dW0, db0, W0, b0)" in made.stderr


def test_the_built_in_cnn_example_draws_a_checked_class(tmp_path, symbp_cli):
    """symbp/examples/cnn_6x6.toml carries the [variants] table a CNN needs (the default
    kink_margin of 0.05 rejects nearly every draw of a feature map): a class draws, and Keras agrees."""
    example = Path(__file__).resolve().parent.parent / "symbp" / "examples" / "cnn_6x6.toml"
    made = symbp_cli("variants", str(example), "-n", "3", "-j", "1", "--check",
                     "-o", str(tmp_path / "class"))
    assert made.returncode == 0, made.stderr
    assert "3 of 3 match" in made.stdout


# ---------------------------------------------------------------- grading
def max_pool(a: np.ndarray) -> np.ndarray:
    out = np.zeros((a.shape[0], a.shape[1] // 2, a.shape[2] // 2, a.shape[3]))
    for where, entries in pool_windows(a):
        out[where] = max(value for value, _ in entries)
    return out


def conv_gradients(delta1: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dW0[u, v, k, c] = sum over rows and positions of delta1 times the window entry, by loops."""
    dW = np.zeros((2, 2, x.shape[-1], delta1.shape[-1]))
    for n, p, q, c in np.ndindex(*delta1.shape):
        for u, v, k in np.ndindex(2, 2, x.shape[-1]):
            dW[u, v, k, c] += delta1[n, p, q, c] * x[n, p + u, q + v, k]
    return dW, delta1.sum(axis=(0, 1, 2))


def write_submissions(path: Path, rows: dict[str, dict]) -> None:
    header = ["student", *next(iter(rows.values()))]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for student, row in rows.items():
            writer.writerow([student, *(row[column] for column in header[1:])])


def flat_row(entry: dict) -> dict:
    """One student's answers as the key's CSV columns (``dW0[1][0][0][1]``)."""
    header, row = csv.reader(io.StringIO(variants.key_csv({"s": entry})))
    return dict(zip(header[1:], row[1:]))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A tanh CNN class of three: one right, one carrying a mistake forward, one with classic mistakes."""
    folder = tmp_path_factory.mktemp("cnn_class")
    spec = cnn_spec(activation="tanh", epochs=1)
    result = variants.write_variants(spec, 3, 4, folder / "class", jobs=1)
    key = {student: {k: np.array(v) for k, v in entry.items()} for student, entry in result.key.items()}
    given = {student: dict(entry) for student, entry in key.items()}

    second = given["student_02"]          # a wrong feature map, the pooled map from it
    second["a1"] = key["student_02"]["a1"] * 1.1
    second["a2"] = max_pool(second["a1"])
    second["delta1"] = key["student_02"]["delta1"] * 1.5   # a wrong delta1, then the right rules on it
    x = np.array(result.specs["student_02"].x[:2])
    second["dW0"], second["db0"] = conv_gradients(second["delta1"], x)
    params = result.specs["student_02"].initial_params()
    second["W0_updated"] = params["W0"] - 0.5 * second["dW0"]

    third_spec = result.specs["student_03"]
    third = given["student_03"]
    mistakes = {"delta1": "missing_activation_derivative", "W0_updated": "wrong_update_sign",
                "b0_updated": "learning_rate_missing", "delta4": "missing_batch_mean"}
    for quantity, mistake in mistakes.items():
        third[quantity] = mistake_values(third_spec, mistake)[quantity]
    rows = {student: flat_row({k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in entry.items()})
            for student, entry in given.items()}
    for column in rows["student_03"]:
        if column.startswith("dW3"):
            rows["student_03"][column] = ""   # not answered
    write_submissions(folder / "answers.csv", rows)
    return grade_class(folder / "class", folder / "answers.csv", GradingOptions(rtol=1e-9, atol=1e-12)), mistakes


def test_a_right_cnn_submission_is_correct_throughout(graded):
    grades, _ = graded
    first = grades.grades["student_01"]
    assert {q.status for q in first.quantities.values()} == {"correct"} and first.score == first.max_score
    assert grades.quantities[:3] == ["a1", "a2", "loss"] and "dW0" in grades.quantities


def test_cnn_mistakes_are_carried_forward(graded):
    statuses = {name: q.status for name, q in graded[0].grades["student_02"].quantities.items()}
    assert statuses["a1"] == "wrong" and statuses["a2"] == "carried_forward"
    assert statuses["delta1"] == "wrong"
    assert statuses["dW0"] == statuses["db0"] == statuses["W0_updated"] == "carried_forward"
    assert statuses["delta4"] == statuses["dW3"] == "correct"


def test_cnn_mistakes_are_diagnosed_and_missing_answers_named(graded):
    grades, mistakes = graded
    third = grades.grades["student_03"].quantities
    for quantity, mistake in mistakes.items():
        assert (third[quantity].status, third[quantity].diagnosis) == ("wrong", mistake), quantity
    assert third["dW3"].status == "missing"
    assert third["dW0"].status == "correct"


def test_every_mistake_on_a_cnn_gives_numbers_or_nothing():
    """No mistake of the catalogue crashes on a CNN's rules; a matrix-only one (a transposed
    operand) gives nothing for the convolution's quantities."""
    spec = draw_variants(cnn_spec(activation="tanh"), 1, 4)[0]
    module = spec_module(spec)
    for mistake in MISTAKES:
        values = mistake_values(spec, mistake, module)
        key = answers(spec, module)
        assert all(np.shape(v) == np.shape(key[q]) for q, v in values.items())
        if mistake == "transposed":
            assert not {"dW0", "db0", "delta1", "delta2"} & set(values)


def test_mistakes_pass_through_a_convolutions_kernel():
    """Two convolutions: g passed down through the second's updated kernel is diagnosable on delta1,
    and the first's delta gets the activation mistakes (tanh: g alone, f(z), f' at a)."""
    rng = np.random.default_rng(1)
    spec = Spec.from_dict({
        "name": "two_conv", "seed": 0,
        "data": {"x": rng.normal(size=(2, 5, 5, 1)).round(2).tolist(), "y": np.eye(3)[[0, 1]].tolist()},
        "layers": [{"type": "Conv2D", "filters": 2, "kernel_size": 2, "activation": "tanh"},
                   {"type": "Conv2D", "filters": 2, "kernel_size": 2, "activation": "tanh"},
                   {"type": "GlobalAveragePooling2D"}, {"units": 3, "activation": "softmax"}],
        "loss": {"name": "categorical_crossentropy"}, "optimizer": {"name": "sgd", "learning_rate": 0.5},
        "training": {"batch_size": 2, "epochs": 1}}, "t")
    module = spec_module(spec)
    assert "delta1" in mistake_values(spec, "updated_weights_used", module)
    for mistake in ("missing_activation_derivative", "activation_instead_of_derivative", "derivative_in_wrong_variable"):
        assert {"delta1", "delta2"} <= set(mistake_values(spec, mistake, module)), mistake
    assert {"db0", "db1"} <= set(mistake_values(spec, "bias_not_summed", module))


def test_check_names_a_max_pooling_tie_as_the_likely_why():
    """symbp check's "Why:" on a mismatch: an exact tie in a live max-pooling window (W0 = 0,
    b0 = 0.5: every feature map entry 0.5), when no value sits at a kink."""
    from symbp.witnesses.compare import kink_at_rounding
    params = cnn_spec().initial_params()
    params["W0"], params["b0"] = np.zeros_like(params["W0"]), np.full_like(params["b0"], 0.5)
    spec = dataclasses.replace(cnn_spec(), layers=cnn_spec().with_params(params))
    hit = kink_at_rounding(spec)
    assert hit.gap == 0 and "MaxPooling2D" in hit.describe() and "0.5 and 0.5" in hit.describe()
    assert kink_at_rounding(draw_variants(cnn_spec(), 1, 3)[0]) is None


def test_cnn_notebooks_are_graded_on_their_answers(tmp_path):
    """A notebook gives the forward pass (its feature maps): graded are the back-propagation's
    answers; the solution notebook is right throughout."""
    spec = cnn_spec(activation="tanh", epochs=1)
    variants.write_variants(spec, 1, 4, tmp_path / "class", jobs=1, notebook=True)
    (tmp_path / "in").mkdir()
    solution = tmp_path / "class" / SOLUTIONS / "student_01" / "tiny_cnn_solution.ipynb"
    (tmp_path / "in" / "student_01.ipynb").write_text(solution.read_text())
    grades = grade_class(tmp_path / "class", tmp_path / "in", GradingOptions(), jobs=1)
    assert grades.quantities[0] == "loss" and "a1" not in grades.quantities and "dW0" in grades.quantities
    assert {q.status for q in grades.grades["student_01"].quantities.values()} == {"correct"}
