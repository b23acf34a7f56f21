"""Everything a spec produces, rendered in memory first and then written atomically."""

from __future__ import annotations

from pathlib import Path

from .codegen import module_files, module_source
from ..io.files import write_all
from ..spec import Spec


def rendered_outputs(spec: Spec, directory: Path, *, notebook: bool = False, digits: int = 8,
                     explain: tuple[str, ...] = (), bias_symbol: str = "theta",
                     html: bool = False, first_index: int = 0, student_derivatives: bool = True,
                     name_line: bool = False, nbgrader: bool = False) -> dict[Path, str | bytes]:
    """Every output file of ``symbp derive`` for ``spec``: path -> text (nothing written).

    ``notebook`` adds the assignment notebooks (``nbgrader``: with nbgrader's cells), ``html`` the
    HTML handouts (DIR/<name>_solution.html, <name>_student.html). The handout options: ``digits``
    decimals, ``explain`` entries (``W1[2,0]``) expanded by the chain rule, ``bias_symbol`` "theta"
    or "b", ``first_index`` 0 (W0 feeds z1) or 1 (W1 feeds z1); the student sheet's scaffolding:
    ``student_derivatives`` (the SymPy derivative column), ``name_line``.
    """
    from .codegen import derive_spec
    from .handouts import HandoutOptions, handout_paths, render_handouts
    from ..witnesses.module import spec_module
    options = HandoutOptions(digits, tuple(explain), bias_symbol, first_index,   # checked before any work
                             student_derivatives, name_line)
    if notebook:
        from .notebook import check_notebook_size
        check_notebook_size(spec)
    model = derive_spec(spec)
    source = module_source(spec, model)   # rendered once: written, and run for the handouts' numbers
    module = spec_module(spec, source=source)
    handouts = render_handouts(spec, options, model, module)
    directory = Path(directory)
    paths = handout_paths(spec, directory)
    files = {**module_files(spec, directory, source),
             **{paths[kind]: text for kind, text in handouts.items()}}
    if html:
        from .handout_html import html_handout_paths, render_html_handouts
        pages = render_html_handouts(spec, options, model, module)
        files.update({path: pages[kind] for kind, path in html_handout_paths(spec, directory).items()})
    if notebook:
        from .notebook import rendered_notebooks
        files.update(rendered_notebooks(spec, directory, model, nbgrader=nbgrader))
    return files


def write_module(spec: Spec, directory: Path) -> list[Path]:
    """DIR/<name>.py, and its sidecar DIR/<name>_data.npz when the spec has many numbers."""
    files = module_files(spec, directory, module_source(spec))
    write_all(files)
    return list(files)


def write_all_outputs(spec: Spec, directory: Path, *, pdf: bool = False, **options) -> list[Path]:
    """Render everything (``pdf``: the handouts compiled too), then write it all or nothing."""
    files = rendered_outputs(spec, Path(directory), **options)
    if pdf:
        files.update(compiled_handouts(spec, files, Path(directory)))
    write_all(files)
    return list(files)


def compiled_handouts(spec: Spec, files: dict[Path, str], directory: Path) -> dict[Path, bytes]:
    """The handouts among the rendered ``files`` compiled to PDF: path beside the .tex -> bytes.

    Compiled from memory (see :mod:`symbp.io.pdf`), so they join the one all-or-nothing write:
    a TeX error or an interruption leaves no new .tex beside an old PDF.
    """
    from .handouts import handout_paths
    from ..io.pdf import pdf_from_source
    return {path.with_suffix(".pdf"): pdf_from_source(files[path], path)[0]
            for path in handout_paths(spec, directory).values()}
