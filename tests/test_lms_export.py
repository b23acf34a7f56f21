"""``symbp export moodle|canvas|prairielearn``: each export read back (XML parsed, the zip opened,
server.py run with a stub ``data``), every student's numbers compared with the answer key, and
the structure the LMS reads checked (Moodle XML, QTI 1.2, a PrairieLearn v3 question)."""

from __future__ import annotations

import html
import io
import json
import re
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from symbp.classroom.lms import ABSOLUTE, RELATIVE, VERDICTS as LMS_VERDICTS, tolerance
from symbp.classroom.mistakes import MISTAKES, mistake_values
from symbp.classroom.variants import KEY_JSON, answers, draw_variants, write_variants
from symbp.emit.render import MATHJAX_IGNORE_CLASSES
from symbp.spec.model import Spec, load_spec

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
SEED = 5
QTI = "{http://www.imsglobal.org/xsd/ims_qtiasiv1p2}"
MANIFEST = "{http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1}"
#: a relu network whose inputs and one-hot labels vary too, with sparse labels' cousin in the
#: built-in example: server.py's every drawing path (grids, labels, kinks) is exercised
RELU = {
    "name": "relu_net", "title": "relu " + HOSTILE,
    "data": {"x": [[0.5, -0.4, 0.3], [0.2, 0.1, -0.3]], "y": [[0, 0, 1], [1, 0, 0]]},
    "layers": [{"units": 4, "activation": "relu", "bias": [0.0, 0.0, 0.0, 0.0]},
               {"units": 3, "activation": "softmax"}],
    "loss": {"name": "categorical_crossentropy"}, "optimizer": {"name": "adam", "learning_rate": 0.01},
    "training": {"batch_size": 1, "epochs": 2},
    "variants": {"vary": ["weights", "x", "y"], "step": 0.5, "range": [-1, 1], "kink_margin": 0.1},
}


def hostile_example() -> Spec:
    data = load_spec().to_dict()
    data["title"] = HOSTILE
    return Spec.from_dict(data)


@pytest.fixture(scope="module", params=["example", "relu"])
def klass(request, tmp_path_factory):
    """(spec, class folder, answer key): 3 students drawn with SEED."""
    spec = hostile_example() if request.param == "example" else Spec.from_dict(RELU)
    folder = tmp_path_factory.mktemp(request.param)
    spec_path = folder / "spec.toml"
    spec_path.write_text(spec.to_toml(), encoding="utf-8")
    write_variants(spec, 3, SEED, folder / "class", jobs=1)
    key = json.loads((folder / "class" / KEY_JSON).read_text())
    return spec, spec_path, folder / "class", key


def entries(value):
    array = np.asarray(value, dtype=np.float64)
    array = array.reshape(1, -1) if array.ndim == 1 else array
    if array.ndim == 0:
        return {"": float(array)}
    return {f"[{r},{c}]": float(array[r, c]) for r in range(array.shape[0]) for c in range(array.shape[1])}


def expected_questions(key):
    """{(student, label): value} of every entry of every quantity."""
    return {(student, q + idx): v for student, qs in key.items() for q, value in qs.items()
            if q not in LMS_VERDICTS for idx, v in entries(value).items()}


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def assert_no_markup_from_the_spec(html_text: str):
    """symbp's own tags only, and no attribute but the class of the span around the title."""
    parser = Tags()
    parser.feed(html_text)
    assert {tag for tag, _ in parser.tags} <= {"p", "b", "code", "span"}
    assert [attrs for tag, attrs in parser.tags if attrs] == [{"class": MATHJAX_IGNORE_CLASSES}] * \
        sum(tag == "span" for tag, _ in parser.tags)


