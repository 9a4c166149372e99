"""The blend across representations and methods: weighted rank fusion, its weights chosen on validation.

A *component* is one method on one representation (``als:logreg``, ``starspace:density``) or
user co-engagement (``coengagement``). Component c ranks every user (0 = best; ties broken by
the list's random order); a user's ensemble score is

    sum over components c of weight_c / (rank_c + offset * seeds)

(reciprocal-rank fusion whose decay is set in seeds, so one setting fits a 10-seed list and a
1,000-seed one). Ranks, not scores, are summed: a logistic regression's logits, a cosine and a
region density are on different scales, and their ranks are not.

The weights (and the offset) are chosen per size bucket on the protocol's **validation** stage
only (:func:`choose`): for every (list, split) the validation worker keeps a :class:`RankSample`,
the held-out validation seeds and every component's rank of the users any component puts in
its top ``depth x |H|``; the chooser scores every weight vector of the grid on those samples
(recall at |H|, exact for every user some component ranks that high; users no component ranks
that high are left out, as they would need a weight on a component that ranks them worse than
the depth) and keeps, of the options within one paired standard error of the best, the one
that spans the most representations with the most even weights (``EnsembleConfig.rule``). :func:`choose` refuses
samples from the test stage, so a test seed never decides a weight.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reco.errors import ConfigError
from reco.expansion.config import BUCKETS, EnsembleConfig

NAME = "ensemble"
SAMPLE_DEPTH = 10  # a sample keeps the users some component ranks in its top SAMPLE_DEPTH x |H|


def ranks(scores: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """0-based rank of every user by score (descending), ties by ``tiebreak`` (ascending)."""
    order = np.lexsort((tiebreak, -scores))
    out = np.empty(len(scores), dtype=np.int64)
    out[order] = np.arange(len(scores))
    return out


def fuse(component_ranks: dict[str, np.ndarray], weights: dict[str, float], offset: float, seeds: int) -> np.ndarray:
    """The ensemble score of every user from its components' ranks (a component without ranks is an error)."""
    missing = [c for c, w in weights.items() if w > 0 and c not in component_ranks]
    if missing:
        raise ConfigError(
            f"expansion.ensemble.weights names {missing}, which this run does not score "
            f"(it has {sorted(component_ranks)}): add the representation to expansion.representations"
        )
    first = next(iter(component_ranks.values()))
    out = np.zeros(len(first), dtype=np.float64)
    base = offset * max(seeds, 1)
    for c, w in weights.items():
        if w > 0:
            out += w / (component_ranks[c].astype(np.float64) + base)
    return out


