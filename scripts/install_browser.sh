#!/usr/bin/env bash
# Install Debian's chromium and chromium-driver for the explorer's browser test
# (tests/e2e/test_serve_explorer.py), only when they are missing. Quiet; one line on failure.
set -uo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: chromium is missing and apt-get is not available: install chromium and chromium-driver by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "error: chromium is missing and installing it needs root: run 'apt-get install -y chromium chromium-driver' as root" >&2
    exit 1
  fi
fi
log="$(mktemp)"
echo "[setup] installing chromium and chromium-driver with apt-get (for the explorer's browser test)" >&2
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver; } >"$log" 2>&1; then
  echo "error: apt-get could not install chromium and chromium-driver: $(tail -n 1 "$log")" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