# ---------------------------------------------------------------- Moodle
def test_moodle_xml_has_every_students_numbers_with_tolerance(klass, tmp_path, symbp_cli):
    spec, _, folder, key = klass
    out = tmp_path / "quiz.xml"
    done = symbp_cli("export", "moodle", str(folder), "-o", str(out))
    assert done.returncode == 0, done.stderr
    quiz = ET.parse(out).getroot()
    assert quiz.tag == "quiz"
    categories = [q.find("category/text").text for q in quiz.findall("question[@type='category']")]
    assert categories == [f"$course$/top/symbp/{spec.name}"] + [f"$course$/top/symbp/{spec.name}/{s}" for s in key]
    found, distractors = {}, []
    for question in quiz.findall("question[@type='numerical']"):
        student, label = question.find("name/text").text.split(" ")
        answers_ = question.findall("answer")
        assert [a.get("fraction") for a in answers_][:1] == ["100"] and set(a.get("fraction") for a in answers_[1:]) <= {"0"}
        for wrong in answers_[1:]:     # a mistake's number, outside the right answer's tolerance, the mistake named
            distractor = float(wrong.find("text").text)
            assert abs(distractor - float(answers_[0].find("text").text)) > float(answers_[0].find("tolerance").text)
            assert any(html.escape(m.description) in wrong.find("feedback/text").text for m in MISTAKES.values())
            distractors.append((student, label, distractor))
        value, tol = float(answers_[0].find("text").text), float(answers_[0].find("tolerance").text)
        assert tol == pytest.approx(ABSOLUTE + RELATIVE * abs(value))
        assert question.find("questiontext").get("format") == "html"
        text = question.find("questiontext/text").text
        assert student in text and HOSTILE not in text
        assert_no_markup_from_the_spec(text)
        if label.startswith("dW"):     # the quantity's rule, as the worked solution states it
            assert f"\\(\\frac{{\\partial L}}{{\\partial W_{{{label[2]}}}}} = " in text
        found[(student, label)] = value
    assert found == expected_questions(key)   # every entry once, the key's own float
    assert distractors      # each checked against the mistake catalogue's own numbers for that student
    made = {s: [mistake_values(load_spec(folder / "solutions" / s / f"{spec.name}.toml"), m) for m in MISTAKES]
            for s in key}     # each mistake's numbers, once per student
    for student, label, distractor in distractors:
        quantity, index = (label.split("[") + [""])[:2]
        values = [np.ravel(np.asarray(numbers[quantity])) for numbers in made[student] if quantity in numbers]
        flat = int(index.rstrip("]").split(",")[0]) * (np.shape(key[student][quantity])[-1] if np.ndim(key[student][quantity]) == 2 else 0) \
            + int(index.rstrip("]").split(",")[1]) if index else 0
        assert any(v[flat] == distractor for v in values)


CLOZE_TITLE = 'cloze {1:NUMERICAL:=0:1000#all right} ~#/"\\ <b>x</b>'
SUBQUESTION = re.compile(r"\{(\d*):NUMERICAL:((?:\\.|[^\\}])*)\}")


def cloze_split(body: str, separator: str) -> list[str]:
    """``body`` split at each unescaped ``separator`` (a backslash escapes the next character)."""
    parts, current, chars = [], "", iter(body)
    for char in chars:
        if char == "\\":
            current += char + next(chars)
        elif char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


def cloze_unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def cloze_answers(body: str) -> list[tuple[float, float, float, str]]:
    """Moodle's reading of one NUMERICAL subquestion: (fraction, value, tolerance, feedback)."""
    out = []
    for answer in cloze_split(body, "~"):
        grade, feedback = (cloze_split(answer, "#") + [""])[:2]
        fraction, rest = (100.0, grade[1:]) if grade.startswith("=") else \
            (float(grade.split("%")[1]), grade.split("%", 2)[2])
        value, tol = rest.split(":")
        out.append((fraction, float(value), float(tol), html.unescape(cloze_unescape(feedback))))
    return out


