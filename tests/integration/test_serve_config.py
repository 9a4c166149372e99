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
from serve.app import build_app, compose
from serve.settings import parse_settings

SERVE = Path(__file__).resolve().parents[2] / "serve"
SHAPES = {
    # file: (deployments the app has, its layout)
    "config.yaml": ({"Gateway"}, "compact"),
    "config.composed.yaml": (
        {"Gateway", "ExpansionDeployment", "RankingDeployment", "RetrievalDeployment"},
        "composed",
    ),
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
    want, layout = SHAPES[name]
    assert settings.layout == layout
    opts = deployment_options(str(path))
    built = compose(app["args"], opts)  # Deployment.options rejects an unknown option
    assert set(opts) == want == _deployments(built)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_serve_cli_can_build_each_config(name):
    """What `serve run` / `serve deploy` do with the file: import the builder and call it with the
    args through Serve's own check (a builder must take exactly one parameter)."""
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

    app = yaml.safe_load((SERVE / name).read_text())["applications"][0]
    module, _, attr = app["import_path"].partition(":")
    builder = getattr(__import__(module, fromlist=[attr]), attr)
    assert builder is build_app
    built = call_user_app_builder_with_args_if_necessary(builder, app["args"])
    assert _deployments(built) == SHAPES[name][0]


def test_a_misspelt_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="layuot"):
        parse_settings({"layuot": "compact"})
    with pytest.raises(ConfigError, match="layout"):
        parse_settings({"layout": "colocated"})


def test_an_unknown_deployment_option_is_refused():
    with pytest.raises(TypeError):
        compose({}, {"ExpansionDeployment": {"replicas": 2}})
