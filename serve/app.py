"""Build the application: `serve run serve.app:build_app run_dir=runs/local` or serve/config.yaml.

The deployments load their artifacts from the run directory named in the arguments; a new
run directory is deployed by changing that argument (`serve deploy` replaces replicas one by
one, so requests keep being answered). The API keys file (``keys_file``) is required and read
here already, so a missing or malformed one is a one-line error before anything is deployed.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from ray.serve import Application

from serve.auth import load_keys
from serve.deployments import ExpansionDeployment, Gateway, RankingDeployment, RetrievalDeployment
from serve.settings import parse_settings

log = logging.getLogger("serve")


def ingress() -> str:
    """Which HTTP ingress Ray Serve uses in this environment: "haproxy" or "default"."""
    return "haproxy" if os.environ.get("RAY_SERVE_ENABLE_HA_PROXY") == "1" else "default"


def build_app(args: dict[str, Any] | None = None) -> Application:
    """The application over the run directory in ``args``: what `serve run` / `serve deploy` call
    with a config file's ``args`` (Serve accepts a builder of exactly one parameter) and apply the
    file's ``deployments`` options to."""
    return compose(args)


def compose(
    args: dict[str, Any] | None = None, deployment_options: dict[str, dict[str, Any]] | None = None
) -> Application:
    """:func:`build_app` with ``deployment_options`` (by deployment name: num_replicas,
    max_ongoing_requests, autoscaling_config, ...) applied here, for Python callers such as
    bench.serve that deploy a config file's options without the Serve CLI."""
    settings = parse_settings(args)
    load_keys(settings.keys_file)  # auth is never off: no keys file, no application
    opts = deployment_options or {}

    def bound(deployment, *init_args):
        return deployment.options(**opts.get(deployment.name, {})).bind(*init_args)

    if ingress() == "haproxy":
        log.info("ingress: haproxy (RAY_SERVE_ENABLE_HA_PROXY=1)")
    else:
        log.warning(
            "ingress: Serve's default HTTP proxy (~5 ms a request); scripts/serve.sh starts Ray "
            "with RAY_SERVE_ENABLE_HA_PROXY=1 RAY_SERVE_THROUGHPUT_OPTIMIZED=1 for the HAProxy ingress"
        )
    if settings.layout == "compact":
        return bound(Gateway, None, None, None, settings)
    expansion, ranking, retrieval = (
        bound(d, settings) for d in (ExpansionDeployment, RankingDeployment, RetrievalDeployment)
    )
    return bound(Gateway, expansion, ranking, retrieval, settings)
