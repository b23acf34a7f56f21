"""The HTML presenter of the worked solution (:mod:`symbp.emit.worked_solution`).

It writes the same items as the LaTeX presenter (it is one: the rules in symbols and with their
numbers filled in come from :class:`~symbp.emit.handout_latex.LatexPresenter`'s lines), as MathML
(:mod:`symbp.emit.mathml`): a page that needs no network and no script. Each step gets an anchor;
the line with its result links back to the step's rule (``#<step>-rule``), so every number of the
solution points at the rule that produced it. The student page is built from the steps' blank
versions only: the answers are not in its source. ``templates/{solution,student}.html.j2``
print the :class:`HtmlStep` and :class:`HtmlSection` this returns; the spec's title and name
reach the page only through the templates' autoescaping.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import Markup

from .handout_latex import LatexPresenter
from .mathml import PLACEHOLDER, blank_matrix_mathml, latex_to_mathml, matrix_mathml, prose_html
from .worked_solution import Equation, Section, Step


@dataclass
class HtmlStep:
    id: str
    title: Markup
    rule: list[Markup]          # the rule in symbols (the anchor #<id>-rule)
    work: list[Markup]          # the rule with numbers, its parts
    result: list[Markup]        # the line with the result (links back to the rule)
    blank: list[Markup] = field(default_factory=list)
    rules: list[Markup] = field(default_factory=list)   # the rules in symbols (student scaffolding)
    asked: bool = False                                  # a sheet that asks for entries asks this step's


@dataclass
class HtmlSection:
    title: Markup
    intro: Markup
    steps: list[HtmlStep]

    @property
    def asked(self) -> bool:
        return any(step.asked for step in self.steps)


class HtmlPresenter(LatexPresenter):
    """LaTeX lines with every matrix of numbers as a placeholder, then MathML with the matrices in."""

    def __init__(self, digits: int, param_tex, asked=None):
        super().__init__(digits, param_tex, asked)
        self.inserts: dict[str, str] = {}
        self.count = 0
        self.anchors: dict[str, str] = {}     # an equation's left-hand side -> its step's anchor

    def _insert(self, mathml: str) -> str:
        token = PLACEHOLDER.format(len(self.inserts))
        self.inserts[token] = mathml
        return rf"\text{{{token}}}"

    def m(self, values, marked=None) -> str:
        return self._insert(matrix_mathml(values, self.digits, marked))

    def blank(self, shape: tuple) -> str:
        return self._insert(blank_matrix_mathml(shape))

    def math(self, tex: str) -> Markup:
        return Markup(latex_to_mathml(tex, self.inserts))

    def html_step(self, step: Step) -> HtmlStep:
        """The step's lines: the first is its rule, the last its result (one line: both)."""
        latex = self.step(step)
        self.count += 1
        self.anchors.update({item.lhs: f"step-{self.count}" for item in step.items if isinstance(item, Equation)})
        lines = [self.math(line) for line in latex.lines]
        rule, work, result = (lines[:1], lines[1:-1], lines[-1:]) if len(lines) > 1 else (lines, [], [])
        blank = [self.math(line) for line in latex.blank]
        if latex.asked is not None:   # the asked entries: per asked matrix a blank of the selection's shape
            table = latex.asked
            columns = [c for group in table.groups for c in group]
            blank = [self.math(rf"{table.entries(at, _span(table.rows), _span(columns), ', ')} = "
                               rf"{self._insert(blank_matrix_mathml((len(table.rows), len(columns))))}")
                     for at in table.maps]
        return HtmlStep(f"step-{self.count}", Markup(prose_html(step.title)), rule, work, result, blank,
                        [self.math(line) for line in latex.rules], latex.asked is not None)

    def html_section(self, section: Section) -> HtmlSection:
        return HtmlSection(Markup(prose_html(section.title)), Markup(prose_html(section.intro)),
                           [self.html_step(step) for step in section.steps])


