#!/usr/bin/env bash
# Headless Chromium (Debian's package) for the tests that render the HTML handouts; needs root.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null
