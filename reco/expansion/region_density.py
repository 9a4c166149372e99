"""LSH region density (deWet & Ou, KDD 2019): where in embedding space a seed list is dense.

Random hyperplanes cut the space: n planes give each user an n-bit code, one of 2^n regions;
m independent repetitions give m codes per user. For one seed list, region r of repetition j
scores the smoothed seed share ``(seeds_r + alpha) / (users_r + beta)``; regions holding fewer
than ``min_region_users`` users are dropped (they score the prior ``alpha / beta``, "nothing
known"). A user's score is the mean over repetitions of its regions' scores. The voting variant
scores a region by its plain seed count instead.

The list's representation is the small table of regions that hold seeds (``sparse_table``):
every other region's score follows from the global user count per region, computed once for
all lists. Codes are computed with exact fixed-point products (reco.expansion.fixed_point), so
a user gets the same code in any batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from reco.expansion.config import DensityConfig
from reco.expansion.fixed_point import column_exponents, exact_matmul, on_grid, user_grid


def planes_for(n_users: int, cfg: DensityConfig) -> int:
    """cfg.planes, or log2(users / region_users) rounded (1 to 14) when it is 0."""
    if cfg.planes:
        return cfg.planes
    return int(min(14, max(1, round(math.log2(max(n_users, 2) / cfg.region_users)))))


@dataclass(frozen=True)
class Hyperplanes:
    """m repetitions of n random hyperplanes, on the fixed-point grid.

    A bit is 1 where ``x . p > offset``; with centering the offset is ``mean . p``, so the
    planes pass through the mean user and split users evenly instead of all landing on one side.
    """

    normals: np.ndarray  # (dim, m * n) integer-valued float64
    offsets: np.ndarray  # (m * n,) integer-valued float64, on the product grid
    n_planes: int
    repetitions: int

    @property
    def n_regions(self) -> int:
        return 1 << self.n_planes

    @classmethod
    def draw(
        cls, dim: int, n_planes: int, repetitions: int, seed: int, center: np.ndarray | None = None
    ) -> Hyperplanes:
        rng = np.random.default_rng([seed, 0x15A])
        normals = rng.standard_normal((dim, repetitions * n_planes))
        e = column_exponents(normals)
        normals_int = on_grid(normals, e)
        if center is None:
            offsets = np.zeros(normals.shape[1])
        else:
            offsets = exact_matmul(user_grid(np.asarray(center, np.float64)[None, :]), normals_int)[0]
        return cls(normals_int, offsets, n_planes, repetitions)

    @classmethod
    def for_users(cls, dim: int, n_users: int, cfg: DensityConfig, center: np.ndarray | None) -> Hyperplanes:
        return cls.draw(dim, planes_for(n_users, cfg), cfg.repetitions, cfg.seed, center if cfg.center else None)

    def codes(self, vectors: np.ndarray) -> np.ndarray:
        """(B, m) region of each user in each repetition, as int32 in [0, 2^n)."""
        return self.codes_of_grid(user_grid(vectors))

    def codes_of_grid(self, x_int: np.ndarray) -> np.ndarray:
        """:meth:`codes` of vectors already on the user grid (fixed_point.user_grid).

        Each repetition's n bits are read as a number by one float32 product with (1, 2, 4, ...):
        sums of distinct powers of two below 2^14 are exact in float32, so these are the codes
        ``sum(bit_j << j)`` without a reduction over a short axis for every user and repetition.
        """
        proj = x_int @ self.checked_normals  # exact: integers on grids whose products stay below 2^52
        bits = (proj > self.offsets).view(np.uint8).reshape(-1, self.n_planes)
        codes = bits.astype(np.float32) @ np.ldexp(np.float32(1.0), np.arange(self.n_planes)).astype(np.float32)
        return codes.astype(np.int32).reshape(len(proj), self.repetitions)

    @cached_property
    def checked_normals(self) -> np.ndarray:
        """The normals, once checked to keep every product with a user exact (fixed_point.exact_matmul)."""
        exact_matmul(np.zeros((0, self.normals.shape[0])), self.normals)
        return self.normals

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "lsh_normals": self.normals,
            "lsh_offsets": self.offsets,
            "lsh_shape": np.array([self.n_planes, self.repetitions]),
        }

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> Hyperplanes:
        n, m = (int(v) for v in a["lsh_shape"])
        return cls(np.asarray(a["lsh_normals"], np.float64), np.asarray(a["lsh_offsets"], np.float64), n, m)


def flat_regions(codes: np.ndarray, n_regions: int) -> np.ndarray:
    """(B, m) codes -> (B, m) indices into a flattened (m, 2^n) table."""
    return codes.astype(np.int64) + np.arange(codes.shape[1], dtype=np.int64) * n_regions


def region_counts(codes: np.ndarray, n_regions: int) -> np.ndarray:
    """(m, 2^n) users per region per repetition (int64); sums over batches."""
    m = codes.shape[1]
    return np.bincount(flat_regions(codes, n_regions).ravel(), minlength=m * n_regions).reshape(m, n_regions)


def smoothing(cfg: DensityConfig, n_seeds: int, n_users: int) -> tuple[float, float]:
    """(alpha, beta); alpha defaults to beta times the list's seed share, so the prior is that share."""
    alpha = cfg.alpha if cfg.alpha is not None else cfg.beta * n_seeds / max(n_users, 1)
    return float(alpha), float(cfg.beta)


