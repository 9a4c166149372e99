"""The Ray Serve application: HTTP routes over audience expansion, ranking and retrieval.

`serve run serve/config.yaml` (or `scripts/serve.sh`) deploys it; `serve.app:build_app` builds
it from arguments (`run_dir`, limits). serve/ imports reco/ and never ray_jobs/.
"""
