"""The ``embedding``, ``export`` and ``index`` config sections: StarSpace training, vector export, faiss."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

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
    """The user index (reco.embedding.index, built by ray_jobs/build_index.py).

    ``flat`` is exact and holds every float (n x dim x 4 bytes); ``ivf`` and ``ivfpq`` train
    their quantizers on a sample and add the users in shards by Ray tasks, ``ivfpq`` keeping
    only ``pq_m``-byte codes per user so that an index of more users than one node holds as
    floats still fits; ``hnsw`` is a graph built in the driver.
    """

    kind: Literal["flat", "ivf", "ivfpq", "hnsw"] = Field(
        "flat",
        description="flat: exact; ivf: inverted lists of full vectors; ivfpq: inverted lists of product-quantised "
        "codes (pq_m x pq_nbits bits a user); hnsw: a graph. Measured at 1M users in docs/scaling.md.",
    )
    nlist: int = Field(0, ge=0, description="IVF lists (ivf, ivfpq); 0 picks about 4*sqrt(n), at most n/39.")
    nprobe: int = Field(16, ge=1, description="Lists searched per query (ivf, ivfpq): recall against query time.")
    pq_m: int = Field(
        32,
        ge=1,
        description="ivfpq: sub-quantizers per vector, i.e. bytes per user at pq_nbits=8; must divide the dimension. "
        "At 1M 64-d users 32 gave recall@10 0.78, 16 gave 0.47 (docs/scaling.md).",
    )
    pq_nbits: int = Field(8, ge=4, le=12, description="ivfpq: bits per sub-quantizer code (2**nbits centroids each).")
    train_size: int = Field(
        0,
        ge=0,
        description="Vectors sampled to train ivf/ivfpq; 0 picks 64 per list and, for ivfpq, at least 64 per "
        "PQ centroid, at most n.",
    )
    shard_rows: int = Field(
        250_000, ge=1, description="ivf, ivfpq: vectors each Ray task reads, encodes and hands back to be merged."
    )
    min_vectors: int = Field(
        1000, ge=1, description="Fewer vectors than this build a flat index whatever the kind (exact and cheap)."
    )
    hnsw_m: int = Field(32, ge=4)
    ef_search: int = Field(128, ge=1)
    ef_construction: int = Field(80, ge=1)
    recall_queries: int = Field(1000, ge=1, description="Queries used to measure recall@10 against exact search.")

    @model_validator(mode="after")
    def _consistent(self) -> IndexConfig:
        if self.kind in ("ivf", "ivfpq") and self.train_size and self.nlist and self.train_size < self.nlist:
            raise ValueError(
                f"index.train_size {self.train_size} is below index.nlist {self.nlist}: k-means needs "
                "at least one training vector per list"
            )
        if self.kind == "ivfpq" and self.train_size and self.train_size < 2**self.pq_nbits:
            raise ValueError(
                f"index.train_size {self.train_size} is below the 2**index.pq_nbits = "
                f"{2**self.pq_nbits} centroids each PQ sub-quantizer trains"
            )
        return self
