"""The user representations a run's expansion reads, fitted when missing (one Ray task).

StarSpace's pooled vectors come from the spine's own steps; co-engagement needs no fit. The
ALS user vectors (reco.embedding.als) are fitted here, on one Ray worker, when
``expansion.representations`` or ``expansion.user_vectors`` names ``als`` and the run holds none
fitted with this config on its current histories. The pipeline calls this before ``expand``;
``expand`` and ``evaluate`` call it too, so each also runs alone.
"""

from __future__ import annotations

import logging

import ray

from ray_jobs.common import StepTimer
from reco import artifacts
from reco.config import Config
from reco.embedding import als
from reco.embedding.config import ALSConfig
from reco.expansion.user_vectors import ALS, representation_name, representations
from reco.run_dir import RunDir

log = logging.getLogger("ray_jobs.representations")


def _fit_als(run_uri: str, als_cfg: dict) -> dict:
    return als.fit_run(RunDir(run_uri), ALSConfig.model_validate(als_cfg))


def ensure_representations(cfg: Config, run: RunDir) -> dict | None:
    """Fit the ALS user vectors when a representation reads them and the run's are stale or missing;
    the fit's summary, the kept one's, or None (nothing reads ALS)."""
    ex = cfg.expansion
    if ALS not in {*representations(ex), representation_name(ex.user_vectors)}:
        return None
    if als.is_current(run, ex.als):
        log.info("ALS user vectors are current (same config and histories): kept")
        return run.entry(artifacts.ALS_USER_VECTORS)["meta"]
    with StepTimer(f"ALS user vectors ({ex.als.factors} factors, Ray task)"):
        return ray.get(ray.remote(num_cpus=1)(_fit_als).remote(run.uri, ex.als.model_dump()))
