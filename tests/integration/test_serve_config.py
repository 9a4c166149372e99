"""serve/config.yaml and serve/config.composed.yaml: their args are valid settings and their
deployment options name exactly the deployments build_app makes from those args (Serve refuses
options for a deployment the application does not have). Each names a keys file (its path is the
deployment's: the tests put one of their own there), and an app without one is not built."""

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


@pytest.fixture
def keys_file(tmp_path) -> str:
    from serve.auth import entry, new_key
    from serve.keys import write_entries

    write_entries(tmp_path / "keys.yaml", [entry("test", new_key(), ["admin"])])
    return str(tmp_path / "keys.yaml")


def _args(name: str, keys_file: str) -> dict:
    """The file's args, with this test's keys file where the file names the deployment's."""
    args = yaml.safe_load((SERVE / name).read_text())["applications"][0]["args"]
    assert args["keys_file"], f"{name} names no keys_file"
    return {**args, "keys_file": keys_file}


def _deployments(app: Application) -> set[str]:
    """Names of the deployments in a built application: the ingress and those bound into it."""
    dep = app._bound_deployment  # Serve keeps no public accessor for an unbuilt app's graph
    return {dep.name}.union(*(_deployments(a) for a in dep.init_args if isinstance(a, Application)))


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_serve_config_args_parse_and_every_deployment_exists(name, keys_file):
    path = SERVE / name
    app = yaml.safe_load(path.read_text())["applications"][0]
    assert app["import_path"] == "serve.app:build_app"
    settings = parse_settings(app["args"])  # raises on an unknown or invalid key
    want, layout = SHAPES[name]
    assert settings.layout == layout
    assert (settings.min_seed_ids, settings.min_audience_size) == (10, 100)
    opts = deployment_options(str(path))
    built = compose(_args(name, keys_file), opts)  # Deployment.options rejects an unknown option
    assert set(opts) == want == _deployments(built)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_serve_cli_can_build_each_config(name, keys_file):
    """What `serve run` / `serve deploy` do with the file: import the builder and call it with the
    args through Serve's own check (a builder must take exactly one parameter)."""
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

    app = yaml.safe_load((SERVE / name).read_text())["applications"][0]
    module, _, attr = app["import_path"].partition(":")
    builder = getattr(__import__(module, fromlist=[attr]), attr)
    assert builder is build_app
    built = call_user_app_builder_with_args_if_necessary(builder, _args(name, keys_file))
    assert _deployments(built) == SHAPES[name][0]


def test_a_misspelt_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="layuot"):
        parse_settings({"layuot": "compact"})
    with pytest.raises(ConfigError, match="layout"):
        parse_settings({"layout": "colocated"})


def test_an_unknown_deployment_option_is_refused(keys_file):
    with pytest.raises(TypeError):
        compose({"keys_file": keys_file}, {"ExpansionDeployment": {"replicas": 2}})


def test_an_app_without_a_keys_file_is_not_built(tmp_path):
    with pytest.raises(ConfigError) as e:
        build_app({"run_dir": "runs/local"})
    assert "keys_file is not set" in str(e.value) and "python -m serve.keys new" in str(e.value)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="keys file not found"):
        build_app({"keys_file": str(tmp_path / "nowhere.yaml")})