def density_table(seed_codes: np.ndarray, users: np.ndarray, alpha: float, beta: float, min_users: int) -> np.ndarray:
    """(m, 2^n) region scores (seeds_r + alpha) / (users_r + beta); small regions score alpha / beta."""
    seeds = region_counts(seed_codes, users.shape[1])
    table = (seeds + alpha) / (users + beta)
    table[users < min_users] = alpha / beta
    return table


def voting_table(seed_codes: np.ndarray, users: np.ndarray, min_users: int) -> np.ndarray:
    """(m, 2^n) plain seed counts per region (the voting variant); small regions score 0."""
    table = region_counts(seed_codes, users.shape[1]).astype(np.float64)
    table[users < min_users] = 0.0
    return table


def score_users(codes: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(B,) mean over repetitions of each user's region score (repetitions added in order)."""
    return score_flat(repetition_major(codes, table.shape[1]), table)


def repetition_major(codes: np.ndarray, n_regions: int) -> np.ndarray:
    """(m, B) indices into a flattened (m, 2^n) table, one contiguous row per repetition: what
    :func:`score_flat` gathers from, row by row. The served expander keeps them from load."""
    return np.ascontiguousarray(flat_regions(codes, n_regions).T)


def score_flat(rep_regions: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Mean over repetitions of each user's region score, repetitions added in order, from
    :func:`repetition_major` indices: each repetition's gather reads one contiguous row of
    indices, about twice as fast as a (B, m) gather and mean, with the same sums."""
    flat = table.ravel()
    total = np.zeros(rep_regions.shape[1], dtype=np.float64)
    for row in rep_regions:
        total += flat[row]
    return total / len(rep_regions)


def score_lists(codes: np.ndarray, tables: np.ndarray) -> np.ndarray:
    """(L, B) scores of B users under L lists' (L, m, 2^n) tables, repetitions added in order."""
    n_lists, m, n_regions = tables.shape
    flat = tables.reshape(n_lists, m * n_regions)
    idx = flat_regions(codes, n_regions)
    total = np.zeros((n_lists, len(codes)), dtype=np.float64)
    for rep in range(m):
        total += flat[:, idx[:, rep]]
    return total / m


def region_weights(users: np.ndarray, beta: float, min_users: int) -> np.ndarray:
    """(m, 2^n) 1 / (users_r + beta), or 1 / beta for dropped regions: a region's score per unit of alpha."""
    w = 1.0 / (users + beta)
    w[users < min_users] = 1.0 / beta
    return w


@dataclass(frozen=True)
class SparseTable:
    """One list's representation: the regions holding seeds, with their counts and scores."""

    repetition: np.ndarray  # (E,) int32
    region: np.ndarray  # (E,) int32
    seeds: np.ndarray  # (E,) int64
    users: np.ndarray  # (E,) int64
    score: np.ndarray  # (E,) float64
    alpha: float
    beta: float


def sparse_table(seed_codes: np.ndarray, users: np.ndarray, alpha: float, beta: float, min_users: int) -> SparseTable:
    """The regions with seeds (and enough users) and their scores; the rest follow from ``users``."""
    seeds = region_counts(seed_codes, users.shape[1])
    rep, reg = np.nonzero((seeds > 0) & (users >= min_users))
    s, u = seeds[rep, reg], users[rep, reg]
    return SparseTable(rep.astype(np.int32), reg.astype(np.int32), s, u, (s + alpha) / (u + beta), alpha, beta)


def dense_from_sparse(t: SparseTable, users: np.ndarray, min_users: int) -> np.ndarray:
    """The full (m, 2^n) table of a sparse one: unseeded regions alpha / (users + beta)."""
    table = t.alpha / (users + t.beta)
    table[users < min_users] = t.alpha / t.beta
    table[t.repetition, t.region] = t.score
    return table


class SparseListScorer:
    """Density scores of many lists from their sparse tables, without dense (L, m, 2^n) tables.

    A region's score splits into a part every list shares and a part only seeded regions have:
    ``(seeds_r + alpha) / (users_r + beta) = alpha * w_r + seeds_r * w_r`` with
    ``w_r = 1 / (users_r + beta)`` (``1 / beta`` and no seed part for dropped regions). So a
    user's score is ``(alpha * W(user) + D(user)) / m``, where ``W`` sums ``w`` over the user's
    regions (once per batch for all lists) and ``D`` adds ``seeds_r * w_r`` only where the user's
    region holds seeds of the list. Every list's seeded entries sit in one table sorted by region
    key (repetition x 2^n + region) with an offset per key, so a user's m keys point straight at
    the entries of every list that seeded them: one gather per user and repetition, then one
    weighted count over all the batch's (list, user) cells. Memory is the seeded entries plus one
    offset per region; time grows with the users sharing a region with a seed, not with users x
    lists x m. Each cell's sums run in repetition order, so a user's score does not depend on the
    batch.
    """

    def __init__(self, tables: list[SparseTable], users: np.ndarray, min_users: int):
        self.tables = tables
        self.n_reps, self.n_regions = users.shape
        betas = sorted({t.beta for t in tables})
        self.weights = np.stack([region_weights(users, b, min_users) for b in betas]) if betas else np.empty(0)
        self.beta_of = np.array([betas.index(t.beta) for t in tables], np.int64)
        self.alpha = np.array([t.alpha for t in tables], np.float64)
        keys = np.concatenate([t.repetition.astype(np.int64) * self.n_regions + t.region for t in tables] or [[]])
        values = np.concatenate(
            [t.seeds * self.weights[b][t.repetition, t.region] for t, b in zip(tables, self.beta_of)] or [[]]
        )
        owner = np.repeat(np.arange(len(tables), dtype=np.int64), [len(t.region) for t in tables])
        order = np.argsort(keys.astype(np.int64), kind="stable")
        self.entry_list, self.entry_value = owner[order], values[order].astype(np.float64)
        self.offsets = np.searchsorted(keys[order], np.arange(self.n_reps * self.n_regions + 1))
        self.rep_base = np.arange(self.n_reps, dtype=np.int64) * self.n_regions

    def scores(self, codes: np.ndarray) -> np.ndarray:
        """(L, B) density scores of the batch's users."""
        b, m = codes.shape
        n_lists = len(self.tables)
        flat = codes + self.rep_base  # (B, m) keys, user-major
        shared = np.zeros((len(self.weights), b))
        for i, w in enumerate(self.weights):
            gathered = w.ravel()[flat.T]  # (m, B): one gather, then the repetitions added in order
            for rep in range(m):
                shared[i] += gathered[rep]
        flat = flat.ravel()
        start = self.offsets[flat]
        count = self.offsets[flat + 1] - start
        n_hits = int(count.sum())
        # Entry positions of every (user, repetition)'s hits, in (user, repetition, list) order.
        pos = np.arange(n_hits) + np.repeat(start - (np.cumsum(count) - count), count)
        cell = self.entry_list[pos] * b + np.repeat(np.arange(b), count.reshape(b, m).sum(axis=1))
        seeded = np.bincount(cell, weights=self.entry_value[pos], minlength=n_lists * b).reshape(n_lists, b)
        if len(self.weights) == 1:
            out = self.alpha[:, None] * shared[0]
        else:
            out = self.alpha[:, None] * shared[self.beta_of]
        out += seeded
        out /= m
        return out
