"""The ope config section: the shipped config validates and unknown keys are named."""

import pytest

from reco.config import load_config
from reco.errors import ConfigError


def test_ope_config_validates():
    cfg = load_config("configs/ope.yaml")
    assert cfg.ope.obd.logging_policy == "random" and cfg.ope.obd.target_policy == "bts"
    assert cfg.ope.synthetic.reward_model.interactions  # the known-truth study's model is well specified
    assert cfg.ope.pacing.periods == 96


def test_unknown_ope_keys_are_named(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("ope:\n  pacing:\n    budget_shar: 0.3\n")
    with pytest.raises(ConfigError, match=r"ope\.pacing\.budget_shar: unknown key"):
        load_config(p)
    with pytest.raises(ConfigError, match=r"ope\.bootstrap\.level"):
        load_config("configs/ope.yaml", ["ope.bootstrap.level=1.5"])