def test_moodle_cloze_one_question_per_student_parsed_back(klass, tmp_path, symbp_cli):
    """--moodle-format cloze: one cloze question per student, every entry a NUMERICAL
    subquestion with the key's number and the mistakes' distractors; read back as Moodle reads
    it (escaped feedback, no subquestion opened by the title)."""
    import shutil
    spec, _, folder, key = klass
    hostile = tmp_path / "class"
    shutil.copytree(folder, hostile)
    for toml in hostile.glob("solutions/*/*.toml"):
        data = load_spec(toml).to_dict()
        data["title"] = CLOZE_TITLE
        toml.write_text(Spec.from_dict(data).to_toml(), encoding="utf-8")
    out = tmp_path / "cloze.xml"
    done = symbp_cli("export", "moodle", str(hostile), "-o", str(out), "--moodle-format", "cloze")
    assert done.returncode == 0, done.stderr
    quiz = ET.parse(out).getroot()
    questions = quiz.findall("question[@type='cloze']")
    assert [q.find("name/text").text.split(" ")[0] for q in questions] == list(key)
    assert not quiz.findall("question[@type='numerical']")
    found, feedback = {}, set()
    for question in questions:
        student = question.find("name/text").text.split(" ")[0]
        text = question.find("questiontext/text").text
        outside = SUBQUESTION.sub("", text)
        assert "{" not in outside and "}" not in outside     # the title opens no subquestion
        assert_no_markup_from_the_spec(outside.replace("<ul>", "").replace("</ul>", "").replace("<li>", "")
                                       .replace("</li>", ""))
        labels = re.findall(r"<code>([^<]*)</code> = \{", text)
        subquestions = SUBQUESTION.findall(text)
        assert len(labels) == len(subquestions)
        for label, (_, body) in zip(labels, subquestions):
            (fraction, value, tol, right), *wrong = cloze_answers(body)
            assert (fraction, right) == (100.0, "Right.") and tol == pytest.approx(tolerance(value))
            found[(student, label)] = value
            for fraction, distractor, tol, words in wrong:
                assert fraction == 0 and abs(distractor - value) > tolerance(value) + tol
                assert any(words == f"Not right: {m.description}." for m in MISTAKES.values()), words
                feedback.add(words)
    assert found == expected_questions(key)
    assert feedback      # distractors there, their feedback (with ' and / in it) read back whole
    assert any("/" in words or "'" in words for words in feedback)


def test_quantities_select_the_questions(klass, tmp_path, symbp_cli):
    _, _, folder, key = klass
    out = tmp_path / "quiz.xml"
    assert symbp_cli("export", "moodle", str(folder), "-o", str(out), "--quantities", "loss,dW1").returncode == 0
    names = {q.find("name/text").text.split(" ")[1].split("[")[0]
             for q in ET.parse(out).getroot().findall("question[@type='numerical']")}
    assert names == {"loss", "dW1"}
    bad = symbp_cli("export", "moodle", str(folder), "-o", str(tmp_path / "b.xml"), "--quantities", "dW9")
    assert bad.returncode == 2 and "dW9" in bad.stderr and "dW0" in bad.stderr
    assert not (tmp_path / "b.xml").exists()


# ---------------------------------------------------------------- Canvas (QTI 1.2)
def test_canvas_qti_zip_structure_and_numbers(klass, tmp_path, symbp_cli):
    _, _, folder, key = klass
    out = tmp_path / "quiz.zip"
    done = symbp_cli("export", "canvas", str(folder), "-o", str(out))
    assert done.returncode == 0, done.stderr
    archive = zipfile.ZipFile(out)
    manifest = ET.fromstring(archive.read("imsmanifest.xml"))
    assert manifest.tag == f"{MANIFEST}manifest"
    resources = manifest.findall(f"{MANIFEST}resources/{MANIFEST}resource")
    assert [r.get("identifier") for r in resources] == list(key)
    found = {}
    for resource in resources:
        assert resource.get("type") == "imsqti_xmlv1p2"
        href = resource.get("href")
        assert resource.find(f"{MANIFEST}file").get("href") == href
        root = ET.fromstring(archive.read(href))
        assert root.tag == f"{QTI}questestinterop"
        for item in root.findall(f"{QTI}assessment/{QTI}section/{QTI}item"):
            fields = {f.find(f"{QTI}fieldlabel").text: f.find(f"{QTI}fieldentry").text
                      for f in item.iter(f"{QTI}qtimetadatafield")}
            assert fields["question_type"] == "numerical_question"
            response = item.find(f"{QTI}presentation/{QTI}response_str")
            assert response.find(f"{QTI}render_fib").get("fibtype") == "Decimal"
            assert_no_markup_from_the_spec(item.find(f"{QTI}presentation/{QTI}material/{QTI}mattext").text)
            condition = item.find(f"{QTI}resprocessing/{QTI}respcondition")
            assert condition.find(f"{QTI}setvar").text == "100"
            value = float(condition.find(f".//{QTI}varequal").text)
            low, high = float(condition.find(f".//{QTI}vargte").text), float(condition.find(f".//{QTI}varlte").text)
            assert low < value < high and high - value == pytest.approx(tolerance(value))
            assert all(e.get("respident") == response.get("ident")
                       for e in condition.iter() if e.tag.endswith(("varequal", "vargte", "varlte")))
            student, label = item.get("title").split(" ")
            assert student == resource.get("identifier")
            found[(student, label)] = value
    assert found == expected_questions(key)


