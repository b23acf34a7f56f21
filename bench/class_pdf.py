"""A class's handouts as PDFs: ``symbp variants -n N --pdf`` timed by phase (issue 17).

    python bench/class_pdf.py [-n 200] [-j 2]

Draws and renders the built-in example's class of N students (``render_variants``: the
answer key, every student's .tex in worker processes), then compiles the 2 N handouts
(``compile_class``: the shared preamble precompiled once, then pdflatex runs). Prints each
phase's wall clock, the CPU of this process and of its children (workers, pdflatex), and the load
average before and after, since on a shared machine the wall clock depends on the others' load.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=200)
    parser.add_argument("-j", "--jobs", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    from symbp.classroom.variants import compile_class, render_variants
    from symbp.spec import load_spec
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        start, cpu = time.monotonic(), cpu_seconds()
        result = render_variants(load_spec(), args.count, 0, Path(folder), jobs=args.jobs, progress=True)
        rendered, cpu_rendered = time.monotonic(), cpu_seconds()
        pdfs = compile_class(result.files, args.jobs, progress=True)
        done, cpu_done = time.monotonic(), cpu_seconds()
    assert len(pdfs) == 2 * args.count and all(data.startswith(b"%PDF") for data in pdfs.values())
    print(f"class of {args.count} ({len(pdfs)} PDFs), -j {args.jobs}, {os.cpu_count()} cores")
    print(f"  render (draw, key, .tex): {rendered - start:7.1f} s wall, {cpu_rendered - cpu:7.1f} s CPU")
    print(f"  compile (PDFs):           {done - rendered:7.1f} s wall, {cpu_done - cpu_rendered:7.1f} s CPU")
    print(f"  total:                    {done - start:7.1f} s wall, {cpu_done - cpu:7.1f} s CPU")
    print("  load average (1, 5, 15 min): {:.1f} / {:.1f} / {:.1f} before, ".format(*load_before)
          + "{:.1f} / {:.1f} / {:.1f} after".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
