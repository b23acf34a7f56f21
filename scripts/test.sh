#!/usr/bin/env bash
# The README's test command: installs everything the tests need (symbp with its test extras,
# TeX Live and poppler for the handouts), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v latexmk >/dev/null 2>&1 || ! command -v pdftotext >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends texlive-latex-recommended texlive-latex-extra \
        texlive-pictures lmodern latexmk poppler-utils >/dev/null
fi
python -m pip install -q -e ".[test]"
python -m pytest -q "$@"
