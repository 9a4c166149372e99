"""The evaluation protocol (docs/protocols.md): held-out seeds, every method, by size bucket.

For each list and each of ``splits`` random splits: hold out ``holdout_share`` of the list (H)
and draw as many random non-members (N); expand from the rest (T) with every method over all
users (T's users are never returned); then

- recall@K = |top-K ∩ H| / |H| and precision@K = |top-K ∩ H| / K at K = |H|, 5|H| and
  ``audience_share`` of all users;
- AUC of H against N (scikit-learn);
- where a list has a truth (synthetic communities): truth precision@K, the share of the top-K
  who are true members (not seeds).

The blend is built at each K from the two methods' top-K; its AUC uses the order it reaches at
K = all users (both ranks summed). Ties are broken by a random order drawn per split, so a
method with many equal scores (most active) is not helped by user ids. Figures are means over
lists and splits within a size bucket (by the list's size). ``stage="validation"`` first sets
the test part H aside, then carves the validation seeds out of T the same way: tuning reads
those figures and never the held-out test seeds.

With several representations (``expansion.representations``, :class:`Representations`) every
vector method runs on each (rows named ``<representation>:<method>``; the first keeps its
random draws, so its figures equal a run on it alone), co-engagement adds ``coengagement``, and
``ensemble`` fuses the components the config's validation-chosen weights name
(reco.expansion.ensemble). On the validation stage each split also yields a
:class:`~reco.expansion.ensemble.RankSample` for the chooser.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import faiss
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from reco.expansion.affinity_classifier import background_size, fit_classifier, mlp_scores, sample_background
from reco.expansion.baselines import centroid_scores, fit_logreg, logreg_scores, most_active_scores, random_scores
from reco.expansion.blend import blend, top_depth
from reco.expansion.coengagement import CoEngagement
from reco.expansion.config import BUCKETS, ExpansionConfig
from reco.expansion.ensemble import NAME as ENSEMBLE
from reco.expansion.ensemble import RankSample, bucket_weights, fuse, offset_of, ranks
from reco.expansion.list_models import list_seed
from reco.expansion.region_density import (
    Hyperplanes,
    density_table,
    region_counts,
    score_users,
    smoothing,
    voting_table,
)
from reco.expansion.topk import top_k
from reco.expansion.user_vectors import COENGAGEMENT, VectorSets

log = logging.getLogger(__name__)

K_NAMES = ("holdout", "5x_holdout", "audience")
SHARED = ("most_active", "random")  # methods that read no representation: scored once


@dataclass(frozen=True)
class EvalList:
    list_id: str
    members: np.ndarray  # positions in the user space
    bucket: str
    truth: np.ndarray | None = None  # positions of every true member, if known


@dataclass(frozen=True)
class UserSpace:
    """Everything the methods share across lists: each user's vectors (one or several), activity,
    LSH codes and a faiss index over every vector slot (reco.expansion.user_vectors)."""

    sets: VectorSets
    activity: np.ndarray
    lsh: Hyperplanes
    codes: np.ndarray  # (n * m, repetitions): every slot's regions
    region_users: np.ndarray  # vectors per region (padding not counted)
    index: faiss.Index

    @property
    def n(self) -> int:
        return self.sets.n

    @classmethod
    def build(cls, vectors: VectorSets | np.ndarray, activity: np.ndarray, cfg: ExpansionConfig) -> UserSpace:
        sets = VectorSets.of(vectors)
        flat = np.ascontiguousarray(sets.flat(), dtype=np.float32)
        valid = sets.valid()
        lsh = Hyperplanes.for_users(sets.dim, len(valid), cfg.density, valid.mean(axis=0))
        codes = lsh.codes(flat)
        index = faiss.IndexFlatIP(sets.dim)
        index.add(flat)
        return cls(
            sets, np.asarray(activity), lsh, codes, region_counts(codes[sets.mask.ravel()], lsh.n_regions), index
        )

    def seed_codes(self, seeds: np.ndarray) -> np.ndarray:
        """The regions of the seeds' real vectors (one row per vector)."""
        m = self.sets.per_user
        return self.codes.reshape(self.n, m, -1)[seeds][self.sets.mask[seeds]]


