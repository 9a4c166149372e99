"""The audience explorer's data: one run directory, shaped for a person looking at it.

``ExplorerService`` (plain class, no Ray) loads once from the run directory: the run's config
from the manifest, the vocabularies with topic names, every user's history, a 2-D PCA of the
user embeddings fitted on a fixed random sample of users (seeds and audiences are projected
with the same fitted PCA, so every map shares one frame), the offline evaluation (metrics JSON
and report PNGs) and prepared seed lists. The expansion itself and the recommendations come
from the JSON API; this service only adds what a page needs to show them.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.decomposition import PCA

from reco import artifacts
from reco.data.config import DataConfig
from reco.data.vectors import vectors_of
from reco.errors import ArtifactError
from reco.run_dir import RunDir
from reco.vocab import Vocabulary
from serve.explorer_lists import PreparedList, TopicNames, prepared_lists
from serve.http_errors import NotFound, OutOfRange
from serve.services import run_config
from serve.settings import ServeSettings

log = logging.getLogger("serve.explorer")

MAP_SAMPLE = 2000  # background users drawn on the map (and the PCA's fitting sample)
MAX_DESCRIBED_USERS = 1000  # users per top-topics request
HISTORY_ITEMS = 50  # items of one user's history returned
WEIGHT_LABEL = {"movielens": "rating", "lastfm": "plays", "synthetic": "rating"}
METRICS = ("expansion", "ranking", "evaluation", "training", "ingest", "expand")


def _finite(obj: Any) -> Any:
    """NaN and infinities as None: they are not JSON (metrics hold NaN where undefined)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


class UserMap:
    """PCA to 2-D fitted on a fixed random sample of users; projects any user the same way."""

    def __init__(self, user_ids: np.ndarray, vectors: np.ndarray, sample: int = MAP_SAMPLE, seed: int = 0):
        self.vectors = vectors
        self.row_of = np.full(int(user_ids.max()) + 1 if len(user_ids) else 0, -1, dtype=np.int64)
        self.row_of[user_ids] = np.arange(len(user_ids))
        rng = np.random.default_rng(seed)
        self.sample_rows = np.sort(rng.choice(len(vectors), size=min(sample, len(vectors)), replace=False))
        self.pca = PCA(n_components=2, random_state=seed).fit(vectors[self.sample_rows])
        self.background = self.pca.transform(vectors[self.sample_rows])
        self.sample_users = user_ids[self.sample_rows]

    def rows(self, dense: np.ndarray) -> np.ndarray:
        """Embedding rows of dense user ids, -1 where a user has no embedding."""
        ok = (dense >= 0) & (dense < len(self.row_of))
        out = np.full(len(dense), -1, dtype=np.int64)
        out[ok] = self.row_of[dense[ok]]
        return out

    def project(self, rows: np.ndarray) -> np.ndarray:
        return self.pca.transform(self.vectors[rows]) if len(rows) else np.empty((0, 2))


def _describe(data: DataConfig) -> str:
    """The data set in one line: 'movielens: ../shared/data/ml-100k/u.data'."""
    if data.format == "synthetic":
        s = data.synthetic
        return f"synthetic: {s.n_users:,} users, {s.n_topics:,} topics, {s.n_communities} planted communities"
    return f"{data.format}: {data.path}"


def _points(ids: list[str], xy: np.ndarray) -> list[dict]:
    return [{"user_id": u, "x": round(float(x), 5), "y": round(float(y), 5)} for u, (x, y) in zip(ids, xy)]


