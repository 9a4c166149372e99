"""The ``retrieval`` config section: which retriever answers, and each retriever's settings.

Defaults are the settings chosen on the validation parts of the benchmark (bench/retrieval.py,
docs/retrieval.md); configs/retrieval-*.yaml hold the per-data-set choices.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from reco.embedding.config import ALSConfig
from reco.schema import StrictModel

RetrieverName = Literal[
    "popularity", "last_items_knn", "pooled", "multi_interest", "sequence_tower", "two_tower", "pixie", "mf", "als"
]


class ShortTermConfig(StrictModel):
    """A request's latest actions as a short-term interest beside the batch-computed ones (PinnerSage)."""

    max_topics: int = Field(20, ge=1, description="Recent topic ids a request may carry.")
    weight: float = Field(1.0, ge=0, description="Importance of the short-term interest against the long-term ones.")


class PooledConfig(StrictModel):
    """The spine's StarSpace user: the mean of its topics' vectors."""

    weighted: bool = Field(False, description="Pool by log1p(weight) as embedding.weighted_pooling does.")


class LastItemsKnnConfig(StrictModel):
    """Item-kNN over the user's last few topics: the simple sequence-aware baseline."""

    last_n: int = Field(5, ge=1, description="Latest input topics whose neighbours are summed.")
    neighbours: int = Field(200, ge=1, description="Neighbours kept per topic (cosine of co-engagement).")
    shrink: float = Field(10.0, ge=0, description="Cosine shrinkage: co-count / (norms + shrink).")


class MultiInterestConfig(StrictModel):
    """PinnerSage-style interests: Ward clusters of a user's topic vectors, one medoid each."""

    distance_threshold: float = Field(1.0, gt=0, description="Ward linkage height that cuts the dendrogram.")
    half_life_days: float | None = Field(
        30.0, gt=0, description="Importance decay; None or a data set without time: plain count."
    )
    max_history: int = Field(200, ge=2, description="Latest topics clustered per user.")
    top_interests: int = Field(3, ge=1, description="Interests queried per request, by importance.")
    representative: Literal["medoid", "centroid"] = Field(
        "medoid", description="An interest's vector: its medoid topic (PinnerSage) or the unit mean of its topics."
    )
    merge: Literal["round_robin", "max"] = Field("round_robin", description="How per-interest results merge.")
    batch_size: int = Field(512, ge=1, description="Users per map_batches call of the batch job.")
    actors: int = Field(1, ge=1)
    cpus_per_actor: float = Field(0.5, gt=0)


class RayJobSettings(StrictModel):
    """How a retriever's Ray job runs (Ray Train workers, Ray Data inference), not what it learns:
    changing these neither retrains a saved model nor changes its fingerprint. bench.retrieval
    fits in-process and ignores them."""

    val_max_users: int = Field(2000, ge=1)
    num_workers: int = Field(2, ge=1, description="Ray Train workers.")
    cpus_per_worker: float = Field(0.5, gt=0)
    max_failures: int = Field(1, ge=0)
    embed_batch_size: int = Field(1024, ge=1, description="Users per batch of Ray Data inference.")
    actors: int = Field(1, ge=1, description="Ray Data inference actors.")
    cpus_per_actor: float = Field(0.5, gt=0)
    retrain: bool = Field(
        False, description="Train even if a model with these settings is saved (else only re-embed users)."
    )


class SequenceConfig(RayJobSettings):
    """PinnerFormer-style transformer over a user's latest engagements."""

    objective: Literal["all_action", "next_item"] = Field(
        "all_action", description="Dense all-action window or next item only."
    )
    max_len: int = Field(50, ge=2, description="Latest engagements the tower reads.")
    dim: int = Field(64, ge=4)
    layers: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    window: int = Field(
        30, ge=1, description="All-action: positives are the next `window` engagements after a position."
    )
    window_seconds: int | None = Field(None, ge=1, description="If set, the window is also cut at this many seconds.")
    anchors_per_sequence: int = Field(
        16, ge=1, description="Positions per training sequence whose window is predicted."
    )
    sequences_per_user: int = Field(4, ge=1, description="Training sequences drawn per user per epoch.")
    negatives: int = Field(512, ge=0, description="Uniform random negatives per batch, beside the in-batch ones.")
    temperature: float = Field(0.05, gt=0)
    logq: bool = Field(True, description="Subtract log of each candidate's sampling probability (Yi et al. 2019).")
    epochs: int = Field(20, ge=1)
    patience: int = Field(3, ge=1)
    batch_size: int = Field(64, ge=1, description="Sequences per step.")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    device: Literal["cpu", "cuda"] = Field(
        "cpu", description="Where the in-process fit (the benchmark's) trains; the Ray job trains on CPU workers."
    )
    seed: int = 0


