"""Compiling the handouts to PDF with latexmk (or pdflatex), never with shell escape.

The LaTeX source is compiled from memory in a private temporary folder (``symbp-tex-*`` in
``$TMPDIR``, removed however the compile ends) and the PDF comes back as bytes: the caller writes
it with the other outputs in one all-or-nothing write (:func:`symbp.io.files.write_all`), so a
failed compile writes nothing. TeX may read and write files only in that folder (kpathsea's
paranoid ``openin_any``/``openout_any``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from .files import write_all

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


#: seconds one TeX run may take before it is stopped (symbp derive/variants --tex-timeout)
TEX_TIMEOUT = 300.0


class TexTimedOut(TexFailed):
    """A TeX run took longer than its limit and was stopped (a problem with the input, as a TeX
    error is: exit 2). Most likely a very large network's handouts on a slow or busy machine."""

    def __init__(self, tex_path, timeout: float):
        super().__init__(f"TeX took longer than {timeout:g} s (the limit) to compile {tex_path} and was "
                         f"stopped; nothing was written. Give it longer with --tex-timeout SECONDS "
                         f"(default {TEX_TIMEOUT:g}), or compile the .tex files yourself without --pdf.")


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


def _tex_env() -> dict:
    """TeX's environment: reads and writes only in its folder, no shell escape."""
    return {**os.environ, "openin_any": "p", "openout_any": "p", "shell_escape": "f"}


def run_tex_process(command: list[str], work, timeout: float, tex_path) -> subprocess.CompletedProcess:
    """One TeX command in ``work`` (:func:`_tex_env`, no stdin), its output captured. Past
    ``timeout`` seconds it is killed, and with it every process it started, before the folder
    is removed (latexmk runs pdflatex: it gets a session of its own, its process group killed
    whole), and :class:`TexTimedOut` names ``tex_path``. Ctrl-C or SIGTERM kills it the same way
    (a pdflatex run directly stays in symbp's process group, where Ctrl-C reaches it anyway)."""
    own_group = command[0] == "latexmk" and hasattr(os, "killpg")
    with subprocess.Popen(command, cwd=work, env=_tex_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=own_group) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except BaseException as stopped:
            os.killpg(process.pid, signal.SIGKILL) if own_group else process.kill()
            process.communicate()
            if isinstance(stopped, subprocess.TimeoutExpired):
                raise TexTimedOut(tex_path, timeout) from None
            raise
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def _run_tex(command: list[str], work: str, timeout: float, tex_path) -> subprocess.CompletedProcess:
    """Run TeX in ``work`` (pdflatex twice, so references settle; latexmk reruns by itself)."""
    for _ in range(2 if command[0] == "pdflatex" else 1):
        result = run_tex_process(command, work, timeout, tex_path)
        if result.returncode != 0:
            break
    return result


def pdf_from_source(source: str, tex_path: Path, timeout: float = TEX_TIMEOUT) -> tuple[bytes, str]:
    """Compile LaTeX ``source`` (to be ``tex_path``, named in errors); the PDF's bytes and TeX's log.

    Nothing is written beside ``tex_path``: TeX runs in a temporary folder, removed on return,
    on an error and on Ctrl-C or SIGTERM alike.
    """
    tex_path = Path(tex_path)
    command = tex_command(tex_path.name)
    with tempfile.TemporaryDirectory(prefix="symbp-tex-") as work:
        (Path(work) / tex_path.name).write_text(source, encoding="utf-8")
        result = _run_tex(command, work, timeout, tex_path)
        pdf = Path(work) / (tex_path.stem + ".pdf")
        log = Path(work) / (tex_path.stem + ".log")
        log_text = log.read_text(errors="replace") if log.exists() else result.stdout + result.stderr
        if result.returncode != 0 or not pdf.exists():
            raise TexFailed(_failure_message(tex_path, log_text))
        return pdf.read_bytes(), log_text


def compile_pdf(tex_path: Path, timeout: float = TEX_TIMEOUT) -> tuple[Path, str]:
    """Compile the file ``tex_path`` into ``<same folder>/<stem>.pdf``; returns its path and TeX's log."""
    tex_path = Path(tex_path)
    data, log = pdf_from_source(tex_path.read_text(encoding="utf-8"), tex_path, timeout)
    target = tex_path.with_suffix(".pdf")
    write_all({target: data})
    return target, log


