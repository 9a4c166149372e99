"""serve/config.yaml and serve/config.composed.yaml: their args are valid settings and their
deployment options name exactly the deployments build_app makes from those args (Serve refuses
options for a deployment the application does not have)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.serve import Application

from bench.serve import deployment_options
from reco.errors import ConfigError
from serve.app import build_app
from serve.settings import parse_settings

SERVE = Path(__file__).resolve().parents[2] / "serve"
SHAPES = {
    # file: (deployments the app has, whether the ingress ranks and retrieves itself)
    "config.yaml": ({"Gateway", "ExpansionDeployment"}, True),
    "config.composed.yaml": ({"Gateway", "ExpansionDeployment", "RankingDeployment", "RetrievalDeployment"}, False),
}


def _deployments(app: Application) -> set[str]:
    """Names of the deployments in a built application: the ingress and those bound into it."""
    dep = app._bound_deployment  # Serve keeps no public accessor for an unbuilt app's graph
    return {dep.name}.union(*(_deployments(a) for a in dep.init_args if isinstance(a, Application)))


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_serve_config_args_parse_and_every_deployment_exists(name):
    path = SERVE / name
    app = yaml.safe_load(path.read_text())["applications"][0]
    assert app["import_path"] == "serve.app:build_app"
    settings = parse_settings(app["args"])  # raises on an unknown or invalid key
    want, colocated = SHAPES[name]
    assert settings.rank_in_ingress is colocated and settings.retrieve_in_ingress is colocated
    opts = deployment_options(str(path))
    built = build_app(app["args"], opts)  # Deployment.options rejects an unknown option
    assert set(opts) == want == _deployments(built)


def test_a_misspelt_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="rank_in_ingres"):
        parse_settings({"rank_in_ingres": True})


def test_an_unknown_deployment_option_is_refused():
    with pytest.raises(TypeError):
        build_app({}, {"ExpansionDeployment": {"replicas": 2}})
