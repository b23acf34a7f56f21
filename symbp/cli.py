"""The ``symbp`` command: parses arguments and calls the library (nothing heavy at start-up)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

DTYPES = click.Choice(["float64", "float32"])
# SPEC is checked by load_spec (missing, a folder, unreadable: exit 2 with one message)
spec_argument = click.argument("spec", required=False, type=click.Path(path_type=Path))


def scaffolding_options(command):
    """The student sheet's scaffolding, shared by derive and variants. Each flag overrides its
    key of the spec's [handout] table; a flag not given (None) leaves the table's value."""
    options = [
        click.option("--first-index", type=click.IntRange(0, 1), default=None,
                     help="Number the first layer's weights and thetas from 0 (W0 feeds z1, Keras's order; "
                          "the default) or 1 (W1, as textbooks do) in handouts and answer keys."),
        click.option("--digits", type=click.IntRange(1, 16), default=None,
                     help="Decimals of the numbers in the handouts (default 8; 4 for hand work)."),
        click.option("--ask", multiple=True, metavar="ENTRY",
                     help="Ask only these entries on the student sheet, in boxes a pen fits in, e.g. "
                          "'W1[0:2,0:3]' (the updated W1's rows 0-1, columns 0-2), delta2, dW1[0,1] (repeatable)."),
        click.option("--name-line/--no-name-line", default=None,
                     help="Put a name and ID line at the top of the student sheet."),
        click.option("--student-derivatives/--no-student-derivatives", default=None,
                     help="Show the SymPy derivative column of the layer table on the student sheet (default: shown)."),
        click.option("--student-rules/--no-student-rules", default=None,
                     help="Print the back-propagation rules in symbols on the student sheet (default: not)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _handout(**given) -> dict:
    """The scaffolding flags as the library's handout options (None: the spec's [handout] table)."""
    return {key: (tuple(value) or None) if key == "ask" else value for key, value in given.items()}


tex_timeout_option = click.option(
    "--tex-timeout", type=click.FloatRange(min=0, min_open=True), default=300, show_default=True,
    metavar="SECONDS", help="With --pdf: stop a TeX run that takes longer (exit 2, nothing written).")
INTERNAL_ERROR = 3
keras_options = [
    click.option("--from-keras", "from_keras", type=click.Path(dir_okay=False, path_type=Path),
                 help="Read the network from a saved Keras model (.keras) instead of SPEC."),
    click.option("--data", type=click.Path(dir_okay=False, path_type=Path),
                 help="Training data for --from-keras: .toml with a [data] table, or .npz with x and y."),
]


def from_keras_options(command):
    for option in reversed(keras_options):
        command = option(command)
    return command


class UsageProblem(click.ClickException):
    """A problem with the user's input: printed in one screen, exit status 2."""
    exit_code = 2

    def show(self, file=None):
        from .errors import printable
        click.echo(f"symbp: {printable(self.format_message())}", err=True)


class InternalError(click.ClickException):
    """A bug in symbp (or its libraries): one line instead of a traceback, exit status 3."""
    exit_code = INTERNAL_ERROR

    def show(self, file=None):
        click.echo(f"symbp: internal error: {self.format_message()}\n"
                   f"(a bug in symbp, not in your spec; rerun with --debug for the traceback)", err=True)


def _run(ctx: click.Context, action):
    """Call ``action``: input problems exit 2 with a message, other exceptions exit 3 with one
    line (``--debug``: the traceback instead)."""
    from .errors import InputError
    try:
        return action()
    except InputError as err:
        if ctx.obj.get("debug"):
            raise
        raise UsageProblem(str(err)) from None
    except (click.exceptions.Exit, click.ClickException, KeyboardInterrupt):
        raise
    except Exception as err:
        if ctx.obj.get("debug"):
            raise
        message = "".join(ch if ch.isprintable() else " " for ch in " ".join(str(err).split()))
        message = message[:200] + "..." if len(message) > 200 else message
        raise InternalError(f"{type(err).__name__}: {message}" if message else type(err).__name__) from None


def _load(spec_path, from_keras=None, data=None):
    if from_keras is not None:
        if spec_path is not None:
            raise UsageProblem("give either SPEC or --from-keras, not both")
        from .io.from_keras import spec_from_keras
        return spec_from_keras(from_keras, data)
    if data is not None:
        raise UsageProblem("--data goes with --from-keras (a spec has its own [data])")
    from .spec import load_spec
    return load_spec(spec_path)