def _span(indices: list[int]) -> str:
    """Consecutive indices as NumPy writes their slice: 0{:}3 (one index: itself)."""
    return str(indices[0]) if len(indices) == 1 else f"{indices[0]}{{:}}{indices[-1] + 1}"


def html_context(spec, options, model=None, module=None) -> dict:
    """Everything the HTML templates print, every value prepared here (MathML as Markup)."""
    from .handouts import (architecture, asked_quantities, constant_notes, given_forward, network_notation,
                           updated_slices, worked_solution)
    work = worked_solution(spec, options, model, module)
    model, notation = work.numbers.model, work.numbers.notation
    asked = asked_quantities(options, work)
    html = HtmlPresenter(options.digits, notation.param, asked)
    steps_per_epoch = -(-len(spec.x) // spec.batch_size)
    inline = lambda tex: Markup(latex_to_mathml(tex, html.inserts, display="inline"))   # noqa: E731
    return {
        "title": spec.title or spec.name, "name": spec.name,
        "architecture": architecture(spec),
        "loss_name": model.loss.rule.name, "optimizer_name": model.optimizer.rule.name,
        "bias_word": "thetas" if options.bias_symbol == "theta" else "biases",
        "bias_noun": "theta" if options.bias_symbol == "theta" else "bias",
        "layers": [{**row, "forward": inline(row["forward"]), "derivative": inline(row["derivative"]),
                    "activation": model.layers[i].activation.rule.name}
                   for i, row in enumerate(work.tables.layer_table())],
        "shapes": [{**row, "layer": Markup(prose_html(row["layer"])), "shape": inline(row["shape"])}
                   for row in (work.tables.shape_table() if model.has_indexed_layers else [])],
        "notation": [Markup(prose_html(sentence)) for sentence in network_notation(model, notation, options)],
        "givens": [html.html_step(step) for step in work.givens],
        "constants": [Markup(prose_html(note)) for note in constant_notes(model, spec.framework)],
        "hyperparameters": [(Markup(prose_html(name)), inline(f"{symbol} = {value}"), Markup(prose_html(note)))
                            for name, symbol, value, note in work.optimizer.hyperparameters()],
        "update_rule": [html.math(line) for line in work.optimizer.update_rule()],
        "samples": len(spec.x), "batch_size": spec.batch_size, "epochs": spec.epochs,
        "steps": spec.epochs * steps_per_epoch, "batch_rows": len(work.numbers.x),
        "forward": (forward := [html.html_step(step) for step in work.forward]),
        "student_forward": (student_forward := [forward[k] for k in given_forward(work.forward, asked)]),
        "forward_asked": any(step.asked for step in student_forward),
        "loss_intro": Markup(prose_html(work.loss_intro)),
        "loss": [html.html_step(step) for step in work.loss],
        "backprop": (backprop := [html.html_section(section) for section in work.backprop]),
        "backprop_asked": any(section.asked for section in backprop),
        "explained": [html.html_step(step) for step in work.explained],
        "updated": [(inline(notation.param(name) + label), inline(html.m(before[index])),
                     inline(html.m(after[index])), html.anchors.get(notation.param(name) + r"^{\mathrm{new}}"))
                    for name, before, after in work.updated for index, label in updated_slices(before)],
        "trained": None if work.trained is None else [html.html_step(step) for step in work.trained],
        "digits": options.digits,
        "asking": bool(options.ask), "student_rules": options.student_rules,
    }


def render_html_handouts(spec, options, model=None, module=None) -> dict[str, str]:
    """{"solution": HTML, "student": HTML} for ``spec`` (``module``: its loaded generated module)."""
    from .render import html_env, render
    context = html_context(spec, options, model, module)
    env = html_env()
    return {kind: render(env, f"{kind}.html.j2", **context) for kind in ("solution", "student")}


def html_handout_paths(spec, directory) -> dict[str, Path]:
    """DIR/<name>_solution.html, DIR/<name>_student.html."""
    return {kind: Path(directory) / f"{spec.name}_{kind}.html" for kind in ("solution", "student")}
