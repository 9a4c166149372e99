#!/usr/bin/env bash
# Set up (or reuse) .venv, then run the end-to-end pipeline on a local Ray instance.
#   scripts/run_pipeline.sh                       # configs/local.yaml, the embedded default
#   scripts/run_pipeline.sh configs/lastfm.yaml --set embedding.epochs=5
#   scripts/run_pipeline.sh ~/my_data.yaml        # a config anywhere; its relative paths are relative to it
# The job runs in the repository's root: a relative run_dir (and a --set path) is relative to it.
config="${1:-configs/local.yaml}"
shift || true
if [ -f "$config" ]; then  # a config named from where the script was called
  config="$(cd "$(dirname "$config")" && pwd)/$(basename "$config")"
fi
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec python -m ray_jobs.pipeline --config "$config" "$@"
