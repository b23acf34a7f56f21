"""Handouts and notebooks of convolutional networks (issue 13): the worked solution of the
built-in example (6x6x1 images, Conv2D 3 filters 3x3 relu, MaxPooling2D 2x2, Flatten, softmax)
compiles, shows the trace's numbers (the worked entry with its window, max pooling's selected
entries boxed, the kernel and bias gradients, the updates), and the student sheet withholds every
backward number; Conv1D / average / global pooling and a strided "same" net with two convolutions
render and compile; the HTML pages escape a hostile title and render in Chromium; the notebooks run.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from conftest import run_symbp
from symbp.emit.codegen import module_source
from symbp.emit.handout_html import render_html_handouts
from symbp.emit.handouts import HandoutOptions, handout_context, render_handouts
from symbp.emit.latex import MAX_SHOWN, format_number, matrix_tex
from symbp.emit.notebook import notebooks
from symbp.emit.outputs import rendered_outputs
from symbp.io.pdf import compile_pdf
from symbp.spec import Spec, load_spec
from symbp.witnesses.module import load_module
from test_handouts import formatted, numbers_in, pdf_text
from test_html_handouts import HOSTILE_TITLE, mathml_numbers, parsed, run_chromium
from test_notebooks import answer_cells, assert_answers_blanked, assert_every_check_matches, executed_solution

EXAMPLE = Path(__file__).resolve().parent.parent / "symbp" / "examples" / "cnn_6x6.toml"
BACKWARD = re.compile(r"^(delta|g|dW|db|dwin)\d+$")


def traced(spec: Spec) -> dict:
    """The module's trace of the first batch, its initial parameters, and the updated ones."""
    module = load_module(module_source(spec), spec.name)
    params = module.initial_params()
    rows = min(spec.batch_size, len(spec.x))
    return {**module.trace(params, module.X[:rows], module.Y[:rows]), "params": params}


def backward_values(trace: dict) -> set[str]:
    """Every number of the backward pass and the update, as the handouts print them."""
    arrays = [value for key, value in trace.items() if BACKWARD.match(key)]
    return formatted(*arrays, *trace["updated"].values())


def shown_backward(trace: dict) -> set[str]:
    """The backward numbers a handout shows in full (not dL/dwin, not a matrix elided past MAX_SHOWN)."""
    whole = [v for k, v in trace.items() if BACKWARD.match(k) and not k.startswith("dwin")
             and max(np.shape(v)[1:] if np.ndim(v) > 2 else np.shape(v), default=1) <= MAX_SHOWN]
    return formatted(*whole)


def forward_values(spec: Spec, trace: dict) -> set[str]:
    keys = [k for k in trace if re.match(r"^(z|a|win|mask)\d+$", k)] + ["per_sample", "y"]
    return formatted(spec.x, spec.y, *trace["params"].values(), *(trace[k] for k in keys), trace["loss"])


@pytest.fixture(scope="module")
def example():
    spec = load_spec(EXAMPLE)
    return spec, traced(spec)


@pytest.fixture(scope="module")
def example_pdfs(tmp_path_factory):
    out = tmp_path_factory.mktemp("cnn")
    result = run_symbp("derive", str(EXAMPLE), "-o", str(out), "--pdf", "--no-check")
    assert result.returncode == 0, result.stderr
    return {kind: (pdf_text(out / f"cnn_6x6_{kind}.pdf"), (out / f"cnn_6x6_{kind}.tex").read_text())
            for kind in ("solution", "student")}


# ---------------------------------------------------------------- the example, as a PDF
def test_example_has_no_tie_and_no_unit_at_a_kink(example):
    spec, trace = example
    assert np.all(np.abs(trace["z1"]) > 1e-3)                            # relu: no z at 0
    windows = np.sort(trace["win2"].reshape(*trace["win2"].shape[:4], -1), axis=-1)
    assert np.all(windows[..., -1] - windows[..., -2] > 1e-3)            # max pooling: no tie