def fuse_tops(
    tops: dict[str, np.ndarray], weights: dict[str, float], offset: float, seeds: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(user ids, scores) of the ensemble's top-k from each component's top list alone (ids best first).

    What a batch job has after merging each component's per-batch top lists: a user missing from
    a component's list is ranked just past its end there. With lists as long as the user count
    this equals :func:`fuse` on full ranks; the lists need only be deep enough that a user none
    of them holds cannot reach the top k.
    """
    used = {c: np.asarray(tops[c], np.int64) for c, w in weights.items() if w > 0 and c in tops}
    if not used:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    users = np.unique(np.concatenate(list(used.values())))
    score = np.zeros(len(users))
    base = offset * max(seeds, 1)
    for c, ids in used.items():
        rank = np.full(len(users), float(len(ids)))
        order = np.argsort(ids, kind="stable")
        at = np.searchsorted(ids[order], users)
        at = np.minimum(at, len(ids) - 1)
        hit = ids[order][at] == users
        rank[hit] = order[at[hit]]
        score += weights[c] / (rank + base)
    best = np.lexsort((users, -score))[:k]
    return users[best], score[best]


def bucket_weights(cfg: EnsembleConfig, bucket: str) -> dict[str, float]:
    """The weights of a size bucket (empty: no ensemble there). The protocol buckets a list by its size, and a
    served list, all of whose members are seeds, by its seed count: the same number."""
    return {c: w for c, w in getattr(cfg.weights, bucket).items() if w > 0}


def has_weights(cfg: EnsembleConfig) -> bool:
    return any(getattr(cfg.weights, b) for b in BUCKETS)


def offset_of(cfg: EnsembleConfig, bucket: str) -> float:
    return float(cfg.offsets.get(bucket, cfg.offset))


@dataclass(frozen=True)
class RankSample:
    """One validation (list, split): the candidate users, which are held out, and each component's rank of them."""

    list_id: str
    split: int
    stage: str
    bucket: str  # the list's size bucket (by its size: at serving the whole list is the seeds)
    seeds: int
    held_out: int  # |H| (held-out users outside ``users`` count as misses)
    components: tuple[str, ...]
    users: np.ndarray  # (u,) positions
    held: np.ndarray  # (u,) bool
    tiebreak: np.ndarray  # (u,) the split's tie order
    ranks: np.ndarray  # (components, u) int64

    @classmethod
    def collect(
        cls,
        list_id: str,
        split: int,
        stage: str,
        bucket: str,
        component_ranks: dict[str, np.ndarray],
        held: np.ndarray,
        seeds: np.ndarray,
        tiebreak: np.ndarray,
    ) -> RankSample:
        names = tuple(sorted(component_ranks))
        depth = SAMPLE_DEPTH * max(len(held), 1)
        keep = np.zeros(len(tiebreak), dtype=bool)
        for c in names:
            keep |= component_ranks[c] < depth
        keep[seeds] = False
        users = np.flatnonzero(keep)
        is_held = np.zeros(len(tiebreak), dtype=bool)
        is_held[held] = True
        return cls(
            list_id,
            int(split),
            stage,
            bucket,
            int(len(seeds)),
            int(len(held)),
            names,
            users.astype(np.int64),
            is_held[users],
            np.asarray(tiebreak)[users],
            np.stack([component_ranks[c][users] for c in names]) if names else np.empty((0, len(users)), np.int64),
        )

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(
            buf,
            meta=np.asarray([self.list_id, self.stage, self.bucket, *self.components]),
            nums=np.asarray([self.split, self.seeds, self.held_out], np.int64),
            users=self.users,
            held=self.held,
            tiebreak=self.tiebreak,
            ranks=self.ranks,
        )
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> RankSample:
        z = np.load(io.BytesIO(data), allow_pickle=False)
        meta, nums = z["meta"].tolist(), z["nums"].tolist()
        return cls(
            meta[0],
            nums[0],
            meta[1],
            meta[2],
            nums[1],
            nums[2],
            tuple(meta[3:]),
            z["users"],
            z["held"],
            z["tiebreak"],
            z["ranks"],
        )

    def recall(self, weights: np.ndarray, offset: float) -> float:
        """Recall at |H| of the fusion with ``weights`` (one per component, in ``components`` order)."""
        score = (weights[:, None] / (self.ranks + offset * max(self.seeds, 1))).sum(axis=0)
        k = min(self.held_out, len(self.users))
        order = np.lexsort((self.tiebreak, -score))[:k]
        return float(self.held[order].sum()) / max(self.held_out, 1)


@dataclass(frozen=True)
class Choice:
    """What the validation stage chose for one bucket, and why (the validation figures)."""

    bucket: str
    weights: dict[str, float]
    offset: float
    recall: float  # the chosen fusion's validation recall at |H|
    singles: dict[str, float]  # every component alone, validation recall at |H|
    samples: int
    best_recall: float = float("nan")  # the best option's validation recall (the chosen one is within a se of it)
    rule: str = "hedge"  # EnsembleConfig.rule: how the option was picked

    @property
    def best_single(self) -> str:
        return max(self.singles, key=self.singles.get)

    def to_dict(self) -> dict:
        return {
            "weights": self.weights,
            "offset": self.offset,
            "validation_recall": round(self.recall, 4),
            "best_option_recall": round(self.best_recall, 4),
            "rule": self.rule,
            "best_single": self.best_single,
            "best_single_recall": round(self.singles[self.best_single], 4),
            "singles": {k: round(v, 4) for k, v in sorted(self.singles.items(), key=lambda kv: -kv[1])},
            "samples": self.samples,
        }


def _weight_vectors(n: int, grid: Sequence[float]) -> list[np.ndarray]:
    """Every weight vector over ``grid`` (not all zero), one per direction (scaling changes no ranking)."""
    seen: set[tuple[float, ...]] = set()
    out = []
    for combo in itertools.product(sorted(set(grid)), repeat=n):
        v = np.asarray(combo, np.float64)
        if v.max() <= 0:
            continue
        key = tuple(np.round(v / v.max(), 6))
        if key not in seen:
            seen.add(key)
            out.append(v)
    out.sort(key=lambda v: (int((v > 0).sum()), -float(v.max())))  # fewest components first: they win ties
    return out


def _representation(component: str) -> str:
    return component.partition(":")[0]


def _candidates(names: Sequence[str], singles: dict[str, float], n: int) -> list[str]:
    """The best component of each representation, then the best others, ``n`` in all (at least one per
    representation)."""
    ordered = sorted(names, key=lambda c: -singles[c])
    out: list[str] = []
    for c in ordered:
        if _representation(c) not in {_representation(x) for x in out}:
            out.append(c)
    return out + [c for c in ordered if c not in out][: max(0, n - len(out))]


def _entropy(weights: dict[str, float]) -> float:
    p = np.asarray(list(weights.values()), np.float64)
    p = p / p.sum()
    return float(-(p * np.log(p)).sum())


def _hedge(options: list[tuple[dict[str, float], float]], figures: list[np.ndarray], top: int) -> int:
    """Of the options within one paired standard error of ``top``: most representations, most even, best mean."""
    pick, pick_key = top, None
    for i, ((w, _), f) in enumerate(zip(options, figures)):
        d = figures[top] - f
        se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
        if d.mean() <= se + 1e-12:
            key = (len({_representation(c) for c in w}), round(_entropy(w), 9), float(f.mean()))
            if pick_key is None or key > pick_key:
                pick, pick_key = i, key
    return pick


def choose(samples: Sequence[RankSample], cfg: EnsembleConfig) -> dict[str, Choice]:
    """Per size bucket: the weights and offset the validation samples support (recall at |H|).

    Each component alone is scored first. The candidates are the best component of every
    representation and the next best overall (``cfg.candidates`` in all, at least one per
    representation); every weight vector over ``cfg.grid`` for them (two or more non-zero) is
    tried at every offset of ``cfg.offset_grid``, beside the best single component. The rule
    (``cfg.rule = "hedge"``) is the one-standard-error rule turned towards hedging: of every
    option whose mean is within one paired standard error (over the bucket's list splits) of the
    best mean, the one spanning the most representations, then with the most even weights, then
    the best mean; ``"best"`` keeps the best mean. A validation stage carves its seeds from the
    training part, so which representation is best shifts between it and the test (fewer seeds,
    and the test's held-out members count as misses), while an even fusion of the
    representations' best methods is rarely far from the best of them; choosing on half the
    lists and scoring the other half (validation only) puts the hedge level with or ahead of the
    best mean (docs/expansion.md).
    """
    if any(s.stage != "validation" for s in samples):
        raise ConfigError(
            "the ensemble is chosen on the validation stage only (expansion.protocol.stage=validation); "
            "these samples hold test seeds"
        )
    by_bucket: dict[str, list[RankSample]] = {}
    for s in samples:
        by_bucket.setdefault(s.bucket, []).append(s)
    out = {}
    for bucket in BUCKETS:
        part = by_bucket.get(bucket, [])
        if not part:
            continue
        names = part[0].components
        one_hot = np.eye(len(names))
        singles = {c: float(np.mean([s.recall(one_hot[i], 1.0) for s in part])) for i, c in enumerate(names)}
        chosen = _candidates(names, singles, cfg.candidates)
        options: list[tuple[dict[str, float], float]] = [({chosen[0]: 1.0}, cfg.offset)] if chosen else []
        if chosen and singles[chosen[0]] < max(singles.values()):
            options[0] = ({max(singles, key=singles.get): 1.0}, cfg.offset)
        for v in _weight_vectors(len(chosen), cfg.grid):
            if (v > 0).sum() >= 2:
                w = {chosen[j]: float(v[j]) for j in range(len(chosen)) if v[j] > 0}
                options += [(w, float(off)) for off in cfg.offset_grid]
        figures = []
        for w, off in options:
            full = np.zeros(len(names))
            for c, x in w.items():
                full[names.index(c)] = x
            figures.append(np.asarray([s.recall(full, off) for s in part]))
        means = np.asarray([f.mean() for f in figures])
        top = int(np.argmax(means))
        pick = top if cfg.rule == "best" else _hedge(options, figures, top)
        out[bucket] = Choice(
            bucket,
            options[pick][0],
            options[pick][1],
            float(means[pick]),
            singles,
            len(part),
            float(means[top]),
            cfg.rule,
        )
    return out


def choice_lines(choices: dict[str, Choice]) -> list[str]:
    """One line per bucket: the chosen weights and the validation figures that chose them."""
    out = []
    for b, c in choices.items():
        w = ", ".join(f"{k} {v:g}" for k, v in c.weights.items())
        out.append(
            f"{b:<7} {w} (offset {c.offset:g} seeds): validation recall at |H| {c.recall:.4f} against the best "
            f"single component {c.best_single} {c.singles[c.best_single]:.4f} ({c.samples} list splits)"
        )
    return out


def config_yaml(choices: dict[str, Choice]) -> str:
    """The choice as the ``expansion.ensemble`` YAML a data set's config holds."""
    lines = ["  ensemble:", "    weights:"]
    for b, c in choices.items():
        lines.append(f"      {b}: {{{', '.join(f'{k}: {v:g}' for k, v in c.weights.items())}}}")
    lines.append("    offsets: {" + ", ".join(f"{b}: {c.offset:g}" for b, c in choices.items()) + "}")
    return "\n".join(lines)
