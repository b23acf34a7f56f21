"""Messages that help (issue 10 item 6) and names or text that reach other programs safely
(issue 11 item 5): each message names the fix, text echoed from the user cannot drive the
terminal, and nothing waits on a FIFO."""

from __future__ import annotations

import copy
import os
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from symbp.cli import main
from symbp.errors import UnusableInput, printable
from symbp.witnesses.report import CheckReport, Comparison
from symbp.spec import Spec, SpecError, load_spec
from symbp.wording import suggest

VALID = {
    "name": "small",
    "data": {"x": [[0.5, -1.0], [1.0, 2.0], [0.0, 1.0]], "y": [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]},
    "layers": [{"units": 2, "activation": "softmax"}],
    "loss": {"name": "categorical_crossentropy"},
    "optimizer": {"name": "sgd", "learning_rate": 0.1},
}


def problems(**changes) -> list[str]:
    """The validator's problems for VALID with ``changes`` (``a__b`` sets data["a"]["b"])."""
    data = copy.deepcopy(VALID)
    for key, value in changes.items():
        *tables, last = key.split("__")
        table = data
        for name in tables:
            table = table[name]
        table[last] = value
    with pytest.raises(SpecError) as info:
        Spec.from_dict(data, "spec.toml")
    return [str(p) for p in info.value.problems]


# ---------------------------------------------------------------- issue 10 item 6
def test_a_flat_label_array_is_shown_as_the_rows_it_must_be():
    [message] = problems(data__y=[0, 1, 2])
    assert message.startswith("data.y: ") and "2-D" in message and "[[0], [1], [2]]" in message
    assert "found an array" not in message


def test_lr_suggests_learning_rate():
    [message] = problems(optimizer__lr=0.1)
    assert message.startswith("optimizer.lr: ") and "did you mean 'learning_rate'" in message


def test_cross_entropy_suggests_the_categorical_losses_first():
    [message] = problems(loss__name="cross_entropy")
    assert "did you mean 'categorical_crossentropy' or 'sparse_categorical_crossentropy'" in message


def test_suggestions_come_from_aliases_then_edit_distance():
    assert suggest("lr", ["learning_rate", "momentum"]) == ["learning_rate"]
    assert suggest("learnig_rate", ["learning_rate", "momentum"]) == ["learning_rate"]
    assert suggest("beta1", ["beta_1", "beta_2"])[0] == "beta_1"
    assert suggest("zzz", ["learning_rate"]) == []


def test_class_indices_with_categorical_crossentropy_point_to_the_sparse_loss():
    found = problems(data__y=[[0], [1], [1]])
    assert any("sparse_categorical_crossentropy" in p and "[0, 1]" in p for p in found), found


def test_counts_are_singular_when_one():
    found = problems(data__y=[[0.5, 0.5, 0.0]] * 3)
    assert any("has 3 columns" in p and "has 2 units" in p for p in found), found
    found = problems(layers=[{"units": 1, "activation": "sigmoid"}], loss={"name": "mse"})
    assert any("has 2 columns" in p and "has 1 unit" in p and "1 units" not in p for p in found), found
    found = problems(data__y=[[1.0]] * 3, loss={"name": "mse"})
    assert any("has 1 column " in p for p in found), found


def test_a_schedule_is_named_with_the_right_article():
    from symbp.io.from_keras import _optimizer

    class SGD:  # a loaded optimizer whose learning rate is a schedule, as Keras's get_config gives it
        def get_config(self):
            return {"name": "SGD", "learning_rate": {"class_name": "ExponentialDecay", "config": {}}}

    class Model:
        optimizer = SGD()

    with pytest.raises(UnusableInput, match="is an ExponentialDecay; "):
        _optimizer(Model(), "net.keras", float32=False)


def test_the_check_report_calls_the_biases_by_the_chosen_symbol():
    spec = load_spec()
    value = np.zeros((1, 1))
    report = CheckReport("float64", 1e-9, [Comparison("b0", value, value, 0.0, True)])
    assert "biases (thetas) in" in report.describe(spec)
    text = report.describe(spec, "b")
    assert "biases in" in text and "theta" not in text


