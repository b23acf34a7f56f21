"""Scaffolding of the student sheet (issue 17): asked entries in pen-sized boxes, the [handout]
table and its flags, the symbolic rules, named constants, Huber's cases, notebooks that ask."""

from __future__ import annotations

import re
import subprocess

import pytest

from symbp.emit.handouts import HandoutOptions, render_handouts
from symbp.errors import HandoutError
from symbp.spec import Spec, load_spec
from symbp.spec.handout import parse_ask

from conftest import run_symbp


def wide(units: int = 12, **handout) -> Spec:
    """A 3-12-2 network (a layer past the handouts' 8 shown columns), one sample."""
    data = {"name": "wide", "data": {"x": [[0.5, -0.3, 0.8]], "y": [[1.0, 0.0]]},
            "layers": [{"units": units, "activation": "tanh",
                        "weights": [[round(0.1 * ((3 * i + j) % 7 - 3), 1) for j in range(units)] for i in range(3)],
                        "bias": [0.1] * units},
                       {"units": 2, "activation": "softmax",
                        "weights": [[round(0.1 * ((i + 2 * j) % 5 - 2), 1) for j in range(2)] for i in range(units)],
                        "bias": [0.0, 0.0]}],
            "loss": {"name": "categorical_crossentropy"}, "optimizer": {"name": "sgd", "learning_rate": 0.1},
            "training": {"batch_size": 1, "epochs": 1}}
    if handout:
        data["handout"] = handout
    return Spec.from_dict(data)


def pdf_text(tex: str, tmp_path, name: str = "sheet") -> str:
    from symbp.io.pdf import pdf_from_source
    pdf = tmp_path / f"{name}.pdf"
    pdf.write_bytes(pdf_from_source(tex, tmp_path / f"{name}.tex")[0])
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


def boxes(tex: str) -> int:
    """The pen boxes the student sheet prints (one \\penbox per asked entry)."""
    return tex.count("\\penbox") - tex.count("\\newcommand{\\penbox}")


# ---------------------------------------------------------------- --ask
def test_asked_entries_get_pen_boxes_and_nothing_else_is_asked(tmp_path):
    spec = wide()
    asked = render_handouts(spec, HandoutOptions(ask=("W1[0:2,0:3]", "delta2"), first_index=1))
    plain = render_handouts(spec, HandoutOptions(first_index=1))
    assert asked["solution"] == plain["solution"]           # the solution is unchanged
    assert boxes(asked["student"]) == 2 * 3 + 2 and boxes(plain["student"]) == 0
    student = pdf_text(asked["student"], tmp_path)
    back = student[student.index("Back-propagation, from the output layer down"):]
    # the asked steps only: delta2 (the output layer's) and the first layer's W1 update
    assert re.search(r"Error gradient δ2", back) and re.search(r"Update of W1", back)
    assert "Gradient of the weights" not in back and "Derivative of tanh" not in back
    assert "Update of W2" not in back and "δ1" not in back
    # the boxes' labels: rows 0-1 and columns 0-2 of W1's, columns 0-1 of delta2's
    w1 = back[back.index("Update of W1"):]
    assert re.search(r"^\s*0\s+1\s+2\s*$", w1, flags=re.M) and "   3 " not in w1.split("Entries")[1][:200]
    # a plain sheet asks for every entry of every step
    assert "Gradient of the weights" in pdf_text(plain["student"], tmp_path, "plain")


def test_a_pen_box_fits_handwriting_at_every_digit_count():
    from symbp.emit.handout_latex import PEN_HEIGHT, pen_box_width
    assert PEN_HEIGHT >= 7 and pen_box_width(1) >= 15 and pen_box_width(8) >= 2.5 * 11


@pytest.mark.parametrize("entry, message", [
    ("W9[0,0]", "the sheet has no 'W9'"),
    ("W1[0:9,0]", "rows 0..8 are outside 0..2"),
    ("W1[0,0,0]", "at most two indices"),
    ("W1[0", "expected a quantity"),
    ("Q1", "'Q' is not a quantity"),
])
def test_a_bad_ask_names_the_entry(entry, message):
    with pytest.raises(HandoutError, match=re.escape(message)) as err:
        render_handouts(wide(), HandoutOptions(ask=(entry,), first_index=1))
    assert repr(entry) in str(err.value)