def _witness_name(given: str | None, spec) -> str:
    """The witness ``--witness`` names, else the spec's framework (``framework = "torch"``:
    PyTorch); a framework's witness must be the spec's own (its names are read in that framework)."""
    from .rules import FRAMEWORKS
    if given is None:
        return spec.framework
    if given in FRAMEWORKS and given != spec.framework:
        raise UsageProblem(f"--witness {given}: the spec is written for {spec.framework} "
                           f"(framework = {spec.framework!r}); check it with --witness {spec.framework}")
    return given


def _warn(spec, handouts: bool = False) -> list[str]:
    """Print what Keras does surprisingly for this spec and, when ``handouts`` are written, the
    title's characters they cannot print (stderr; stdout stays the report)."""
    from .derivation.derive import loss_warnings
    warnings = list(loss_warnings(spec.loss.name, spec.layers[-1].activation, spec.framework))
    if handouts:
        from .emit.latex import glyph_warnings
        warnings += glyph_warnings(spec.title or spec.name, "title")
    for warning in warnings:
        click.echo(f"symbp: warning: {warning}", err=True)
    return warnings


def _witness(framework: str):
    """The registered witness of ``framework``; an unknown name is an input problem."""
    from .rules.registry import UnknownName
    from .witnesses.base import witness
    try:
        return witness(framework)
    except UnknownName as err:
        raise UsageProblem(f"--witness: {err}") from None


class Interrupted(click.ClickException):
    """Ctrl-C or SIGTERM after everything was cleaned up: the shell's status for that signal."""

    def __init__(self, status: int):
        super().__init__("interrupted")
        self.exit_code = status

    def show(self, file=None):
        click.echo("symbp: interrupted", err=True)


class EscapedUsageError(click.UsageError):
    """click's own usage error (an unknown option or command, a bad choice, an extra argument),
    its message with the user's text escaped as ours are (``errors.printable``): click quotes
    some values with repr but echoes others raw, and on a terminal an escape sequence in them
    would repaint or retitle it. Exit status 2, like every input problem."""

    def show(self, file=None):
        from .errors import printable
        if self.ctx is not None:
            hint = f"\nTry '{self.ctx.command_path} {self.ctx.help_option_names[0]}' for help." \
                if self.ctx.help_option_names else ""
            click.echo(printable(f"{self.ctx.get_usage()}{hint}\n"), err=True)
        click.echo(f"Error: {printable(self.format_message())}", err=True)


def _escaped_usage(call):
    """Run ``call``; click's usage errors come out as :class:`EscapedUsageError`."""
    try:
        return call()
    except EscapedUsageError:
        raise
    except click.UsageError as err:
        raise EscapedUsageError(err.format_message(), err.ctx) from None


class SymbpGroup(click.Group):
    """The command group; SIGTERM unwinds like Ctrl-C, and both exit 130 / 143, not click's 1;
    click's usage errors, the group's own and its commands', print escaped (EscapedUsageError)."""

    def make_context(self, info_name, args, parent=None, **extra):
        return _escaped_usage(lambda: super(SymbpGroup, self).make_context(info_name, args, parent, **extra))

    def invoke(self, ctx: click.Context):
        from .io.interrupts import Terminated, exit_status, terminate_as_exception
        terminate_as_exception()
        try:
            return _escaped_usage(lambda: super(SymbpGroup, self).invoke(ctx))
        except (KeyboardInterrupt, Terminated) as err:
            raise Interrupted(exit_status(err)) from None


