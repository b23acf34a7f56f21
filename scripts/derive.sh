#!/usr/bin/env bash
# The README's main command: installs symbp, then derives everything for the built-in example
# (the CS 4820 assignment-7 network) into out/ and checks it against Keras.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e .
symbp derive -o out "$@"
