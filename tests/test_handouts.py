"""The LaTeX handouts compile, show every number of the worked step, and hide the answers.

The seed's numbers are checked against the seed notebook's printed output (external truth);
for other networks, against the generated module's forward, backward, step and train. Numbers are
read back from the PDFs with pdftotext.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from symbp.emit.codegen import module_source
from symbp.emit.handouts import HandoutOptions, render_handouts
from symbp.witnesses.module import load_module
from symbp.emit.latex import escape_latex, format_number
from symbp.io.pdf import TexFailed, compile_pdf
from symbp.spec import Spec, load_spec

# The seed notebook's printed output (sections 1.1-1.3), as printed.
SEED_LOSS = "0.4137"
SEED_DELTAS = ["0.14432633", "-0.33878922", "0.05013656",            # output layer
               "-0.44901899", "0.17211113", "0.22872531",            # hidden layer 2
               "0.55701915", "-0.73832976", "0.32417294"]            # hidden layer 1
SEED_UPDATED = [
    "-1.00817742", "1.11919554", "-0.0028407", "0.01083027", "-1.0254228", "1.10376226",
    "1.09451232", "0.01288169", "-1.00190633",                        # weights_2
    "0.08556737", "0.13387892", "0.09498634",                         # thetas_2
    "-0.98691951", "-0.80501381", "1.29333694", "1.32074994", "-1.00795355", "-0.81056979",
    "-0.81308049", "1.30501381", "-0.99333694",                       # weights_1
    "0.1449019", "0.08278889", "0.07712747",                          # thetas_1
    "0.94986828", "0.06644968", "-0.02917556", "-0.0668423", "1.08859957", "-1.03890075",
    "-1.03899134", "0.05168308", "-0.02269211", "-0.04456153", "-0.94093362", "0.97406616",
    "0.04429809", "0.17383298", "0.06758271",                         # thetas_0
]
SEED_FORWARD = ["0.29131261", "0.46211716", "-0.29131261", "0.56659243", "-0.7504016",
                "0.38022725", "0.14432633", "0.66121078", "0.05013656"]

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def pdf_text(pdf: Path) -> str:
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return text.replace("\u2212", "-")


def numbers_in(text: str) -> set[str]:
    return set(NUMBER.findall(text))


def formatted(*arrays) -> set[str]:
    return {format_number(v, 8) for array in arrays for v in np.ravel(array)}


def assert_no_overfull_boxes(log: str) -> None:
    assert "Overfull \\hbox" not in log, re.findall(r"Overfull \\hbox.*", log)


def compile_both(spec: Spec, folder: Path, options: HandoutOptions = HandoutOptions()) -> dict[str, str]:
    """Render and compile both handouts; the PDFs' text by kind (logs checked for overfull boxes)."""
    texts = {}
    for kind, tex in render_handouts(spec, options).items():
        path = folder / f"{spec.name}_{kind}.tex"
        path.write_text(tex)
        pdf, log = compile_pdf(path)
        assert_no_overfull_boxes(log)
        texts[kind] = pdf_text(pdf)
    return texts


# ---------------------------------------------------------------- the seed, through the CLI
@pytest.fixture(scope="module")
def seed_pdfs(tmp_path_factory):
    out = tmp_path_factory.mktemp("seed")
    from conftest import run_symbp
    result = run_symbp("derive", "-o", str(out), "--pdf", "--no-check", "--explain", "W1[2,0]",
                       "--explain", "theta2[1]")
    assert result.returncode == 0, result.stderr
    names = {p.name for p in out.iterdir()}
    assert {"cs4820_a7.py", "cs4820_a7_solution.tex", "cs4820_a7_student.tex",
            "cs4820_a7_solution.pdf", "cs4820_a7_student.pdf"} <= names
    return {kind: pdf_text(out / f"cs4820_a7_{kind}.pdf") for kind in ("solution", "student")}


