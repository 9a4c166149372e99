"""The work behind each route, as plain classes (no Ray): expansion, ranking, retrieval.

serve/deployments.py wraps each in a Ray Serve deployment; serve/adapters.py calls them in the
ingress's own process where the layout says so. Each loads its artifacts from the run directory
once, at construction, and returns the typed results of serve/schemas.py.
"""

from __future__ import annotations

import logging

import faiss
import numpy as np
import pyarrow.compute as pc
import torch

from reco import artifacts
from reco.config import Config
from reco.errors import ArtifactError, DataError
from reco.expansion.expander import AudienceExpander
from reco.rank.artifact import Ranker
from reco.retrieval.registry import load_retriever
from reco.run_dir import RunDir
from reco.vocab import Vocabulary
from serve.http_errors import NotFound
from serve.schemas import AudienceRows, Candidates, Expansion, Ranking
from serve.settings import ServeSettings

log = logging.getLogger("serve")

RankCall = tuple[str, list[str], "dict | None"]  # (user id, candidate item ids, context)


def one_thread_per_request() -> None:
    """torch and faiss on one thread: a served call is small, and their thread pools spin-wait
    after each parallel region, burning the cores other replicas need (replicas, not threads,
    give concurrency)."""
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)


def run_config(run: RunDir) -> Config:
    """The config the run was made with (its manifest), so serving uses the same settings."""
    return Config.model_validate(run.config())


class ExpansionService:
    """One seed list in, one audience out; and the batch job's audiences, paged."""

    def __init__(self, settings: ServeSettings):
        one_thread_per_request()
        s = settings
        run = RunDir(s.run_dir)
        self.expander = AudienceExpander(s.run_dir, run_config(run).expansion)
        self.audiences = run.read_table(artifacts.AUDIENCES) if run.has(artifacts.AUDIENCES) else None
        log.info(
            "expansion ready: %d users, %s batch audience rows",
            self.expander.n_users,
            0 if self.audiences is None else self.audiences.num_rows,
        )

    def expand(self, seed_ids: list[str], k: int, method: str) -> Expansion:
        e = self.expander.expand(seed_ids, k, method)
        unknown = [x for x in dict.fromkeys(str(i).strip() for i in seed_ids) if x and x not in self.expander.position]
        return Expansion(
            user_ids=list(e.user_ids),
            scores=np.asarray(e.scores, np.float64).tolist(),
            sources=list(e.sources),
            seeds_used=e.stats["seeds"],
            seeds_unknown=e.stats["unknown"],
            unknown_seed_ids=unknown[:100],
            duplicate_seed_ids=e.stats["duplicates"],
        )

    def audience_page(self, seed_list_id: str, offset: int, limit: int) -> AudienceRows:
        if self.audiences is None:
            raise NotFound("this run has no batch audiences (run python -m ray_jobs.expand first)")
        rows = self.audiences.filter(pc.equal(self.audiences.column("seed_list_id"), seed_list_id))
        if rows.num_rows == 0:
            raise NotFound(f"unknown seed list {seed_list_id!r}")
        page = rows.sort_by("rank").slice(offset, limit)
        return AudienceRows(
            total=rows.num_rows,
            user_ids=page.column("user_id").to_pylist(),
            scores=page.column("score").to_pylist(),
            ranks=page.column("rank").to_pylist(),
            sources=page.column("source").to_pylist(),
        )


class RankingService:
    """Calibrated click probabilities for (user, candidate items, context) requests."""

    def __init__(self, settings: ServeSettings):
        one_thread_per_request()
        self.ranker = Ranker.load(settings.run_dir)
        cat = self.ranker.catalog
        self.known_users = set(cat.users.ids) if cat.users is not None else set()
        self.known_items = set(cat.items.ids) if cat.items is not None else set()
        log.info("ranker ready: %s", self.ranker.model_cfg.name)

    def rank_many(self, requests: list[RankCall]) -> list[Ranking]:
        """One forward pass for all requests; each answer sorted by probability."""
        probs = self.ranker.score_batch(requests)
        return [self._answer(user, items, p) for (user, items, _), p in zip(requests, probs)]

    def _answer(self, user: str, items: list[str], p: np.ndarray) -> Ranking:
        order = np.argsort(-p, kind="stable")
        return Ranking(
            user_known=user in self.known_users,
            item_ids=[items[i] for i in order],
            probabilities=p[order].astype(float).tolist(),
            unknown_item_ids=[i for i in items if i not in self.known_items][:100],
        )


class RetrievalService:
    """Candidate items for one user from a retriever; popular items for a user never seen."""

    def __init__(self, settings: ServeSettings):
        one_thread_per_request()
        self.run = RunDir(settings.run_dir)
        self.default = settings.retriever or run_config(self.run).retrieval.default
        self.users = Vocabulary.from_table(self.run.read_table(artifacts.USER_VOCAB), "user_id")
        topics = self.run.read_table(artifacts.TOPIC_VOCAB)
        self.topics = Vocabulary.from_table(topics, "topic_id")
        self.names = topics.column("name").to_pylist() if "name" in topics.column_names else [None] * len(self.topics)
        counts = topics.column("train_count").to_numpy()
        self.popular = np.lexsort((np.arange(len(counts)), -counts))
        self.popularity = counts.astype(np.float64) / max(int(counts.max()), 1)
        self.retrievers = {self.default: load_retriever(self.default, self.run)}
        log.info("retrieval ready: %s over %d topics", self.default, len(self.topics))

    def _retriever(self, name: str | None):
        name = name or self.default
        if name not in self.retrievers:
            try:
                self.retrievers[name] = load_retriever(name, self.run)
            except ArtifactError as e:  # a retriever this run never trained: the request's fault, not the server's
                raise NotFound(f"retriever {name!r} is not available in this run: {e}") from None
        return self.retrievers[name]

    def candidates(self, user_id: str, n: int, recent: list[str], retriever: str | None) -> Candidates:
        recent_dense = self.topics.encode(recent) if recent else np.empty(0, np.int64)
        unknown_recent = [r for r, d in zip(recent, recent_dense) if d < 0]
        if unknown_recent:
            raise DataError(f"unknown item id(s) in recent_item_ids: {unknown_recent[:5]}")
        dense_user = int(self.users.encode([user_id])[0])
        name = retriever or self.default
        if dense_user < 0 and len(recent_dense) == 0:
            ids = self.popular[:n]
            return self._answer(ids, self.popularity[ids], name, "unknown user: popular items")
        ids, scores = self._retriever(name).candidates([dense_user], n, recent=[recent_dense]).row(0)
        return self._answer(ids, scores, name, None)

    def _answer(self, ids: np.ndarray, scores: np.ndarray, name: str, fallback: str | None) -> Candidates:
        return Candidates(
            item_ids=self.topics.decode(ids),
            names=[self.names[i] for i in ids.tolist()],
            scores=np.asarray(scores, np.float64).tolist(),
            retriever=name,
            fallback_reason=fallback,
        )
