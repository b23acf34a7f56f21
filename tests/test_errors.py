"""Bad input gets exit status 2 and one message naming the file, the place, what was expected
and what was found; a failing command writes nothing; symbp's own bugs get one line, exit 3."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import pytest
import tomli_w
from click.testing import CliRunner

from symbp.io import files as files_module
from symbp.cli import main
from symbp.io.files import OutputError, write_all
from symbp.spec import LIMITS, Spec, SpecError, load_spec

VALID = {
    "name": "small",
    "data": {"x": [[0.5, -1.0], [1.0, 2.0]], "y": [[1.0, 0.0], [0.0, 1.0]]},
    "layers": [
        {"units": 3, "activation": "tanh", "weights": [[1.0, 0.0, -1.0], [0.5, 0.5, 0.5]],
         "bias": [0.1, 0.1, 0.1]},
        {"units": 2, "activation": "softmax"},
    ],
    "loss": {"name": "categorical_crossentropy"},
    "optimizer": {"name": "sgd", "learning_rate": 0.1},
    "training": {"batch_size": 1, "epochs": 1},
}


def valid() -> dict:
    return copy.deepcopy(VALID)


def problems_of(data: dict) -> list[str]:
    """Every problem the validator reports for ``data``, as 'where: message' lines."""
    with pytest.raises(SpecError) as info:
        Spec.from_dict(data, "spec.toml")
    return [str(p) for p in info.value.problems]


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def write_spec(folder: Path, data: dict, name: str = "spec.toml") -> Path:
    path = folder / name
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def assert_input_error(result, *fragments: str) -> str:
    """Exit 2, no traceback, one screen, mentions every fragment; returns the message."""
    message = result.output
    assert result.exit_code == 2, message
    assert "Traceback" not in message
    assert len(message.splitlines()) <= 30
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def test_the_valid_spec_is_valid():
    assert Spec.from_dict(valid()).widths == [2, 3, 2]


# ---------------------------------------------------------------- TOML and the file itself
def test_toml_syntax_error_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "n"\n\n[data\nx = [[1]]\n', encoding="utf-8")
    message = assert_input_error(run("codegen", str(path), "-o", str(tmp_path / "out")),
                                 str(path), "line 3")
    assert "TOML syntax error" in message
    assert not (tmp_path / "out").exists()


def test_unclosed_array_says_where(tmp_path):
    path = tmp_path / "open.toml"
    path.write_text('name = "n"\nlayers = [\n', encoding="utf-8")
    assert_input_error(run("codegen", str(path)), str(path), "end of document")


@pytest.mark.parametrize("make, expected", [
    (lambda d: d / "missing.toml", "no such file"),
    (lambda d: d, "is a directory"),
    (lambda d: (d / "latin1.toml").write_bytes(b'name = "caf\xe9"\n') and d / "latin1.toml", "not UTF-8"),
    (lambda d: (d / "nested.toml").write_text("x = " + "[" * 5000 + "]" * 5000) and d / "nested.toml",
     "nested too deeply"),
])
def test_unusable_spec_files(tmp_path, make, expected):
    path = make(tmp_path)
    assert_input_error(run("codegen", str(path), "-o", str(tmp_path / "out")), str(path), expected)


def test_unreadable_spec_file(tmp_path, monkeypatch):
    path = write_spec(tmp_path, valid())

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))
    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(SpecError, match="not readable"):
        load_spec(path)


def test_an_endless_file_is_not_read_to_the_end(tmp_path):
    with pytest.raises(SpecError, match="is a character device, not a file"):
        load_spec("/dev/zero")   # refused before it is opened: a device can stream forever
    huge = tmp_path / "huge.toml"
    with huge.open("wb") as handle:
        handle.truncate(17 * 2**20)   # sparse: 17 MB of zeros without writing them
    with pytest.raises(SpecError, match="larger than"):
        load_spec(huge)


def test_a_table_at_the_top_is_required():
    with pytest.raises(SpecError, match="expected a table"):
        Spec.from_dict([1, 2, 3])


# ---------------------------------------------------------------- each class of spec problem
def mutate(path: str, value):
    """A corruption: set (or with value DELETE, remove) the key at a dotted path like layers.1.units."""
    def apply(data):
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
        return data
    return apply


DELETE = object()

CASES = {
    # unknown or misspelt keys, with the nearest valid name
    "misspelt top key": (mutate("titel", "x"), "titel", "did you mean 'title'"),
    "misspelt layer key": (mutate("layers.0.activaton", "relu"), "layers[0].activaton",
                           "did you mean 'activation'"),
    "misspelt training key": (mutate("training.epoch", 2), "training.epoch", "did you mean 'epochs'"),
    "misspelt optimizer argument": (mutate("optimizer.learning_rat", 0.1), "optimizer.learning_rat",
                                    "did you mean 'learning_rate'"),
    "misspelt data key": (mutate("data.z", [[1.0]]), "data.z", "unknown key"),
    # wrong types
    "units a string": (mutate("layers.0.units", "3"), "layers[0].units", "expected an integer, found a string"),
    "units a float": (mutate("layers.1.units", 2.5), "layers[1].units", "expected an integer, found 2.5"),
    "x a string": (mutate("data.x", "abc"), "data.x", "expected a non-empty 2-D array"),
    "a label a string": (mutate("data.y.1.0", "one"), "data.y[1][0]", "expected a finite number, found 'one'"),
    "layers a table": (mutate("layers", {"units": 2}), "layers", "expected an array of tables"),
    "a layer a number": (mutate("layers.0", 5), "layers[0]", "expected a table"),
    "seed a float": (mutate("seed", 1.5), "seed", "expected an integer"),
    "boolean as a number": (mutate("optimizer.learning_rate", True), "optimizer.learning_rate",
                            "expected a number, found a boolean"),
    "nesterov a number": (mutate("optimizer.nesterov", 1), "optimizer.nesterov", "expected true or false"),
    "loss a string": (mutate("loss", "mse"), "loss", "expected a table, found a string"),
    "title a number": (mutate("title", 3), "title", "expected a string"),
    "ragged rows": (mutate("data.x", [[1.0, 2.0], [1.0]]), "data.x", "same non-zero length"),
    # missing required keys
    "no name": (mutate("name", DELETE), "name", "missing"),
    "no data": (mutate("data", DELETE), "data", "missing"),
    "no data.y": (mutate("data.y", DELETE), "data.y", "missing"),
    "no layers": (mutate("layers", DELETE), "layers", "missing"),
    "no units": (mutate("layers.1.units", DELETE), "layers[1].units", "missing"),
    "no loss": (mutate("loss", DELETE), "loss", "missing"),
    "empty loss table": (mutate("loss", {}), "loss.name", "missing"),
    "no optimizer name": (mutate("optimizer", {"learning_rate": 0.1}), "optimizer.name", "missing"),
    # shapes that do not chain
    "first kernel rows": (mutate("layers.0.weights", [[1.0, 0.0, 0.0]] * 3), "layers[0].weights",
                          "expected shape (2 x 3), found 3 x 3"),
    "second kernel rows": (mutate("layers.1.weights", [[1.0, 0.0]] * 4), "layers[1].weights",
                           "expected shape (3 x 2), found 4 x 2"),
    "kernel columns": (mutate("layers.0.weights", [[1.0, 0.0]] * 2), "layers[0].weights",
                       "expected shape (2 x 3), found 2 x 2"),
    "bias length": (mutate("layers.0.bias", [0.1, 0.1]), "layers[0].bias", "expected 3 numbers"),
    # labels and samples
    "label width": (mutate("data.y", [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), "data.y",
                    "has 3 columns but the output layer (layers[1]) has 2 units"),
    "sample counts": (mutate("data.y", [[1.0, 0.0]]), "data.y", "has 1 sample but data.x has 2"),
    # non-finite numbers
    "nan input": (mutate("data.x.0.1", float("nan")), "data.x[0][1]", "expected a finite number, found nan"),
    "inf weight": (mutate("layers.0.weights.1.2", float("-inf")), "layers[0].weights[1][2]",
                   "expected a finite number, found -inf"),
    "nan bias": (mutate("layers.0.bias.0", float("nan")), "layers[0].bias[0]", "finite"),
    "inf learning rate": (mutate("optimizer.learning_rate", float("inf")), "optimizer.learning_rate", "finite"),
    "integer too big for a float": (mutate("data.x.0.0", 10 ** 400), "data.x[0][0]", "finite"),
    # empty layer list
    "empty layers": (mutate("layers", []), "layers", "empty"),
    # unknown names
    "unknown activation": (mutate("layers.0.activation", "tanhh"), "layers[0].activation",
                           "unknown activation 'tanhh' (did you mean 'tanh'"),
    "unknown loss": (mutate("loss.name", "msee"), "loss.name", "unknown loss 'msee' (did you mean 'mse'"),
    "unknown optimizer": (mutate("optimizer.name", "sgdd"), "optimizer.name",
                          "unknown optimizer 'sgdd' (did you mean 'sgd'"),
    "unknown initializer": (mutate("layers.1.kernel_initializer", "glorot_uniformm"),
                            "layers[1].kernel_initializer", "did you mean 'glorot_uniform'"),
    # non-positive numbers
    "zero learning rate": (mutate("optimizer.learning_rate", 0), "optimizer.learning_rate", "must be positive"),
    "negative learning rate": (mutate("optimizer.learning_rate", -0.1), "optimizer.learning_rate", "positive"),
    "zero batch size": (mutate("training.batch_size", 0), "training.batch_size", "must be positive"),
    "negative epochs": (mutate("training.epochs", -2), "training.epochs", "must be positive"),
    "zero units": (mutate("layers.0.units", 0), "layers[0].units", "must be positive"),
    "negative seed": (mutate("seed", -1), "seed", "must be 0 or more"),
    "momentum above one": (mutate("optimizer.momentum", 1.5), "optimizer.momentum", "between 0 and 1"),
    "shuffle": (mutate("training.shuffle", True), "training.shuffle", "must be false"),
    # labels a loss cannot take
    "cce rows not distributions": (mutate("data.y", [[1.0, 1.0], [0.0, 1.0]]), "data.y",
                                   "categorical_crossentropy needs label rows that sum to 1"),
    "bce labels above one": (lambda d: mutate("data.y", [[2.0, 0.0], [0.0, 1.0]])(
        mutate("loss.name", "binary_crossentropy")(d)), "data.y", "between 0 and 1"),
    # names that are not safe identifiers
    "name with a dash": (mutate("name", "my-net"), "name", "Python identifier"),
    "name with code": (mutate("name", "x; import os"), "name", "Python identifier"),
    "name a keyword": (mutate("name", "class"), "name", "Python identifier"),
    "name a path": (mutate("name", "../evil"), "name", "Python identifier"),
    "name too long": (mutate("name", "a" * 65), "name", "at most 64"),
    "name shadows a module": (mutate("name", "os"), "name", "shadow"),
    "name shadows numpy": (mutate("name", "numpy"), "name", "shadow"),
    "title with a newline": (mutate("title", "one\ntwo"), "title", "one line"),
    # sizes past a teaching example
    "too many units": (mutate("layers.0.units", LIMITS["units"] + 1), "layers[0].units", "at most"),
    "too many epochs": (mutate("training.epochs", LIMITS["epochs"] + 1), "training.epochs", "at most"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_problem_names_where_and_what(case):
    corrupt, where, fragment = CASES[case]
    reported = problems_of(corrupt(valid()))
    assert any(line.startswith(f"{where}:") and fragment in line for line in reported), reported


def test_all_problems_of_one_spec_are_reported_together(tmp_path):
    data = valid()
    chosen = ["misspelt top key", "unknown activation", "bias length", "zero batch size",
              "unknown loss", "nan input", "name with a dash"]
    for case in chosen:
        data = CASES[case][0](data)
    path = write_spec(tmp_path, data)
    message = assert_input_error(run("codegen", str(path), "-o", str(tmp_path / "out")), str(path))
    assert f"{len(chosen)} problems" in message
    for case in chosen:
        where, fragment = CASES[case][1:]
        assert re.search(rf"^  - {re.escape(where)}: .*{re.escape(fragment)}", message, re.M), (case, message)


def test_many_problems_still_fit_one_screen():
    data = valid()
    data["layers"] = [{"units": 2, "activaton": "x", "bais": [1]} for _ in range(20)]
    with pytest.raises(SpecError) as info:
        Spec.from_dict(data, "big.toml")
    assert len(info.value.problems) > SpecError.SHOWN
    assert len(str(info.value).splitlines()) == SpecError.SHOWN + 2
    assert "more" in str(info.value).splitlines()[-1]


def test_hostile_keys_are_shown_escaped():
    data = valid()
    data["\x1b[31mred\nline"] = 1
    (line,) = problems_of(data)
    assert "\x1b" not in line and "\n" not in line


# ---------------------------------------------------------------- output folders
def test_output_folder_that_is_a_file(tmp_path):
    (tmp_path / "taken").write_text("mine")
    result = run("codegen", "-o", str(tmp_path / "taken"))
    assert result.exit_code == 2 and "is a file" in result.output and "Traceback" not in result.output
    assert (tmp_path / "taken").read_text() == "mine"


def test_output_folder_below_a_file(tmp_path):
    (tmp_path / "taken").write_text("mine")
    assert_input_error(run("codegen", "-o", str(tmp_path / "taken" / "sub")), "taken is a file, not a folder")


def test_output_file_that_is_a_folder(tmp_path):
    (tmp_path / "cs4820_a7.py").mkdir()
    assert_input_error(run("codegen", "-o", str(tmp_path)), "is a folder")


def test_unwritable_output_folder(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "out"))
    monkeypatch.setattr(files_module.tempfile, "mkstemp", refuse)
    assert_input_error(run("codegen", "-o", str(tmp_path / "out")), "Permission denied")
    assert not (tmp_path / "out").exists()  # the folder symbp made for it is gone again


# ---------------------------------------------------------------- nothing half-written
def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def previous_outputs(tmp_path):
    out = tmp_path / "out"
    result = run("derive", "--no-check", "-o", str(out))
    assert result.exit_code == 0, result.output
    (out / "notes.txt").write_text("the user's own file")
    return out, snapshot(out)


def test_a_failing_derive_leaves_the_folder_byte_identical(tmp_path, previous_outputs):
    out, before = previous_outputs
    data = valid()
    data["name"] = "cs4820_a7"
    data["layers"][0]["activation"] = "nope"
    result = run("derive", str(write_spec(tmp_path, data)), "-o", str(out), "--no-check")
    assert result.exit_code == 2
    assert snapshot(out) == before


def test_a_check_that_crashes_writes_nothing(tmp_path, previous_outputs, monkeypatch):
    out, before = previous_outputs
    data = valid()
    data["name"] = "cs4820_a7"

    def broken_check(*args, **kwargs):
        raise RuntimeError("keras went away")
    monkeypatch.setattr("symbp.witnesses.compare.check", broken_check)
    result = run("derive", str(write_spec(tmp_path, data)), "-o", str(out))
    assert result.exit_code == 3
    assert "internal error" in result.output and "keras went away" in result.output
    assert "--debug" in result.output and "Traceback" not in result.output
    assert snapshot(out) == before


def test_debug_shows_the_exception(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr("symbp.emit.outputs.module_source", broken)
    assert run("codegen", "-o", "unused").exit_code == 3
    result = run("--debug", "codegen", "-o", "unused")
    assert isinstance(result.exception, RuntimeError)
    assert not Path("unused").exists()


def test_debug_raises_input_errors_too(tmp_path):
    result = run("--debug", "codegen", str(tmp_path / "missing.toml"))
    assert isinstance(result.exception, SpecError)


def test_all_or_nothing_when_one_of_several_files_fails(tmp_path):
    first, second = tmp_path / "a.txt", tmp_path / "blocked" / "b.txt"
    first.write_text("old")
    (tmp_path / "blocked").write_text("a file where a folder should be")
    with pytest.raises(OutputError, match="blocked is a file"):
        write_all({first: "new", second: "new"})
    assert first.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "blocked"]


def test_an_interrupted_write_leaves_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "module.py"
    target.write_text("previous")
    real_fdopen = os.fdopen

    class Interrupting:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            raise KeyboardInterrupt

    monkeypatch.setattr(files_module.os, "fdopen", lambda fd, mode: Interrupting(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        write_all({target: "x" * 1000})
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["module.py"]


# ---------------------------------------------------------------- real processes
@pytest.mark.parametrize("content, fragment", [
    ('name = "n"\n[data\n', "line 2"),
    ('name = "n"\nnmae = 1\n', "did you mean 'name'"),
])
def test_real_runs_print_no_traceback(tmp_path, symbp_cli, content, fragment):
    path = tmp_path / "spec.toml"
    path.write_text(content, encoding="utf-8")
    result = symbp_cli("codegen", str(path), "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and fragment in result.stderr and str(path) in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["check", "--json"], ["check"], ["derive"], ["codegen"]])
def test_every_command_reports_input_errors_the_same_way(tmp_path, command):
    data = valid()
    data["layers"][1]["units"] = "two"
    path = write_spec(tmp_path, data)
    result = CliRunner().invoke(main, [*command, str(path), *(["-o", str(tmp_path / "out")]
                                                             if command[0] != "check" else [])])
    assert result.exit_code == 2 and result.stdout == ""
    assert "layers[1].units: expected an integer, found a string" in result.stderr
    assert not (tmp_path / "out").exists()
