"""``symbp export FORMAT CLASS -o OUT``: one registry of LMS formats, each a function from the class
folder to the files it writes (path -> text or bytes), all rendered before any is written."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, NamedTuple, Optional

from ..errors import UnusableInput
from .lms import ClassFolder, read_class


class Format(NamedTuple):
    suffix: Optional[str]            # what OUT must end with (None: OUT is a folder)
    files: Callable[[ClassFolder, Path, object], dict]


def _moodle(klass, out, spec, moodle_format="numerical"):
    from .export_moodle import moodle_xml
    return {out: moodle_xml(klass, moodle_format)}


def _canvas(klass, out, spec):
    from .export_canvas import canvas_zip
    return {out: canvas_zip(klass)}


def _prairielearn(klass, out, spec):
    from .export_prairielearn import prairielearn_files
    return prairielearn_files(spec, klass, out)


FORMATS = {"moodle": Format(".xml", _moodle), "canvas": Format(".zip", _canvas),
           "prairielearn": Format(None, _prairielearn)}


def exported_files(fmt: str, class_dir: Path, out: Path, quantities: tuple[str, ...] = (), spec=None,
                   moodle_format: Optional[str] = None) -> dict:
    """The files of ``fmt`` for the class in ``class_dir`` (``spec``: the class's spec, for
    PrairieLearn's drawing; the built-in example when None; ``moodle_format``: moodle's
    numerical questions or one cloze per student)."""
    target = FORMATS[fmt]
    if target.suffix is not None and Path(out).suffix.lower() != target.suffix:
        raise UnusableInput(f"-o {out}: a {fmt} export is one {target.suffix} file")
    if moodle_format is not None and fmt != "moodle":
        raise UnusableInput(f"--moodle-format is an option of the moodle export, not of {fmt}")
    klass = read_class(class_dir, quantities)
    if fmt == "prairielearn" and spec is None:
        from ..spec.model import load_spec
        spec = load_spec()
    if moodle_format is not None:
        return target.files(klass, Path(out), spec, moodle_format)
    return target.files(klass, Path(out), spec)
