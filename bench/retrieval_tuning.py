"""The settings ``bench.retrieval --tune`` tries for each retriever, on the validation part only.

Small grids over what the retrieval literature says matters; where a first run's best value sat
on a grid's edge (sampled-softmax temperatures, Pixie's restart and recency) the grid moved
outwards. The chosen settings went into configs/retrieval-*.yaml.
"""

from __future__ import annotations

from itertools import product
from typing import Any

from reco.config import Config


def _grid(**axes: tuple) -> list[dict[str, Any]]:
    keys = list(axes)
    return [dict(zip(keys, values)) for values in product(*axes.values())]


GRIDS: dict[str, list[dict[str, Any]]] = {
    "last_items_knn": _grid(**{"last_items_knn.shrink": (0.0, 10.0, 100.0)}),
    "pooled": _grid(**{"pooled.weighted": (False, True)}),
    "multi_interest": _grid(
        **{
            "multi_interest.distance_threshold": (0.5, 1.0, 2.0, 4.0),
            "multi_interest.merge": ("round_robin", "max"),
            "multi_interest.top_interests": (3, 5),
            "multi_interest.representative": ("medoid", "centroid"),
        }
    ),
    "pixie": _grid(**{"pixie.restart": (0.5, 0.7, 0.9), "pixie.recency_half_life": (2.0, 5.0, 30.0)}),
    "sequence_all_action": _grid(**{"sequence.window": (10, 30, 50), "sequence.temperature": (0.05, 0.1, 0.2)}),
    "sequence_next_item": _grid(**{"sequence.temperature": (0.05, 0.1, 0.2)}),
    "two_tower": _grid(**{"two_tower.temperature": (0.05, 0.1, 0.2), "two_tower.use_user_id": (True, False)}),
    "mf": _grid(**{"mf.dim": (32, 64), "mf.negatives": (4, 8)}),
    "als": _grid(
        **{
            "als.factors": (32, 64, 128),
            "als.regularization": (1.0, 10.0, 100.0),
            "als.alpha": (1.0, 5.0, 20.0),
            "als.confidence": ("binary", "log"),
        }
    )
    # Last.fm's first choice sat on two edges (128 factors, regularization 100): one step outwards
    + [
        {"als.factors": f, "als.regularization": r, "als.alpha": 5.0, "als.confidence": "log"}
        for f, r in ((128, 300.0), (256, 100.0), (256, 300.0))
    ],
}


def apply_settings(cfg: Config, settings: dict[str, Any]) -> Config:
    """A copy of ``cfg`` with ``retrieval.<section>.<key>`` values set (validated on assignment)."""
    out = cfg.model_copy(deep=True)
    for key, value in settings.items():
        node: Any = out.retrieval
        *path, last = key.split(".")
        for part in path:
            node = getattr(node, part)
        setattr(node, last, value)
    return out