# ---------------------------------------------------------------- issue 11 item 5
@pytest.mark.parametrize("name", ["tomli_w", "nbformat", "pytest", "_pytest"])
def test_a_name_importable_here_is_refused(name):
    """Not a blocklist: any installed top-level module (Keras's optree, absl, ml_dtypes;
    IPython) would be shadowed by <name>.py in the user's folder."""
    [message] = problems(name=name)
    assert message.startswith("name: ") and "shadow" in message


def test_a_module_written_earlier_in_the_current_folder_does_not_block_its_name(tmp_path, monkeypatch):
    (tmp_path / "earlier_net.py").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", *sys.path])
    spec = Spec.from_dict({**copy.deepcopy(VALID), "name": "earlier_net"}, "spec.toml")
    assert spec.name == "earlier_net"


def test_escape_sequences_in_an_echoed_file_name_are_shown_escaped(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["codegen", "x\x1b]0;PWNED\x07.toml"])
    assert result.exit_code == 2
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "x\\x1b]0;PWNED\\x07.toml" in result.output


def test_printable_keeps_lines_and_letters():
    assert printable("a\u202eb\n\u00e9\x00") == "a\\u202eb\n\u00e9\\x00"


def test_a_fifo_as_spec_exits_2_at_once(tmp_path, symbp_cli):
    fifo = tmp_path / "spec.toml"
    os.mkfifo(fifo)
    result = symbp_cli("codegen", str(fifo), "-o", str(tmp_path / "out"), timeout=60)
    assert result.returncode == 2 and "FIFO" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_fifo_or_device_as_data_or_model_is_refused(tmp_path):
    from symbp.io.from_keras import load_data, load_model
    fifo = tmp_path / "data.npz"
    os.mkfifo(fifo)
    with pytest.raises(UnusableInput, match="FIFO"):
        load_data(fifo)
    with pytest.raises(UnusableInput, match="FIFO"):
        load_model(fifo)
    with pytest.raises(UnusableInput, match="character device"):
        load_data(os.devnull)


def test_a_complex_npz_is_refused_not_truncated(tmp_path):
    from symbp.io.from_keras import load_data
    np.savez(tmp_path / "data.npz", x=np.array([[1 + 2j, 0.5]]), y=np.array([[1.0]]))
    with pytest.raises(UnusableInput, match=r"array x holds complex numbers"):
        load_data(tmp_path / "data.npz")


def test_a_keras_file_that_is_not_a_zip_says_so(tmp_path):
    from symbp.io.from_keras import load_model
    path = tmp_path / "model.keras"
    path.write_text("not a model")
    with pytest.raises(UnusableInput, match="not a saved Keras model .*zip"):
        load_model(path)


# ---------------------------------------------------------------- issue 10 item 7
def test_the_module_docstring_states_the_training_keras_defaults_to():
    from symbp.emit.codegen import module_source
    spec = Spec.from_dict(copy.deepcopy(VALID), "spec.toml")   # no [training] table
    docstring = module_source(spec).split('"""')[1]
    assert "model.fit(batch_size=32, epochs=1, shuffle=False)" in docstring
    assert "Keras's defaults, batch size 32 and 1 epoch" in docstring


RED = "\x1b[31m"


@pytest.mark.parametrize("args", [
    ["check", "spec.toml", "extra" + RED],          # an extra argument (click echoed it raw)
    ["bogus" + RED],                                 # an unknown command
    ["--bogus" + RED],                               # an unknown option of the group
    ["check", "--nope" + RED],                       # an unknown option of a command
    ["check", "--dtype", RED],                       # a bad choice
    ["derive", "--digits", "9" + RED],               # a bad number
    ["check", "missing" + RED + ".toml"],            # a missing file
    ["export", "moodle", "no-class" + RED, "-o", "q.xml"],
], ids=lambda args: " ".join(args).encode("unicode_escape").decode())
def test_click_s_usage_errors_echo_the_user_s_text_escaped(args, tmp_path, monkeypatch):
    """Kept on a terminal (color=True keeps what click.echo would strip in a pipe): no escape
    sequence from an argument reaches it, the text is shown as \\x1b[31m, and the status is 2."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args, color=True)
    assert result.exit_code == 2, result.output
    assert "\x1b" not in result.output
    assert "\\x1b[31m" in result.output