@click.group(cls=SymbpGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show a traceback for every error.")
@click.version_option(package_name="symbp")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """symbp: symbolic back-propagation for dense and convolutional networks.

    SPEC is a TOML network spec; without it, commands use the built-in example
    (the CS 4820 assignment-7 network).

    Exit status: 0 done (check: everything matches), 1 the check found a mismatch,
    2 a problem with the input (spec, arguments, output folder), 3 an internal error,
    130 interrupted (Ctrl-C), 143 stopped (SIGTERM). A command that fails writes nothing.
    """
    ctx.ensure_object(dict)["debug"] = debug
    if debug:
        import os
        os.environ["SYMBP_DEBUG"] = "1"


@main.command()
@spec_argument
@click.option("-o", "--output", "directory", default="generated", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for <name>.py.")
@from_keras_options
@click.pass_context
def codegen(ctx, spec, directory, from_keras, data):
    """Write the generated NumPy module DIR/<name>.py for SPEC."""
    def action():
        from .emit.outputs import write_module
        loaded = _load(spec, from_keras, data)
        _warn(loaded)
        for path in write_module(loaded, directory):
            click.echo(f"wrote {path}")
    _run(ctx, action)


@main.command()
@spec_argument
@click.option("--dtype", type=DTYPES, default="float64", show_default=True,
              help="Precision of both runs (tolerance 1e-9 for float64, 1e-5 for float32, "
                   "times max(1, |value|)).")
@click.option("--json", "as_json", is_flag=True, help="Print only a JSON report on stdout.")
@click.option("--finite-differences", is_flag=True,
              help="Also compare the generated gradients with central differences of its loss.")
@click.option("--witness", "framework", default=None, metavar="FRAMEWORK",
              help="The framework that trains SPEC independently (a registered witness; "
                   "default: the spec's framework, keras or torch).")
@from_keras_options
@click.pass_context
def check(ctx, spec, dtype, as_json, finite_differences, framework, from_keras, data):
    """Train SPEC with a framework (Keras) and with the generated module; compare every parameter.

    Exit status 0 when everything matches, 1 when not.
    """
    def action():
        from .witnesses import compare
        loaded = _load(spec, from_keras, data)
        witness = _witness(_witness_name(framework, loaded))
        warnings = _warn(loaded)
        report = compare.check(loaded, dtype, witness=witness)
        result, text, match = report.to_json(), report.describe(loaded), report.match
        result["warnings"] = warnings
        if finite_differences:
            agreement = compare.check(loaded, "float64", witness=_witness("finite_differences"))
            result["finite_differences"] = agreement.to_json()
            text += "\n" + agreement.describe(loaded)
            match = match and agreement.match
            result["match"] = match
        click.echo(json.dumps(result, indent=2) if as_json else text)
        return match
    ctx.exit(0 if _run(ctx, action) else 1)


@main.command()
@spec_argument
@click.option("-o", "--output", "directory", default="out", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for everything written.")
@click.option("--no-check", is_flag=True, help="Skip the Keras check.")
@click.option("--dtype", type=DTYPES, default="float64", show_default=True)
@click.option("--pdf", is_flag=True, help="Compile the handouts with latexmk or pdflatex (no shell escape).")
@click.option("--explain", multiple=True, metavar="ENTRY",
              help="Expand one entry's gradient by the chain rule, e.g. W1[2,0] or b0[1] (repeatable).")
@click.option("--bias-symbol", type=click.Choice(["theta", "b"]), default="theta", show_default=True,
              help="Write the biases as theta (as the course does) or b.")
@click.option("--notebook", is_flag=True,
              help="Also write the assignment notebooks DIR/<name>_student.ipynb and <name>_solution.ipynb.")
@click.option("--html", is_flag=True,
              help="Also write the handouts as web pages DIR/<name>_solution.html and <name>_student.html.")
@click.option("--nbgrader", is_flag=True, help="Notebooks with nbgrader cell metadata and autograder cells (implies --notebook).")
@tex_timeout_option
@scaffolding_options
@from_keras_options
@click.pass_context
def derive(ctx, spec, directory, no_check, dtype, pdf, explain, bias_symbol, notebook, html, nbgrader,
           tex_timeout, from_keras, data, **scaffolding):
    """Write everything SPEC can produce into DIR (module, LaTeX handouts, notebooks), then check it against Keras."""
    def action():
        from .io.files import write_all
        from .emit.outputs import compiled_handouts, rendered_outputs
        loaded = _load(spec, from_keras, data)
        _warn(loaded, handouts=True)
        # everything in memory first (the check and the PDFs included): a failure writes nothing
        files = rendered_outputs(loaded, directory, notebook=notebook or nbgrader, explain=explain,
                                 bias_symbol=bias_symbol, html=html, nbgrader=nbgrader, **_handout(**scaffolding))
        report = None
        if not no_check:
            from .witnesses import compare
            report = compare.check(loaded, dtype, witness=loaded.framework)
        if pdf:
            files.update(compiled_handouts(loaded, files, directory, tex_timeout))
        write_all(files)
        for path in files:
            click.echo(f"wrote {path}")
        if report is None:
            return True
        click.echo(report.describe(loaded, bias_symbol))
        return report.match
    ctx.exit(0 if _run(ctx, action) else 1)


@main.command()
@spec_argument
@click.option("-n", "--count", default=30, show_default=True, type=click.IntRange(min=1),
              help="Students in the class.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed of the draws: the same seed gives the same class.")
@click.option("-o", "--output", "directory", default="variants", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for the class.")
@click.option("--notebook", is_flag=True, help="Also write each student's notebooks.")
@click.option("--nbgrader", is_flag=True, help="Notebooks with nbgrader cell metadata and autograder cells (implies --notebook).")
@click.option("--check", is_flag=True, help="Verify every student's answers against Keras model.fit.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Worker processes (default: one per core).")
@click.option("--pdf", is_flag=True, help="Also compile every handout to PDF (all cores, one precompiled preamble).")
@tex_timeout_option
@scaffolding_options
@click.pass_context
def variants(ctx, spec, count, seed, directory, notebook, nbgrader, check, jobs, pdf, tex_timeout, **scaffolding):
    """Write one assignment per student (DIR/students/student_NN/, to hand out; the solutions in
    DIR/solutions/student_NN/) and the class's answer key.

    What varies comes from SPEC's [variants] table. --check draws a student whose answers do
    not match Keras again (3 times at most); exit status 1 when one still does not match.
    """
    def action():
        from .emit.latex import glyph_warnings
        from .classroom.variants import KEY_CSV, KEY_JSON, SOLUTIONS, STUDENTS, write_variants
        loaded = _load(spec)
        for warning in glyph_warnings(loaded.title or loaded.name, "title"):   # in every handout
            click.echo(f"symbp: warning: {warning}", err=True)
        result = write_variants(loaded, count, seed, directory, notebook=notebook or nbgrader, check=check,
                                jobs=jobs, progress=True, nbgrader=nbgrader, pdf=pdf, tex_timeout=tex_timeout,
                                **_handout(**scaffolding))
        click.echo(f"wrote {count} variants: hand out {directory / STUDENTS}/<student>/; keep "
                   f"{directory / SOLUTIONS}/ and the answer key {directory / KEY_JSON}, {directory / KEY_CSV}")
        if check:
            worst = max(result.witness_diff.values())
            from .classroom.variants import TOLERANCE
            failed = [s for s, d in result.witness_diff.items() if not d <= TOLERANCE.relative]
            witness = "PyTorch" if loaded.framework == "torch" else "Keras"
            click.echo(f"{witness} check: {count - len(failed)} of {count} match (largest difference "
                       f"{worst:.3g} of max(1, |value|); allowed {TOLERANCE.relative:g})"
                       + (f"; NOT matching: {', '.join(failed)}" if failed else ""))
        return result.match
    ctx.exit(0 if _run(ctx, action) else 1)


@main.command("export")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(["moodle", "canvas", "prairielearn"]))
@click.argument("class_dir", metavar="CLASS", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--output", "out", required=True, type=click.Path(path_type=Path),
              help="moodle: a .xml file; canvas: a .zip file; prairielearn: the course's questions/ folder.")
@click.option("--quantities", default="", metavar="NAMES",
              help="Comma-separated quantities of the answer key to ask (default: all), e.g. loss,dW1,db1.")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path),
              help="prairielearn: the spec the class was drawn from (default: the built-in example).")
@click.option("--moodle-format", type=click.Choice(["numerical", "cloze"]), default=None,
              help="moodle: one numerical question per entry (default) or one cloze question per student.")
@click.pass_context
def export(ctx, fmt, class_dir, out, quantities, spec_path, moodle_format):
    """Turn a class written by `symbp variants` into questions for an LMS: every student's
    questions carry their id and their own numbers from CLASS/answer_key.json."""
    def action():
        from .classroom.export import exported_files
        from .io.files import write_all
        spec = None if spec_path is None else _load(spec_path)
        names = tuple(q.strip() for q in quantities.split(",") if q.strip())
        files = exported_files(fmt, class_dir, out, names, spec, moodle_format)
        write_all(files)
        for path in files:
            click.echo(f"wrote {path}")
    _run(ctx, action)


def _points(ctx, param, values):
    """--points NAME=P (NAME a quantity or a glob such as 'dW*'), repeated."""
    out = []
    for value in values:
        name, sep, points = value.partition("=")
        try:
            out.append((name.strip(), float(points)))
        except ValueError:
            raise click.BadParameter(f"expected NAME=POINTS (e.g. 'dW*=2'), found {value!r}") from None
        if not sep or not name.strip() or not out[-1][1] >= 0:
            raise click.BadParameter(f"expected NAME=POINTS with POINTS >= 0, found {value!r}")
    return tuple(out)


@main.command()
@click.argument("class_dir", metavar="CLASS", type=click.Path(file_okay=False, path_type=Path))
@click.argument("submissions", metavar="SUBMISSIONS", type=click.Path(path_type=Path))
@click.option("-o", "--output", "directory", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for grades.json, grades.csv and feedback/.")
@click.option("--rtol", default=1e-3, show_default=True, type=click.FloatRange(min=0), help="Relative tolerance.")
@click.option("--atol", default=1e-4, show_default=True, type=click.FloatRange(min=0), help="Absolute tolerance.")
@click.option("--carried-forward-credit", default=1.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of a quantity's points for an answer right from the student's own earlier answers.")
@click.option("--points", multiple=True, callback=_points, help="NAME=POINTS for a quantity or glob (default 1 each).")
@click.option("--gradescope", is_flag=True, help="Also write Gradescope's results.json (one submission).")
@click.option("--timeout", default=60, show_default=True, type=click.IntRange(min=1),
              help="Seconds a notebook cell may run.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Notebooks run at once (default: one per core).")
@click.pass_context
def grade(ctx, class_dir, submissions, directory, rtol, atol, carried_forward_credit, points, gradescope,
          timeout, jobs):
    """Grade SUBMISSIONS (a CSV in the answer key's format, or a folder of <student>.ipynb) of
    the class CLASS (written by `symbp variants`): a status, score and diagnosed mistake per quantity."""
    def action():
        from .classroom.grading import GradingOptions
        from .classroom.gradebook import grade_class, grade_files
        from .errors import printable
        from .io.files import write_all
        options = GradingOptions(rtol, atol, carried_forward_credit, points)
        result = grade_class(class_dir, submissions, options, timeout=timeout, jobs=jobs)
        write_all(grade_files(result, directory, gradescope))
        for problem in result.problems:
            click.echo(f"symbp: warning: {printable(problem)}", err=True)
        errors = sum(1 for g in result.grades.values() if g.error)
        click.echo(f"graded {len(result.grades)} students into {directory}"
                   + (f" ({errors} with input problems: see grades.json)" if errors else ""))
    _run(ctx, action)


@main.command("spec")
@click.option("--from-keras", "from_keras", type=click.Path(dir_okay=False, path_type=Path),
              help="The saved Keras model (.keras) to describe.")
@click.option("--from-torch", "from_torch", type=click.Path(dir_okay=False, path_type=Path),
              help="A saved PyTorch state_dict (.pt) of Linear layers, read with weights_only=True.")
@click.option("--layers", "layer_activations", metavar="ACT,ACT,...",
              help="With --from-torch: each Linear layer's activation (linear for none).")
@click.option("--loss", default="CrossEntropyLoss", show_default=True, help="With --from-torch: the torch.nn loss.")
@click.option("--optimizer", default="SGD", show_default=True, help="With --from-torch: the torch.optim class.")
@click.option("--data", type=click.Path(dir_okay=False, path_type=Path),
              help="Training data: .toml with a [data] table, or .npz with x and y "
                   "(without it the spec gets placeholder data to replace).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the spec here (default: print it).")
@click.pass_context
def spec_command(ctx, from_keras, from_torch, layer_activations, loss, optimizer, data, output):
    """Write the spec (TOML) of a saved Keras Sequential model of Dense layers, or of a PyTorch
    state_dict of Linear layers."""
    def action():
        if (from_keras is None) == (from_torch is None):
            raise UsageProblem("give one of --from-keras MODEL.keras or --from-torch WEIGHTS.pt")
        if from_torch is not None:
            if not layer_activations:
                raise UsageProblem("--from-torch needs --layers: each Linear layer's activation (tanh,linear)")
            from .io.from_torch import spec_toml_from_torch
            text = spec_toml_from_torch(from_torch, layer_activations.split(","), data, loss, optimizer)
        else:
            from .io.from_keras import spec_toml_from_keras
            text = spec_toml_from_keras(from_keras, data)
        if output is None:
            click.echo(text, nl=False)
            return
        from .io.files import write_atomically
        write_atomically(output, text)
        click.echo(f"wrote {output}")
    _run(ctx, action)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
