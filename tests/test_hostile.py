"""Nothing from a spec runs: strings reach the generated module only as repr'd constants, names
only as validated identifiers, numbers only as float literals."""

from __future__ import annotations

import ast
import copy
import difflib

import pytest

from symbp.emit.codegen import module_source
from symbp.witnesses.module import load_module
from symbp.spec import Spec, SpecError

BASE = {
    "name": "hostile",
    "title": "A plain title",
    "data": {"x": [[0.5, -1.0]], "y": [[0.25]]},
    "layers": [{"units": 1, "activation": "linear", "weights": [[0.5], [0.25]], "bias": [0.0]}],
    "loss": {"name": "mse"},
    "optimizer": {"name": "sgd", "learning_rate": 0.1},
}

PAYLOAD = "__import__('pathlib').Path('PWNED').touch()"

#: titles a spec may carry (printable, one line) that would break or run code if pasted into source
ACCEPTED_TITLES = [
    'He said "hi"',
    "It's Bob's network",
    '"""; ' + PAYLOAD + '; """',
    "'''" + PAYLOAD + "'''",
    "back\\slash \\n not a newline \\",
    '\\"""',
    "{{ jinja }} {% for x in y %} ${x} %(x)s {0}",
    "ends with a backslash \\",
    "naïve Σ unicode — ok",
]

#: titles that cannot be one line of printable text
REJECTED_TITLES = ["one\ntwo", "carriage\rreturn", "tab\there", "nul\x00", "escape \x1b[2J",
                   "line\u2028separator", "next\x85line", "x" * 201]


def spec_with(**changes) -> Spec:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return Spec.from_dict(data)


def string_constants(source: str) -> list[tuple[int, str]]:
    return [(node.lineno, node.value) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


@pytest.mark.parametrize("title", ACCEPTED_TITLES)
def test_a_title_reaches_the_module_only_as_a_repr_constant(title, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plain = module_source(spec_with())
    source = module_source(spec_with(title=title))
    tree = ast.parse(source)  # still valid Python
    # the only difference from the plain title's module: the TITLE line and the docstring's first
    changed = [line for line in difflib.ndiff(plain.splitlines(), source.splitlines())
               if line.startswith("+ ")]
    assert f"+ TITLE = {title!r}" in changed
    assert len(changed) <= 2
    # the title is one string constant, assigned to TITLE; the docstring holds it only verbatim-safe
    holders = [value for _, value in string_constants(source) if title in value]
    docstring = ast.get_docstring(tree, clean=False)
    assert holders.count(title) == 1 and all(v in (title, docstring) for v in holders)
    if title in docstring:
        assert not any(ch in title for ch in "\\\"'")
    module = load_module(source, "hostile")
    assert module.TITLE == title
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("title", REJECTED_TITLES)
def test_titles_that_are_not_one_printable_line_are_rejected(title):
    with pytest.raises(SpecError, match="title"):
        spec_with(title=title)


@pytest.mark.parametrize("name", [
    "x\nimport os", "__import__('os')", "a.b", "../escape", "/abs/path", "x y", "x;y", "x-y",
    "1st", "", "class", "None", "ñame", "x\u200b", "os", "sys", "numpy", "np", "__init__", "__main__",
    "a" * 65, 7, ["x"],
])
def test_names_that_are_not_safe_identifiers_are_rejected(name):
    with pytest.raises(SpecError) as info:
        spec_with(name=name)
    assert [p.where for p in info.value.problems] == ["name"]


def test_the_name_appears_only_as_an_identifier(tmp_path):
    source = module_source(spec_with(name="my_net_2"))
    assert {value for _, value in string_constants(source) if "my_net_2" in value} <= {
        ast.get_docstring(ast.parse(source), clean=False)}


def test_spec_numbers_reach_the_module_as_float_literals():
    # extreme but finite values round-trip exactly through the printed literals
    values = [[5e-324, -1.7976931348623157e308]]
    spec = spec_with(data={"x": values, "y": [[0.1]]})
    module = load_module(module_source(spec), "hostile")
    assert module.X.tolist() == values
    assert module.X.dtype.kind == "f"


def test_hostile_strings_in_a_spec_file_never_run(tmp_path, symbp_cli):
    """Through the real command: a TOML file whose strings are Python and shell."""
    spec = tmp_path / "spec.toml"
    spec.write_text(
        'name = "ok_name"\n'
        f"title = '''\"\"\"; {PAYLOAD}; $(touch PWNED2) `touch PWNED3`'''\n"
        '[data]\nx = [[1.0]]\ny = [[1.0]]\n[[layers]]\nunits = 1\n'
        '[loss]\nname = "mse"\n[optimizer]\nname = "sgd"\n', encoding="utf-8")
    result = symbp_cli("codegen", str(spec), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    load_module((tmp_path / "out" / "ok_name.py").read_text(encoding="utf-8"), "ok_name")
    assert not any((tmp_path / name).exists() for name in ("PWNED", "PWNED2", "PWNED3"))
    bad = tmp_path / "bad.toml"
    bad.write_text(spec.read_text().replace('"ok_name"', '"x; import os"'), encoding="utf-8")
    result = symbp_cli("codegen", str(bad), "-o", str(tmp_path / "out2"), cwd=tmp_path)
    assert result.returncode == 2 and "name" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out2").exists()