def test_seed_solution_shows_the_seed_numbers(seed_pdfs):
    found = numbers_in(seed_pdfs["solution"])
    missing = [v for v in [SEED_LOSS, *SEED_DELTAS, *SEED_UPDATED, *SEED_FORWARD] if v not in found]
    assert not missing


def test_seed_explained_entries(seed_pdfs):
    text = seed_pdfs["solution"]
    spec = load_spec()
    module = load_module(module_source(spec), spec.name)
    grads = module.gradients(module.initial_params(), module.X, module.Y)
    found = numbers_in(text)
    assert format_number(grads["W1"][2, 0], 8) in found
    assert "-0.81308049" in found and "0.13387892" in found   # their updates, as the seed prints them


def test_seed_student_sheet_gives_the_forward_pass_but_no_answers(seed_pdfs):
    student = numbers_in(seed_pdfs["student"])
    assert set(SEED_FORWARD) <= student
    givens = formatted(*load_spec().initial_params().values(), load_spec().x, load_spec().y)
    leaked = [v for v in SEED_UPDATED + SEED_DELTAS
              if v in student and v not in set(SEED_FORWARD) | givens]
    assert not leaked
    assert SEED_LOSS in student    # the loss is given, as in the seed ("completed")


# ---------------------------------------------------------------- other depths, activations, losses
def small_spec(name, widths, activations, loss, x, y, batch_size=1, epochs=1, optimizer=None):
    rng = np.random.default_rng(7)
    layers = [{"units": units, "activation": act,
               "weights": np.round(rng.uniform(-1, 1, (fan_in, units)), 2).tolist(),
               "bias": np.round(rng.uniform(-0.3, 0.3, units), 2).tolist()}
              for fan_in, units, act in zip(widths, widths[1:], activations)]
    return Spec.from_dict({"name": name, "data": {"x": x, "y": y}, "layers": layers,
                           "loss": {"name": loss},
                           "optimizer": optimizer or {"name": "sgd", "learning_rate": 0.5},
                           "training": {"batch_size": batch_size, "epochs": epochs, "shuffle": False}})


