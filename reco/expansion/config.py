"""The ``expansion`` config section: seed lists, the two list representations, the blend,
the scoring job and the evaluation protocol.

Defaults are the values the validation split chose (docs/expansion.md); every one
of them can be overridden with ``--set expansion.<part>.<key>=value``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reco.schema import InputPath, StrictModel

BUCKETS = ("small", "medium", "large")


class SizeBuckets(StrictModel):
    """Seed-list size buckets: small < small_below <= medium <= medium_up_to < large."""

    small_below: int = Field(50, ge=2)
    medium_up_to: int = Field(200, ge=2)

    @model_validator(mode="after")
    def _ordered(self) -> SizeBuckets:
        if self.medium_up_to < self.small_below:
            raise ValueError("medium_up_to must be at least small_below")
        return self

    def of(self, size: int) -> str:
        if size < self.small_below:
            return "small"
        return "medium" if size <= self.medium_up_to else "large"


class DensityConfig(StrictModel):
    """LSH region density (reco.expansion.region_density)."""

    planes: int = Field(
        0, ge=0, le=14, description="Hyperplanes per repetition (2^planes regions); 0 picks log2(users / region_users)."
    )
    region_users: int = Field(16, ge=2, description="Mean users per region that planes=0 aims at.")
    repetitions: int = Field(64, ge=1, description="Independent partitions; a user's score is the mean over them.")
    alpha: float | None = Field(
        None, ge=0, description="Smoothing numerator; None: beta times the list's seed share of all users."
    )
    beta: float = Field(10.0, gt=0, description="Smoothing denominator (pseudo-users per region).")
    min_region_users: int = Field(3, ge=1, description="Regions with fewer users are dropped (they score the prior).")
    center: bool = Field(
        True, description="Hyperplanes through the mean user instead of the origin (balanced regions)."
    )
    seed: int = 0


class ClassifierConfig(StrictModel):
    """The per-list affinity MLP (reco.expansion.affinity_classifier)."""

    hidden: int = Field(32, ge=1)
    background_ratio: float = Field(10.0, gt=0, description="Background users sampled per seed.")
    min_background: int = Field(1000, ge=1)
    max_background: int = Field(5000, ge=1)
    validation_share: float = Field(
        0.2, gt=0, lt=1, description="Share of the list (and background) held out for early stopping."
    )
    max_epochs: int = Field(200, ge=1, description="Full-batch Adam steps at most.")
    patience: int = Field(40, ge=1)
    refit: bool = Field(True, description="Retrain on the whole list for the number of steps early stopping chose.")
    lr: float = Field(0.01, gt=0)
    weight_decay: float = Field(1e-3, ge=0)
    seed: int = 0


class RequestConfig(StrictModel):
    """The in-process expander's budget per request (serving: p99 under 150 ms at 20,000 users).

    A request trains its classifier on the spot, so it gets fewer steps and background users
    than the batch job, and no refit; density and the blend are the same.
    """

    max_steps: int = Field(40, ge=1, description="Adam steps at most for the request's classifier.")
    max_background: int = Field(500, ge=1, description="Background users sampled for the request's classifier.")
    refit: bool = False


class BlendShares(StrictModel):
    """Density's weight in the blend, by seed-list size bucket: its weight in the rank sum that
    orders the users both methods chose, and its share of the places for the rest."""

    small: float = Field(0.5, ge=0, le=1)
    medium: float = Field(0.3, ge=0, le=1)
    large: float = Field(0.3, ge=0, le=1)


class BlendConfig(StrictModel):
    density_share: BlendShares = BlendShares()
    depth: float = Field(
        2.0, ge=1.0, description="Length of each method's top list, in audiences, searched for users in both."
    )


class JobConfig(StrictModel):
    """ray_jobs.expand: Ray Data scoring of all users for all lists."""

    batch_size: int = Field(8192, ge=1)
    actors: int = Field(1, ge=1, description="Actor pool size; each actor holds every list's representation.")
    cpus_per_actor: float = Field(0.5, gt=0)


class ProtocolConfig(StrictModel):
    """The held-out evaluation (reco.expansion.protocol)."""

    holdout_share: float = Field(0.2, ge=0.1, le=0.3, description="Share of each list held out (10 to 30 percent).")
    splits: int = Field(3, ge=1, description="Random splits averaged.")
    audience_share: float = Field(0.1, gt=0, le=1, description="The largest K is this share of all users.")
    methods: list[
        Literal["blend", "density", "voting", "classifier", "centroid", "logreg", "most_active", "random"]
    ] = Field(
        default_factory=lambda: [
            "blend",
            "density",
            "voting",
            "classifier",
            "centroid",
            "logreg",
            "most_active",
            "random",
        ]
    )
    actors: int = Field(2, ge=1, description="Ray Data actors sharing the (list, split) pairs in ray_jobs.evaluate.")
    cpus_per_actor: float = Field(0.5, gt=0)
    stage: Literal["test", "validation"] = Field(
        "test",
        description="validation: hold the test seeds out entirely and score seeds carved from the rest (tuning).",
    )
    seed: int = 0


class SyntheticListsConfig(StrictModel):
    """Seed lists from the planted communities of a synthetic run."""

    per_bucket: int = Field(16, ge=1, description="Lists per size bucket (small and medium are sampled subsets).")
    min_share: float = Field(0.1, ge=0, le=1, description="A member's share of engagement in the community, at least.")
    min_size: int = Field(10, ge=2, description="Smallest sampled list.")
    seed: int = 0


class ExpansionConfig(StrictModel):
    seed_lists: InputPath | None = Field(
        None,
        description="Parquet or JSON lines of (seed_list_id, user_id raw); "
        "None: from a synthetic run's truth, else skip.",
    )
    min_seeds: int = Field(5, ge=1, description="Lists with fewer known seeds are rejected (the others go on).")
    audience_size: int = Field(1000, ge=1, description="Users returned per list by the expand job.")
    user_vectors: str = Field(
        "embedding",
        description="Whose user vectors the methods read: 'embedding' (the spine's pooled "
        "vector) or a vector retriever saved in the run (multi_interest, sequence_tower, two_tower, mf); "
        "a user with several vectors scores the max over them.",
    )
    max_vectors: int = Field(
        10,
        ge=1,
        description="A user's most important vectors kept at most (multi-interest users hold "
        "up to ~100 clusters; Last.fm validation: 10 beat 3 and 1).",
    )
    buckets: SizeBuckets = SizeBuckets()
    density: DensityConfig = DensityConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    blend: BlendConfig = BlendConfig()
    job: JobConfig = JobConfig()
    request: RequestConfig = RequestConfig()
    protocol: ProtocolConfig = ProtocolConfig()
    synthetic_lists: SyntheticListsConfig = SyntheticListsConfig()
