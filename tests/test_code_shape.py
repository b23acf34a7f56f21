"""The code-shape bar, checked on symbp/ with ``ast`` (issue 12, STYLE.md: units fit on a screen).

* no function over ``MAX_FUNCTION_LINES`` lines and no class over ``MAX_CLASS_LINES`` (templates
  are not Python and are not walked);
* no ``eval(`` / ``exec(`` outside the one function that loads the generated module;
* no parsing of a parameter name by position (``name[0]`` for its kind, ``name[1:]`` for its
  layer): :class:`symbp.derivation.naming.ParamName` holds both.

A unit is named ``path::Qualified.name`` (``symbp/spec/validate.py::check_layer``).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "symbp"
MAX_FUNCTION_LINES = 60
MAX_CLASS_LINES = 200

#: the one place that runs code: the generated module (our own template's output), loaded to train
EXEC_ALLOWED = {"symbp/witnesses/module.py::load_module"}

#: units allowed past the bar, by kind ("long", "name parsing"): none. An entry that is no longer
#: an offender fails :func:`test_the_allowance_lists_only_offenders`.
ALLOWANCE = {"long": set(), "name parsing": set()}

#: a variable holding a parameter's name is called ``name`` or ``<something>_name`` (``self.name``,
#: ``param_name``); indexing one at [0] or slicing it [1:] is parsing it (a list ``names`` is not)
_NAME_SUFFIX = "name"


class _Walker(ast.NodeVisitor):
    """Every unit's length, every eval/exec call and every name[0] / name[1:], by qualified unit."""

    def __init__(self, path: str):
        self.path, self.stack = path, []
        self.long: list[tuple[str, int, int]] = []    # (unit, lines, limit)
        self.executes: list[str] = []
        self.name_parsing: list[str] = []

    def unit(self) -> str:
        return f"{self.path}::{'.'.join(self.stack) or '<module>'}"

    def _scope(self, node, limit: int) -> None:
        self.stack.append(node.name)
        lines = node.end_lineno - node.lineno + 1
        if lines > limit:
            self.long.append((self.unit(), lines, limit))
        self.generic_visit(node)
        self.stack.pop()

    def visit_FunctionDef(self, node):
        self._scope(node, MAX_FUNCTION_LINES)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        self._scope(node, MAX_CLASS_LINES)

    def visit_Call(self, node):
        func = node.func
        if (isinstance(func, ast.Name) and func.id in ("eval", "exec")) or (
                isinstance(func, ast.Attribute) and func.attr in ("eval", "exec") and _is_builtins(func.value)):
            self.executes.append(self.unit())
        self.generic_visit(node)

    def visit_Subscript(self, node):
        if _is_a_name(node.value) and _is_first_or_rest(node.slice):
            self.name_parsing.append(self.unit())
        self.generic_visit(node)


def _is_builtins(node) -> bool:
    return isinstance(node, ast.Name) and node.id == "builtins"


def _is_a_name(node) -> bool:
    """``name``, ``param_name``, ``self.name``, ``str(name)``: something holding a parameter's name."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str" and node.args:
        return _is_a_name(node.args[0])
    word = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
    return word.lower().endswith(_NAME_SUFFIX)


def _is_first_or_rest(index) -> bool:
    """``[0]`` (its kind's letter) or ``[1:]`` (its layer's number)."""
    if isinstance(index, ast.Constant):
        return index.value == 0 and not isinstance(index.value, bool)
    return (isinstance(index, ast.Slice) and index.upper is None and index.step is None
            and isinstance(index.lower, ast.Constant) and index.lower.value == 1)


def walk(source: str, path: str) -> _Walker:
    walker = _Walker(path)
    walker.visit(ast.parse(source))
    return walker


def walk_package() -> list[_Walker]:
    return [walk(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
            for path in sorted(PACKAGE.rglob("*.py"))]


def _allowed(kind: str) -> set[str]:
    return ALLOWANCE.get(kind, set())


def test_no_function_over_60_lines_and_no_class_over_200():
    long = [f"{unit}: {lines} lines (at most {limit})" for walker in walk_package()
            for unit, lines, limit in walker.long if unit not in _allowed("long")]
    assert not long, "units past the bar:\n" + "\n".join(long)


def test_no_eval_or_exec_outside_loading_the_generated_module():
    found = [unit for walker in walk_package() for unit in walker.executes if unit not in EXEC_ALLOWED]
    assert not found, f"eval/exec in {found}"


def test_no_parameter_name_parsed_by_position():
    found = [unit for walker in walk_package() for unit in walker.name_parsing
             if unit not in _allowed("name parsing")]
    assert not found, f"name[0] / name[1:] in {found}: use symbp.derivation.naming.ParamName"


def test_the_allowance_lists_only_offenders():
    walkers = walk_package()
    found = {"long": {unit for w in walkers for unit, _, _ in w.long},
             "name parsing": {unit for w in walkers for unit in w.name_parsing}}
    stale = {kind: units - found[kind] for kind, units in ALLOWANCE.items()}
    assert not any(stale.values()), f"no longer offenders, remove them from the allowance: {stale}"
    assert {unit for w in walkers for unit in w.executes} == EXEC_ALLOWED


def test_the_walker_finds_what_it_is_for():
    """Each rule catches its offender (so a pass above is not a walker that sees nothing)."""
    body = "\n".join(f"    x{k} = {k}" for k in range(MAX_FUNCTION_LINES))
    source = (f"def long():\n{body}\n\ndef short():\n    return 1\n\n"
              "class Kind:\n    def of(self, name):\n        return name[0], str(name)[1:], name[:-4], names[0], self.parameters[0]\n"
              "    def run(self, text):\n        exec(text)\n        return builtins.eval(text), model.eval(), re.compile(text).sub('', text)\n")
    walker = walk(source, "m.py")
    assert [unit for unit, _, _ in walker.long] == ["m.py::long"]
    assert walker.name_parsing == ["m.py::Kind.of", "m.py::Kind.of"]
    assert walker.executes == ["m.py::Kind.run", "m.py::Kind.run"]
    huge_class = "class Big:\n" + "\n".join(f"    y{k} = {k}" for k in range(MAX_CLASS_LINES))
    assert [unit for unit, _, _ in walk(huge_class, "b.py").long] == ["b.py::Big"]


#: what the derivation (SymPy's rules composed) may import of symbp: the rules, its own modules,
#: and the NumPy-only leaf the kink search shares with PrairieLearn; never a presenter
#: (emit, classroom), a framework witness, file input/output or the command line
DERIVATION_MAY_IMPORT = {"symbp.rules", "symbp.derivation", "symbp.standalone_draws", "symbp.wording", "symbp.errors"}


def symbp_imports(path: Path) -> set[str]:
    """The symbp modules ``path`` imports (relative imports resolved), anywhere in the file."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found |= {f"{module}.{alias.name}" if not node.module else module for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.split(".")[0] == "symbp"}


def test_the_derivation_imports_no_presenter():
    allowed = lambda name: any(name == a or name.startswith(a + ".") for a in DERIVATION_MAY_IMPORT)
    found = {f"{path.name}: {name}" for path in sorted((PACKAGE / "derivation").glob("*.py"))
             for name in symbp_imports(path) if not allowed(name)}
    assert not found, found
    kinks = symbp_imports(PACKAGE / "derivation" / "kinks.py")
    assert "symbp.standalone_draws" in kinks and "symbp.rules" in kinks   # the walker sees relative imports
