#!/usr/bin/env bash
# Set up (or reuse) .venv, check lint and formatting (ruff), then run the test suite.
# Extra arguments go to pytest.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
echo "[lint] ruff check and ruff format --check" >&2
ruff check --quiet . || { echo "error: ruff check found problems (ruff check --fix . mends most)" >&2; exit 1; }
ruff format --check --quiet . || { echo "error: files are not formatted (run: ruff format .)" >&2; exit 1; }
bash scripts/install_browser.sh || true  # chromium for the explorer's browser test (which names what is missing)
set +e
python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "error: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