@dataclass(frozen=True)
class Representations:
    """Every representation a protocol run scores: vector spaces by name (first = the primary one) and
    co-engagement. One vector space alone names its rows by method only, as before."""

    spaces: dict[str, UserSpace]
    coengagement: CoEngagement | None = None

    @classmethod
    def of(cls, space: UserSpace | Representations) -> Representations:
        return space if isinstance(space, Representations) else cls({"": space})

    @property
    def n(self) -> int:
        return next(iter(self.spaces.values())).n if self.spaces else self.coengagement.n

    @property
    def activity(self) -> np.ndarray:
        return next(iter(self.spaces.values())).activity

    @property
    def prefixed(self) -> bool:
        return len(self.spaces) + (self.coengagement is not None) > 1

    def name(self, rep: str, method: str) -> str:
        return f"{rep}:{method}" if self.prefixed and method not in SHARED else method


def method_scores(
    space: UserSpace, seeds: np.ndarray, methods: list[str], cfg: ExpansionConfig, rng: np.random.Generator, seed: int
) -> dict[str, np.ndarray]:
    """A score per user for each method, expanding from ``seeds`` (positions); seeds get -inf."""
    need = set(methods) | ({"density", "classifier"} if "blend" in methods else set())
    out: dict[str, np.ndarray] = {}
    sets = space.sets
    seed_codes = space.seed_codes(seeds)
    if "density" in need:
        alpha, beta = smoothing(cfg.density, len(seed_codes), sets.count())
        table = density_table(seed_codes, space.region_users, alpha, beta, cfg.density.min_region_users)
        out["density"] = sets.best(score_users(space.codes, table))
    if "voting" in need:
        out["voting"] = sets.best(
            score_users(space.codes, voting_table(seed_codes, space.region_users, cfg.density.min_region_users))
        )
    if need & {"classifier", "logreg"}:
        bg = sample_background(np.arange(space.n), seeds, background_size(len(seeds), cfg.classifier), rng)
        if "classifier" in need:
            w = fit_classifier(sets.valid(seeds), sets.valid(bg), cfg.classifier, seed=seed)
            out["classifier"] = sets.best(mlp_scores(w, sets.flat()).astype(np.float64))
        if "logreg" in need:
            coef, b = fit_logreg(sets.valid(seeds), sets.valid(bg), seed=seed)
            out["logreg"] = sets.best(logreg_scores(coef, b, sets.flat()))
    if "centroid" in need:
        out["centroid"] = sets.best(centroid_scores(space.index, sets.valid(seeds)))
    if "most_active" in need:
        out["most_active"] = most_active_scores(space.activity)
    if "random" in need:
        out["random"] = random_scores(space.n, rng)
    for s in out.values():
        s[seeds] = -np.inf
    return out


