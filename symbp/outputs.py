"""Everything a spec produces, rendered in memory first and then written atomically."""

from __future__ import annotations

from pathlib import Path

from .codegen import module_path, module_source
from .files import write_all
from .spec import Spec


def rendered_outputs(spec: Spec, directory: Path) -> dict[Path, str]:
    """Every output file of ``symbp derive`` for ``spec``: path -> text (nothing written)."""
    return {module_path(spec, Path(directory)): module_source(spec)}


def write_module(spec: Spec, directory: Path) -> Path:
    path = module_path(spec, directory)
    write_all({path: module_source(spec)})
    return path


def write_all_outputs(spec: Spec, directory: Path) -> list[Path]:
    files = rendered_outputs(spec, Path(directory))
    write_all(files)
    return list(files)
