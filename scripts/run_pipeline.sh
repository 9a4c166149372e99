#!/usr/bin/env bash
# Set up (or reuse) .venv, then run the end-to-end pipeline on a local Ray instance.
#   scripts/run_pipeline.sh                       # configs/local.yaml, the embedded default
#   scripts/run_pipeline.sh configs/lastfm.yaml --set embedding.epochs=5
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
config="${1:-configs/local.yaml}"
shift || true
exec python -m ray_jobs.pipeline --config "$config" "$@"
