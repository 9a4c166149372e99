"""The ``expansion`` config section: seed lists, the two list representations, the blend,
the scoring job and the evaluation protocol.

Defaults are the values the validation split chose (docs/expansion.md); every one
of them can be overridden with ``--set expansion.<part>.<key>=value``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from reco.embedding.config import ALSConfig
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


class CoEngagementConfig(StrictModel):
    """User co-engagement (reco.expansion.coengagement): users sharing the seeds' topics, no embedding."""

    weighting: Literal["binary", "log"] = Field(
        "binary", description="A user's engagement with a topic: 1 or log1p(w)."
    )
    idf_power: float = Field(1.0, ge=0, description="Topic weight idf ** idf_power, idf = log(1 + users / users_t).")
    normalize: bool = Field(True, description="Unit-length user rows (cosine similarity between users).")
    power: float = Field(1.0, ge=1, description="score = sum over seeds of sim ** power; 1: one sparse product.")
    neighbours: int | None = Field(
        None,
        ge=1,
        description="user-kNN: only each user's this many most similar users count (a kNN graph built once, "
        "quadratic in the users); None: every user sharing a topic.",
    )
    neighbours_of: Literal["seeds", "users"] = Field(
        "seeds",
        description="With neighbours: 'seeds' scores a user by the seeds that have it among their neighbours, "
        "'users' by the seeds among its own neighbours.",
    )


class EnsembleWeights(StrictModel):
    """Per size bucket: component ("<representation>:<method>", or "coengagement") -> weight."""

    small: dict[str, float] = Field(default_factory=dict)
    medium: dict[str, float] = Field(default_factory=dict)
    large: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _positive(self) -> EnsembleWeights:
        for bucket in BUCKETS:
            for name, w in getattr(self, bucket).items():
                if w < 0:
                    raise ValueError(f"{bucket}.{name}: a weight is at least 0, got {w}")
        return self


class EnsembleConfig(StrictModel):
    """The blend across representations and methods (reco.expansion.ensemble): weighted rank fusion.

    A component's vote for the user it ranks r-th (from 0) is ``weight / (r + offset * seeds)``;
    a user's score is the sum of the votes. The weights are what the validation stage chose
    (``bench.expansion --stage validation`` prints and records the choice); empty: no ensemble.
    """

    weights: EnsembleWeights = EnsembleWeights()
    offset: float = Field(1.0, gt=0, description="Rank offset, in seeds: how fast a component's vote decays.")
    offsets: dict[Literal["small", "medium", "large"], float] = Field(
        default_factory=dict, description="Per-bucket rank offsets (the validation choice); a missing bucket: offset."
    )
    grid: list[float] = Field(
        default_factory=lambda: [0.0, 0.5, 1.0],
        description="Weights the validation stage tries for each candidate component.",
    )
    candidates: int = Field(
        4, ge=1, le=6, description="Components (best single ones on validation) the weight grid combines."
    )
    offset_grid: list[float] = Field(
        default_factory=lambda: [0.25, 0.5, 1.0, 2.0, 4.0],
        min_length=1,
        description="Rank offsets (in seeds) the validation stage tries with every weight vector.",
    )
    rule: Literal["hedge", "best"] = Field(
        "hedge",
        description="Which option the validation stage keeps: 'best' the best mean recall at |H|; 'hedge', of "
        "the options within one paired standard error of the best, the one spanning most representations "
        "with the most even weights.",
    )

    @model_validator(mode="after")
    def _positive_offsets(self) -> EnsembleConfig:
        if min(self.offset_grid) <= 0:
            raise ValueError(f"offset_grid: every offset is above 0, got {self.offset_grid}")
        return self


class JobConfig(StrictModel):
    """ray_jobs.expand: Ray Data scoring of all users for all lists."""

    batch_size: int = Field(8192, ge=1)
    actors: int = Field(1, ge=1, description="Actor pool size; each actor holds every list's representation.")
    cpus_per_actor: float = Field(0.5, gt=0)
    method: Literal["auto", "blend", "ensemble"] = Field(
        "auto",
        description="blend: one representation's density and classifier, all lists per user batch; ensemble: "
        "each list by the ensemble (ray_jobs/ensemble_audiences.py); auto: ensemble when several "
        "representations and ensemble weights are set.",
    )


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
    representations: list[str] = Field(
        default_factory=list,
        description="User representations the protocol scores side by side and the ensemble blends: "
        "'starspace' (the pooled embedding), 'als' (reco.embedding.als), 'coengagement' (no vectors), or a vector "
        "retriever; empty: expansion.user_vectors alone.",
    )
    als: ALSConfig = ALSConfig()
    coengagement: CoEngagementConfig = CoEngagementConfig()
    ensemble: EnsembleConfig = EnsembleConfig()
    buckets: SizeBuckets = SizeBuckets()
    density: DensityConfig = DensityConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    blend: BlendConfig = BlendConfig()
    job: JobConfig = JobConfig()
    request: RequestConfig = RequestConfig()
    protocol: ProtocolConfig = ProtocolConfig()
    synthetic_lists: SyntheticListsConfig = SyntheticListsConfig()

    @model_validator(mode="after")
    def _representations_and_weights(self) -> ExpansionConfig:
        """Representations listed once, one with vectors among them; ensemble weights only on what is scored.

        (Whether a retriever name exists and has vectors is checked where the vectors are read:
        reco.expansion.user_vectors.check_representations, which names this key too.)
        """
        names = [_ALIASES.get(n, n) for n in self.representations]
        if len(set(names)) != len(names):
            raise ValueError(f"representations: each representation once, got {self.representations}")
        if names and set(names) == {"coengagement"}:
            raise ValueError("representations: coengagement needs a vector representation beside it (starspace, als)")
        reps = set(names) or {_ALIASES.get(self.user_vectors, self.user_vectors)}
        methods = set(self.protocol.methods) - {"most_active", "random"}
        for bucket in BUCKETS:
            for name in getattr(self.ensemble.weights, bucket):
                rep, _, method = name.rpartition(":")
                ok = name in reps if not rep else (rep in reps and method in methods and len(reps) > 1)
                if not ok:
                    raise ValueError(
                        f"ensemble.weights.{bucket}.{name}: not a component this config scores (components are "
                        f"'<representation>:<method>' over representations {sorted(reps)} and methods "
                        f"{sorted(methods)}, or 'coengagement'; more than one representation)"
                    )
        return self


_ALIASES = {"embedding": "starspace"}  # the pooled embedding's source name -> its representation name
