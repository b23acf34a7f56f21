"""LMS exports of a CNN class (``symbp variants`` of a convolutional spec): a quantity of more
than two axes asked as the 2-D slices the sheet shows (``delta1[0,:,:,2]``: per sample and
channel; ``dW0[:,:,0,1]``: per input channel and filter), every student's numbers read back
from Moodle XML (numerical and cloze) and the Canvas zip and compared with the answer key."""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest

from test_cnn_variants import cnn_spec
from test_lms_export import QTI, SUBQUESTION, cloze_answers
from symbp.classroom.lms import VERDICTS
from symbp.classroom.mistakes import MISTAKES
from symbp.classroom.variants import KEY_JSON, write_variants

SEED = 4


@pytest.fixture(scope="module")
def cnn_class(tmp_path_factory):
    """(spec, spec path, class folder, answer key): 2 CNN students drawn with SEED."""
    spec = cnn_spec()
    folder = tmp_path_factory.mktemp("cnn")
    spec_path = folder / "spec.toml"
    spec_path.write_text(spec.to_toml(), encoding="utf-8")
    write_variants(spec, 2, SEED, folder / "class", jobs=1)
    return spec, spec_path, folder / "class", json.loads((folder / "class" / KEY_JSON).read_text())


def sheet_entries(quantity: str, value) -> dict[str, float]:
    """{label: number} as the sheet shows the quantity, by plain loops: a feature map's or
    delta's matrix per (sample, channel) of rows x columns of positions, a kernel's per (input
    channel, filter) of offsets down x across; at most two axes as before."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 0:
        return {quantity: float(array)}
    if array.ndim <= 2:
        array = array.reshape(1, -1) if array.ndim == 1 else array
        return {f"{quantity}[{r},{c}]": float(array[r, c]) for r in range(array.shape[0]) for c in range(array.shape[1])}
    n_or_u, rows, cols, channels = array.shape
    out = {}
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


def test_cnn_key_has_quantities_of_four_axes(cnn_class):
    _, _, _, key = cnn_class
    shapes = {q: np.shape(v) for q, v in key["student_01"].items() if q not in VERDICTS}
    assert len(shapes["a1"]) == len(shapes["delta1"]) == len(shapes["dW0"]) == 4


def test_moodle_numerical_of_a_cnn_class_equals_the_key(cnn_class, tmp_path, symbp_cli):
    _, _, folder, key = cnn_class
    out = tmp_path / "quiz.xml"
    done = symbp_cli("export", "moodle", str(folder), "-o", str(out))
    assert done.returncode == 0, done.stderr
    found, wrong = {}, 0
    for question in ET.parse(out).getroot().findall("question[@type='numerical']"):
        student, label = question.find("name/text").text.split(" ")
        right, *mistakes = question.findall("answer")
        found[(student, label)] = float(right.find("text").text)
        text = question.find("questiontext/text").text
        if "[:,:," in label or ",:,:," in label:     # the student is told which matrix of the sheet
            matrix, cell = label[:label.rindex("[")], label[label.rindex("[") + 1:-1].split(",")
            assert f"matrix {matrix} (the matrix of that name on the sheet)" in text
            assert f"entry [{cell[0]}, {cell[1]}]" in text
        for answer in mistakes:
            assert answer.get("fraction") == "0"
            assert any(html.escape(m.description) in answer.find("feedback/text").text for m in MISTAKES.values())
            wrong += "[:,:," in label or ",:,:," in label
    assert found == expected(key)
    assert wrong    # the mistake catalogue's distractors reach the slices of a CNN's quantities too


def test_moodle_cloze_of_a_cnn_class_one_block_per_slice(cnn_class, tmp_path, symbp_cli):
    _, _, folder, key = cnn_class
    out = tmp_path / "cloze.xml"
    done = symbp_cli("export", "moodle", str(folder), "-o", str(out), "--moodle-format", "cloze")
    assert done.returncode == 0, done.stderr
    found = {}
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
        labels = re.findall(r"<code>([^<]*)</code> = \{", text)
        for label, (_, body) in zip(labels, SUBQUESTION.findall(text), strict=True):
            found[(student, label)] = cloze_answers(body)[0][1]
    assert found == expected(key)


def test_canvas_of_a_cnn_class_equals_the_key(cnn_class, tmp_path, symbp_cli):
    _, _, folder, key = cnn_class
    out = tmp_path / "quiz.zip"
    done = symbp_cli("export", "canvas", str(folder), "-o", str(out))
    assert done.returncode == 0, done.stderr
    archive = zipfile.ZipFile(out)
    found = {}
    for student in key:
        root = ET.fromstring(archive.read(f"{student}/{student}.xml"))
        items = root.findall(f"{QTI}assessment/{QTI}section/{QTI}item")
        assert len({item.get("ident") for item in items}) == len(items)
        for item in items:
            name, label = item.get("title").split(" ")
            found[(name, label)] = float(item.find(f".//{QTI}varequal").text)
    assert found == expected(key)
