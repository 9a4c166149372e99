"""Graph retrieval, Pixie-style (Eksombatchai et al., WWW 2018): random walks with restarts.

The graph is the bipartite user-topic graph of the training engagements (two scipy-style CSR
adjacency lists). A request's walkers start from the user's topics, restart weights decaying
with how far back each topic is (the latest ones most often), and repeat topic -> random user
who engaged with it -> random topic of that user, counting topic visits; after each hop a walker
restarts with probability ``restart``. Walks stop after ``steps`` hops, or early once
``enough_topics`` topics have been visited ``visit_threshold`` times. Visits from different
start topics are combined with Pixie's boost, ``(sum_q sqrt(visits_q))^2``, which favours topics
reached from several of the user's interests. Hundreds of walkers advance together in numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from reco import artifacts
from reco.retrieval.base import Candidates, Retriever, top_k
from reco.retrieval.data import TrainingData
from reco.retrieval.item_knn import engagement_matrix
from reco.run_dir import RunDir

GRAPH = "graph.npz"


class BipartiteGraph:
    """Topic -> users and user -> topics adjacency, CSR."""

    def __init__(self, user_topics: sp.csr_matrix):
        self.user_topics = user_topics.tocsr()
        self.topic_users = self.user_topics.T.tocsr()
        self.topic_degree = np.diff(self.topic_users.indptr)

    @property
    def n_topics(self) -> int:
        return self.user_topics.shape[1]

    @staticmethod
    def _neighbour(csr: sp.csr_matrix, nodes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        start = csr.indptr[nodes]
        degree = csr.indptr[nodes + 1] - start
        return csr.indices[start + (rng.random(len(nodes)) * degree).astype(np.int64)]

    def hop(self, topics: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """topic -> a random user who engaged with it -> a random topic of that user."""
        users = self._neighbour(self.topic_users, topics, rng)
        return self._neighbour(self.user_topics, users, rng)


def restart_weights(n: int, half_life: float) -> np.ndarray:
    """Weights of a user's topics in time order: the latest 1, halving every ``half_life`` back."""
    back = np.arange(n)[::-1]
    w = 0.5 ** (back / half_life)
    return w / w.sum()


def walk(
    graph: BipartiteGraph,
    query: np.ndarray,
    weights: np.ndarray,
    steps: int,
    restart: float,
    walkers: int,
    visit_threshold: int,
    enough_topics: int,
    rng: np.random.Generator,
    boost: bool = True,
) -> np.ndarray:
    """(n_topics,) scores: boosted visit counts of walks restarting from ``query`` topics."""
    ok = graph.topic_degree[query] > 0
    query, weights = query[ok], weights[ok]
    scores = np.zeros(graph.n_topics, np.float64)
    if len(query) == 0:
        return scores
    weights = weights / weights.sum()
    origin = rng.choice(len(query), size=walkers, p=weights)
    current = query[origin]
    totals = np.zeros(graph.n_topics, np.int64)
    pairs = []
    done = 0
    while done < steps:
        current = graph.hop(current, rng)
        pairs.append(origin * graph.n_topics + current)
        np.add.at(totals, current, 1)
        done += walkers
        if (totals >= visit_threshold).sum() >= enough_topics:
            break
        again = rng.random(walkers) < restart
        if again.any():
            origin[again] = rng.choice(len(query), size=int(again.sum()), p=weights)
            current[again] = query[origin[again]]
    if not boost:
        return totals.astype(np.float64)
    keys, counts = np.unique(np.concatenate(pairs), return_counts=True)
    np.add.at(scores, keys % graph.n_topics, np.sqrt(counts))
    return scores**2


class PixieRetriever(Retriever):
    name = "pixie"
    derivable = True

    def __init__(self, cfg=None):
        super().__init__(cfg)
        self.graph: BipartiteGraph | None = None

    def fit(self, data: TrainingData) -> PixieRetriever:
        self.n_topics = data.n_topics
        self.graph = BipartiteGraph(engagement_matrix(data.sequences, data.n_topics))
        self.index_users(data.sequences)
        return self

    def scores(self, row: int, recent: np.ndarray, seed_key: int) -> np.ndarray:
        c = self.cfg.pixie
        query = self._latest(row, recent)[-c.max_query_topics :]
        rng = np.random.default_rng([c.seed, seed_key])
        return walk(
            self.graph,
            query,
            restart_weights(len(query), c.recency_half_life),
            c.steps,
            c.restart,
            c.walkers,
            c.visit_threshold,
            c.enough_topics,
            rng,
            c.boost,
        )

    def _candidates(self, rows, recent, exclude, k) -> Candidates:
        out = []
        for r, rc, ex in zip(rows, recent, exclude):
            key = int(self.users.user_ids[r]) if r >= 0 else -1 - int(rc.sum())
            ids, s = top_k(self.scores(r, rc, key & 0x7FFFFFFF), ex, k)
            keep = s > 0
            out.append((ids[keep], s[keep]))
        return Candidates.pack(out, k)

    def _save_state(self, run: RunDir, step: str) -> None:
        import io

        buf = io.BytesIO()
        sp.save_npz(buf, self.graph.user_topics)
        run.write_bytes(artifacts.retriever(self.name, GRAPH), buf.getvalue(), step=step)

    def _load_state(self, run: RunDir, meta: dict[str, Any]) -> None:
        import io

        self.graph = BipartiteGraph(sp.load_npz(io.BytesIO(run.read_bytes(artifacts.retriever(self.name, GRAPH)))))
