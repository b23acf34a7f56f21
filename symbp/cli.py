"""The ``symbp`` command: parses arguments and calls the library (nothing heavy at start-up)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

DTYPES = click.Choice(["float64", "float32"])
spec_argument = click.argument("spec", required=False, type=click.Path(dir_okay=False, path_type=Path))


class UsageProblem(click.ClickException):
    """A problem with the user's input: printed in one screen, exit status 2."""
    exit_code = 2

    def show(self, file=None):
        click.echo(f"symbp: {self.format_message()}", err=True)


def _run(ctx: click.Context, action):
    """Call ``action``; input problems become exit 2 with a message (``--debug``: traceback)."""
    from .errors import InputError
    try:
        return action()
    except InputError as err:
        if ctx.obj.get("debug"):
            raise
        raise UsageProblem(str(err)) from None


def _load(spec_path):
    from .spec import load_spec
    return load_spec(spec_path)


def _warn(spec) -> list[str]:
    """Print what Keras does surprisingly for this spec (stderr; stdout stays the report)."""
    from .derive import loss_warnings
    warnings = list(loss_warnings(spec.loss["name"], spec.layers[-1].activation))
    for warning in warnings:
        click.echo(f"symbp: warning: {warning}", err=True)
    return warnings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show a traceback for input errors.")
@click.version_option(package_name="symbp")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """symbp: symbolic back-propagation for dense networks.

    SPEC is a TOML network spec; without it, commands use the built-in example
    (the CS 4820 assignment-7 network).
    """
    ctx.ensure_object(dict)["debug"] = debug
    if debug:
        import os
        os.environ["SYMBP_DEBUG"] = "1"


@main.command()
@spec_argument
@click.option("-o", "--output", "directory", default="generated", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for <name>.py.")
@click.pass_context
def codegen(ctx, spec, directory):
    """Write the generated NumPy module DIR/<name>.py for SPEC."""
    def action():
        from .outputs import write_module
        loaded = _load(spec)
        _warn(loaded)
        path = write_module(loaded, directory)
        click.echo(f"wrote {path}")
    _run(ctx, action)


@main.command()
@spec_argument
@click.option("--dtype", type=DTYPES, default="float64", show_default=True,
              help="Precision of both runs (tolerance 1e-9 for float64, 1e-5 for float32).")
@click.option("--json", "as_json", is_flag=True, help="Print only a JSON report on stdout.")
@click.option("--finite-differences", is_flag=True,
              help="Also compare the generated gradients with central differences of its loss.")
@click.pass_context
def check(ctx, spec, dtype, as_json, finite_differences):
    """Train SPEC with Keras and with the generated module; compare every parameter.

    Exit status 0 when everything matches, 1 when not.
    """
    def action():
        from .keras_check import check as run_check
        loaded = _load(spec)
        warnings = _warn(loaded)
        report = run_check(loaded, dtype)
        result, text, match = report.to_json(), report.describe(loaded), report.match
        result["warnings"] = warnings
        if finite_differences:
            from .finite_differences import check as run_finite_differences
            agreement = run_finite_differences(loaded)
            result["finite_differences"] = agreement.to_json()
            text += "\n" + agreement.describe()
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
@click.option("--digits", type=click.IntRange(1, 16), default=8, show_default=True,
              help="Decimals of the numbers in the handouts.")
@click.option("--explain", multiple=True, metavar="ENTRY",
              help="Expand one entry's gradient by the chain rule, e.g. W1[2,0] or b0[1] (repeatable).")
@click.option("--bias-symbol", type=click.Choice(["theta", "b"]), default="theta", show_default=True,
              help="Write the biases as theta (as the course does) or b.")
@click.pass_context
def derive(ctx, spec, directory, no_check, dtype, pdf, digits, explain, bias_symbol):
    """Write everything SPEC can produce into DIR (module, LaTeX handouts), then check it against Keras."""
    def action():
        from .outputs import compile_handouts, write_all_outputs
        loaded = _load(spec)
        _warn(loaded)
        for path in write_all_outputs(loaded, directory, digits=digits, explain=explain,
                                      bias_symbol=bias_symbol):
            click.echo(f"wrote {path}")
        if pdf:
            for path in compile_handouts(loaded, directory):
                click.echo(f"wrote {path}")
        if no_check:
            return True
        from .keras_check import check as run_check
        report = run_check(loaded, dtype)
        click.echo(report.describe(loaded))
        return report.match
    ctx.exit(0 if _run(ctx, action) else 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
