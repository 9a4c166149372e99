"""Scoring every user for many seed lists at once, and turning the scores into audiences.

One batch of users against L lists is: the users' region codes (one exact product shared by
every list), each list's density from its sparse table (region_density.SparseListScorer), one
exact product against all L
classifiers stacked, seeds set to -inf, and each list's top-K by each method. Audiences are the
global top-K per list and method (merged from the batches) blended. ``AudienceBatchScorer`` is
that per-batch step as a Ray Data actor UDF; ``score_all_users`` is the same arithmetic in one
process with a global top-K and no merge, the reference the distributed job must match exactly.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from reco.expansion.blend import SOURCES, blend, position_scores
from reco.expansion.fixed_point import user_grid
from reco.expansion.list_models import ARTIFACT, ListModels
from reco.expansion.region_density import SparseListScorer
from reco.expansion.topk import batch_top_k, exclude_seeds, merge_top_k
from reco.expansion.user_vectors import VectorSets

METHODS = ("density", "classifier")
CANDIDATE_SCHEMA = pa.schema(
    [("list_pos", pa.int64()), ("method", pa.int8()), ("user_id", pa.int64()), ("score", pa.float64())]
)
AUDIENCE_SCHEMA = pa.schema(
    [
        ("list_pos", pa.int64()),
        ("user_id", pa.int64()),
        ("score", pa.float64()),
        ("rank", pa.int64()),
        ("source", pa.string()),
    ]
)


class ListScorer:
    """Scores of users under every list's density table and classifier (seeds at -inf).

    Users are scored ``chunk`` vectors at a time: small enough that a chunk's hidden units
    (chunk x L x h float64) stay in cache between the product that makes them and the one that
    reads them, large enough that the per-chunk Python calls cost little per user-list pair.
    """

    def __init__(self, models: ListModels, chunk: int = 512):
        self.models = models
        self.density = SparseListScorer(models.tables, models.region_users, models.min_region_users)
        self.classifiers = models.stacked()
        self.chunk = chunk

    def scores(self, user_ids: np.ndarray, vectors: VectorSets | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(density, classifier), each (L, B) float64; a user with several vectors scores its best one."""
        sets = VectorSets.of(vectors)
        n_lists = len(self.models.list_ids)
        dens = np.empty((n_lists, len(user_ids)))
        clf = np.empty((n_lists, len(user_ids)))
        step = max(1, self.chunk // max(sets.per_user, 1))
        for start in range(0, len(user_ids), step):
            part = slice(start, start + step)
            chunk = sets.take(part)
            x_int = user_grid(chunk.flat())
            d = self.density.scores(self.models.lsh.codes_of_grid(x_int))
            c = self.classifiers.logits(x_int)
            single = chunk.per_user == 1 and bool(chunk.mask.all())  # one vector each: its scores as they are
            dens[:, part] = d if single else chunk.best(d)
            clf[:, part] = c if single else chunk.best(c)
        for s in (dens, clf):
            exclude_seeds(s, user_ids, self.models.seed_list, self.models.seed_user)
        return dens, clf

    def candidates(self, user_ids: np.ndarray, vectors: VectorSets | np.ndarray, k: int) -> pa.Table:
        """Each list's top-k of this batch by each method: (list_pos, method, user_id, score)."""
        parts = []
        for code, s in enumerate(self.scores(user_ids, vectors)):
            lp, uid, sc = batch_top_k(s, user_ids, k)
            parts.append(pa.table([lp, np.full(len(lp), code, np.int8), uid, sc], schema=CANDIDATE_SCHEMA))
        return pa.concat_tables(parts)


def audiences_from_candidates(cand: pa.Table, shares: np.ndarray, k: int, depth: int | None = None) -> pa.Table:
    """Global top-``depth`` per (list, method) from candidate rows, then the blend of k, for the lists present."""
    lp, method = cand.column("list_pos").to_numpy(), cand.column("method").to_numpy()
    uid, score = cand.column("user_id").to_numpy(), cand.column("score").to_numpy()
    tops: dict[tuple[int, int], np.ndarray] = {}
    for code in range(len(METHODS)):
        sel = method == code
        m_lp, m_uid, _ = merge_top_k(lp[sel], uid[sel], score[sel], depth or k)
        for pos in np.unique(m_lp):
            tops[(int(pos), code)] = m_uid[m_lp == pos]
    return _blend_all(tops, shares, k)


def _blend_all(tops: dict[tuple[int, int], np.ndarray], shares: np.ndarray, k: int) -> pa.Table:
    parts = []
    empty = np.empty(0, np.int64)
    for pos in sorted({p for p, _ in tops}):
        ids, src = blend(tops.get((pos, 0), empty), tops.get((pos, 1), empty), k, float(shares[pos]))
        parts.append(
            pa.table(
                [
                    np.full(len(ids), pos, np.int64),
                    ids,
                    position_scores(len(ids), k),
                    np.arange(1, len(ids) + 1, dtype=np.int64),
                    pa.array(np.asarray(SOURCES)[src], pa.string()),
                ],
                schema=AUDIENCE_SCHEMA,
            )
        )
    return pa.concat_tables(parts) if parts else AUDIENCE_SCHEMA.empty_table()


def score_all_users(
    models: ListModels, user_ids: np.ndarray, vectors: VectorSets | np.ndarray, k: int, depth: int | None = None
) -> pa.Table:
    """The single-process reference: every user scored at once, a global top-``depth``, the blend of k."""
    ids = np.asarray(user_ids, np.int64)
    dens, clf = ListScorer(models).scores(ids, vectors)
    tops = {}
    for code, s in enumerate((dens, clf)):
        lp, uid, _ = batch_top_k(s, ids, depth or k)
        bounds = np.searchsorted(lp, np.arange(s.shape[0] + 1))
        for pos in range(s.shape[0]):
            tops[(pos, code)] = uid[bounds[pos] : bounds[pos + 1]]
    return _blend_all(tops, models.shares, k)


class AudienceBatchScorer:
    """Ray Data actor UDF: batches of user vectors (reco.expansion.user_vectors) -> candidate rows for every list.

    Loads the list bundle from the run directory (checked against the manifest) once per actor;
    ``depth`` candidates per list and method (the blend's top-list length).
    """

    def __init__(
        self,
        run_uri: str,
        depth: int,
        bundle: str = ARTIFACT,
        faults: dict | None = None,
        max_vectors: int | None = None,
    ):
        from reco.faults import FaultConfig
        from reco.run_dir import RunDir

        self.scorer = ListScorer(ListModels.from_bytes(RunDir(run_uri).read_bytes(bundle)))
        self.k, self.max_vectors = depth, max_vectors
        self.run_uri, self.faults = run_uri, FaultConfig(**(faults or {}))

    def __call__(self, batch: pa.Table) -> pa.Table:
        from reco.faults import crash_once

        crash_once(self.faults, "expand.score", self.run_uri)  # fault-tolerance drills only (faults.crash_once)

        return self.scorer.candidates(
            batch.column("user_id").to_numpy(), VectorSets.from_table(batch, self.max_vectors), self.k
        )