class ExplorerService:
    """Everything the explorer page shows about one run, loaded at construction."""

    def __init__(self, settings: ServeSettings, map_sample: int = MAP_SAMPLE, seed: int = 0):
        s = settings
        self.settings = s
        self.run = RunDir(s.run_dir)
        self.manifest = self.run.manifest()
        if not self.manifest.get("artifacts"):
            raise ArtifactError(
                f"{s.run_dir} holds no run (no manifest.json with artifacts): run python -m ray_jobs.pipeline first"
            )
        self.config = run_config(self.run)
        self.artifacts = set(self.manifest["artifacts"])
        self.users = Vocabulary.from_table(self.run.read_table(artifacts.USER_VOCAB), "user_id")
        topics = self.run.read_table(artifacts.TOPIC_VOCAB)
        self.topics = Vocabulary.from_table(topics, "topic_id")
        names = (
            topics.sort_by("topic_id").column("name").to_pylist()
            if "name" in topics.column_names
            else [None] * len(self.topics)
        )
        self.topic_names = names
        self.topic_name = TopicNames(dict(zip(self.topics.raw_ids.to_pylist(), names)), self.config)
        self.histories, self.history_row = self._histories()
        self.map = self._map(map_sample, seed)
        self.lists: dict[str, PreparedList] = prepared_lists(
            self.run, self.config, self.users, self.topics, self.topic_name
        )
        self.metrics = {
            m: _finite(self.run.read_json(artifacts.metrics(m)))
            for m in METRICS
            if artifacts.metrics(m) in self.artifacts
        }
        self.reports = {
            a.split("/", 1)[1]: self.run.read_bytes(a)
            for a in sorted(self.artifacts)
            if a.startswith("reports/") and a.endswith(".png")
        }
        log.info(
            "explorer ready: %s, %d users, %d prepared lists, %d report plots",
            s.run_dir,
            len(self.users),
            len(self.lists),
            len(self.reports),
        )

    # -- loading -------------------------------------------------------------------------------
    def _histories(self) -> tuple[pa.Table | None, np.ndarray]:
        if artifacts.HISTORIES not in self.artifacts:
            return None, np.full(len(self.users), -1, dtype=np.int64)
        table = self.run.read_table(
            artifacts.HISTORIES,
            columns=["user_id", "topics", "weights", "ts", "targets", "target_weights", "target_ts"],
        )
        table = table.sort_by("user_id")
        row = np.full(len(self.users), -1, dtype=np.int64)
        row[table.column("user_id").to_numpy()] = np.arange(table.num_rows)
        return table, row

    def _map(self, sample: int, seed: int) -> UserMap | None:
        if artifacts.USER_EMBEDDINGS not in self.artifacts:
            return None
        table = self.run.read_table(artifacts.USER_EMBEDDINGS)
        return UserMap(table.column("user_id").to_numpy(), np.asarray(vectors_of(table), np.float32), sample, seed)

    # -- the run ---------------------------------------------------------------------------------
    def run_info(self) -> dict[str, Any]:
        data = self.config.data
        ingest = self.metrics.get("ingest", {})
        ranking = self.metrics.get("ranking", {})
        return {
            "run_dir": self.settings.run_dir,
            "created_at": self.manifest.get("created_at"),
            "data_format": data.format,
            "data": _describe(data),
            "users": len(self.users),
            "topics": len(self.topics),
            "interactions": ingest.get("deduplicated_interactions"),
            "weight_label": WEIGHT_LABEL.get(data.format, "weight"),
            "topic_names": any(n is not None for n in self.topic_names),
            "map_users": 0 if self.map is None else len(self.map.sample_rows),
            "map_explained_variance": None
            if self.map is None
            else [round(float(v), 4) for v in self.map.pca.explained_variance_ratio_],
            "ranker": ranking.get("model"),
            "seed_lists": len(self.lists),
            "limits": {
                "max_seed_ids": self.settings.max_seed_ids,
                "max_audience_size": self.settings.max_audience_size,
                "min_seed_ids": self.settings.min_seed_ids,
                "min_audience_size": self.settings.min_audience_size,
                "max_k": self.settings.max_k,
            },
            "versions": self.manifest.get("versions", {}),
        }

    def seed_lists(self) -> list[dict]:
        return [p.summary() for p in self.lists.values()]

    def seed_list(self, list_id: str) -> dict[str, Any]:
        p = self.lists.get(list_id)
        if p is None:
            raise NotFound(f"unknown prepared seed list {list_id!r}")
        return {**p.summary(), "user_ids": p.user_ids}

    # -- users -----------------------------------------------------------------------------------
    def _encode(self, user_ids: list[str]) -> np.ndarray:
        """Dense ids, -1 for unknown ids (an id Arrow cannot even encode, e.g. a lone surrogate, is unknown)."""
        try:
            return self.users.encode(user_ids)
        except (pa.ArrowException, UnicodeError):
            return np.asarray([self._encode([u])[0] if len(user_ids) > 1 else -1 for u in user_ids], np.int64)

    def _dense(self, user_id: str) -> int:
        dense = int(self._encode([user_id])[0])
        if dense < 0:
            raise NotFound(f"unknown user {user_id!r} (not in this run's vocab/users.parquet)")
        return dense

    def _items(self, dense: int) -> list[dict]:
        """Every interaction of a user (inputs and held-out targets), heaviest then latest first."""
        row = int(self.history_row[dense]) if self.histories is not None else -1
        if row < 0:
            return []
        h = self.histories.slice(row, 1).to_pylist()[0]
        items = [(t, w, ts, False) for t, w, ts in zip(h["topics"], h["weights"], h["ts"])]
        items += [(t, w, ts, True) for t, w, ts in zip(h["targets"], h["target_weights"], h["target_ts"])]
        items.sort(key=lambda x: (-x[1], -x[2], x[0]))
        raw = self.topics.decode([t for t, *_ in items]) if items else []
        return [
            {"item_id": r, "name": self.topic_names[t], "weight": float(w), "ts": int(ts), "held_out": held}
            for r, (t, w, ts, held) in zip(raw, items)
        ]

    def history(self, user_id: str) -> dict[str, Any]:
        """A user's history for the page: the heaviest items, with names, and how many in all."""
        items = self._items(self._dense(user_id))
        return {
            "user_id": user_id,
            "total": len(items),
            "items": items[:HISTORY_ITEMS],
            "weight_label": WEIGHT_LABEL.get(self.config.data.format, "weight"),
        }

    def top_topics(self, user_ids: list[str], k: int = 3) -> dict[str, list[dict]]:
        """Each known user's k heaviest topics (unknown ids are left out)."""
        if len(user_ids) > MAX_DESCRIBED_USERS:
            raise OutOfRange(f"user_ids is {len(user_ids)}, more than the limit of {MAX_DESCRIBED_USERS}")
        dense = self._encode(list(user_ids))
        return {
            u: [{"item_id": x["item_id"], "name": x["name"], "weight": x["weight"]} for x in self._items(int(d))[:k]]
            for u, d in zip(user_ids, dense)
            if d >= 0
        }

    # -- the map ---------------------------------------------------------------------------------
    def map_points(self, seed_ids: list[str], audience_ids: list[str]) -> dict[str, Any]:
        """Seeds, audience and the background sample in one 2-D frame; unknown ids are counted."""
        if self.map is None:
            raise ArtifactError(
                f"{self.settings.run_dir} has no user embeddings ({artifacts.USER_EMBEDDINGS}): run "
                "export_embeddings first"
            )
        limit = self.settings.max_seed_ids + self.settings.max_audience_size
        if len(seed_ids) + len(audience_ids) > limit:
            raise OutOfRange(
                f"seed and audience ids are {len(seed_ids) + len(audience_ids)}, more than the limit of {limit}"
            )
        out: dict[str, Any] = {"background": _points(self.users.decode(self.map.sample_users), self.map.background)}
        for name, ids in (("seeds", seed_ids), ("audience", audience_ids)):
            ids = list(dict.fromkeys(str(i).strip() for i in ids if str(i).strip()))
            rows = self.map.rows(self._encode(ids)) if ids else np.empty(0, np.int64)
            known = rows >= 0
            out[name] = _points([u for u, k in zip(ids, known) if k], self.map.project(rows[known]))
            out[f"{name}_unknown"] = int((~known).sum())
        out["explained_variance"] = [round(float(v), 4) for v in self.map.pca.explained_variance_ratio_]
        return out

    # -- the offline evaluation ------------------------------------------------------------------
    def evaluation(self) -> dict[str, Any]:
        ranking = self.metrics.get("ranking")
        return {
            "expansion": self.metrics.get("expansion"),
            "ranking": None
            if ranking is None
            else {
                k: ranking.get(k)
                for k in ("model", "data", "tasks", "test", "calibration", "best_epoch", "epochs_run", "monitor")
            },
            "embeddings": self.metrics.get("evaluation"),
            "reports": list(self.reports),
        }

    def report(self, name: str) -> bytes:
        if name not in self.reports:
            raise NotFound(f"no report plot {name!r} in this run (have: {', '.join(self.reports) or 'none'})")
        return self.reports[name]
