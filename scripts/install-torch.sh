#!/usr/bin/env bash
# PyTorch for framework = "torch" specs (the `torch` extra): the CPU-only build where pip is
# offered it (~190 MB), else the default build. Skipped when torch is already importable.
set -euo pipefail
if python -c "import torch" 2>/dev/null; then
    exit 0
fi
python -m pip install -q "torch==2.13.0+cpu" || python -m pip install -q "torch>=2.2"
