"""One file per trained ranker: model weights, model config, fitted features, catalogue, calibrators.

Serving loads ``models/ranker.pt`` from a run directory and scores raw ids:

    ranker = Ranker.load("runs/local")
    probs = ranker.score("196", ["242", "302", "no-such-item"], context={"weekday": 3})
    many = ranker.score_batch([("196", ["242", "302"], None), ("7", ["50"], {"weekday": 1})])  # one forward pass

Unknown users and items map to the out-of-vocabulary bucket (and unknown side features), so
they get a score rather than an error. The file holds only tensors, lists, strings and
numbers, so it loads with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from reco import artifacts
from reco.errors import ArtifactError
from reco.rank.calibration import Calibrator
from reco.rank.catalog import Catalog, complete_frame
from reco.rank.config import RankModelConfig
from reco.rank.features import FeatureLayout, FeaturePipeline
from reco.rank.models import build_model
from reco.rank.training import predict_logits
from reco.run_dir import RunDir

FORMAT = "reco.rank.ranker/1"


@dataclass
class Ranker:
    model: nn.Module
    model_cfg: RankModelConfig
    pipeline: FeaturePipeline
    catalog: Catalog
    tasks: list[str]
    calibrators: list[Calibrator]
    meta: dict[str, Any] = field(default_factory=dict)

    # -- scoring ---------------------------------------------------------------------------
    def score(
        self,
        user_id: str,
        item_ids: list[str],
        context: dict[str, Any] | None = None,
        task: str | None = None,
        calibrated: bool = True,
    ) -> np.ndarray:
        """Probabilities (one per candidate) that ``user_id`` clicks each item, for one task.

        One forward pass over all candidates; ids the model never saw get the OOV bucket."""
        if self.catalog.users is None or self.catalog.items is None:
            raise ArtifactError(
                f"this ranker ({self.meta.get('data', '?')}) has no user / item catalogue: use score_frame"
            )
        t = self._task(task)
        user_row = self.catalog.users.lookup([user_id])
        item_rows = self.catalog.items.lookup(item_ids)
        cat, dense = self.catalog.assemble(np.repeat(user_row, len(item_rows)), item_rows, context)
        z = predict_logits(self.model, cat, dense)[:, t]
        return self.calibrators[t].probabilities(z) if calibrated else 1 / (1 + np.exp(-z.astype(np.float64)))

    def score_batch(
        self,
        requests: list[tuple[str, list[str], dict[str, Any] | None]],
        task: str | None = None,
        calibrated: bool = True,
    ) -> list[np.ndarray]:
        """:meth:`score` for many ``(user_id, item_ids, context)`` requests in ONE forward pass.

        Ray Serve's ``@serve.batch`` hands the ranking deployment several requests at once; their
        candidates are concatenated, scored together and split back, one array per request."""
        if self.catalog.users is None or self.catalog.items is None:
            raise ArtifactError(
                f"this ranker ({self.meta.get('data', '?')}) has no user / item catalogue: use score_frame"
            )
        t = self._task(task)
        lengths = [len(items) for _, items, _ in requests]
        total = int(sum(lengths))
        if total == 0:
            return [np.zeros(0, np.float64) for _ in requests]
        user_rows = np.repeat(self.catalog.users.lookup([user for user, _, _ in requests]), lengths)
        item_rows = self.catalog.items.lookup([i for _, items, _ in requests for i in items])
        cat, dense = self.catalog.request_context_rows([ctx for _, _, ctx in requests], lengths)
        cat, dense = self.catalog.fill_sides(cat, dense, user_rows, item_rows)
        z = predict_logits(self.model, cat, dense, batch_size=total)[:, t]
        p = self.calibrators[t].probabilities(z) if calibrated else 1 / (1 + np.exp(-z.astype(np.float64)))
        return np.split(p, np.cumsum(lengths)[:-1])

    def score_frame(self, frame: pd.DataFrame, calibrated: bool = True) -> np.ndarray:
        """(N, tasks) probabilities for rows of raw feature values (any data set, no catalogue needed)."""
        cat, dense = self.pipeline.transform(complete_frame(self.pipeline, frame))
        z = predict_logits(self.model, cat, dense)
        if not calibrated:
            return 1 / (1 + np.exp(-z.astype(np.float64)))
        return np.stack([c.probabilities(z[:, t]) for t, c in enumerate(self.calibrators)], axis=1)

    def _task(self, task: str | None) -> int:
        if task is None:
            return 0
        if task not in self.tasks:
            raise ArtifactError(f"unknown task {task!r}; this ranker predicts {self.tasks}")
        return self.tasks.index(task)

    # -- persistence -----------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        blob = {
            "format": FORMAT,
            "model_config": self.model_cfg.model_dump(),
            "layout": self.pipeline.layout().to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "pipeline": self.pipeline.to_dict(),
            "catalog": self.catalog.to_dict(),
            "tasks": list(self.tasks),
            "calibrators": [c.to_dict() for c in self.calibrators],
            "meta": self.meta,
        }
        buf = io.BytesIO()
        torch.save(blob, buf)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, label: str = "ranker") -> Ranker:
        try:
            blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as e:
            raise ArtifactError(f"{label} is not a ranker artifact: {str(e).splitlines()[0]}") from None
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ArtifactError(
                f"{label} is not a ranker artifact (format {blob.get('format') if isinstance(blob, dict) else None!r})"
            )
        cfg = RankModelConfig(**blob["model_config"])
        layout = FeatureLayout.from_dict(blob["layout"])
        model = build_model(cfg, layout, len(blob["tasks"]))
        model.load_state_dict(blob["state_dict"])
        model.eval()
        pipeline = FeaturePipeline.from_dict(blob["pipeline"])
        return cls(
            model,
            cfg,
            pipeline,
            Catalog.from_dict(pipeline, blob["catalog"]),
            list(blob["tasks"]),
            [Calibrator.from_dict(c) for c in blob["calibrators"]],
            dict(blob["meta"]),
        )

    @classmethod
    def load(cls, run_dir: str | RunDir, rel: str = artifacts.RANKER) -> Ranker:
        """The ranker of a run directory, checked against its manifest."""
        run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        return cls.from_bytes(run.read_bytes(rel), f"{run.uri}/{rel}")
