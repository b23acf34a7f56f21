"""LMS exports of a CNN class (``symbp variants`` of a convolutional spec): a quantity of more
than two axes asked as the 2-D slices the sheet shows (``delta1[0,:,:,2]``: per sample and
channel; ``dW0[:,:,0,1]``: per input channel and filter), every student's numbers read back
from Moodle XML (numerical and cloze) and the Canvas zip and compared with the answer key."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest

from test_cnn_variants import cnn_spec, cnn_table
from test_lms_export import QTI, SUBQUESTION, cloze_answers
from symbp.classroom.lms import VERDICTS
from symbp.classroom.mistakes import MISTAKES, mistake_values
from symbp.classroom.variants import KEY_JSON, answers, draw_variants, write_variants
from symbp.spec import Spec
from symbp.spec.model import load_spec

SEED = 4


@pytest.fixture(scope="module")
def cnn_class(tmp_path_factory):
    """(spec, spec path, class folder, answer key): 2 CNN students drawn with SEED."""
    return drawn_class(cnn_spec(), tmp_path_factory.mktemp("cnn"))


def drawn_class(spec: Spec, folder):
    """(spec, spec path, class folder, answer key): 2 students of ``spec`` drawn with SEED in ``folder``."""
    spec_path = folder / "spec.toml"
    spec_path.write_text(spec.to_toml(), encoding="utf-8")
    write_variants(spec, 2, SEED, folder / "class", jobs=1)
    return spec, spec_path, folder / "class", json.loads((folder / "class" / KEY_JSON).read_text())


def sheet_entries(quantity: str, value) -> dict[str, float]:
    """{label: number} as the sheet shows the quantity, by plain loops: a feature map's or
    delta's matrix per (sample, channel) of rows x columns of positions, a kernel's per (input
    channel, filter) of offsets down x across; of a Conv1D, a map's per sample (positions x
    channels), a kernel's per filter (offsets x input channels); at most two axes as before."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return {quantity: float(array)}
    if array.ndim <= 2:
        array = array.reshape(1, -1) if array.ndim == 1 else array
        return {f"{quantity}[{r},{c}]": float(array[r, c]) for r in range(array.shape[0]) for c in range(array.shape[1])}
    out = {}
    if array.ndim == 3:   # Conv1D: a map or delta per sample (positions x channels), a kernel per filter
        for a in range(array.shape[0]):
            for b in range(array.shape[1]):
                for c in range(array.shape[2]):
                    if quantity.startswith(("a", "delta")):     # [sample, :, :][position, channel]
                        out[f"{quantity}[{a},:,:][{b},{c}]"] = float(array[a, b, c])
                    else:                                       # [:, :, filter][offset, input channel]
                        out[f"{quantity}[:,:,{c}][{a},{b}]"] = float(array[a, b, c])
        return out
    for a in range(array.shape[0]):
        for b in range(array.shape[1]):
            for c in range(array.shape[2]):
                for d in range(array.shape[3]):
                    if quantity.startswith(("a", "delta")):     # [sample, :, :, channel][row, column]
                        out[f"{quantity}[{a},:,:,{d}][{b},{c}]"] = float(array[a, b, c, d])
                    else:                                       # [:, :, input channel, filter][down, across]
                        out[f"{quantity}[:,:,{c},{d}][{a},{b}]"] = float(array[a, b, c, d])
    return out


def expected(key) -> dict[tuple[str, str], float]:
    return {(student, label): v for student, qs in key.items() for q, value in qs.items() if q not in VERDICTS
            for label, v in sheet_entries(q, value).items()}


def moodle_numerical(path) -> dict[tuple[str, str], ET.Element]:
    """{(student, label): numerical question} of a Moodle XML export."""
    return {tuple(question.find("name/text").text.split(" ")): question
            for question in ET.parse(path).getroot().findall("question[@type='numerical']")}


def numerical_numbers(path) -> dict[tuple[str, str], float]:
    """{(student, label): the right answer} of a Moodle numerical export."""
    return {name: float(question.find("answer").find("text").text) for name, question in moodle_numerical(path).items()}


def cloze_numbers(path) -> dict[tuple[str, str], float]:
    """{(student, label): the right answer of its subquestion} of a Moodle cloze export."""
    found = {}
    for question in ET.parse(path).getroot().findall("question[@type='cloze']"):
        student, text = question.find("name/text").text.split(" ")[0], question.find("questiontext/text").text
        labels = re.findall(r"<code>([^<]*)</code> = \{", text)
        for label, (_, body) in zip(labels, SUBQUESTION.findall(text), strict=True):
            found[(student, label)] = cloze_answers(body)[0][1]
    return found