def test_worked_entry_shows_its_window_and_the_traces_numbers(example, example_pdfs):
    spec, trace = example
    text, tex = example_pdfs["solution"]
    shown = numbers_in(text)
    window, kernel = trace["win1"][0, 0, 0, 0], trace["params"]["W0"][:, :, 0, 0]
    assert rf"\mathrm{{win}}_{{1}}[0,0,0,0,:,:] = {matrix_tex(window, 8)}" in tex
    assert rf"W_{{0}}[:,:,0,0] = {matrix_tex(kernel, 8)}" in tex
    # the worked entry's line: each window entry times its kernel entry, the bias, = z1[0,0,0,0]
    worked = next(line for line in tex.splitlines() if line.endswith(f"= {format_number(trace['z1'][0, 0, 0, 0], 8)}}}"))
    assert worked.count(r"\cdot") == window.size       # one product per window entry
    assert formatted(trace["z1"][0, 0, 0, 0], window, kernel, trace["params"]["b0"][0]) <= shown
    # every feature map, the kernel gradient's worked entry, every gradient and update
    assert not formatted(trace["z1"], trace["a1"], trace["z2"], trace["a4"]) - shown
    whole = ["delta1", "g1", "delta2", "g2", "dW0", "db0", "delta4", "db3"]   # the matrices shown in full
    assert not formatted(*(trace[k] for k in whole), *(trace["updated"][p] for p in ("W0", "b0", "b3"))) - shown


def test_max_pooling_boxes_the_selected_entries(example, example_pdfs):
    spec, trace = example
    _, tex = example_pdfs["solution"]
    pooled = tex.split("the entries each window selects")[1].split(r"\steptitle")[0]
    for n in range(trace["a1"].shape[0]):
        for c in range(trace["a1"].shape[-1]):
            line = next(l for l in pooled.splitlines() if f"a_{{1}}[{n},:,:,{c}] =" in l)
            boxed = re.findall(r"\\boxed\{(-?[\d.]+)\}", line)
            assert sorted(boxed) == sorted(format_number(v, 8) for v in trace["z2"][n, :, :, c].ravel())
    # the gradient passed down through the pooling sits at the same boxed entries
    routed = tex.split("routed to its selected entry")[1].split(r"\steptitle")[0]
    assert len(re.findall(r"\\boxed", routed)) == trace["z2"].size


def test_student_sheet_withholds_every_backward_number(example, example_pdfs):
    spec, trace = example
    text, tex = example_pdfs["student"]
    shown = numbers_in(text)
    assert formatted(trace["z1"][0, 0, 0, 0], trace["z2"], trace["a4"]) <= shown    # the forward pass is given
    leaked = (backward_values(trace) - forward_values(spec, trace)) & shown
    assert not leaked
    assert r"\boxed" in tex.split(r"\section*{Back-propagation")[0] and r"\blank" in tex


# ---------------------------------------------------------------- other indexed layers
def conv_spec(name, layers, shape, seed=0) -> Spec:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape).round(2)
    y = np.eye(3)[rng.integers(0, 3, shape[0])]
    return Spec.from_dict({"name": name, "title": f"{name} & 50% of $x_1$", "seed": seed,
                           "data": {"x": x.tolist(), "y": y.tolist()}, "layers": layers,
                           "loss": {"name": "categorical_crossentropy"},
                           "optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9},
                           "training": {"batch_size": 2, "epochs": 1}})