OTHER_SPECS = {
    "sigmoid_mse": lambda: small_spec("sigmoid_mse", [2, 2, 2], ["sigmoid", "sigmoid"], "mean_squared_error",
                                      [[0.05, 0.1]], [[0.01, 0.99]]),
    "deep_bce": lambda: small_spec("deep_bce", [3, 4, 3, 2, 1], ["relu", "elu", "tanh", "sigmoid"],
                                   "binary_crossentropy",
                                   [[0.5, -0.2, 0.1], [0.3, 0.8, -0.6], [0.1, 0.1, 0.9]], [[1], [0], [1]],
                                   batch_size=2, epochs=3),
    "momentum_softmax_mse": lambda: small_spec(
        "momentum_softmax_mse", [3, 5, 3], ["softsign", "softmax"], "mean_squared_error",
        [[0.1, -0.2, 0.3], [0.4, 0.0, -0.1]], [[0, 1, 0], [1, 0, 0]], batch_size=2,
        optimizer={"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
}


@pytest.mark.parametrize("key", sorted(OTHER_SPECS))
def test_other_networks(key, tmp_path):
    spec = OTHER_SPECS[key]()
    module = load_module(module_source(spec), spec.name)
    params = module.initial_params()
    x, y = module.X[:spec.batch_size], module.Y[:spec.batch_size]
    outputs = module.forward(params, x)
    grads, deltas = module.backward(params, x, y)
    updated, _ = module.step(params, x, y)
    texts = compile_both(spec, tmp_path, HandoutOptions(explain=("W0[1,0]", "b1[0]")))
    solution, student = numbers_in(texts["solution"]), numbers_in(texts["student"])

    given = formatted(spec.x, spec.y, *params.values(), *outputs, module.loss(params, x, y))
    answers = formatted(*deltas, *grads.values(), *updated.values())
    assert not answers - solution
    assert given <= solution and given <= student
    assert not (answers - given) & student
    if spec.epochs * len(spec.x) > spec.batch_size:
        final, losses = module.train()
        assert not formatted(*final.values(), losses) - solution


# ---------------------------------------------------------------- hostile text
def test_hostile_title_prints_literally_and_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"
    title = rf"\input{{/etc/passwd}} \write18{{touch {marker}}} % & _ {{ $ # ^ ~ \\"
    data = load_spec().to_dict()
    data["title"] = title
    texts = compile_both(Spec.from_dict(data), tmp_path)
    def squeezed(text):  # pdftotext joins a word hyphenated at a line end: compare without both
        return re.sub(r"[\s-]", "", text)
    for text in texts.values():
        assert squeezed(title) in squeezed(text)
        assert "root:" not in text
    assert not marker.exists()


def test_escape_latex_leaves_no_command_or_group():
    escaped = escape_latex(r"\x{y}$%&#_^~")
    assert re.fullmatch(r"(\\text[a-z]+\{\}|\\[{}$%&#_]|[a-z])*", escaped)


def test_each_optimizer_assignment_is_shown_with_its_own_rule():
    spec = OTHER_SPECS["momentum_softmax_mse"]()   # weight decay, momentum slot, update
    solution = render_handouts(spec)["solution"]
    rules = set(re.findall(r"\\mathline\{(?:W_\{0\}|m_\{W_\{0\}\})\^\{\\mathrm\{new\}\} = (.*)\}$",
                           solution, flags=re.M))
    assert len(rules) == 3, rules


def test_bias_symbol_b_replaces_theta():
    spec = load_spec()
    solution = render_handouts(spec, HandoutOptions(bias_symbol="b"))["solution"]
    assert r"\theta" not in solution and "b_{0}" in solution
    assert r"\theta_{0}" in render_handouts(spec)["solution"]


# ---------------------------------------------------------------- user errors and TeX problems
@pytest.mark.parametrize("target, message", [("W9[0,0]", "no W9"), ("W0[4,0]", "shape (4, 3)"),
                                             ("b2[4]", "shape (4,)"), ("W0", "expected a weight")])
def test_bad_explain_target_is_an_input_error(target, message, tmp_path):
    from symbp.cli import main
    result = CliRunner().invoke(main, ["derive", "-o", str(tmp_path / "out"), "--no-check",
                                       "--explain", target])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_pdf_without_tex_says_how_to_install_it(tmp_path, monkeypatch):
    import symbp.io.pdf
    from symbp.cli import main
    monkeypatch.setattr(symbp.io.pdf.shutil, "which", lambda name: None)
    result = CliRunner().invoke(main, ["derive", "-o", str(tmp_path), "--pdf", "--no-check"])
    assert result.exit_code == 2
    assert "texlive-latex-recommended" in result.output
    assert not list(tmp_path.glob("*.pdf"))


def test_failed_compile_leaves_no_pdf(tmp_path):
    broken = tmp_path / "broken.tex"
    broken.write_text(r"\documentclass{article}\begin{document}\undefinedcommand\end{document}")
    with pytest.raises(TexFailed, match="undefinedcommand|Undefined control sequence"):
        compile_pdf(broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.tex"]


def test_missing_latex_package_is_named(tmp_path):
    needs = tmp_path / "needs.tex"
    needs.write_text(r"\documentclass{article}\usepackage{symbpnosuchpackage}\begin{document}x\end{document}")
    with pytest.raises(TexFailed, match=r"symbpnosuchpackage\.sty is not installed.*apt-get install"):
        compile_pdf(needs)
    assert not (tmp_path / "needs.pdf").exists()


def test_pdflatex_when_latexmk_is_missing(tmp_path, monkeypatch):
    import shutil
    import symbp.io.pdf
    real_which = shutil.which
    monkeypatch.setattr(symbp.io.pdf.shutil, "which", lambda name: None if name == "latexmk" else real_which(name))
    assert symbp.io.pdf.tex_command("x.tex")[0] == "pdflatex"
    doc = tmp_path / "plain.tex"
    doc.write_text(r"\documentclass{article}\begin{document}plain $x^2$\end{document}")
    pdf, _ = compile_pdf(doc)
    assert "plain" in pdf_text(pdf)


# ---------------------------------------------------------------- Unicode in titles
UNICODE_TITLE = "Back-prop \u2014 \u201cquoted\u201d \u2018x\u2019, \u03b4 and \u03c3, \u0141\u00f3d\u017a \u0150 \u2026 \u20ac"


def test_unicode_title_prints_in_the_pdf(tmp_path):
    """Dashes, curly quotes, Greek and accented Latin letters past Latin-1 print, not as '?'."""
    data = load_spec().to_dict()
    data["title"] = UNICODE_TITLE
    tex = render_handouts(Spec.from_dict(data), HandoutOptions())["student"]
    path = tmp_path / "unicode_student.tex"
    path.write_text(tex, encoding="utf-8")
    pdf, _ = compile_pdf(path)
    first_line = pdf_text(pdf).splitlines()[0]
    assert "?" not in first_line
    for piece in ("\u2014", "\u201cquoted\u201d", "\u2018x\u2019", "\u03b4", "\u03c3", "\u0141\u00f3d\u017a",
                  "\u0150", "\u20ac"):
        assert piece in first_line, (piece, first_line)
    assert "\u0150 . . . \u20ac" in first_line  # LaTeX's ellipsis: three spaced dots


@pytest.mark.parametrize("character, name", [("\U0001F600", "GRINNING FACE"),
                                             ("\u6f22", "CJK UNIFIED IDEOGRAPH-6F22")])
def test_a_character_without_a_glyph_is_named_in_a_warning(character, name, tmp_path):
    from symbp.cli import main
    data = load_spec().to_dict()
    data["title"] = f"Net {character}"
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(Spec.from_dict(data).to_toml(), encoding="utf-8")
    result = CliRunner().invoke(main, ["derive", str(spec_path), "-o", str(tmp_path / "out"), "--no-check"])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("symbp: warning: title")]
    assert len(warnings) == 1 and f"U+{ord(character):04X} {name}" in warnings[0]
    assert "prints there as '?'" in warnings[0]
    assert escape_latex(data["title"]) == "Net ?"


def test_a_title_of_many_characters_without_glyphs_is_one_warning():
    """180 CJK characters: one line naming the first three and counting the rest (was 180 lines)."""
    from symbp.emit.latex import glyph_warnings
    title = "".join(chr(0x4E00 + k) for k in range(180))
    [warning] = glyph_warnings(title, "title")
    assert warning.startswith("title: '\u4e00' (U+4E00 CJK UNIFIED IDEOGRAPH-4E00), '\u4e01' (U+4E01")
    assert "and 177 more characters have no glyph" in warning and warning.endswith("they print there as '?'")
    assert glyph_warnings("plain title", "title") == []


# ---------------------------------------------------------------- row sums inside piecewise rules
@pytest.mark.parametrize("output", ["linear", "relu"])
def test_cross_entropy_on_an_unclipped_output_works_its_row_sum_into_the_cases(output):
    """CCE on a linear or relu output (supported, with a warning): the clipped rule's cases
    compare p / rowsum(p), and the handout works that row sum out first; the sides it shows must
    be evaluated with the row sum's value (they raised NameError: rowsum1 before)."""
    spec = small_spec(f"cce_{output}", [2, 3], [output], "categorical_crossentropy",
                      [[0.5, 0.2], [0.9, -0.3]], [[0, 1, 0], [0.2, 0.3, 0.5]], batch_size=2)
    module = load_module(module_source(spec), spec.name)
    params = module.initial_params()
    outputs = module.forward(params, module.X)[-1]
    texts = render_handouts(spec, HandoutOptions(), module=module)
    quotients = outputs / outputs.sum(axis=1, keepdims=True)
    assert formatted(outputs.sum(axis=1, keepdims=True)) <= numbers_in(texts["solution"])
    assert formatted(quotients) <= numbers_in(texts["solution"])


#: a name only the generated module uses (trace's row-sum columns rowsum1, fprime1, parts, a1,
#: W0...): letters run straight into digits, where the handouts write a_{1}, W_{0}
INTERNAL_NAME = re.compile(r"(?<![\\A-Za-z_{])[A-Za-z]+[0-9]+\b|\bparts\[|\bfprime")

UNNORMALISED_OUTPUTS = [   # (loss, output activation, labels): the clipped and worked-out forms
    ("categorical_crossentropy", "softplus", [[0, 1, 0], [1, 0, 0]]),
    ("categorical_crossentropy", "sigmoid", [[0, 1, 0], [1, 0, 0]]),
    ("sparse_categorical_crossentropy", "softplus", [[1], [0]]),
    ("binary_crossentropy", "softplus", [[0, 1, 0], [1, 0, 1]]),
    ("huber", "linear", [[0.9, -2.5, 0.1], [1.0, 0.2, 3.0]]),
    ("mean_absolute_error", "tanh", [[0.9, -0.5, 0.1], [1.0, 0.2, -0.3]]),
]


@pytest.mark.parametrize("loss,output,y", UNNORMALISED_OUTPUTS, ids=lambda v: v if isinstance(v, str) else None)
def test_no_internal_name_reaches_a_handout(loss, output, y):
    """Every rule a handout prints names its quantities as the handout does (a_{1}, the row sum
    as rowsum(a_1)): none of the generated module's own names (a clipped CCE's side lines once
    printed the trace's column name rowsum1), and each side of a clip is shown once."""
    spec = small_spec("internal", [2, 3], [output], loss, [[0.5, -0.2], [0.1, 0.9]], y, batch_size=2)
    for kind, tex in render_handouts(spec).items():
        lines = [line for line in tex.splitlines() if line.startswith(r"\mathline")]
        assert lines and not [line for line in lines if INTERNAL_NAME.search(line)], kind
        assert not [line for previous, line in zip(lines, lines[1:]) if line == previous], kind


@pytest.mark.parametrize("command", [["derive", "--no-check"], ["variants", "-n", "2"]])
def test_a_tex_run_past_its_limit_is_an_input_error_that_says_so(command, tmp_path, symbp_cli):
    """--tex-timeout stops TeX: one screen saying the compile took longer than the limit and how
    to give it longer, exit 2 (as a TeX error), nothing written."""
    out = tmp_path / "out"
    run = symbp_cli(*command, "--pdf", "--tex-timeout", "0.01", "-o", str(out))
    assert run.returncode == 2, run.stderr
    assert "TeX took longer than 0.01 s (the limit)" in run.stderr and "--tex-timeout SECONDS" in run.stderr
    assert len(run.stderr.splitlines()) < 10 and "Traceback" not in run.stderr
    assert not out.exists()


@pytest.mark.parametrize("framework", ["keras", "torch"])
def test_gelu_constant_note_says_what_the_framework_computes_with(framework):
    """GELU's 1/sqrt 2: Keras computes with its float32 rounding (the note says so, naming Keras);
    PyTorch with the double M_SQRT1_2 (the note gives the value, and its float32 rounding for
    float32 runs, and names no rounding it computes with)."""
    data = load_spec(Path(__file__).parents[1] / "symbp" / "examples" / (
        "cs4820_a7_torch.toml" if framework == "torch" else "cs4820_a7.toml")).to_dict()
    data["layers"][0]["activation"] = "gelu"
    solution = render_handouts(Spec.from_dict(data))["solution"]
    if framework == "keras":
        assert "which Keras computes with" in solution
    else:
        assert r"\approx 0.7071067811865476$ (float32: $0.7071067690849304$)" in solution
        assert "computes with" not in solution
