"""Compiling the handouts to PDF with latexmk (or pdflatex), never with shell escape.

Each file compiles in a temporary folder; only a finished PDF is moved next to its source, so a
failed compile leaves nothing half-written. TeX may read and write files only in that folder
(kpathsea's paranoid ``openin_any``/``openout_any``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

PACKAGES_HINT = ("On Debian or Ubuntu: sudo apt-get install texlive-latex-recommended "
                 "texlive-latex-extra texlive-pictures lmodern latexmk; on macOS: MacTeX (or BasicTeX "
                 "plus `tlmgr install latexmk adjustbox pgfplots`); on Windows: MiKTeX or TeX Live.")
INSTALL_HINT = ("symbp --pdf needs a TeX installation (latexmk or pdflatex on PATH). " + PACKAGES_HINT
                + " Or compile the .tex files with pdflatex yourself.")


class TexNotFound(RuntimeError):
    """No latexmk and no pdflatex on PATH."""

    def __init__(self):
        super().__init__(INSTALL_HINT)


class TexFailed(RuntimeError):
    """TeX stopped with an error; carries the end of its log (and names a missing package)."""


def _failure_message(tex_path: Path, log: str) -> str:
    missing = re.search(r"File `([^']+\.sty)' not found", log)
    if missing:
        return (f"TeX could not compile {tex_path}: the LaTeX package {missing.group(1)} is not "
                f"installed. {PACKAGES_HINT}")
    return f"TeX could not compile {tex_path}; the end of its log:\n{log[-3000:]}"


def tex_command(tex_file: str) -> list[str]:
    """latexmk when found (it reruns pdflatex until references settle), else pdflatex."""
    if shutil.which("latexmk"):
        return ["latexmk", "-pdf", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error",
                "-silent", tex_file]
    if shutil.which("pdflatex"):
        return ["pdflatex", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error", tex_file]
    raise TexNotFound()


def compile_pdf(tex_path: Path, timeout: float = 300) -> tuple[Path, str]:
    """Compile ``tex_path`` into ``<same folder>/<stem>.pdf``; returns its path and TeX's log."""
    tex_path = Path(tex_path)
    command = tex_command(tex_path.name)
    env = {**os.environ, "openin_any": "p", "openout_any": "p", "shell_escape": "f"}
    with tempfile.TemporaryDirectory(prefix="symbp-tex-") as work:
        shutil.copyfile(tex_path, Path(work) / tex_path.name)
        runs = 2 if command[0] == "pdflatex" else 1
        for _ in range(runs):
            result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True,
                                    timeout=timeout, stdin=subprocess.DEVNULL)
            if result.returncode != 0:
                break
        pdf = Path(work) / (tex_path.stem + ".pdf")
        log = Path(work) / (tex_path.stem + ".log")
        if result.returncode != 0 or not pdf.exists():
            text = log.read_text(errors="replace") if log.exists() else result.stdout + result.stderr
            raise TexFailed(_failure_message(tex_path, text))
        target = tex_path.with_suffix(".pdf")
        partial = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(pdf, partial)
        os.replace(partial, target)
        log_text = log.read_text(errors="replace")
    return target, log_text
