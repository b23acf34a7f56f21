#!/usr/bin/env bash
# The README's test command: installs everything the tests need (symbp with its test extras,
# TeX Live and poppler for the handouts,
# Chromium for the HTML handouts), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-tex.sh
bash scripts/install-browser.sh
python -m pip install -q -e ".[test]"
bash scripts/install-torch.sh
python -m pytest -q "$@"
