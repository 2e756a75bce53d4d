#!/usr/bin/env bash
# Runs tests/v2/test_v2_client.py (the official tritonclient[http] against a
# live convd serve, outputs checked with torch). Creates .venv at the
# repository root when missing (--system-site-packages, so Debian's numpy
# and torch are visible) and installs tritonclient[http] into it from PyPI.
set -u
cd "$(dirname "$0")/../.."
convd=$(realpath "${CONVD_BIN:-build/convd}")
venv=.venv
if ! "$venv/bin/python" -c 'import tritonclient.http' 2>/dev/null; then
  /usr/bin/python3 -m venv --system-site-packages "$venv" || { echo "FAIL: cannot create $venv"; exit 1; }
  "$venv/bin/pip" install -q 'tritonclient[http]' || { echo "FAIL: pip install tritonclient[http]"; exit 1; }
fi
"$venv/bin/python" -c 'import torch, numpy' || { echo "FAIL: torch/numpy not visible in $venv (python3-torch?)"; exit 1; }
CONVD_BIN="$convd" "$venv/bin/python" tests/v2/test_v2_client.py "$convd" || exit 1
