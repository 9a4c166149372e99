"""serve/config.yaml: its args are valid settings and its deployment options apply to build_app."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench.serve import deployment_options
from reco.errors import ConfigError
from serve.app import build_app
from serve.settings import parse_settings

CONFIG = Path(__file__).resolve().parents[2] / "serve" / "config.yaml"


def test_serve_config_args_parse_and_every_deployment_exists():
    app = yaml.safe_load(CONFIG.read_text())["applications"][0]
    assert app["import_path"] == "serve.app:build_app"
    parse_settings(app["args"])  # raises on an unknown or invalid key
    opts = deployment_options(str(CONFIG))
    assert set(opts) == {"Gateway", "ExpansionDeployment", "RankingDeployment", "RetrievalDeployment"}
    built = build_app(app["args"], opts)  # Deployment.options rejects an unknown option
    assert built is not None


def test_a_misspelt_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="rank_in_ingres"):
        parse_settings({"rank_in_ingres": True})


def test_an_unknown_deployment_option_is_refused():
    with pytest.raises(TypeError):
        build_app({}, {"ExpansionDeployment": {"replicas": 2}})
