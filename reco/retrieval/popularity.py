"""The most-popular baseline: the same ranking for everyone, minus what the user has seen.

Any representation worth its cost must beat it; it needs no time, no order and no vectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from reco import artifacts
from reco.retrieval.base import Candidates, Retriever, top_k
from reco.retrieval.data import TrainingData
from reco.run_dir import RunDir

COUNTS = "counts.parquet"


class PopularityRetriever(Retriever):
    name = "popularity"
    derivable = True

    def __init__(self, cfg=None):
        super().__init__(cfg)
        self.counts = np.empty(0, np.float32)

    def fit(self, data: TrainingData) -> PopularityRetriever:
        self.n_topics = data.n_topics
        self.counts = data.topic_counts().astype(np.float32)
        self.index_users(data.sequences)
        return self

    def _candidates(self, rows, recent, exclude, k) -> Candidates:
        return Candidates.pack([top_k(self.counts, ex, k) for ex in exclude], k)

    def _save_state(self, run: RunDir, step: str) -> None:
        run.write_table(
            artifacts.retriever(self.name, COUNTS),
            pa.table({"topic_id": np.arange(self.n_topics), "count": self.counts}),
            step=step,
        )

    def _load_state(self, run: RunDir, meta: dict[str, Any]) -> None:
        self.counts = (
            run.read_table(artifacts.retriever(self.name, COUNTS)).column("count").to_numpy().astype(np.float32)
        )
