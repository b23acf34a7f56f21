"""The ``symbp`` command: parses arguments and calls the library (nothing heavy at start-up)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

DTYPES = click.Choice(["float64", "float32"])
# SPEC is checked by load_spec (missing, a folder, unreadable: exit 2 with one message)
spec_argument = click.argument("spec", required=False, type=click.Path(path_type=Path))
INTERNAL_ERROR = 3


class UsageProblem(click.ClickException):
    """A problem with the user's input: printed in one screen, exit status 2."""
    exit_code = 2

    def show(self, file=None):
        click.echo(f"symbp: {self.format_message()}", err=True)


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


def _load(spec_path):
    from .spec import load_spec
    return load_spec(spec_path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show a traceback for every error.")
@click.version_option(package_name="symbp")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """symbp: symbolic back-propagation for dense networks.

    SPEC is a TOML network spec; without it, commands use the built-in example
    (the CS 4820 assignment-7 network).

    Exit status: 0 done (check: everything matches), 1 the check found a mismatch,
    2 a problem with the input (spec, arguments, output folder), 3 an internal error.
    A command that fails writes nothing.
    """
    ctx.ensure_object(dict)["debug"] = debug


@main.command()
@spec_argument
@click.option("-o", "--output", "directory", default="generated", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for <name>.py.")
@click.pass_context
def codegen(ctx, spec, directory):
    """Write the generated NumPy module DIR/<name>.py for SPEC."""
    def action():
        from .outputs import write_module
        path = write_module(_load(spec), directory)
        click.echo(f"wrote {path}")
    _run(ctx, action)


@main.command()
@spec_argument
@click.option("--dtype", type=DTYPES, default="float64", show_default=True,
              help="Precision of both runs (tolerance 1e-9 for float64, 1e-5 for float32).")
@click.option("--json", "as_json", is_flag=True, help="Print only a JSON report on stdout.")
@click.pass_context
def check(ctx, spec, dtype, as_json):
    """Train SPEC with Keras and with the generated module; compare every parameter.

    Exit status 0 when everything matches, 1 when not.
    """
    def action():
        from .keras_check import check as run_check
        loaded = _load(spec)
        report = run_check(loaded, dtype)
        click.echo(json.dumps(report.to_json(), indent=2) if as_json else report.describe(loaded))
        return report.match
    ctx.exit(0 if _run(ctx, action) else 1)


@main.command()
@spec_argument
@click.option("-o", "--output", "directory", default="out", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for everything written.")
@click.option("--no-check", is_flag=True, help="Skip the Keras check.")
@click.option("--dtype", type=DTYPES, default="float64", show_default=True)
@click.pass_context
def derive(ctx, spec, directory, no_check, dtype):
    """Write everything SPEC can produce into DIR, then check it against Keras."""
    def action():
        from .files import write_all
        from .outputs import rendered_outputs
        loaded = _load(spec)
        files = rendered_outputs(loaded, directory)  # in memory: a failure below writes nothing
        report = None
        if not no_check:
            from .keras_check import check as run_check
            report = run_check(loaded, dtype)
        write_all(files)
        for path in files:
            click.echo(f"wrote {path}")
        if report is None:
            return True
        click.echo(report.describe(loaded))
        return report.match
    ctx.exit(0 if _run(ctx, action) else 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