class TwoTowerConfig(RayJobSettings):
    """User tower (id, features, pooled history) and item tower (id, features), in-batch softmax."""

    dim: int = Field(64, ge=4)
    hidden: int = Field(128, ge=4)
    use_user_id: bool = True
    use_user_features: bool = True
    use_item_features: bool = True
    id_dropout: float = Field(
        0.1, ge=0, lt=1, description="Share of examples whose user id is hidden: trains the unknown-user row."
    )
    max_history: int = Field(100, ge=1, description="Topics pooled per example, sampled if longer.")
    samples_per_user: int = Field(8, ge=1)
    temperature: float = Field(0.05, gt=0)
    logq: bool = True
    epochs: int = Field(20, ge=1)
    patience: int = Field(3, ge=1)
    batch_size: int = Field(512, ge=2, description="Examples per step: the in-batch negatives.")
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    embed_batch_size: int = Field(2048, ge=1, description="Users per batch of Ray Data inference.")
    seed: int = 0


class PixieConfig(StrictModel):
    """Pixie random walks with restarts on the user-topic graph."""

    steps: int = Field(20_000, ge=10, description="Most walk steps per request.")
    restart: float = Field(
        0.5, gt=0, le=1, description="Probability of restarting after each topic -> user -> topic step."
    )
    walkers: int = Field(256, ge=1, description="Walks advanced together (vectorised).")
    visit_threshold: int = Field(4, ge=1, description="Early stop: a topic counts once visited this often ...")
    enough_topics: int = Field(200, ge=1, description="... and the walk stops once this many topics count.")
    recency_half_life: float = Field(10.0, gt=0, description="Restart weight halves every this many actions back.")
    max_query_topics: int = Field(100, ge=1, description="Latest topics the walk restarts from.")
    boost: bool = Field(True, description="Pixie's multi-query boost: sum of square roots of per-query visits.")
    seed: int = 0


class MfConfig(RayJobSettings):
    """Matrix factorisation (the ranking stack's model, reco.rank.models.mf) trained for retrieval."""

    dim: int = Field(64, ge=1)
    negatives: int = Field(4, ge=1, description="Uniform negatives per positive (binary cross-entropy).")
    epochs: int = Field(30, ge=1)
    patience: int = Field(3, ge=1)
    batch_size: int = Field(1024, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    fold_in_steps: int = Field(
        100, ge=1, description="Steps fitting a vector for a user who never trained, items fixed."
    )
    seed: int = 0
    embed_batch_size: int = Field(2048, ge=1, description="Users per batch of Ray Data inference.")


class AlsRetrievalConfig(ALSConfig):
    """Weighted implicit-feedback ALS (reco.embedding.als, the expansion's fit) as a retriever.

    The same fields as ``expansion.als`` (factors, regularization, alpha, confidence, iterations,
    cg_steps, seed) so the one solver serves both; set apart because retrieval chooses its own
    values on its own validation part (bench.retrieval --tune).
    """


class RetrievalConfig(StrictModel):
    default: RetrieverName = Field("pooled", description="Retriever used when a request names none.")
    k: int = Field(100, ge=1, description="Candidates per request.")
    short_term: ShortTermConfig = ShortTermConfig()
    pooled: PooledConfig = PooledConfig()
    last_items_knn: LastItemsKnnConfig = LastItemsKnnConfig()
    multi_interest: MultiInterestConfig = MultiInterestConfig()
    sequence: SequenceConfig = SequenceConfig()
    two_tower: TwoTowerConfig = TwoTowerConfig()
    pixie: PixieConfig = PixieConfig()
    mf: MfConfig = MfConfig()
    als: AlsRetrievalConfig = AlsRetrievalConfig()
