"""The ``ranking:`` config section: data view, features, model, training loop, calibration.

One flat typed section per concern, so ``--set ranking.model.name=dcnv2`` or
``--set ranking.train.epochs=3`` override any value and a typo is an error naming the key.
Each model reads the hyperparameters it needs from :class:`RankModelConfig`; the rest are unused.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reco.schema import InputPath, StrictModel

ModelName = Literal["lr", "mf", "gmf", "mlp", "neumf", "deepfm", "dcnv2", "autoint+", "shared_bottom", "mmoe", "resort"]
Source = Literal["run_dir", "movielens", "movielens_ncf", "tiny_mtl"]


class RankFeatureConfig(StrictModel):
    """How raw columns become model inputs (reco.rank.features); fitted on training rows only."""

    min_count: int = Field(
        1, ge=1, description="Categorical values seen fewer times in training map to the OOV bucket."
    )
    hash_threshold: int = Field(
        100_000, ge=2, description="Categorical fields with more distinct training values are hashed."
    )
    hash_buckets: int = Field(65_536, ge=2, description="Buckets of a hashed field.")
    multi_max_len: int = Field(6, ge=1, description="Tokens kept per multi-valued field (MovieLens genres).")


class RankModelConfig(StrictModel):
    """Hyperparameters of the registry's models (reco.rank.models); each uses the ones it names."""

    name: ModelName = "deepfm"
    embed_dim: int = Field(16, ge=1, description="Field embedding size (GMF/MF factors for the NCF family).")
    mlp_dims: list[int] = Field(default_factory=lambda: [128, 64], description="Hidden layers of every DNN part.")
    dropout: float = Field(0.1, ge=0, lt=1)
    cross_layers: int = Field(3, ge=1, description="DCNv2 cross layers.")
    cross_rank: int = Field(0, ge=0, description="DCNv2: 0 is a full-rank cross matrix, else its low rank.")
    cross_structure: Literal["stacked", "parallel"] = "parallel"
    attention_layers: int = Field(3, ge=1, description="AutoInt+ self-attention layers.")
    attention_heads: int = Field(2, ge=1)
    attention_dim: int = Field(32, ge=1, description="AutoInt+ attention output size per field (all heads).")
    experts: int = Field(4, ge=1, description="MMoE experts.")
    expert_dims: list[int] = Field(default_factory=lambda: [64], description="Shared bottom / each MMoE expert.")
    tower_dims: list[int] = Field(default_factory=lambda: [32], description="Per-task towers of multi-task models.")
    esmm: bool = Field(
        False, description="Multi-task: conversion = click x conversion-given-click over all impressions."
    )
    retention_layers: int = Field(2, ge=1, description="RE-SORT multi-scale retention layers per stream.")
    retention_heads: int = Field(2, ge=1, description="RE-SORT heads; each head decays at its own scale.")
    retention_dim: int = Field(16, ge=1, description="RE-SORT retention output size per field.")
    gate_dims: list[int] = Field(default_factory=lambda: [64], description="RE-SORT feature-selection gate MLP.")
    neumf_alpha: float = Field(0.5, ge=0, le=1, description="NeuMF pre-training: weight of GMF's output layer.")
    pretrained: list[str] = Field(
        default_factory=list, description="NeuMF only: run dirs of a trained GMF and MLP (in that order)."
    )


class RankTrainConfig(StrictModel):
    """The one training loop (reco.rank.training) as Ray Train runs it (ray_jobs.train_ranker)."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(1024, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0, description="L2 on every parameter (Adam's weight_decay).")
    optimizer: Literal["adam", "adagrad", "sgd"] = "adam"
    loss: Literal["bce", "focal"] = "bce"
    focal_gamma: float = Field(2.0, ge=0)
    focal_alpha: float = Field(0.25, ge=0, le=1)
    negatives: int = Field(
        0,
        ge=0,
        description="Sampled negatives per positive each epoch (implicit data, NCF); 0 uses the labels as given.",
    )
    monitor: Literal["auc", "logloss", "hr@10"] = Field(
        "auc", description="Validation metric for early stopping and the best epoch."
    )
    patience: int = Field(2, ge=1, description="Epochs without a better validation metric before stopping.")
    num_workers: int = Field(2, ge=1, description="Ray Train workers (DDP on CPU).")
    cpus_per_worker: float = Field(0.5, gt=0)
    max_failures: int = Field(1, ge=0, description="Worker failures survived by restoring the latest checkpoint.")
    seed: int = 0


class RankCalibrationConfig(StrictModel):
    method: Literal["auto", "temperature", "platt", "isotonic", "none"] = Field(
        "auto",
        description="auto picks the method with the lowest ECE when fitted on one half of validation "
        "and scored on the other.",
    )
    bins: int = Field(15, ge=2, description="ECE bins.")


class RankingConfig(StrictModel):
    """Which data the ranker learns from, and how."""

    source: Source = Field(
        "run_dir",
        description="run_dir: the run's interactions; movielens: CTR view; movielens_ncf: leave-one-out; tiny_mtl.",
    )
    path: InputPath | None = Field(
        None, description="Data folder for movielens / movielens_ncf / tiny_mtl (default ../shared/data/<set>)."
    )
    labels: list[str] = Field(
        default_factory=list, description="Labels to learn; empty means every label of the source."
    )
    label_threshold: float = Field(4.0, description="run_dir / movielens: weight or rating >= threshold is a positive.")
    val_share: float = Field(0.1, gt=0, lt=0.5, description="Random share of rows for validation (CTR views).")
    test_share: float = Field(0.1, gt=0, lt=0.5, description="Random share of rows for test (CTR views).")
    eval_negatives: int = Field(
        99, ge=1, description="movielens_ncf: sampled unseen items ranked against each held-out one."
    )
    split_seed: int = 0
    features: RankFeatureConfig = RankFeatureConfig()
    model: RankModelConfig = RankModelConfig()
    train: RankTrainConfig = RankTrainConfig()
    calibration: RankCalibrationConfig = RankCalibrationConfig()

    @model_validator(mode="after")
    def _consistent(self) -> RankingConfig:
        if self.model.pretrained and self.model.name != "neumf":
            raise ValueError("ranking.model.pretrained is for neumf only")
        if self.model.pretrained and len(self.model.pretrained) != 2:
            raise ValueError("ranking.model.pretrained needs two run dirs: a trained GMF, then a trained MLP")
        return self
