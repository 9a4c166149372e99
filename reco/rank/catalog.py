"""Encoded user and item side features by raw id, and assembling candidate rows from them.

Serving scores (user, candidate items, context); full-ranking evaluation scores every item for
a user; negative sampling swaps a row's item for another. All three need a known id's encoded
side features without re-reading the data set, so the catalog keeps them: one encoded row per
known user / item, plus an out-of-vocabulary row used for ids it has never seen (their ids
map to the OOV bucket and their side features to unknown / mean values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from reco.rank.features import FeaturePipeline, Side


@dataclass
class SideTable:
    """One side's encoded features: ids (raw strings), cat (n+1, slots), dense (n+1, D); row n is OOV."""

    ids: list[str]
    cat: np.ndarray
    dense: np.ndarray
    slot_cols: np.ndarray  # where these go in a full Rows.cat
    dense_cols: np.ndarray

    def __post_init__(self) -> None:
        self._row = {raw: i for i, raw in enumerate(self.ids)}

    def lookup(self, raw_ids: np.ndarray | list[str]) -> np.ndarray:
        """Row numbers of raw ids; unknown ids get the OOV row.

        A dict, not a pandas Index: serving looks up ~100 ids a request, where building an
        Index per call cost more than the model's forward pass."""
        oov, row = len(self.ids), self._row
        return np.fromiter(
            (row.get(x if isinstance(x, str) else str(x), oov) for x in raw_ids), np.int64, count=len(raw_ids)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ids": self.ids,
            "cat": torch.from_numpy(self.cat),
            "dense": torch.from_numpy(self.dense),
            "slot_cols": self.slot_cols.tolist(),
            "dense_cols": self.dense_cols.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SideTable:
        return cls(
            list(d["ids"]),
            d["cat"].numpy(),
            d["dense"].numpy(),
            np.asarray(d["slot_cols"], np.int64),
            np.asarray(d["dense_cols"], np.int64),
        )


def complete_frame(pipeline: FeaturePipeline, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every feature column the pipeline reads (absent ones as missing values)."""
    out = frame.copy()
    for f in pipeline.fields:
        if f.spec.name not in out.columns:
            out[f.spec.name] = None
    return out


def side_table(pipeline: FeaturePipeline, side: Side, frame: pd.DataFrame, key: str) -> SideTable:
    """Encode one row per id of ``frame`` (raw side features) plus the OOV row."""
    frame = frame.drop_duplicates(key).reset_index(drop=True)
    oov = pd.DataFrame({key: [None]})
    full = complete_frame(pipeline, pd.concat([frame, oov], ignore_index=True))
    cat, dense = pipeline.transform(full)
    slot_cols, dense_cols = pipeline.side_columns(side)
    return SideTable([str(x) for x in frame[key]], cat[:, slot_cols], dense[:, dense_cols], slot_cols, dense_cols)


class Catalog:
    """User and item side tables plus the pipeline, to build encoded rows for any (user, item, context)."""

    def __init__(self, pipeline: FeaturePipeline, users: SideTable | None, items: SideTable | None):
        self.pipeline, self.users, self.items = pipeline, users, items
        self._no_context: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def build(cls, pipeline: FeaturePipeline, users: pd.DataFrame | None, items: pd.DataFrame | None) -> Catalog:
        spec = pipeline.spec
        u = side_table(pipeline, "user", users, spec.user_key) if users is not None and spec.user_key else None
        i = side_table(pipeline, "item", items, spec.item_key) if items is not None and spec.item_key else None
        return cls(pipeline, u, i)

    def context_rows(self, context: pd.DataFrame | dict | None, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Encoded rows from context values (one dict / row broadcast, or n rows); unknown -> OOV.

        Only context fields are encoded here (user and item columns are filled in from the
        tables); the row for "no context" is encoded once and reused."""
        if context is None or (isinstance(context, dict) and not context):
            if self._no_context is None:
                self._no_context = self.pipeline.transform(
                    complete_frame(self.pipeline, pd.DataFrame([{}])), side="context"
                )
            cat, dense = self._no_context
            return np.repeat(cat, n, axis=0), np.repeat(dense, n, axis=0)
        frame = pd.DataFrame([context]) if not isinstance(context, pd.DataFrame) else context
        cat, dense = self.pipeline.transform(complete_frame(self.pipeline, frame), side="context")
        if len(frame) == 1 and n != 1:
            cat, dense = np.repeat(cat, n, axis=0), np.repeat(dense, n, axis=0)
        return cat, dense

    def assemble(
        self, user_rows: np.ndarray, item_rows: np.ndarray, context: pd.DataFrame | dict | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Full encoded (cat, dense) for rows of the user and item tables, with context filled in."""
        n = max(len(user_rows), len(item_rows))
        cat, dense = self.context_rows(context, n)
        return self.fill_sides(cat, dense, user_rows, item_rows)

    def fill_sides(
        self, cat: np.ndarray, dense: np.ndarray, user_rows: np.ndarray, item_rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encoded context rows (changed in place) with the user and item tables' columns filled in."""
        n = len(cat)
        for table, rows in ((self.users, user_rows), (self.items, item_rows)):
            if table is not None:
                cat[:, table.slot_cols] = table.cat[np.broadcast_to(rows, (n,))]
                dense[:, table.dense_cols] = table.dense[np.broadcast_to(rows, (n,))]
        return cat, dense

    def request_context_rows(self, contexts: list[dict | None], lengths: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Encoded context of many requests, request i's row repeated ``lengths[i]`` times.

        Each request's context is encoded once (object dtype, so an int stays "5" and never
        becomes "5.0" beside a request without it); requests without one get the unknown row."""
        total = int(sum(lengths))
        if not any(contexts):
            return self.context_rows(None, total)
        frame = pd.DataFrame([c or {} for c in contexts], dtype=object)
        cat, dense = self.pipeline.transform(complete_frame(self.pipeline, frame), side="context")
        return np.repeat(cat, lengths, axis=0), np.repeat(dense, lengths, axis=0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "users": self.users.to_dict() if self.users else None,
            "items": self.items.to_dict() if self.items else None,
        }

    @classmethod
    def from_dict(cls, pipeline: FeaturePipeline, d: dict[str, Any]) -> Catalog:
        return cls(
            pipeline,
            SideTable.from_dict(d["users"]) if d["users"] else None,
            SideTable.from_dict(d["items"]) if d["items"] else None,
        )