# ---------------------------------------------------------------- a class's handouts at once
#: the name of the precompiled preamble (a TeX format) of the k-th distinct preamble
FORMAT_NAME = "symbp-preamble-{k}"


def preamble_of(source: str) -> str | None:
    """Everything before ``\\begin{document}``: what a precompiled format can hold; None when
    ``\\begin{document}`` does not start a line (mylatexformat skips a document's preamble by lines)."""
    preamble, found, _ = source.partition("\n\\begin{document}")
    return preamble + "\n" if found else None


def _precompile(work: Path, preamble: str, k: int, timeout: float) -> str | None:
    """Dump ``preamble`` as a format (mylatexformat) in ``work``; its name, or None when this
    TeX cannot (then each file reads its preamble itself: slower, same PDF)."""
    name = FORMAT_NAME.format(k=k)
    (work / f"{name}.tex").write_text(preamble + "\\begin{document}\n\\end{document}\n", encoding="utf-8")
    result = run_tex_process(["pdflatex", "-ini", "-no-shell-escape", "-interaction=nonstopmode",
                              f"-jobname={name}", "&pdflatex", "mylatexformat.ltx", f"{name}.tex"],
                             work, timeout, "the handouts' shared preamble")
    return name if result.returncode == 0 and (work / f"{name}.fmt").exists() else None


def _compile_one(work: Path, index: int, tex_path: Path, source: str, fmt: str | None,
                 timeout: float) -> bytes:
    """One pdflatex run on ``source`` (as ``s<index>.tex`` in ``work``; the handouts hold no
    cross-reference, so one run is final), with the precompiled preamble ``fmt`` if any."""
    stem = f"s{index}"
    (work / f"{stem}.tex").write_text(source, encoding="utf-8")
    command = ["pdflatex", "-no-shell-escape", "-interaction=nonstopmode", "-halt-on-error"]
    result = run_tex_process(command + ([f"-fmt={fmt}"] if fmt else []) + [f"{stem}.tex"], work, timeout, tex_path)
    pdf, log = work / f"{stem}.pdf", work / f"{stem}.log"
    if result.returncode != 0 or not pdf.exists():
        log_text = log.read_text(errors="replace") if log.exists() else result.stdout + result.stderr
        raise TexFailed(_failure_message(tex_path, log_text))
    data = pdf.read_bytes()
    for suffix in (".tex", ".pdf", ".log", ".aux"):
        (work / f"{stem}{suffix}").unlink(missing_ok=True)
    return data


def compile_many(sources: dict[Path, str], jobs: int, progress=None, timeout: float = TEX_TIMEOUT) -> dict[Path, bytes]:
    """Every LaTeX source compiled, ``jobs`` pdflatex runs at once: .tex path -> the PDF's bytes.

    Fast for a class (``symbp variants --pdf``): the students' handouts share their preamble
    (tikz, pgfplots: most of a run's time), so it is loaded once into a format and each file
    takes one run. ``progress()`` is called after each PDF. One private folder, removed however
    this ends; an error or Ctrl-C cancels the runs not started.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed
    if not shutil.which("pdflatex"):
        raise TexNotFound()
    with tempfile.TemporaryDirectory(prefix="symbp-tex-") as folder:
        work = Path(folder)
        preambles = list(dict.fromkeys(preamble_of(source) for source in sources.values()))
        formats = {p: p is not None and _precompile(work, p, k, timeout) or None
                   for k, p in enumerate(preambles)}
        out: dict[Path, bytes] = {}
        pool = ThreadPoolExecutor(max_workers=max(1, jobs))
        try:
            futures = {pool.submit(_compile_one, work, n, path, source, formats[preamble_of(source)],
                                   timeout): path for n, (path, source) in enumerate(sources.items())}
            for future in as_completed(futures):
                out[futures[future].with_suffix(".pdf")] = future.result()
                if progress is not None:
                    progress()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    return {path.with_suffix(".pdf"): out[path.with_suffix(".pdf")] for path in sources}
