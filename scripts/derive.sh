#!/usr/bin/env bash
# The README's main command: installs symbp and TeX, then derives everything for the built-in
# example (the CS 4820 assignment-7 network) into out/: the NumPy module, the LaTeX handouts
# compiled to PDF, the assignment notebooks; then checks the module against Keras.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tex.sh
python -m pip install -q -e .
symbp derive -o out --pdf --notebook "$@"