# ---------------------------------------------------------------- PrairieLearn
def run_server(question: Path, data: dict, hook: str) -> dict:
    """Call server.py's ``hook`` in a fresh Python where symbp cannot be imported."""
    code = ("import json, sys; sys.modules['symbp'] = None; sys.path.insert(0, sys.argv[1]); "
            "import server; data = json.loads(sys.stdin.read()); "
            f"server.{hook}(data); print(json.dumps(data))")
    done = subprocess.run([sys.executable, "-c", code, str(question)], input=json.dumps(data),
                          capture_output=True, text=True, cwd=question.parent, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def plain(value):
    return value["_value"] if isinstance(value, dict) else value


def test_prairielearn_question_draws_and_answers_as_symbp(klass, tmp_path, symbp_cli):
    spec, spec_path, folder, key = klass
    out = tmp_path / "questions"
    done = symbp_cli("export", "prairielearn", str(folder), "-o", str(out), "--spec", str(spec_path))
    assert done.returncode == 0, done.stderr
    question = out / f"symbp_{spec.name}"
    info = json.loads((question / "info.json").read_text())
    assert info["type"] == "v3" and uuid.UUID(info["uuid"]) and info["topic"] and info["title"]
    server = (question / "server.py").read_text()
    assert "symbp." not in server.replace("symbp.classroom", "").replace("symbp variants", "") \
        and "import symbp" not in server and "from symbp" not in server
    page = (question / "question.html").read_text()
    assert HOSTILE not in page and "<script" not in page
    quantities = [q for q in key["student_01"] if q not in LMS_VERDICTS]
    for q in quantities:
        element = "pl-number-input" if q == "loss" else "pl-matrix-component-input"
        assert f'<{element} answers-name="{q}"' in page
    assert "\\(\\frac{\\partial L}{\\partial W_{0}} = " in page    # each quantity's rule, for MathJax

    # variant_seed = the class's seed: the class's first student
    data = run_server(question, {"variant_seed": SEED, "params": {}, "correct_answers": {}}, "generate")
    for q in quantities:
        np.testing.assert_array_equal(np.asarray(plain(data["correct_answers"][q])), np.asarray(key["student_01"][q]))
    # other seeds: the first student symbp variants draws from them
    for seed in (1, 11):
        data = run_server(question, {"variant_seed": seed, "params": {}, "correct_answers": {}}, "generate")
        variant = draw_variants(spec, 1, seed)[0]
        expected = answers(variant)
        for q in quantities:
            np.testing.assert_allclose(np.asarray(plain(data["correct_answers"][q])), np.asarray(expected[q]),
                                       rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(plain(data["params"]["W0"]), variant.layers[0].weights)   # the givens shown
        np.testing.assert_array_equal(plain(data["params"]["x"]), variant.x[:variant.batch_size])

    scores = {q: {"score": 1.0} for q in quantities}
    scores[quantities[1]] = {"score": 0.5}
    graded = run_server(question, {**data, "partial_scores": scores, "feedback": {}}, "grade")
    assert list(graded["feedback"]) == [quantities[1]]
    assert "Likely mistake" not in graded["feedback"][quantities[1]]   # nothing submitted: no mistake named

    # submissions of seed 11, each with one mistake made (symbp's numbers for it) where it first
    # shows: grade(data), from the generated mistakes.py alone, names it; noise gets plain feedback
    assert "import symbp" not in (question / "mistakes.py").read_text()

    def graded_with(where, value):
        submitted = {**data["correct_answers"], where: {"_type": "ndarray", "_value": np.asarray(value).tolist(),
                                                        "_dtype": "float64"}}
        scores = {q: {"score": 0.0 if q == where else 1.0} for q in quantities}
        return run_server(question, {**data, "submitted_answers": submitted, "partial_scores": scores,
                                     "feedback": {}}, "grade")["feedback"]
    made = {m: mistake_values(variant, m) for m in MISTAKES}
    shown = [m for m in MISTAKES if any(q in made[m] for q in quantities)]
    assert len(shown) >= 4
    for mistake in shown:
        where = next(q for q in quantities if q in made[mistake])
        feedback = graded_with(where, made[mistake][where])
        assert list(feedback) == [where]
        named = feedback[where].split("`")[1]    # this mistake, or an earlier one of the same numbers
        assert named == mistake or np.allclose(made[named].get(where, np.nan), made[mistake][where]), (mistake, named)
        assert feedback[where].startswith(f"Likely mistake `{named}`: {MISTAKES[named].description}")
    noisy = quantities[-1]
    feedback = graded_with(noisy, np.asarray(plain(data["correct_answers"][noisy])) + 0.37)
    assert list(feedback) == [noisy] and "Likely mistake" not in feedback[noisy]


#: what a module PrairieLearn runs may import: NumPy and Python's standard library, never symbp
STANDALONE_IMPORTS = ("import json, sys; sys.modules['symbp'] = None; sys.path.insert(0, sys.argv[1]); "
                      "before = set(sys.modules); import standalone_draws; "
                      "print(json.dumps(sorted(set(sys.modules) - before)))")


def test_prairielearn_question_carries_symbps_own_drawing_code(klass, tmp_path, symbp_cli):
    """One source for the draw: the question's standalone_draws.py is symbp's module byte for
    byte, imports nothing but NumPy and the standard library (run where symbp cannot be
    imported), server.py defines none of its functions again, and draw.json's ``draw`` is
    exactly the DrawRules symbp draws the class with."""
    import ast
    from symbp import standalone_draws
    from symbp.standalone_draws import DrawRules
    from symbp.classroom.variants import draw_rules
    spec, spec_path, folder, _ = klass
    out = tmp_path / "questions"
    assert symbp_cli("export", "prairielearn", str(folder), "-o", str(out), "--spec", str(spec_path)).returncode == 0
    question = out / f"symbp_{spec.name}"
    assert (question / "standalone_draws.py").read_bytes() == Path(standalone_draws.__file__).read_bytes()

    done = subprocess.run([sys.executable, "-c", STANDALONE_IMPORTS, str(question)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    imported = {name.split(".")[0] for name in json.loads(done.stdout)}
    assert "standalone_draws" in imported and "symbp" not in imported
    assert imported - {"standalone_draws", "numpy"} <= set(sys.stdlib_module_names), imported

    def functions(path):   # a module's own functions (a class's methods are the class's)
        return {node.name for node in ast.parse(path.read_text()).body if isinstance(node, ast.FunctionDef)}
    shared = functions(question / "server.py") & functions(question / "standalone_draws.py")
    assert not shared, f"server.py defines again what standalone_draws.py holds: {shared}"
    drawing = {node.attr for node in ast.walk(ast.parse((question / "server.py").read_text()))
               if isinstance(node, ast.Attribute) and node.attr in ("default_rng", "integers")}
    assert not drawing, drawing   # every draw is standalone_draws'
    called = {node.attr for node in ast.walk(ast.parse((question / "server.py").read_text()))
              if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "DRAWS"}
    assert {"draw_variant", "first_step", "step_scope", "first_mistake"} <= called   # key, scope, diagnosis: symbp's own
    drawn = json.loads((question / "draw.json").read_text())["draw"]
    assert DrawRules.from_json(drawn) == draw_rules(spec)


def torch_class_spec(case: str) -> Spec:
    """The PyTorch example with its class-index labels drawn too (CrossEntropyLoss takes either
    kind: symbp draws indices), or a relu net under HuberLoss (kinks in z and in e = p - y)."""
    data = load_spec("symbp/examples/cs4820_a7_torch.toml").to_dict()
    data["variants"]["vary"] = ["weights", "x", "y"]
    if case == "huber":
        data["layers"][0]["activation"] = "relu"
        data["loss"] = {"name": "HuberLoss", "delta": 0.5}
        data["data"]["y"] = [[0.2, -0.4, 0.6, 0.0]]
        data["variants"].update({"kink_margin": 0.05, "max_abs_z": 4.0})
    return Spec.from_dict(data, "t")


@pytest.mark.parametrize("case", ["indices", "huber"])
def test_prairielearn_draws_a_torch_class_as_symbp(case, tmp_path, symbp_cli):
    """A PyTorch class's question draws with the framework's own loss rules (its labels and
    kinks), as ``symbp variants`` does: generate(data) gives each seed's first student's key."""
    spec = torch_class_spec(case)
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(spec.to_toml(), encoding="utf-8")
    write_variants(spec, 2, SEED, tmp_path / "class", jobs=1)
    done = symbp_cli("export", "prairielearn", str(tmp_path / "class"), "-o", str(tmp_path / "q"), "--spec", str(spec_path))
    assert done.returncode == 0, done.stderr
    question = tmp_path / "q" / f"symbp_{spec.name}"
    for seed in (SEED, 2):
        data = run_server(question, {"variant_seed": seed, "params": {}, "correct_answers": {}}, "generate")
        variant = draw_variants(spec, 1, seed)[0]
        expected = answers(variant)
        np.testing.assert_array_equal(plain(data["params"]["y"]), variant.y[:variant.batch_size])
        for q, value in expected.items():
            np.testing.assert_allclose(np.asarray(plain(data["correct_answers"][q])), np.asarray(value),
                                       rtol=1e-12, atol=1e-15, err_msg=q)


def test_prairielearn_spec_must_be_the_classes(klass, tmp_path, symbp_cli):
    spec, _, folder, _ = klass
    if spec.name == "cs4820_a7":
        return
    done = symbp_cli("export", "prairielearn", str(folder), "-o", str(tmp_path / "q"))   # the built-in spec
    assert done.returncode == 2 and "the class was drawn from" in done.stderr
    assert not (tmp_path / "q").exists()


def test_not_a_class_folder_is_an_input_error(tmp_path, symbp_cli):
    done = symbp_cli("export", "canvas", str(tmp_path), "-o", str(tmp_path / "x.zip"))
    assert done.returncode == 2 and "answer_key.json" in done.stderr
    done = symbp_cli("export", "moodle", str(tmp_path), "-o", str(tmp_path / "x.zip"))
    assert done.returncode == 2 and ".xml" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_answer_key_that_is_a_fifo_is_refused_unread(tmp_path, symbp_cli):
    import os
    os.mkfifo(tmp_path / KEY_JSON)
    done = symbp_cli("export", "moodle", str(tmp_path), "-o", str(tmp_path / "q.xml"))
    assert done.returncode == 2 and "not a regular file" in done.stderr


def test_an_answer_key_s_verdicts_old_names_or_new_are_not_questions(tmp_path):
    """--check ends each entry with the witness's verdict (framework, framework_max_abs_diff,
    framework_match); keys written before that say keras_max_abs_diff / keras_match: an export
    reads both as verdicts, the same quantities either way."""
    from symbp.classroom.lms import read_class
    from symbp.classroom.variants import VERDICTS
    write_variants(Spec.from_dict(RELU), 2, SEED, tmp_path / "class", jobs=1)
    path = tmp_path / "class" / KEY_JSON
    key = json.loads(path.read_text())
    read = {}
    for verdict in ({"framework": "torch", "framework_max_abs_diff": 0.0, "framework_match": True},
                    {"keras_max_abs_diff": 0.0, "keras_match": True}):
        path.write_text(json.dumps({s: {**entry, **verdict} for s, entry in key.items()}))
        read[tuple(verdict)] = read_class(tmp_path / "class").students
    assert set(VERDICTS) == {"framework", "framework_max_abs_diff", "framework_match"}
    old, new = read.values()
    assert old == new and list(next(iter(new.values()))) == list(next(iter(key.values())))
    path.write_text(json.dumps({s: {**entry, "keras_verdict": True} for s, entry in key.items()}))
    with pytest.raises(Exception, match="keras_verdict is not a quantity"):
        read_class(tmp_path / "class")


def test_moodle_format_belongs_to_moodle(klass, tmp_path, symbp_cli):
    _, _, folder, _ = klass
    done = symbp_cli("export", "canvas", str(folder), "-o", str(tmp_path / "c.zip"), "--moodle-format", "cloze")
    assert done.returncode == 2 and "--moodle-format" in done.stderr and not (tmp_path / "c.zip").exists()


def test_a_first_index_1_class_exports_under_the_keys_names(tmp_path, symbp_cli):
    """`variants --first-index 1`: the key says W1/dW1 for the first layer; Moodle's rules and
    PrairieLearn's givens, answers and mistake feedback use those names and that layer's numbers."""
    spec = load_spec(None)
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(spec.to_toml(), encoding="utf-8")
    write_variants(spec, 2, SEED, tmp_path / "class", jobs=1, first_index=1)
    key = json.loads((tmp_path / "class" / KEY_JSON).read_text())
    assert "dW3" in key["student_01"] and "dW0" not in key["student_01"]
    out = tmp_path / "quiz.xml"
    assert symbp_cli("export", "moodle", str(tmp_path / "class"), "-o", str(out), "--quantities", "dW1").returncode == 0
    for question in ET.parse(out).getroot().findall("question[@type='numerical']"):
        text = question.find("questiontext/text").text    # the first layer's rule: a_0^T delta_1
        assert "\\(\\frac{\\partial L}{\\partial W_{1}} = {a_{0}}^{\\top} \\, \\delta_{1}\\)" in text
    done = symbp_cli("export", "prairielearn", str(tmp_path / "class"), "-o", str(tmp_path / "q"), "--spec", str(spec_path))
    assert done.returncode == 0, done.stderr
    question = tmp_path / "q" / f"symbp_{spec.name}"
    page = (question / "question.html").read_text()
    assert '<p>W1 = <pl-matrix-latex params-name="W0"' in page and '<p>W3 = <pl-matrix-latex params-name="W2"' in page
    data = run_server(question, {"variant_seed": SEED, "params": {}, "correct_answers": {}}, "generate")
    quantities = [q for q in key["student_01"] if not q.startswith(("keras", "framework"))]
    assert sorted(data["correct_answers"]) == sorted(quantities)
    for q in quantities:
        np.testing.assert_array_equal(np.asarray(plain(data["correct_answers"][q])), np.asarray(key["student_01"][q]))
    W_first = np.asarray(plain(data["params"]["W0"]))
    wrong = 2 * W_first - np.asarray(key["student_01"]["W1_updated"])       # up the gradient
    submitted = {**data["correct_answers"], "W1_updated": {"_type": "ndarray", "_value": wrong.tolist(), "_dtype": "float64"}}
    scores = {q: {"score": 0.0 if q == "W1_updated" else 1.0} for q in quantities}
    feedback = run_server(question, {**data, "submitted_answers": submitted, "partial_scores": scores,
                                     "feedback": {}}, "grade")["feedback"]
    assert list(feedback) == ["W1_updated"] and feedback["W1_updated"].startswith("Likely mistake `wrong_update_sign`")


def test_prairielearn_reads_no_mustache_tag_in_a_title(tmp_path):
    """PrairieLearn renders question.html again with Mustache: a title holding ``{{params.W0}}``
    must stay text there (its braces written as entities), not become the student's numbers."""
    from symbp.classroom.export_prairielearn import prairielearn_files
    from symbp.classroom.lms import read_class
    data = load_spec().to_dict()
    data["title"] = "A7 {{params.W0}} {{{correct_answers.loss}}}"
    spec = Spec.from_dict(data)
    write_variants(spec, 1, SEED, tmp_path / "class", jobs=1)
    files = prairielearn_files(spec, read_class(tmp_path / "class"), tmp_path / "q")
    page = next(text for path, text in files.items() if path.name == "question.html")
    title_line = next(line for line in page.splitlines() if "<strong>" in line)
    assert "A7 &#123;&#123;params.W0&#125;&#125;" in title_line and "{" not in title_line


# ---------------------------------------------------------------- a title's TeX
#: TeX and AsciiMath a title may carry: a link, colour, display math, an environment, Moodle's [tex], a backtick
MATH_TITLE = (r"Net \(\href{https://evil.example}{\text{click me}}\) $\color{red}{\text{GRADE: A}}$ $$\int$$ "
              r"\[x\] \begin{equation}y\end{equation} [tex]z[/tex] `w`")
IGNORED = set(MATHJAX_IGNORE_CLASSES.split())


class MathJaxView(HTMLParser):
    """A page as MathJax's default scan reads it: the browser's text (entities decoded) outside
    any element of an ignore class (``scanned``), and the text inside one (``ignored``)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.inside_ignored, self.scanned, self.ignored = [False], [], []

    def handle_starttag(self, tag, attrs):
        classes = set((dict(attrs).get("class") or "").split())
        self.inside_ignored.append(self.inside_ignored[-1] or bool(classes & IGNORED))

    def handle_endtag(self, tag):
        self.inside_ignored.pop()

    def handle_data(self, data):
        (self.ignored if self.inside_ignored[-1] else self.scanned).append(data)


def assert_the_title_is_no_math(page: str, rules: set[str]):
    """Neither Moodle's server-side TeX filter (the HTML source) nor MathJax (the decoded text
    outside ignore classes) finds math from the title; the title is on the page, as text."""
    assert not set("$`") & set(page) and not re.search(r"\\(href|color|int|begin|\[)|\[tex\]", page)
    view = MathJaxView()
    view.feed(page)
    scanned = "".join(view.scanned)
    assert not set("$`") & set(scanned) and not re.search(r"\\\[|\\begin|\[tex\]", scanned)
    assert set(re.findall(r"\\\((.*?)\\\)", scanned)) <= rules     # symbp's own rules only
    assert MATH_TITLE in "".join(view.ignored)


def test_a_title_s_tex_becomes_no_math_in_any_export(tmp_path):
    """Moodle (numerical and cloze), Canvas and PrairieLearn typeset $...$, $$...$$, \\(...\\),
    \\[...\\] (Moodle on the server too): a spec title's TeX stays text in every question."""
    from symbp.classroom.export_canvas import canvas_zip
    from symbp.classroom.export_moodle import moodle_xml
    from symbp.classroom.export_prairielearn import prairielearn_files
    from symbp.classroom.lms import read_class
    data = load_spec().to_dict()
    data["title"] = MATH_TITLE
    spec = Spec.from_dict(data)
    write_variants(spec, 1, SEED, tmp_path / "class", jobs=1)
    klass = read_class(tmp_path / "class")
    rules = set(klass.rules.values())
    pages = [q.find("questiontext/text").text for fmt in ("numerical", "cloze")
             for q in ET.fromstring(moodle_xml(klass, fmt)).findall("question") if q.get("type") != "category"]
    pages = [SUBQUESTION.sub("", page) for page in pages]     # a subquestion's feedback is symbp's
    archive = zipfile.ZipFile(io.BytesIO(canvas_zip(klass)))
    pages += [m.text for name in archive.namelist() if name != "imsmanifest.xml"
              for m in ET.fromstring(archive.read(name)).iter(f"{QTI}mattext")]
    pages += [text for path, text in prairielearn_files(spec, klass, tmp_path / "q").items()
              if path.name == "question.html"]
    assert len(pages) > 3
    for page in pages:
        assert_the_title_is_no_math(page, rules)
    # fields of plain text (no element can tell MathJax to skip them) name the class instead
    labels = [q.find("name/text").text for q in ET.fromstring(moodle_xml(klass, "cloze")).findall("question")
              if q.get("type") == "cloze"]
    labels += [ET.fromstring(archive.read(name)).find(f"{QTI}assessment").get("title")
               for name in archive.namelist() if name != "imsmanifest.xml"]
    labels += [json.loads(text)["title"] for path, text in prairielearn_files(spec, klass, tmp_path / "q").items()
               if path.name == "info.json"]
    assert len(labels) == 3 and all(spec.name in label and "$" not in label and "\\" not in label for label in labels), labels