def split_list(members: np.ndarray, share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(held out, rest): ``share`` of the list, at least one, at most all but one."""
    perm = rng.permutation(members)
    n_hold = int(min(max(1, round(share * len(members))), len(members) - 1))
    return np.sort(perm[:n_hold]), np.sort(perm[n_hold:])


def _ranks(scores: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    order = np.lexsort((tiebreak, -scores))
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[order] = np.arange(len(scores))
    return ranks


def audience_figures(
    audience: np.ndarray, is_held: np.ndarray, truth: np.ndarray | None, k: int, name: str
) -> dict[str, float]:
    """recall@K and precision@K of the held-out seeds (and truth precision@K) for one audience."""
    hits = int(is_held[audience].sum())
    out = {f"recall@{name}": hits / max(int(is_held.sum()), 1), f"precision@{name}": hits / k}
    if truth is not None:
        out[f"truth_precision@{name}"] = float(truth[audience].sum()) / k
    return out


def component_scores(
    reps: Representations, train: np.ndarray, cfg: ExpansionConfig, rng: np.random.Generator, seed: int, key: list
) -> dict[str, np.ndarray]:
    """Every component's scores (seeds at -inf): each vector method on each representation, co-engagement.

    The first representation draws from ``rng`` (its figures equal a run on it alone); the others
    from generators of their own, seeded by ``key`` and their name.
    """
    methods = list(cfg.protocol.methods)
    out: dict[str, np.ndarray] = {}
    for i, (rep, space) in enumerate(reps.spaces.items()):
        r = rng if i == 0 else np.random.default_rng([*key, list_seed(rep)])
        wanted = methods if i == 0 else [m for m in methods if m not in SHARED]
        for m, v in method_scores(space, train, wanted, cfg, r, seed).items():
            out[reps.name(rep, m)] = v
    if reps.coengagement is not None:
        s = reps.coengagement.scores(train)
        s[train] = -np.inf
        out[COENGAGEMENT] = s
    return out


def _blend_parts(name: str) -> tuple[str, str]:
    """The density and classifier components a (representation's) blend is made of."""
    rep, _, _ = name.rpartition(":")
    return (f"{rep}:density", f"{rep}:classifier") if rep else ("density", "classifier")


def evaluate_split(
    space: UserSpace | Representations, lst: EvalList, split: int, cfg: ExpansionConfig, samples: list | None = None
) -> list[dict]:
    """Every method's figures for one list and one random split (rows of a long table).

    ``samples``: on the validation stage, the split's RankSample is appended (the ensemble chooser's input).
    """
    reps = Representations.of(space)
    p = cfg.protocol
    key = [p.seed, list_seed(lst.list_id), split]
    rng = np.random.default_rng(key)
    held, train = split_list(lst.members, p.holdout_share, rng)
    if p.stage == "validation":
        held, train = split_list(train, p.holdout_share, rng)
    n = reps.n
    outside = np.setdiff1d(np.arange(n), lst.members, assume_unique=True)
    negatives = rng.choice(outside, size=min(len(held), len(outside)), replace=False)
    ks = {"holdout": len(held), "5x_holdout": 5 * len(held), "audience": max(1, int(round(p.audience_share * n)))}
    k_max = top_depth(cfg.blend, max(ks.values()))
    tiebreak = rng.permutation(n)
    scores = component_scores(reps, train, cfg, rng, list_seed(lst.list_id) + split, key)
    blends = [reps.name(rep, "blend") for rep in reps.spaces] if "blend" in p.methods else []
    singles = [c for c in scores if c not in SHARED]
    weights = bucket_weights(cfg.ensemble, lst.bucket)
    component_ranks = {}
    if weights or samples is not None:
        component_ranks = {c: ranks(scores[c], tiebreak) for c in singles}
        for b in blends:  # a representation's own blend, as one ordering: its two methods' rank sum
            dens, clf = _blend_parts(b)
            rank_sum = (component_ranks[dens] + component_ranks[clf]).astype(np.float64)
            rank_sum[train] = np.inf
            component_ranks[b] = ranks(-rank_sum, tiebreak)
    if samples is not None:
        samples.append(
            RankSample.collect(lst.list_id, split, p.stage, lst.bucket, component_ranks, held, train, tiebreak)
        )
    if weights:
        fused = fuse(component_ranks, weights, offset_of(cfg.ensemble, lst.bucket), len(train))
        fused[train] = -np.inf
        scores[ENSEMBLE] = fused
    order = [reps.name(rep, m) for rep in reps.spaces for m in p.methods if m not in SHARED]
    order += [c for c in (COENGAGEMENT, ENSEMBLE) if c in scores] + [m for m in p.methods if m in SHARED]
    tops = {m: top_k(s, tiebreak, k_max) for m, s in scores.items()}
    is_held = np.zeros(n, dtype=bool)
    is_held[held] = True
    truth = None
    if lst.truth is not None:
        truth = np.zeros(n, dtype=bool)
        truth[lst.truth] = True
        truth[train] = False
    labels = np.r_[np.ones(len(held)), np.zeros(len(negatives))]
    evaluated = np.r_[held, negatives]
    share = getattr(cfg.blend.density_share, cfg.buckets.of(len(train)))
    rows = []
    for method in order:
        figures: dict[str, float] = {}
        is_blend = method in blends
        for name, k in ks.items():
            if is_blend:
                depth = top_depth(cfg.blend, k)
                dens, clf = _blend_parts(method)
                audience, _ = blend(tops[dens][:depth], tops[clf][:depth], k, share)
            else:
                audience = tops[method][:k]
            figures.update(audience_figures(audience, is_held, truth, k, name))
        if is_blend:
            dens, clf = _blend_parts(method)
            s = -(_ranks(scores[dens], tiebreak) + _ranks(scores[clf], tiebreak)).astype(np.float64)
        else:
            s = scores[method]
        figures["auc"] = float(roc_auc_score(labels, s[evaluated])) if len(negatives) else float("nan")
        rows += [
            {
                "list": lst.list_id,
                "bucket": lst.bucket,
                "split": split,
                "size": len(lst.members),
                "seeds": len(train),
                "held_out": len(held),
                "method": method,
                "metric": k,
                "value": v,
            }
            for k, v in figures.items()
        ]
    return rows


def evaluate_lists(space: UserSpace, lists: list[EvalList], cfg: ExpansionConfig) -> pd.DataFrame:
    """The long table (list, bucket, split, method, metric, value) over every list and split."""
    rows: list[dict] = []
    t0 = time.perf_counter()
    for i, lst in enumerate(lists, 1):
        for split in range(cfg.protocol.splits):
            rows += evaluate_split(space, lst, split, cfg)
        if i % 10 == 0 or i == len(lists):
            log.info("expansion protocol: %d/%d lists (%.0fs)", i, len(lists), time.perf_counter() - t0)
    return pd.DataFrame(rows)


def summarize(rows: pd.DataFrame) -> dict:
    """{bucket: {"lists": n, "methods": {method: {metric: mean}}}} (means over lists and splits)."""
    out: dict = {}
    rows = rows.astype({"value": "float64"})  # Ray Data may hand back nullable floats
    for bucket in BUCKETS:
        part = rows[rows["bucket"] == bucket]
        if part.empty:
            continue
        means = part.groupby(["method", "metric"])["value"].mean()
        # Standard error of recall@holdout over lists (each list's mean over its splits).
        per_list = part[part["metric"] == "recall@holdout"].groupby(["method", "list"])["value"].mean()
        se = per_list.groupby("method").agg(
            lambda v: float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
        )
        out[bucket] = {
            "lists": int(part["list"].nunique()),
            "mean_size": float(part.drop_duplicates("list")["size"].mean()),
            "methods": {
                m: {**{k: float(v) for k, v in means[m].items()}, "recall@holdout_se": float(se.get(m, np.nan))}
                for m in part["method"].unique()
            },
        }
    return out


def against_best_other(rows: pd.DataFrame, method: str = "blend", metric: str = "recall@holdout") -> dict:
    """Per bucket, ``method`` against the best other method, paired over the bucket's lists.

    The methods are scored on the same lists and splits, so their per-list figures move together;
    the standard error of the per-list difference is the fair yardstick for "tied" (on large lists
    it is a third of the bucket means' own standard errors). verdict: better / worse when the mean
    difference is two paired standard errors or more from zero, tied otherwise.
    """
    rows = rows.astype({"value": "float64"})
    per_list = rows[rows["metric"] == metric].groupby(["bucket", "list", "method"])["value"].mean().unstack("method")
    out: dict = {}
    for bucket in BUCKETS:
        if bucket not in per_list.index.get_level_values(0) or method not in per_list.columns:
            continue
        part = per_list.loc[bucket]
        others = part.drop(columns=[method]).mean()
        if others.empty or len(part) < 2:
            continue
        best = str(others.idxmax())
        diff = part[method] - part[best]
        se = float(diff.std(ddof=1) / np.sqrt(len(diff)))
        z = float(diff.mean() / se) if se > 0 else 0.0
        out[bucket] = {
            "method": method,
            "best_other": best,
            "diff": round(float(diff.mean()), 4),
            "paired_se": round(se, 4),
            "z": round(z, 2),
            "verdict": "better" if z >= 2 else "worse" if z <= -2 else "tied",
        }
    return out


def recall_at_holdout(summary: dict) -> dict:
    """{bucket: {method: recall@holdout}}: the figure of the benches' final JSON line."""
    return {b: {m: round(v["recall@holdout"], 4) for m, v in s["methods"].items()} for b, s in summary.items()}