OTHER_NETS = {
    "conv1d_average": lambda: conv_spec("conv1d_average", [
        {"type": "Conv1D", "filters": 2, "kernel_size": 3, "activation": "tanh"},
        {"type": "AveragePooling1D", "pool_size": 2},
        {"type": "GlobalAveragePooling1D"}, {"units": 3, "activation": "softmax"}], (2, 8, 2)),
    "strided_same": lambda: conv_spec("strided_same", [
        {"type": "Conv2D", "filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "tanh"},
        {"type": "Conv2D", "filters": 2, "kernel_size": 2, "activation": "sigmoid"},
        {"type": "MaxPooling2D", "pool_size": 2, "strides": 1, "padding": "same"},
        {"type": "Flatten"}, {"units": 3, "activation": "softmax"}], (2, 7, 7, 1), seed=1),
}


@pytest.mark.parametrize("key", sorted(OTHER_NETS))
def test_other_indexed_layers_compile_with_their_numbers(key, tmp_path):
    spec = OTHER_NETS[key]()
    trace = traced(spec)
    texts = {}
    for kind, tex in render_handouts(spec, HandoutOptions()).items():
        path = tmp_path / f"{spec.name}_{kind}.tex"
        path.write_text(tex)
        texts[kind] = numbers_in(pdf_text(compile_pdf(path)[0]))
    answers = backward_values(trace)
    assert not shown_backward(trace) - texts["solution"]
    assert not (answers - forward_values(spec, trace)) & texts["student"]
    if key == "strided_same":   # the gradient through the second convolution: the full correlation
        tex = render_handouts(spec, HandoutOptions())["solution"]
        assert r"g_{1}[n,i,j,k] = \sum" in tex and r"\delta_{2}[n,i-u,j-v,c]" in tex


# ---------------------------------------------------------------- HTML
def hostile_example() -> Spec:
    data = load_spec(EXAMPLE).to_dict()
    data["title"] = HOSTILE_TITLE
    return Spec.from_dict(data)


@pytest.fixture(scope="module")
def example_pages():
    return render_html_handouts(hostile_example(), HandoutOptions())


def test_html_pages_escape_the_title_and_show_the_numbers(example, example_pages):
    spec, trace = example
    for kind, page in example_pages.items():
        elements = parsed(page)
        assert not [tag for tag, _ in elements.tags if tag in ("script", "img", "iframe", "object")]
        assert not [name for _, attrs in elements.tags for name in attrs if name.startswith("on")]
        assert HOSTILE_TITLE in "".join(elements.text)
        assert page.count('<menclose notation="box">') >= trace["z2"].size     # the selected entries
        assert "MaxPooling2D, windows" in page and "output shape" in page      # the table of shapes
    solution, student = (mathml_numbers(example_pages[k]) for k in ("solution", "student"))
    assert not shown_backward(trace) - solution
    assert not (backward_values(trace) - forward_values(spec, trace)) & student


def test_chromium_renders_the_cnn_pages(tmp_path):
    files = rendered_outputs(hostile_example(), tmp_path, html=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8") if isinstance(text, str) else path.write_bytes(text)
    for kind in ("solution", "student"):
        dom = run_chromium("--virtual-time-budget=3000", "--dump-dom", (tmp_path / f"cnn_6x6_{kind}.html").as_uri())
        elements = parsed(dom)
        assert HOSTILE_TITLE in " ".join("".join(elements.text).split())
        assert not [tag for tag, _ in elements.tags if tag in ("script", "img")]
        assert len([tag for tag, _ in elements.tags if tag == "math"]) > 20


# ---------------------------------------------------------------- notebooks
def test_cnn_solution_notebook_runs_and_matches_keras(tmp_path):
    spec = load_spec(EXAMPLE)
    solution, expected = executed_solution(spec, tmp_path)
    assert_every_check_matches(solution, spec, expected)


def test_cnn_student_notebook_holds_no_answers():
    books = notebooks(load_spec(EXAMPLE))
    student_text = nbformat.writes(books["student"])
    answers = answer_cells(books["solution"])
    assert any("dwin2" in cell.source for cell in answers)     # through the pooling, then g1
    assert_answers_blanked(answers, student_text)
    for cell in answer_cells(books["student"]):
        assert not cell.outputs


def test_a_larger_net_elides_maps_and_long_sums_and_compiles(tmp_path):
    spec = conv_spec("larger", [
        {"type": "Conv2D", "filters": 8, "kernel_size": 3, "activation": "relu"},
        {"type": "MaxPooling2D", "pool_size": 2}, {"type": "Flatten"},
        {"units": 3, "activation": "softmax"}], (4, 10, 10, 1))
    tex = render_handouts(spec, HandoutOptions())["solution"]
    assert r"more maps, in the generated module" in tex                        # 2 samples x 8 filters > MAX_MAPS
    assert r"\frac{\partial L}{\partial W_{0}}[0,0,0,0] =" not in tex          # 2 * 8 * 8 terms: rule only
    assert r"z_{1}[0,0,0,0] = \theta_{0}[0] +" in tex                           # 9 terms: worked
    path = tmp_path / "larger_solution.tex"
    path.write_text(tex)
    compile_pdf(path)


# ---------------------------------------------------------------- the notation paragraph
#: a phrase of each notation sentence -> the layer types whose presence prints it
NOTATION_PHRASES = {
    r"\mathrm{win}_l[n,p,q,k,u,v]": {"Conv1D", "Conv2D", "MaxPooling2D", "AveragePooling1D", "GlobalAveragePooling1D"},
    "as Keras stores it (offset $u$ down": {"Conv1D", "Conv2D"},
    "TensorFlow's choice on ties": {"MaxPooling2D"},
    "Average pooling weighs": {"AveragePooling1D"},
    "Global pooling has one window": {"GlobalAveragePooling1D"},
    "in C order as Keras's Flatten": {"Flatten"},
    r"\lceil H / s \rceil$ with same padding": {"Conv1D", "Conv2D", "MaxPooling2D", "AveragePooling1D"},
}


@pytest.mark.parametrize("key", ["cnn_6x6", *sorted(OTHER_NETS)])
def test_notation_paragraph_states_the_cnn_notation_in_every_presenter(key):
    """The LaTeX and HTML handouts and the notebook print one notation text (symbp.emit.notation):
    the window win[n,p,q,k,u,v], the kernel W[u,v,k,c], z[n,p,q,c], the pooling's selection,
    TensorFlow's strides and padding, each sentence only where its layer type is in the network;
    never the Dense-only z = aW + theta paragraph."""
    from symbp.emit.mathml import prose_html
    spec = load_spec(EXAMPLE) if key == "cnn_6x6" else OTHER_NETS[key]()
    types = {layer.type for layer in spec.layers}
    tex = render_handouts(spec, HandoutOptions())["solution"]
    page = render_html_handouts(spec, HandoutOptions())["solution"]
    markdown = "\n".join(cell.source for cell in notebooks(spec)["solution"].cells if cell.cell_type == "markdown")
    notation = tex[tex.index(r"\paragraph{Notation.}"):tex.index(r"\section*{Givens}")]
    assert "z_l = a_{l-1} W_{l-1} + \\theta_{l-1}$\nand" not in tex and "Every matrix has one row" not in notation
    sentences = handout_context(spec, HandoutOptions())["notation"]
    assert len(sentences) >= 5
    for sentence in sentences:
        assert sentence in notation and str(prose_html(sentence)) in page
        assert sentence.replace(r"\theta_{l-1}", "b_{l-1}").replace("thetas", "biases (thetas)") in markdown
    for phrase, layer_types in NOTATION_PHRASES.items():
        assert (phrase in notation) == bool(types & layer_types), (phrase, types)


# ---------------------------------------------------------------- --ask on a CNN
def asked_titles(student: str) -> list[str]:
    """The titles of the steps the student sheet's back-propagation shows (none without one)."""
    start = student.find(r"\section*{Back-propagation")
    return [] if start < 0 else re.findall(r"\\steptitle\{(.*)\}", student[start:])


def asked_headings(student: str) -> list[str]:
    """The matrices a student sheet asks entries of (``Entries of $\\delta_{1}[0,:,:,2]$``)."""
    return re.findall(r"Entries of \$(.*?)\$ \(", student)


#: an entry asked of the example, the answer key's quantity and the entries of it that are asked,
#: the step that asks them, the matrices asked (the sheet prints a feature map's or a kernel's
#: arrays one matrix per sample and channel, or per input channel and filter)
CNN_ASKS = [
    ("delta1", "delta1", np.s_[:], r"Error gradient $\delta_{1}",
     [rf"\delta_{{1}}[{n},:,:,{c}]" for n in range(2) for c in range(3)]),
    ("W0", "W0_updated", np.s_[:], r"Update of $W_{0}$",
     [rf"W_{{0}}^{{\mathrm{{new}}}}[:,:,0,{c}]" for c in range(3)]),
    ("W0[0:2,0:2,0,0]", "W0_updated", np.s_[0:2, 0:2, 0:1, 0:1], r"Update of $W_{0}$",
     [r"W_{0}^{\mathrm{new}}[:,:,0,0]"]),
    ("delta1[1,0:2,1:4,0:2]", "delta1", np.s_[1:2, 0:2, 1:4, 0:2], r"Error gradient $\delta_{1}",
     [r"\delta_{1}[1,:,:,0]", r"\delta_{1}[1,:,:,1]"]),
]


@pytest.mark.parametrize("entry, quantity, index, title, headings", CNN_ASKS)
def test_a_cnn_sheet_asks_for_entries_of_its_arrays(example, entry, quantity, index, title, headings):
    """``--ask`` on a CNN's arrays of four axes: one box per asked entry of the answer key's
    quantity, as the matrices the sheet prints the array as; only that step is asked."""
    from symbp.classroom.variants import answers
    from test_scaffolding import boxes
    spec, _ = example
    student = render_handouts(spec, HandoutOptions(ask=(entry,)))["student"]
    assert boxes(student) == np.asarray(answers(spec)[quantity])[index].size
    [shown] = asked_titles(student)
    assert shown.startswith(title) and asked_headings(student) == headings


def test_derive_asks_a_cnn_kernels_entries_in_every_output(tmp_path):
    """The CLI as a teacher runs it: the PDF shows the asked maps' boxes, the HTML page each
    asked matrix, the notebooks ask the same entries and the solution's are the answer key's."""
    from symbp.classroom.variants import answers
    out = tmp_path / "out"
    result = run_symbp("derive", str(EXAMPLE), "--no-check", "--pdf", "--html", "--notebook", "-o", str(out),
                       "--ask", "W0[0:2,0:2,0,0]", "--ask", "delta1")
    assert result.returncode == 0, result.stderr
    text = pdf_text(out / "cnn_6x6_student.pdf")
    assert "Entries of W0new [:, :, 0, 0]" in text and "Entries of δ1 [1, :, :, 2]" in text
    page = (out / "cnn_6x6_student.html").read_text()
    assert page.split("Back-propagation, from the output layer down")[1].count('class="line"') == 1 + 6   # a blank per asked matrix
    book = nbformat.read(out / "cnn_6x6_solution.ipynb", as_version=4)
    cell = next(c for c in book.cells if c.source.startswith("asked_1 = W0_updated[0:2, 0:2, 0:1, 0:1]"))
    shown = [float(v) for v in re.findall(r"-?\d+\.\d+", "".join(o["text"] for o in cell.outputs))]
    key = answers(load_spec(EXAMPLE))
    assert np.allclose(shown, np.asarray(key["W0_updated"])[0:2, 0:2, 0:1, 0:1].ravel(), atol=1e-8)
    assert any(c.source.startswith("asked_2 = delta1[0:2, 0:4, 0:4, 0:3]") for c in book.cells)


@pytest.mark.parametrize("entry, message", [
    ("W0[0:99,0]", "axis 0's indices 0..98 are outside 0..2 (shape 3 x 3 x 1 x 3; indices count from 0)"),
    ("delta1[0,0,0,0,0]", "an array of 4 axes has at most 4 indices (shape 2 x 4 x 4 x 3; 5 given)"),
])
def test_a_cnn_entry_outside_its_array_names_the_shape(entry, message):
    from symbp.errors import HandoutError
    with pytest.raises(HandoutError, match=re.escape(f"--ask {entry!r}: {message}")):
        render_handouts(load_spec(EXAMPLE), HandoutOptions(ask=(entry,)))


def test_every_backward_quantity_of_a_cnns_answer_key_can_be_asked(example):
    """Each delta, gradient and updated parameter the answer key names (a pooling layer's and
    Flatten's delta, the convolution's dW0, db0 among them) is a step the sheet can ask, its
    parameters by their layers' positions (W0, W3), and g below each layer as the sheet has it."""
    from symbp.classroom.variants import answer_names, answers
    from symbp.emit.codegen import derive_spec
    from test_scaffolding import boxes
    spec, trace = example
    model, key = derive_spec(spec), answers(spec)
    names = [name for name in answer_names(spec) if name.startswith(("delta", "d", "W", "b"))]
    assert {"delta2", "delta3", "dW0", "db0", "W0_updated", "W3_updated"} <= set(names)
    for name in [*names, "g1", "g2", "g3"]:
        student = render_handouts(spec, HandoutOptions(ask=(name,)), model)["student"]
        assert len(asked_titles(student)) == 1, name
        assert boxes(student) == np.size(key[name] if name in key else trace[name]), name


@pytest.mark.parametrize("entry, first_index", [("W1", 0), ("dW2", 1), ("fprime2", 0)])
def test_a_cnn_entry_it_has_no_step_for_names_what_it_has(entry, first_index, tmp_path):
    """exit 2, the entry asked and every quantity the sheet has, in the handout's numbering."""
    result = run_symbp("derive", str(EXAMPLE), "--no-check", "-o", str(tmp_path / "out"), "--ask", entry,
                       "--first-index", str(first_index))
    assert result.returncode == 2 and not (tmp_path / "out").exists()
    message = result.stderr.strip()
    assert message.startswith(f"symbp: --ask {entry!r}: the sheet has no {entry!r} to ask") and len(message.splitlines()) == 1
    n = first_index
    assert f"delta3, g2, delta2, g1, fprime1, delta1, dW{n}, db{n}, W{n}, b{n})" in message
    assert f"dW{3 + n}, db{3 + n}, g3, W{3 + n}, b{3 + n}" in message


def test_a_cnn_sheet_asks_for_a_map_and_withholds_the_forward_pass_from_its_layer(example):
    """``--ask a2`` (the answer key's pooled map): the forward pass is given up to layer 1, of
    layer 2 on only the rules and the asked map's boxes (max pooling's boxed input, its worked
    entry, z2 = a2 and everything computed from it are left out); the solution is unchanged."""
    from test_scaffolding import boxes
    spec, trace = example
    asked = render_handouts(spec, HandoutOptions(ask=("a2[0,:,:,1]",)))
    assert asked["solution"] == render_handouts(spec, HandoutOptions())["solution"]
    student = asked["student"]
    forward = student[student.index(r"\section*{Forward pass}"):student.index(r"\section*{Loss}")]
    assert boxes(student) == 4 and asked_headings(student) == [r"z_{2}[0,:,:,1]"]
    assert re.findall(r"\\steptitle\{(Layer [234])", forward) == ["Layer 2", "Layer 2", "Layer 3"]
    assert r"\mathrm{mask}_{2}" in forward and "work out\nthe rest of the forward pass yourself" in forward
    shown = numbers_in(forward)
    assert formatted(trace["z1"], trace["a1"]) <= shown                # layer 1 given
    assert r"\boxed" not in forward and not re.search(r"z_\{2\}\[\d,:,:,\d\] =", forward)   # a2 = a1's boxed maxima
    assert not formatted(trace["z4"], trace["a4"]) & shown
    assert asked_titles(student) == []                                  # no backward step asked
    assert "Back-propagation, from the output layer down" not in student   # nor its empty section


def test_a_cnn_sheet_asks_for_a_feature_map_after_its_layers_rule(example):
    from test_scaffolding import boxes
    spec, trace = example
    student = render_handouts(spec, HandoutOptions(ask=("a1[1,0:2,0:2,0]", "delta1[1,0:2,0:2,0]")))["student"]
    forward = student[student.index(r"\section*{Forward pass}"):student.index(r"\section*{Loss}")]
    assert boxes(student) == 4 + 4 and asked_headings(student) == [r"a_{1}[1,:,:,0]", r"\delta_{1}[1,:,:,0]"]
    assert "Back-propagation, from the output layer down" in student   # delta1 is asked there
    assert re.findall(r"\\steptitle\{(Layer \d)", forward) == ["Layer 1", "Layer 1", "Layer 2", "Layer 3"]
    assert not formatted(trace["z1"], trace["a1"][trace["a1"] != 0]) & numbers_in(forward)


def test_derive_asks_a_cnn_map_in_every_output(tmp_path):
    out = tmp_path / "out"
    result = run_symbp("derive", str(EXAMPLE), "--no-check", "--pdf", "--html", "--notebook", "-o", str(out),
                       "--ask", "a2[0,:,:,1]")
    assert result.returncode == 0, result.stderr
    assert "Entries of z2 [0, :, :, 1]" in pdf_text(out / "cnn_6x6_student.pdf")
    page = (out / "cnn_6x6_student.html").read_text()
    forward = page.split("<h2>Forward pass</h2>")[1].split("<h2>")[0]
    assert "work out the rest of the forward pass yourself" in forward and forward.count("<h4>Layer 2") == 2
    assert "from the output layer down" not in page   # only a map asked: no empty back-propagation section
    book = nbformat.read(out / "cnn_6x6_solution.ipynb", as_version=4)
    assert any(c.source.startswith("asked_1 = a2[0:1, 0:2, 0:2, 1:2]") for c in book.cells)


def test_an_unknown_quantity_names_the_forms_a_sheet_asks_for(tmp_path):
    result = run_symbp("derive", str(EXAMPLE), "--no-check", "-o", str(tmp_path / "out"), "--ask", "Q1")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("symbp: --ask 'Q1': 'Q' is not a quantity of the sheet (one of delta<l>, ")
    assert "a<l> (a CNN's map)" in result.stderr and "W1" not in result.stderr
