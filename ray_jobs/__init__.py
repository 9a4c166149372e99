"""Ray jobs: one module per pipeline step, `python -m ray_jobs.<step> --config FILE`."""
