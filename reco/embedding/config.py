"""The ``embedding``, ``export`` and ``index`` config sections: StarSpace training, vector export, faiss."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reco.schema import StrictModel


class ALSConfig(StrictModel):
    """Implicit-feedback matrix factorisation (reco.embedding.als): weighted ALS on the training histories.

    Set under ``expansion.als`` (the representation the expansion reads; a change there refits
    ALS alone, never StarSpace). Each data set's config holds the values its validation split
    chose (docs/embeddings.md#implicit-als).
    """

    factors: int = Field(64, ge=2, description="Latent dimensions of users and topics.")
    regularization: float = Field(1.0, ge=0, description="L2 weight on every user and topic factor.")
    iterations: int = Field(15, ge=1, description="Alternations (users, then topics).")
    alpha: float = Field(10.0, ge=0, description="Confidence c = 1 + alpha * g(weight) on engaged pairs.")
    confidence: Literal["binary", "linear", "log"] = Field(
        "log", description="g(weight): 1, the weight, or log1p(weight) (play counts are heavy-tailed)."
    )
    cg_steps: int = Field(3, ge=1, description="Conjugate-gradient steps per row and alternation (warm-started).")
    seed: int = 0


class EmbeddingConfig(StrictModel):
    """StarSpace-style training (reco.embedding.starspace)."""

    dim: int = Field(64, ge=2)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(256, ge=1)
    lr: float = Field(0.05, gt=0)
    optimizer: Literal["adagrad", "adam", "sgd"] = "adagrad"
    loss: Literal["hinge", "softmax"] = "hinge"
    margin: float = Field(0.2, ge=0, description="Hinge margin on cosine similarity.")
    temperature: float = Field(0.1, gt=0, description="Softmax loss temperature.")
    negatives: int = Field(200, ge=1, description="Negatives sampled per batch, shared by its examples.")
    negative_sampling: Literal["uniform", "popularity"] = Field(
        "uniform",
        description="uniform beat popularity-smoothed sampling on Last.fm and synthetic (docs/embeddings.md).",
    )
    popularity_power: float = Field(0.5, ge=0, le=1, description="Popularity sampling: count ** power.")
    samples_per_user: int = Field(4, ge=1, description="(input, target) pairs drawn per user per epoch.")
    max_history: int = Field(200, ge=1, description="Topics pooled per training example, sampled if longer.")
    weighted_pooling: bool = Field(False, description="Pool topics weighted by log1p(weight) instead of a plain mean.")
    num_workers: int = Field(2, ge=1, description="Ray Train workers (DDP on CPU).")
    cpus_per_worker: float = Field(0.5, gt=0)
    patience: int = Field(3, ge=1, description="Epochs without validation improvement before stopping.")
    max_failures: int = Field(1, ge=0, description="Worker failures survived by restoring the latest checkpoint.")
    val_max_users: int = Field(5_000, ge=1, description="Validation users scored per epoch.")
    seed: int = 0


class ExportConfig(StrictModel):
    batch_size: int = Field(4096, ge=1)
    actors: int = Field(1, ge=1, description="Actor pool size holding the model.")
    cpus_per_actor: float = Field(0.5, gt=0)


class IndexConfig(StrictModel):
    kind: Literal["flat", "ivf", "hnsw"] = "flat"
    nlist: int = Field(0, ge=0, description="IVF lists; 0 picks about 4*sqrt(n).")
    nprobe: int = Field(16, ge=1)
    hnsw_m: int = Field(32, ge=4)
    ef_search: int = Field(128, ge=1)
    ef_construction: int = Field(80, ge=1)
    recall_queries: int = Field(1000, ge=1, description="Queries used to measure recall@10 against exact search.")
