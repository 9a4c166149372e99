"""Early stopping and resumable progress, shared by every trained model (embeddings, rankers, retrievers).

A :class:`FitState` records each epoch's metrics, the best epoch by one validation metric and
how many epochs have passed without improvement. It serialises to JSON, so a Ray Train
checkpoint carries it and a rerun resumes where the last run stopped.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass
class FitState:
    """Progress that a checkpoint carries so a rerun resumes where it stopped."""

    epoch: int = 0  # epochs completed
    best_metric: float = float("-inf")
    best_epoch: int = -1
    bad_epochs: int = 0
    stopped: bool = False  # early stopping triggered
    history: list[dict] = field(default_factory=list)
    resumed_after: list[int] = field(default_factory=list)  # epochs completed at each resume

    def update(self, metrics: dict, key: str, patience: int) -> bool:
        """Record an epoch; True if it is the best so far. Sets ``stopped`` after ``patience`` bad epochs."""
        self.epoch += 1
        self.history.append(metrics)
        value = metrics[key]
        if value > self.best_metric:
            self.best_metric, self.best_epoch, self.bad_epochs = value, self.epoch, 0
            return True
        self.bad_epochs += 1
        self.stopped = self.bad_epochs >= patience
        return False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> FitState:
        return cls(**json.loads(text))
