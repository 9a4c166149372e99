"""Every retriever by name, and loading one from a run directory.

A config (``retrieval.default``), a request (``/v1/recommend``'s ``retriever``) or a job names a
retriever; :data:`RETRIEVERS` lists them all. A retriever cheap enough to build from the
spine's artifacts (popularity, item-kNN, pooled, Pixie, ALS) loads from a run that never saved it;
the others need their batch job first, and the error says which.
"""

from __future__ import annotations

import logging

from reco import artifacts
from reco.registry import Registry
from reco.retrieval.als import AlsRetriever
from reco.retrieval.base import META, Retriever
from reco.retrieval.config import RetrievalConfig
from reco.retrieval.item_knn import LastItemsKnnRetriever
from reco.retrieval.mf import MfRetriever
from reco.retrieval.multi_interest import MultiInterestRetriever
from reco.retrieval.pixie import PixieRetriever
from reco.retrieval.pooled import PooledRetriever
from reco.retrieval.popularity import PopularityRetriever
from reco.retrieval.run_data import all_users, training_data
from reco.retrieval.sequence_tower import SequenceTowerRetriever
from reco.retrieval.two_tower import TwoTowerRetriever
from reco.run_dir import RunDir

log = logging.getLogger(__name__)

RETRIEVERS: Registry[type[Retriever]] = Registry("retriever")
for _cls in (
    PopularityRetriever,
    LastItemsKnnRetriever,
    PooledRetriever,
    MultiInterestRetriever,
    SequenceTowerRetriever,
    TwoTowerRetriever,
    PixieRetriever,
    MfRetriever,
    AlsRetriever,
):
    RETRIEVERS.add(_cls.name, _cls)


def create_retriever(name: str, cfg: RetrievalConfig | None = None) -> Retriever:
    """A fresh, unfitted retriever."""
    return RETRIEVERS.get(name)(cfg)


def load_retriever(name: str, run: RunDir, cfg: RetrievalConfig | None = None, users: bool = True) -> Retriever:
    """A retriever saved in ``run``, or built from the spine's artifacts when it is derivable (seconds)."""
    cls = RETRIEVERS.get(name)
    if cls.derivable and not run.has(artifacts.retriever(name, META)):
        log.info("retriever %s has no artifact in %s: building it from the spine's artifacts", name, run.uri)
        retriever = cls(cfg).fit(training_data(run))
        retriever.index_users(all_users(run))
        return retriever
    return cls.load(run, cfg, users=users)
