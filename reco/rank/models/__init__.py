"""Every ranking model by name (``ranking.model.name``), built from the config section.

Each model maps encoded ``(cat, dense)`` tensors to logits ``(B, tasks)``. LR and the
multi-task models learn several labels; every other model learns one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from reco.errors import ConfigError
from reco.rank.config import RankModelConfig
from reco.rank.features import FeatureLayout
from reco.rank.models.autoint import AutoIntPlus
from reco.rank.models.dcnv2 import DCNv2
from reco.rank.models.deepfm import DeepFM
from reco.rank.models.gmf import GMF
from reco.rank.models.lr import LogisticRegression
from reco.rank.models.mf import MatrixFactorization
from reco.rank.models.mlp import NCFMLP
from reco.rank.models.multitask import MultiTask
from reco.rank.models.neumf import NeuMF
from reco.rank.models.resort import ReSort
from reco.registry import Registry

ModelFactory = Callable[[FeatureLayout, RankModelConfig, int], nn.Module]

MODELS: Registry[ModelFactory] = Registry("ranking model", "ranking.model.name")
MODELS.add("lr", LogisticRegression)
MODELS.add("mf", MatrixFactorization)
MODELS.add("gmf", GMF)
MODELS.add("mlp", NCFMLP)
MODELS.add("neumf", NeuMF)
MODELS.add("deepfm", DeepFM)
MODELS.add("dcnv2", DCNv2)
MODELS.add("autoint+", AutoIntPlus)
MODELS.add("shared_bottom", partial(MultiTask, mode="shared_bottom"))
MODELS.add("mmoe", partial(MultiTask, mode="mmoe"))
MODELS.add("resort", ReSort)
MULTI_LABEL = {"lr", "shared_bottom", "mmoe"}
ID_MODELS = {"mf", "gmf", "mlp", "neumf"}  # need user and item id fields


def build_model(cfg: RankModelConfig, layout: FeatureLayout, n_tasks: int) -> nn.Module:
    """A fresh model, or a ConfigError naming the setting that does not fit the data."""
    factory = MODELS.get(cfg.name)
    if n_tasks != 1 and cfg.name not in MULTI_LABEL:
        raise ConfigError(
            f"ranking.model.name={cfg.name} learns one label, the data has {n_tasks}: set ranking.labels to one of them"
        )
    if cfg.name in ID_MODELS and (layout.user_field is None or layout.item_field is None):
        raise ConfigError(f"ranking.model.name={cfg.name} needs user and item id fields, which this data set lacks")
    try:
        return factory(layout, cfg, n_tasks)
    except ValueError as e:
        raise ConfigError(f"ranking.model: {e}") from None