def canvas_numbers(path, students) -> dict[tuple[str, str], float]:
    """{(student, label): the right answer} of a Canvas QTI zip, each item's ident unique."""
    archive, found = zipfile.ZipFile(path), {}
    for student in students:
        root = ET.fromstring(archive.read(f"{student}/{student}.xml"))
        items = root.findall(f"{QTI}assessment/{QTI}section/{QTI}item")
        assert len({item.get("ident") for item in items}) == len(items)
        for item in items:
            name, label = item.get("title").split(" ")
            found[(name, label)] = float(item.find(f".//{QTI}varequal").text)
    return found


def test_cnn_key_has_quantities_of_four_axes(cnn_class):
    _, _, _, key = cnn_class
    shapes = {q: np.shape(v) for q, v in key["student_01"].items() if q not in VERDICTS}
    assert len(shapes["a1"]) == len(shapes["delta1"]) == len(shapes["dW0"]) == 4


def test_moodle_numerical_of_a_cnn_class_equals_the_key(cnn_class, tmp_path, symbp_cli):
    _, _, folder, key = cnn_class
    out = tmp_path / "quiz.xml"
    done = symbp_cli("export", "moodle", str(folder), "-o", str(out))
    assert done.returncode == 0, done.stderr
    wrong = 0
    for (student, label), question in moodle_numerical(out).items():
        _, *mistakes = question.findall("answer")
        text = question.find("questiontext/text").text
        if "[:,:," in label or ",:,:," in label:     # the student is told which matrix of the sheet
            matrix, cell = label[:label.rindex("[")], label[label.rindex("[") + 1:-1].split(",")
            assert f"matrix {matrix} (the matrix of that name on the sheet)" in text
            assert f"entry [{cell[0]}, {cell[1]}]" in text
        for answer in mistakes:
            assert answer.get("fraction") == "0"
            assert any(html.escape(m.description) in answer.find("feedback/text").text for m in MISTAKES.values())
            wrong += "[:,:," in label or ",:,:," in label
    assert numerical_numbers(out) == expected(key)
    assert wrong    # the mistake catalogue's distractors reach the slices of a CNN's quantities too


def test_moodle_cloze_of_a_cnn_class_one_block_per_slice(cnn_class, tmp_path, symbp_cli):
    _, _, folder, key = cnn_class
    out = tmp_path / "cloze.xml"
    done = symbp_cli("export", "moodle", str(folder), "-o", str(out), "--moodle-format", "cloze")
    assert done.returncode == 0, done.stderr
    for question in ET.parse(out).getroot().findall("question[@type='cloze']"):
        student = question.find("name/text").text.split(" ")[0]
        text = question.find("questiontext/text").text
        blocks = re.findall(r"<p>The matrix <code>([^<]*)</code> of your sheet:</p><ul>(.*?)</ul>", text)
        shape = np.shape(key[student]["delta1"])
        assert [m for m, _ in blocks if m.startswith("delta1[")] == \
            [f"delta1[{n},:,:,{c}]" for n in range(shape[0]) for c in range(shape[3])]
        for matrix, body in blocks:
            labels = re.findall(r"<code>([^<]*)</code> = \{", body)
            assert labels and all(label.startswith(matrix + "[") for label in labels)
    assert cloze_numbers(out) == expected(key)