def test_ask_numbers_parameters_from_the_first_index():
    ask = parse_ask("dW1[0:2, 1]")
    assert ask.quantity(1) == "dW0" and ask.quantity(0) == "dW1"
    assert parse_ask("theta2").quantity(1) == "b1_updated" and parse_ask("W1_updated").quantity(0) == "W1_updated"
    assert parse_ask("delta2").quantity(1) == "delta2"
    assert ask.selection((3, 12)) == ([0, 1], [1])
    assert parse_ask("b1[2:]").selection((12,)) == ([0], list(range(2, 12)))


# ---------------------------------------------------------------- the [handout] table
def test_the_handout_table_is_validated_naming_each_key(tmp_path):
    data = wide().to_dict()
    data["handout"] = {"ask": ["delta2", "Q1"], "digitz": 4, "name_line": "yes", "first_index": 2}
    spec_file = tmp_path / "bad.toml"
    import tomli_w
    spec_file.write_text(tomli_w.dumps(data))
    result = run_symbp("derive", str(spec_file), "--no-check", "-o", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    for where in ("handout.digitz: unknown key (did you mean 'digits'?)", "handout.name_line: expected true or false",
                  "handout.ask[1]: 'Q1'", "handout.first_index: must be from 0 to 1"):
        assert where in result.stderr
    assert not (tmp_path / "out").exists()


def test_flags_override_the_table_and_the_table_round_trips(tmp_path):
    spec = wide(ask=["delta2"], digits=4, name_line=True, symbolic_rules=False, first_index=1)
    assert Spec.from_dict(spec.to_dict()) == spec and "[handout]" in spec.to_toml()
    from_table = HandoutOptions.for_spec(spec)
    assert (from_table.ask, from_table.digits, from_table.name_line, from_table.first_index) == (("delta2",), 4, True, 1)
    flagged = HandoutOptions.for_spec(spec, ask=("dW1[0,0:2]",), digits=6, name_line=False, student_rules=None)
    assert (flagged.ask, flagged.digits, flagged.name_line, flagged.first_index) == (("dW1[0,0:2]",), 6, False, 1)
    spec.save(tmp_path / "wide.toml")
    result = run_symbp("derive", str(tmp_path / "wide.toml"), "--no-check", "-o", str(tmp_path / "out"),
                       "--ask", "dW1[0,0:2]", "--ask", "b1[0:3]", "--no-name-line")
    assert result.returncode == 0, result.stderr
    student = (tmp_path / "out" / "wide_student.tex").read_text()
    assert boxes(student) == 2 + 3 and "Name:" not in student
    assert "Gradient of the weights $W_{1}$" in student and "Update of $\\theta_{1}$" in student
    table_only = run_symbp("derive", str(tmp_path / "wide.toml"), "--no-check", "-o", str(tmp_path / "t"))
    student = (tmp_path / "t" / "wide_student.tex").read_text()
    assert table_only.returncode == 0 and boxes(student) == 2 and "Name:" in student
    assert "rounded to 4 decimals" in student


def test_the_html_student_page_asks_the_same_entries_and_prints_the_rules():
    from symbp.emit.handout_html import render_html_handouts
    spec = wide()
    pages = render_html_handouts(spec, HandoutOptions(ask=("W1[0:2,0:3]", "delta2"), first_index=1,
                                                      student_rules=True))
    plain = render_html_handouts(spec, HandoutOptions(first_index=1))
    assert pages["solution"] == plain["solution"]
    student = pages["student"]
    assert student.count('class="blank"') == 2 * 3 + 2 and plain["student"].count('class="blank"') > 8
    assert "Update of" in student and "Gradient of the weights" not in student
    bare = render_html_handouts(spec, HandoutOptions(ask=("W1[0:2,0:3]", "delta2"), first_index=1))["student"]
    assert student.count('class="line"') == bare.count('class="line"') + 2   # each asked step's rule


# ---------------------------------------------------------------- symbolic rules
def mathlines(tex: str, start: str) -> list[str]:
    return re.findall(r"^\\mathline\{(.*)\}$", tex[tex.index(start):], flags=re.M)


def test_the_student_sheet_prints_the_solutions_rules_in_symbols(tmp_path):
    spec = wide()
    with_rules = render_handouts(spec, HandoutOptions(student_rules=True))
    without = render_handouts(spec)
    assert with_rules["solution"] == without["solution"]
    start = "Back-propagation, from the output layer down"
    solution = set(mathlines(with_rules["solution"], start))
    rules = [line for line in mathlines(with_rules["student"], start) if "\\blank" not in line]
    assert len(rules) >= 8 and all(line in solution for line in rules), set(rules) - solution
    assert not [line for line in mathlines(without["student"], start) if "\\blank" not in line]
    assert any(line.startswith("\\frac{\\partial L}{\\partial W_{0}} = ") for line in rules)
    text = pdf_text(with_rules["student"], tmp_path)
    assert "∂L" in text[text.index(start):]


# ---------------------------------------------------------------- notebooks
def outputs(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


def test_notebooks_ask_for_the_selected_entries_and_elide_wide_matrices():
    import numpy as np
    from symbp.emit.notebook import notebooks
    from symbp.witnesses.module import spec_module
    spec = wide()
    books = notebooks(spec, options=HandoutOptions(ask=("W1[0:2,0:3]", "delta2"), first_index=1))
    solution = {c.source.split("\n")[0]: c for c in books["solution"].cells if c.cell_type == "code"}
    student = [c.source for c in books["student"].cells]
    hand_in = next(c.source for c in books["student"].cells if "entries to hand in" in c.source)
    assert "`W1[0:2, 0:3]`" in hand_in and "`delta2[0:1, 0:2]`" in hand_in
    assert any(s.startswith("asked_1 = ...  # to be completed: entries W1[0:2, 0:3] of the updated W1") for s in student)
    module = spec_module(spec)
    trace = module.trace(module.initial_params(), module.X[:1], module.Y[:1])
    shown = outputs(solution["asked_1 = W0_updated[0:2, 0:3]  # asked_1 = W0_updated[0:2, 0:3]"])
    numbers = np.array([float(v) for v in re.findall(r"-?\d+\.\d*(?:e-?\d+)?", shown)])
    assert np.allclose(numbers, trace["updated"]["W0"][0:2, 0:3].ravel(), atol=1e-8)
    assert "asked_2 = delta2[0:1, 0:2]  # asked_2 = delta2[0:1, 0:2]" in solution
    # without --ask, no such cells
    assert not any("asked_" in c.source for c in notebooks(spec)["solution"].cells)
    # a 12-unit layer shows its first 3 and last 2 columns around .., as the handouts do
    layer = next(outputs(c) for c in books["solution"].cells if "Outputs from hidden layer 1" in outputs(c))
    a1 = layer[layer.index("Outputs from hidden layer 1"):]
    assert " .. " in a1 and len(re.findall(r"-?\d+\.\d+", a1.splitlines()[1])) == 5
    assert "asked_1 = ..." not in "".join(outputs(c) for c in books["student"].cells)


def test_a_notebook_cannot_ask_for_what_it_does_not_compute():
    from symbp.emit.notebook import notebooks
    with pytest.raises(HandoutError, match="fprime1"):
        notebooks(wide(), options=HandoutOptions(ask=("fprime1",)))


# ---------------------------------------------------------------- named constants
def one_hidden(activation: str) -> Spec:
    return Spec.from_dict({
        "name": "named", "data": {"x": [[0.5, -0.3]], "y": [[1.0, 0.0]]},
        "layers": [{"units": 2, "activation": activation, "weights": [[0.3, -0.4], [0.2, 0.5]], "bias": [0.1, -0.1]},
                   {"units": 2, "activation": "softmax", "weights": [[0.3, -0.4], [0.2, 0.5]], "bias": [0.0, 0.0]}],
        "loss": {"name": "categorical_crossentropy"}, "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "training": {"batch_size": 1}})


def test_gelu_prints_one_over_root_two_and_states_its_rounding_once(tmp_path):
    from symbp.emit.handout_html import render_html_handouts
    handouts = render_handouts(one_hidden("gelu"))
    solution = handouts["solution"]
    assert "0.70710677" not in solution and "0.49999998" not in solution
    assert r"\operatorname{erfc}{\left(\frac{\sqrt{2}}{2} \, z \right)}" in solution   # 1/sqrt 2, exact
    assert r"e^{-\frac{1}{2} \, z \odot z}" in solution                                 # e^{-z^2/2}
    assert solution.count("float32 rounding $0.7071067690849304$") == 1
    text = pdf_text(solution, tmp_path)
    assert "0.70710677" not in text and "0.49999998" not in text and "erfc" in text
    page = render_html_handouts(one_hidden("gelu"), HandoutOptions())["solution"]
    assert "0.70710677" not in page and "0.49999998" not in page and "0.7071067690849304" in page


def test_selu_prints_lambda_and_alpha_with_their_values_stated_once(tmp_path):
    solution = render_handouts(one_hidden("selu"))["solution"]
    assert "1.7580993" not in solution and solution.count("1.0507009873554805") == 1
    assert r"\lambda = 1.0507009873554805" in solution and r"\alpha = 1.6732632423543772" in solution
    text = pdf_text(solution, tmp_path)
    assert "λ" in text and "α" in text and "1.7580993" not in text
    # the module still computes with the constants' values (the handout's numbers are its trace's)
    from symbp.emit.codegen import module_source
    assert "1.0507009873554805" in module_source(one_hidden("selu"))


# ---------------------------------------------------------------- huber
def test_huber_prints_as_cases_with_the_residual_compared_first(tmp_path):
    data = one_hidden("tanh").to_dict()
    data["layers"][1]["activation"] = "linear"
    data["loss"] = {"name": "huber", "delta": 0.5}
    data["data"] = {"x": [[0.5, -0.3], [1.0, 2.0]], "y": [[1.0, 0.0], [3.0, -2.0]]}
    data["training"] = {"batch_size": 2}
    solution = render_handouts(Spec.from_dict(data))["solution"]
    index_form = next(line for line in mathlines(solution, "\\section*{Loss}") if line.startswith("l = "))
    # 1/K in front of the sum of one cases block (not the cases over K), |a - y| <= delta read first
    assert index_form.startswith(r"l = \frac{1}{K} \sum_{i=0}^{K - 1} \begin{cases}"), index_form
    assert r"\text{if } \left|{a_{i} - y_{i}}\right| \leq \delta_{huber}" in index_form
    assert r"\text{where } \left|{a_{2} - y}\right| \leq \delta_{huber}" in solution
    assert r"\geq \left|" not in solution
    text = pdf_text(solution, tmp_path)
    assert "otherwise" in text and "where" in text


# ---------------------------------------------------------------- variants
def test_variants_take_the_table_and_the_flags(tmp_path):
    import json
    from symbp.classroom.variants import render_variants
    spec = wide(ask=["delta2"], first_index=1, digits=4)
    out = render_variants(spec, 2, 0, tmp_path, jobs=1, ask=("W1[0:2,0:3]",), student_rules=True)
    key = json.loads(out.files[tmp_path / "answer_key.json"])
    assert "dW1" in next(iter(key.values())) and "dW0" not in next(iter(key.values()))   # the table's first_index
    for student in ("student_01", "student_02"):
        sheet = out.files[tmp_path / "students" / student / "wide_student.tex"]
        assert boxes(sheet) == 6 and "Update of $W_{1}$" in sheet   # the flag's ask, not the table's
        assert "rounded to 4 decimals" in sheet
        assert out.specs[student].handout == spec.handout
