"""``AudienceExpander``: one seed list in, one audience out, in-process and fast (serving).

Everything that does not depend on the list is done once at load: the user vectors, every
user's LSH region in every repetition, the users per region, the activity counts, the faiss
index (for the centroid baseline) and the raw-id lookup. A request is then a bincount of the
seeds' regions and a gather (density), a small classifier fitted on the seeds against a
sampled background and scored with one matrix product, two top-Ks and the blend. The
request's classifier trains on ``expansion.request``'s budget (fewer steps and background users
than the batch job's), the price of training it inside the request.

With several representations (``expansion.representations``) and ensemble weights in the config,
``method="ensemble"`` scores the components the list's size bucket weights (each vector
representation through an expander of its own, co-engagement through its sparse rows) and fuses
their ranks (reco.expansion.ensemble).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import faiss
import numpy as np
import pyarrow as pa
from threadpoolctl import ThreadpoolController

from reco import artifacts
from reco.embedding.als import run_matrix
from reco.embedding.index import from_bytes
from reco.errors import DataError
from reco.expansion import baselines
from reco.expansion.affinity_classifier import background_size, fit_classifier, mlp_scores, sample_background
from reco.expansion.blend import SOURCES, blend, density_share, position_scores, top_depth
from reco.expansion.coengagement import CoEngagement
from reco.expansion.config import ExpansionConfig
from reco.expansion.ensemble import bucket_weights, fuse, has_weights, offset_of, ranks
from reco.expansion.region_density import (
    Hyperplanes,
    density_table,
    region_counts,
    repetition_major,
    score_flat,
    smoothing,
    voting_table,
)
from reco.expansion.topk import top_k
from reco.expansion.user_vectors import (
    COENGAGEMENT,
    POOLED,
    VectorSets,
    read_user_vectors,
    representation_name,
    representations,
    vector_source,
)
from reco.registry import Registry
from reco.run_dir import RunDir


@dataclass(frozen=True)
class Expansion:
    """One expanded audience: raw user ids best first, with score, rank and source."""

    user_ids: list[str]
    scores: np.ndarray
    sources: list[str]
    stats: dict = field(default_factory=dict)

    def to_table(self, seed_list_id: str = "") -> pa.Table:
        n = len(self.user_ids)
        return pa.table(
            {
                "seed_list_id": [seed_list_id] * n,
                "user_id": pa.array(self.user_ids, pa.string()),
                "score": self.scores,
                "rank": np.arange(1, n + 1, dtype=np.int64),
                "source": self.sources,
            }
        )


class AudienceExpander:
    """Loaded once from a run directory; :meth:`expand` serves one seed list per call."""

    def __init__(self, run_uri: str, cfg: ExpansionConfig | None = None):
        self.cfg = cfg or ExpansionConfig()
        run = RunDir(run_uri)
        users = read_user_vectors(run, self.cfg.user_vectors)
        dense = users.column("user_id").to_numpy()
        self.sets = VectorSets.from_table(users, self.cfg.max_vectors)
        self.slots = np.ascontiguousarray(self.sets.flat(), dtype=np.float32)  # (users * m, d), padding masked
        vocab = run.read_table(artifacts.USER_VOCAB, columns=["user_id", "raw_id", "count"])
        by_dense = dict(
            zip(
                vocab.column("user_id").to_numpy().tolist(),
                zip(vocab.column("raw_id").to_pylist(), vocab.column("count").to_numpy().tolist()),
            )
        )
        self.raw_ids = np.asarray([by_dense[int(u)][0] for u in dense], dtype=object)
        self.activity = np.asarray([by_dense[int(u)][1] for u in dense], dtype=np.float64)
        self.position = {r: i for i, r in enumerate(self.raw_ids.tolist())}
        valid = self.sets.valid()
        self.lsh = Hyperplanes.for_users(self.sets.dim, len(valid), self.cfg.density, valid.mean(axis=0))
        self.codes = self.lsh.codes(self.slots)  # (slots, repetitions)
        self.rep_regions = repetition_major(self.codes, self.lsh.n_regions)  # (repetitions, slots) into a flat table
        self.region_users = region_counts(self.codes[self.sets.mask.ravel()], self.lsh.n_regions)
        r = self.cfg.request
        self.request_classifier = self.cfg.classifier.model_copy(
            update={
                "max_epochs": r.max_steps,
                "max_background": r.max_background,
                "refit": r.refit,
                "min_background": min(self.cfg.classifier.min_background, r.max_background),
            }
        )
        self.all_positions = np.arange(len(dense))
        self.index, self.index_positions = self._index(run, dense)
        self._blas = ThreadpoolController()
        # The ensemble's other representations load on its first request (a run served without it pays nothing).
        self.run_uri = run_uri
        # representation -> (its expander, its user positions in this expander's, this one's in its; -1: none)
        self.parts: dict[str, tuple[AudienceExpander, np.ndarray, np.ndarray]] = {}
        self.coengagement: CoEngagement | None = None

    def _load_parts(self, run: RunDir) -> None:
        """Each representation of the ensemble, with the map from its user positions to this expander's."""
        own = representation_name(self.cfg.user_vectors)
        for rep in representations(self.cfg):
            if rep == COENGAGEMENT:
                users, matrix = run_matrix(run)
                vocab = run.read_table(artifacts.USER_VOCAB, columns=["user_id", "raw_id"])
                raw = dict(zip(vocab.column("user_id").to_numpy().tolist(), vocab.column("raw_id").to_pylist()))
                where = {raw[int(u)]: i for i, u in enumerate(users)}
                rows = np.asarray([where.get(r, -1) for r in self.raw_ids.tolist()])
                picked = matrix[np.maximum(rows, 0)].multiply((rows >= 0)[:, None]).tocsr()
                self.coengagement = CoEngagement.build(picked, self.cfg.coengagement)
            elif rep == own:
                self.parts[rep] = (self, np.arange(self.n_users), np.arange(self.n_users))
            else:
                sub_cfg = self.cfg.model_copy(update={"user_vectors": vector_source(rep), "representations": []})
                sub = AudienceExpander(run.uri, sub_cfg)
                to_main = np.asarray([self.position.get(r, -1) for r in sub.raw_ids.tolist()], np.int64)
                from_main = np.full(self.n_users, -1, np.int64)
                from_main[to_main[to_main >= 0]] = np.flatnonzero(to_main >= 0)
                self.parts[rep] = (sub, to_main, from_main)

    @property
    def n_users(self) -> int:
        return self.sets.n

    def _index(self, run: RunDir, dense: np.ndarray):
        """A faiss index of the user vectors and, per index slot, the user's position here.

        The pooled embedding has the run's index; a retriever's vectors (several per user, maybe)
        get an exact inner-product index over their real vectors, built here.
        """
        if self.cfg.user_vectors != POOLED:
            index = faiss.IndexFlatIP(self.sets.dim)
            index.add(np.ascontiguousarray(self.sets.valid()))  # real vectors only: padding would score 0
            return index, np.nonzero(self.sets.mask)[0]
        index = from_bytes(run.read_bytes(artifacts.index("users")))
        slot_ids = run.read_table(artifacts.index_ids("users")).column("user_id").to_numpy()
        pos_of = np.full(int(max(dense.max(), slot_ids.max())) + 1, -1, dtype=np.int64)
        pos_of[dense] = np.arange(len(dense))
        return index, pos_of[slot_ids]

    def resolve(self, seed_ids: Sequence[str]) -> tuple[np.ndarray, dict]:
        """Positions of the known seeds; a DataError if the list is empty or too small."""
        given = [str(s).strip() for s in seed_ids if s is not None and str(s).strip()]
        if not given:
            raise DataError("the seed list is empty (no user ids)")
        distinct = list(dict.fromkeys(given))
        known = np.asarray(sorted({self.position[s] for s in distinct if s in self.position}), dtype=np.int64)
        stats = {
            "given": len(given),
            "duplicates": len(given) - len(distinct),
            "unknown": len(distinct) - len(known),
            "seeds": len(known),
        }
        if len(known) < self.cfg.min_seeds:
            raise DataError(
                f"the seed list has {len(known)} known seed(s) ({stats['unknown']} unknown id(s) of {len(distinct)}), "
                f"fewer than expansion.min_seeds={self.cfg.min_seeds}"
            )
        return known, stats

    def scores(self, seeds: np.ndarray, method: str, rng: np.random.Generator, k: int | None = None) -> np.ndarray:
        """A score per user (seeds at -inf) for one single method (``k``: the audience size, for centroid's search)."""
        s = SCORERS.get(method)(self, seeds, rng, k or self.cfg.audience_size)
        s[seeds] = -np.inf
        return s

    def _region_scores(self, seeds: np.ndarray, voting: bool) -> np.ndarray:
        """LSH region density (or plain seed counts, ``voting``): a bincount of the seeds' regions and a gather."""
        seed_codes = self.codes.reshape(self.n_users, self.sets.per_user, -1)[seeds][self.sets.mask[seeds]]
        if voting:
            table = voting_table(seed_codes, self.region_users, self.cfg.density.min_region_users)
        else:
            alpha, beta = smoothing(self.cfg.density, len(seed_codes), int(self.region_users[0].sum()))
            table = density_table(seed_codes, self.region_users, alpha, beta, self.cfg.density.min_region_users)
        return self.sets.best(score_flat(self.rep_regions, table))

    def _classifier_scores(self, seeds: np.ndarray, rng: np.random.Generator, linear: bool) -> np.ndarray:
        """The per-list MLP on the request's budget (or logistic regression, ``linear``), seeds against a background."""
        bg = sample_background(self.all_positions, seeds, background_size(len(seeds), self.request_classifier), rng)
        pos, neg = self.sets.valid(seeds), self.sets.valid(bg)
        if linear:
            return self.sets.best(baselines.logreg_scores(*baselines.fit_logreg(pos, neg), self.slots))
        return self.sets.best(
            mlp_scores(fit_classifier(pos, neg, self.request_classifier), self.slots).astype(np.float64)
        )

    def _centroid(self, seeds: np.ndarray, k: int) -> np.ndarray:
        slots, sims = baselines.centroid_neighbours(
            self.index, self.sets.valid(seeds), (k + len(seeds)) * self.sets.per_user
        )
        s = np.full(self.n_users, -np.inf)
        np.maximum.at(s, self.index_positions[slots], sims)  # a user's best vector
        return s

    def _component(self, name: str, seeds: np.ndarray, rng: np.random.Generator, k: int) -> np.ndarray:
        """One ensemble component's scores over this expander's users (-inf where it has none)."""
        if name == COENGAGEMENT:
            if self.coengagement is None:
                raise DataError("the ensemble names coengagement, which expansion.representations does not list")
            return self.coengagement.scores(seeds)
        rep, _, method = name.partition(":")
        if rep not in self.parts:
            raise DataError(f"the ensemble names {name!r}; expansion.representations does not list {rep!r}")
        sub, to_main, from_main = self.parts[rep]
        sub_seeds = np.unique(from_main[seeds][from_main[seeds] >= 0])
        if method == "blend":
            ties = sub.all_positions
            dens, clf = sub.scores(sub_seeds, "density", rng), sub.scores(sub_seeds, "classifier", rng)
            s = -(ranks(dens, ties) + ranks(clf, ties)).astype(np.float64)
            s[sub_seeds] = -np.inf
        else:
            s = sub.scores(sub_seeds, method, rng, k)
        out = np.full(self.n_users, -np.inf)
        out[to_main[to_main >= 0]] = s[to_main >= 0]
        return out

    def _ensemble(self, seeds: np.ndarray, rng: np.random.Generator, k: int) -> np.ndarray:
        """The ensemble's fused score per user for the weights of the list's size bucket."""
        bucket = self.cfg.buckets.of(len(seeds))
        weights = bucket_weights(self.cfg.ensemble, bucket)
        several = len(representations(self.cfg)) > 1 and has_weights(self.cfg.ensemble)
        if several and not self.parts:
            self._load_parts(RunDir(self.run_uri))
        if not weights or not several:
            raise DataError(
                f"no ensemble for a {bucket} list: set expansion.representations (several) and "
                f"expansion.ensemble.weights.{bucket} (bench.expansion --stage validation chooses them)"
            )
        ties = self.all_positions
        comp = {c: ranks(self._component(c, seeds, rng, k), ties) for c in weights}
        return fuse(comp, weights, offset_of(self.cfg.ensemble, bucket), len(seeds))

    def expand(self, seed_ids: Sequence[str], k: int | None = None, method: str = "blend", seed: int = 0) -> Expansion:
        """The top-k audience of one seed list (raw ids in, raw ids out; seeds never returned).

        BLAS runs on one thread: a request's products are small, and a second thread made them
        ten times slower on a busy 2-core machine; concurrency comes from more replicas.
        """
        with self._blas.limit(limits=1, user_api="blas"):
            return self._expand(seed_ids, k, method, seed)

    def _expand(self, seed_ids: Sequence[str], k: int | None, method: str, seed: int) -> Expansion:
        t0 = time.perf_counter()
        if method not in (*METHODS, ENSEMBLE):
            raise DataError(f"unknown expansion method {method!r}; expected one of {[*METHODS, ENSEMBLE]}")
        k = int(k or self.cfg.audience_size)
        if k < 1:
            raise DataError(f"audience size must be at least 1, got {k}")
        seeds, stats = self.resolve(seed_ids)
        rng = np.random.default_rng([self.cfg.classifier.seed, seed, len(seeds)])
        positions = self.all_positions
        if method == "blend":
            dens, clf = self.scores(seeds, "density", rng), self.scores(seeds, "classifier", rng)
            share = density_share(self.cfg.blend, self.cfg.buckets, len(seeds))
            depth = top_depth(self.cfg.blend, k)
            top, src = blend(top_k(dens, positions, depth), top_k(clf, positions, depth), k, share)
            scores, sources = position_scores(len(top), k), [SOURCES[i] for i in src]
        else:
            s = self._ensemble(seeds, rng, k) if method == ENSEMBLE else self.scores(seeds, method, rng, k)
            s[seeds] = -np.inf
            top = top_k(s, positions, k)
            scores, sources = s[top], [method] * len(top)
        stats["ms"] = round((time.perf_counter() - t0) * 1000, 2)
        return Expansion(self.raw_ids[top].tolist(), np.asarray(scores, np.float64), sources, stats)