def test_canvas_of_a_cnn_class_equals_the_key(cnn_class, tmp_path, symbp_cli):
    _, _, folder, key = cnn_class
    out = tmp_path / "quiz.zip"
    done = symbp_cli("export", "canvas", str(folder), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert canvas_numbers(out, key) == expected(key)


# ---------------------------------------------------------------- PrairieLearn
def run_hooks(question, calls: list[tuple[str, dict]]) -> list[dict]:
    """Each (hook, data) through server.py in one fresh Python where symbp cannot be imported."""
    code = ("import json, sys; sys.modules['symbp'] = None; sys.path.insert(0, sys.argv[1]); import server; "
            "calls = json.loads(sys.stdin.read()); out = []\n"
            "for hook, data in calls:\n    getattr(server, hook)(data); out.append(data)\n"
            "print(json.dumps(out))")
    done = subprocess.run([sys.executable, "-c", code, str(question)], input=json.dumps(calls),
                          capture_output=True, text=True, cwd=question.parent, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def reassembled(parts: dict, quantity: str, value) -> np.ndarray:
    """The quantity from question parts named ``<q>_<index, : as x>`` (slices), by the sheet's slicing."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim <= 2:
        return np.asarray(plain(parts[quantity]), dtype=np.float64)
    out = np.full(array.shape, np.nan)
    for name, part in parts.items():
        if name.startswith(quantity + "_") and re.fullmatch(r"[0-9x_]+", name[len(quantity) + 1:]):
            index = tuple(slice(None) if i == "x" else int(i) for i in name[len(quantity) + 1:].split("_"))
            out[index] = plain(part)
    return out


def plain(value):
    return value["_value"] if isinstance(value, dict) else value


@pytest.fixture(scope="module")
def cnn_question(cnn_class, tmp_path_factory):
    """The question ``symbp export prairielearn CLASS --spec SPEC`` writes (its files, as the CLI writes them)."""
    from symbp.classroom.export import exported_files
    from symbp.io.files import write_all
    spec, spec_path, folder, key = cnn_class
    out = tmp_path_factory.mktemp("pl")
    write_all(exported_files("prairielearn", folder, out, spec=load_spec(spec_path)))
    return out / f"symbp_{spec.name}"


def test_prairielearn_cnn_question_one_matrix_input_per_slice(cnn_class, cnn_question):
    _, _, _, key = cnn_class
    page = (cnn_question / "question.html").read_text()
    delta1 = np.shape(key["student_01"]["delta1"])
    for n in range(delta1[0]):
        for c in range(delta1[3]):
            assert f'<pl-matrix-component-input answers-name="delta1_{n}_x_x_{c}" label="delta1[{n},:,:,{c}] ="' in page
    kernel = np.shape(key["student_01"]["dW0"])
    assert page.count('answers-name="dW0_x_x_') == kernel[2] * kernel[3]
    assert 'params-name="x_0_x_x_0"' in page and 'params-name="W0_x_x_0_1"' in page   # givens sliced too
    assert 'answers-name="delta1"' not in page and 'params-name="x"' not in page


def test_prairielearn_cnn_question_weighs_every_quantity_the_same(cnn_class, cnn_question):
    """A quantity shown in several slices (delta1 per sample and channel) weighs in the score as
    much as the loss, one input: its inputs' whole-number weights add up to the same total, as
    each quantity is one in symbp grade."""
    import re
    page = (cnn_question / "question.html").read_text()
    totals, inputs = {}, {}
    for name, weight in re.findall(r'answers-name="([^"]+)"[^>]*weight="(\d+)"', page):
        quantity = name.split("_")[0]
        totals[quantity] = totals.get(quantity, 0) + int(weight)
        inputs[quantity] = inputs.get(quantity, 0) + 1
    assert {"loss", "delta1", "dW0"} <= set(totals) and inputs["loss"] == 1 < inputs["delta1"]
    assert len(set(totals.values())) == 1, totals


#: the CNN of cnn_table, as the generated module's docstring sums it up
CNN_SUMMARY = "5x5x1 -> Conv2D relu (4x4x2) -> MaxPooling2D linear (2x2x2) -> Flatten linear (8) -> Dense softmax (3)"


def test_prairielearn_names_a_cnn_by_its_layers_and_shapes(cnn_class, cnn_question, tmp_path, symbp_cli):
    """The question and the message refusing a --spec of another network describe a CNN by its
    layers and shapes (its widths, channels, would say 1-2-2-8-3); a CNN of other shapes but the
    same widths (1x1 kernels) is refused too."""
    spec, _, folder, _ = cnn_class
    assert f"Network {html.escape(CNN_SUMMARY)};" in (cnn_question / "question.html").read_text()
    dense = load_spec().to_dict()
    other = {"dense": {**dense, "name": spec.name}, "1x1": cnn_table()}
    other["1x1"]["layers"][0]["kernel_size"] = 1
    given = {"dense": "4 - 3 - 3 - 4", "1x1": CNN_SUMMARY.replace("(4x4x2)", "(5x5x2)")}
    for case, table in other.items():
        path = tmp_path / f"{case}.toml"
        path.write_text(Spec.from_dict(table).to_toml(), encoding="utf-8")
        done = symbp_cli("export", "prairielearn", str(folder), "-o", str(tmp_path / case), "--spec", str(path))
        assert done.returncode == 2 and not (tmp_path / case).exists()
        assert (f"--spec is 'tiny_cnn' ({given[case]}), the class is 'tiny_cnn' ({CNN_SUMMARY}): "
                "give the spec the class was drawn from") in done.stderr


def test_prairielearn_generate_reproduces_each_cnn_students_key(cnn_class, cnn_question):
    """variant_seed = the class's seed: student_01; other seeds: the first student symbp
    variants draws from them (ties in max pooling and relu kinks redrawn as symbp redraws)."""
    spec, _, _, key = cnn_class
    seeds = (SEED, 1, 6, 11)
    results = run_hooks(cnn_question, [("generate", {"variant_seed": s, "params": {}, "correct_answers": {}})
                                       for s in seeds])
    expected_keys = [key["student_01"]] + [answers(draw_variants(spec, 1, s)[0]) for s in seeds[1:]]
    for data, expected_key in zip(results, expected_keys):
        for q, value in expected_key.items():
            if q in VERDICTS:
                continue
            got = reassembled(data["correct_answers"], q, value)
            np.testing.assert_allclose(got, np.asarray(value, dtype=np.float64), rtol=1e-12, atol=1e-15, err_msg=q)
    assert len({json.dumps(d["correct_answers"]["loss"]) for d in results}) == len(seeds)


def test_prairielearn_grade_names_a_cnn_mistake_on_its_slices(cnn_class, cnn_question):
    """A submission with a catalogued mistake made in a CNN quantity (its slices): grade names it
    on every slice not fully right; noise gets the plain feedback."""
    spec, _, _, key = cnn_class
    data = run_hooks(cnn_question, [("generate", {"variant_seed": SEED, "params": {}, "correct_answers": {}})])[0]
    student = draw_variants(spec, 1, SEED)[0]
    made = {m: mistake_values(student, m) for m in MISTAKES}
    where = "delta1"
    mistake = next(m for m in MISTAKES if where in made[m] and not np.allclose(made[m][where], key["student_01"][where]))
    wrong = np.asarray(made[mistake][where])
    submitted = dict(data["correct_answers"])
    scores = {name: {"score": 1.0} for name in submitted}
    for name in [n for n in submitted if n.startswith(where + "_")]:
        index = tuple(slice(None) if i == "x" else int(i) for i in name[len(where) + 1:].split("_"))
        submitted[name] = {"_type": "ndarray", "_value": wrong[index].tolist(), "_dtype": "float64"}
        right = np.asarray(plain(data["correct_answers"][name]))
        scores[name] = {"score": float(np.mean(np.abs(wrong[index] - right) <= 5e-4 + 1e-3 * np.abs(right)))}
    noisy = dict(submitted)
    noisy["dW0_x_x_0_0"] = {"_type": "ndarray", "_dtype": "float64",
                            "_value": (np.asarray(plain(data["correct_answers"]["dW0_x_x_0_0"])) + 0.37).tolist()}
    graded, plain_graded = run_hooks(cnn_question, [
        ("grade", {**data, "submitted_answers": submitted, "partial_scores": scores, "feedback": {}}),
        ("grade", {**data, "submitted_answers": noisy, "partial_scores": {**scores, "dW0_x_x_0_0": {"score": 0.0}},
                   "feedback": {}})])
    off = [name for name, s in scores.items() if s["score"] < 1]
    assert off and sorted(graded["feedback"]) == sorted(off)
    named = {text.split("`")[1] for text in graded["feedback"].values()}
    assert len(named) == 1 and np.allclose(made[named.pop()][where], wrong), graded["feedback"]
    assert "Likely mistake" not in plain_graded["feedback"]["dW0_x_x_0_0"]


# ---------------------------------------------------------------- a Conv1D class in every format
def conv1d_spec() -> Spec:
    """A Conv1D twin of :func:`test_cnn_variants.cnn_spec`: sequences of 6 positions x 2
    channels, two relu filters of width 2, max pooling of 2, a softmax layer of 3 classes."""
    rng = np.random.default_rng(7)
    table = cnn_table()
    table.update(name="tiny_conv1d", data={"x": (rng.integers(0, 11, (3, 6, 2)) / 10).tolist(),
                                           "y": np.eye(3)[[0, 1, 2]].tolist()})
    table["layers"] = [{"type": "Conv1D", "filters": 2, "kernel_size": 2, "activation": "relu"},
                       {"type": "MaxPooling1D", "pool_size": 2}, {"type": "Flatten"},
                       {"units": 3, "activation": "softmax"}]
    return Spec.from_dict(table, "t")


@pytest.fixture(scope="module")
def conv1d_class(tmp_path_factory):
    """(spec, spec path, class folder, answer key): 2 Conv1D students drawn with SEED."""
    return drawn_class(conv1d_spec(), tmp_path_factory.mktemp("conv1d"))


#: format -> (its ``symbp export`` arguments after CLASS, its output's name, its reader)
CONV1D_EXPORTS = {
    "moodle-numerical": (["moodle"], [], "quiz.xml", lambda path, key: numerical_numbers(path)),
    "moodle-cloze": (["moodle"], ["--moodle-format", "cloze"], "cloze.xml", lambda path, key: cloze_numbers(path)),
    "canvas": (["canvas"], [], "quiz.zip", canvas_numbers),
}


@pytest.mark.parametrize("kind", list(CONV1D_EXPORTS))
def test_every_lms_export_of_a_conv1d_class_equals_the_key(kind, conv1d_class, tmp_path, symbp_cli):
    """A Conv1D class's quantities of three axes asked as the sheet's matrices: a map or delta
    per sample (``delta1[0,:,:]``, positions x channels), a kernel per filter (``dW0[:,:,1]``);
    every student's numbers read back equal the key."""
    _, _, folder, key = conv1d_class
    shapes = {q: np.shape(v) for q, v in key["student_01"].items() if q not in VERDICTS}
    assert len(shapes["a1"]) == len(shapes["delta1"]) == len(shapes["dW0"]) == 3
    command, options, name, read = CONV1D_EXPORTS[kind]
    done = symbp_cli("export", *command, str(folder), "-o", str(tmp_path / name), *options)
    assert done.returncode == 0, done.stderr
    found = read(tmp_path / name, key)
    assert found == expected(key)
    assert ("student_01", "delta1[1,:,:][4,1]") in found and ("student_02", "dW0[:,:,1][1,0]") in found


def test_prairielearn_of_a_conv1d_class_draws_and_grades_as_symbp(conv1d_class, tmp_path):
    """PrairieLearn's question of a Conv1D class: a matrix input per sample's map and per
    filter's kernel; generate(data) gives student_01's key for the class's seed and symbp's first
    student for other seeds (max-pooling ties and relu kinks redrawn alike); grade names a
    mistake made in delta1 on its slices."""
    from symbp.classroom.export import exported_files
    from symbp.io.files import write_all
    spec, spec_path, folder, key = conv1d_class
    write_all(exported_files("prairielearn", folder, tmp_path, spec=load_spec(spec_path)))
    question = tmp_path / f"symbp_{spec.name}"
    page = (question / "question.html").read_text()
    for n in range(np.shape(key["student_01"]["delta1"])[0]):
        assert f'<pl-matrix-component-input answers-name="delta1_{n}_x_x" label="delta1[{n},:,:] ="' in page
    assert 'answers-name="dW0_x_x_1"' in page and 'params-name="x_0_x_x"' in page and 'answers-name="a1"' not in page
    seeds = (SEED, 1, 6)
    results = run_hooks(question, [("generate", {"variant_seed": s, "params": {}, "correct_answers": {}})
                                   for s in seeds])
    firsts = [draw_variants(spec, 1, s)[0] for s in seeds[1:]]
    for data, expected_key in zip(results, [key["student_01"], *map(answers, firsts)]):
        for q, value in expected_key.items():
            if q not in VERDICTS:
                np.testing.assert_allclose(reassembled(data["correct_answers"], q, value),
                                           np.asarray(value, dtype=np.float64), rtol=1e-12, atol=1e-15, err_msg=q)

    data = results[0]
    made = {m: mistake_values(draw_variants(spec, 1, SEED)[0], m) for m in MISTAKES}
    mistake = next(m for m in MISTAKES if "delta1" in made[m]
                   and not np.allclose(made[m]["delta1"], key["student_01"]["delta1"]))
    wrong, submitted = np.asarray(made[mistake]["delta1"]), dict(data["correct_answers"])
    scores = {name: {"score": 1.0} for name in submitted}
    for n in range(wrong.shape[0]):
        submitted[f"delta1_{n}_x_x"] = {"_type": "ndarray", "_value": wrong[n].tolist(), "_dtype": "float64"}
        if not np.allclose(wrong[n], plain(data["correct_answers"][f"delta1_{n}_x_x"])):
            scores[f"delta1_{n}_x_x"] = {"score": 0.0}
    graded = run_hooks(question, [("grade", {**data, "submitted_answers": submitted, "partial_scores": scores,
                                             "feedback": {}})])[0]
    assert sorted(graded["feedback"]) == sorted(n for n, s in scores.items() if s["score"] < 1)
    named = {text.split("`")[1] for text in graded["feedback"].values()}
    assert len(named) == 1 and np.allclose(made[named.pop()]["delta1"], wrong), graded["feedback"]
