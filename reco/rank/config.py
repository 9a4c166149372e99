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
Source = Literal["run_dir", "movielens", "movielens_ncf", "tiny_mtl", "tabular"]


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


class TabularConfig(StrictModel):
    """``ranking.source: tabular``: the user's own impression log, described here instead of coded (reco.rank.tabular).

    One file or folder (``path``) split by ``split``, or given ``train`` / ``test`` (and optionally
    ``validation``) files; CSV / TSV or Parquet. Every column the ranker reads is declared: the
    labels (several make a multi-task data set) and each feature's kind.
    """

    path: InputPath | None = Field(None, description="One file or a folder of files, split by `split`.")
    train: InputPath | None = Field(None, description="Given split files instead of `path`: training rows.")
    validation: InputPath | None = Field(
        None, description="Validation rows; without it a seeded val_share of train is carved off."
    )
    test: InputPath | None = Field(None, description="Test rows (with `train`).")
    format: Literal["auto", "csv", "parquet"] = Field(
        "auto", description="auto: .parquet / .pq files are Parquet, anything else delimited text."
    )
    delimiter: str | None = Field(
        None, min_length=1, max_length=1, description="Text files: the column separator (default ',', tab for .tsv)."
    )
    header: bool = Field(True, description="Text files: the first line names the columns.")
    columns: list[str] = Field(
        default_factory=list,
        description="Text files: every column's name in file order (needed without a header; replaces one).",
    )
    labels: list[str] = Field(
        default_factory=list, description="0/1 label columns; several make a multi-task data set."
    )
    categorical: list[str] = Field(
        default_factory=list, description="One id per row; missing values are one more token."
    )
    numeric: list[str] = Field(
        default_factory=list, description="Dense values; missing ones get the training mean (standardised: 0)."
    )
    multi_valued: dict[str, str] = Field(
        default_factory=dict, description="Column -> separator of its tokens ('a|b|c'), pooled by the model."
    )
    log1p: bool | list[str] = Field(
        False, description="sign(x) * log(1 + |x|) before standardising: true for every numeric column, or a list."
    )
    user_key: str | None = Field(None, description="Raw user id column: a categorical feature, GAUC groups, serving.")
    item_key: str | None = Field(None, description="Raw item id column: a categorical feature and serving.")
    group_key: str | None = Field(None, description="GAUC groups when they are not users (a session, a query).")
    user_features: list[str] = Field(
        default_factory=list, description="Declared features that describe the user (looked up by id when serving)."
    )
    item_features: list[str] = Field(
        default_factory=list, description="Declared features that describe the item (looked up by id when serving)."
    )
    split: Literal["random", "time"] = Field(
        "random", description="For `path`: random (val_share, test_share, split_seed) or by `time_column`."
    )
    time_column: str | None = Field(
        None, description="split=time: the latest test_share rows are test, the val_share before them validation."
    )

    def features(self) -> list[str]:
        """Every declared feature column, keys first, each once."""
        keys = [k for k in (self.user_key, self.item_key) if k]
        rest = [*self.categorical, *self.numeric, *self.multi_valued]
        return keys + [c for c in rest if c not in keys]

    def log1p_columns(self) -> list[str]:
        if self.log1p is True:
            return list(self.numeric)
        return list(self.log1p) if self.log1p else []

    @model_validator(mode="after")
    def _consistent(self) -> TabularConfig:
        p = "ranking.tabular"
        files = {k: getattr(self, k) for k in ("train", "validation", "test") if getattr(self, k)}
        if bool(self.path) == bool(files):
            raise ValueError(f"{p}: give either path (split by `split`) or train and test files, not both / neither")
        if files and not {"train", "test"} <= set(files):
            raise ValueError(f"{p}: given split files need both train and test (validation is optional)")
        if not self.labels:
            raise ValueError(f"{p}.labels: name at least one 0/1 label column")
        if not self.features():
            raise ValueError(f"{p}: declare at least one feature (categorical, numeric, multi_valued or a key)")
        if not self.header and not self.columns:
            raise ValueError(f"{p}.columns: header is false, so name the file's columns")
        kinds: dict[str, str] = {}
        for kind in ("labels", "categorical", "numeric", "multi_valued"):
            for col in getattr(self, kind):
                if col in kinds:
                    raise ValueError(f"{p}: column {col!r} is declared twice ({kinds[col]} and {kind})")
                kinds[col] = kind
        for key, not_as in (
            ("user_key", ("labels", "numeric", "multi_valued")),
            ("item_key", ("labels", "numeric", "multi_valued")),
            ("group_key", ("labels", "numeric", "multi_valued")),
            ("time_column", ("labels", "multi_valued")),
        ):
            col = getattr(self, key)
            if col and kinds.get(col) in not_as:
                raise ValueError(f"{p}.{key}: {col!r} is declared in {kinds[col]}")
        if self.split == "time" and not self.time_column:
            raise ValueError(f"{p}.time_column: split=time needs the column that orders the rows")
        for col, sep in self.multi_valued.items():
            if not sep:
                raise ValueError(f"{p}.multi_valued.{col}: the separator is empty")
        unknown = [c for c in self.log1p_columns() if c not in self.numeric]
        if unknown:
            raise ValueError(f"{p}.log1p: {unknown} are not numeric columns")
        declared = set(self.features())
        for side in ("user_features", "item_features"):
            stray = [c for c in getattr(self, side) if c not in declared]
            if stray:
                raise ValueError(f"{p}.{side}: {stray} are not declared features")
        if set(self.user_features) & set(self.item_features):
            raise ValueError(f"{p}: a column cannot be both a user and an item feature")
        if self.columns and len(set(self.columns)) != len(self.columns):
            raise ValueError(f"{p}.columns: a name appears twice")
        return self


class RankingConfig(StrictModel):
    """Which data the ranker learns from, and how."""

    source: Source = Field(
        "run_dir",
        description="run_dir: the run's interactions; movielens: CTR view; movielens_ncf: leave-one-out; tiny_mtl; "
        "tabular: your own log, described in ranking.tabular.",
    )
    path: InputPath | None = Field(
        None, description="Data folder for movielens / movielens_ncf / tiny_mtl (default ../shared/data/<set>)."
    )
    tabular: TabularConfig | None = Field(None, description="source=tabular: the files and their columns.")
    labels: list[str] = Field(
        default_factory=list, description="Labels to learn; empty means every label of the source."
    )
    label_threshold: float = Field(4.0, description="run_dir / movielens: weight or rating >= threshold is a positive.")
    val_share: float = Field(
        0.1, gt=0, lt=0.5, description="Share of rows for validation (CTR views; tabular: random or latest)."
    )
    test_share: float = Field(0.1, gt=0, lt=0.5, description="Share of rows for test (CTR views; tabular too).")
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
        if self.source == "tabular" and self.tabular is None:
            raise ValueError("ranking.source=tabular needs a ranking.tabular section (files, labels, feature columns)")
        if self.source == "tabular" and self.path:
            raise ValueError("ranking.path is not read for source=tabular: set ranking.tabular.path")
        return self