ScoreFn = Callable[[AudienceExpander, np.ndarray, np.random.Generator, int], np.ndarray]

# Every single method by name (``method`` of a request): a score per user from the seeds' positions.
SCORERS: Registry[ScoreFn] = Registry("expansion method", error=DataError)
SCORERS.add("density", lambda ex, seeds, rng, k: ex._region_scores(seeds, voting=False))
SCORERS.add("voting", lambda ex, seeds, rng, k: ex._region_scores(seeds, voting=True))
SCORERS.add("classifier", lambda ex, seeds, rng, k: ex._classifier_scores(seeds, rng, linear=False))
SCORERS.add("centroid", lambda ex, seeds, rng, k: ex._centroid(seeds, k))
SCORERS.add("logreg", lambda ex, seeds, rng, k: ex._classifier_scores(seeds, rng, linear=True))
SCORERS.add("most_active", lambda ex, seeds, rng, k: baselines.most_active_scores(ex.activity).copy())
SCORERS.add("random", lambda ex, seeds, rng, k: baselines.random_scores(ex.n_users, rng))
# ``blend`` combines density and the classifier (AudienceExpander._expand); every run has these.
METHODS = ("blend", *SCORERS)
# ``ensemble`` fuses several representations' methods: only with expansion.representations and its weights.
ENSEMBLE = "ensemble"
