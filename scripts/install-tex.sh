#!/usr/bin/env bash
# TeX Live and poppler for compiling and reading the handouts (Debian packages; needs root).
set -euo pipefail
if command -v latexmk >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1 \
        && kpsewhich adjustbox.sty >/dev/null 2>&1 && kpsewhich pgfplots.sty >/dev/null 2>&1 \
        && kpsewhich lmodern.sty >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends texlive-latex-recommended texlive-latex-extra \
    texlive-pictures lmodern latexmk poppler-utils >/dev/null
