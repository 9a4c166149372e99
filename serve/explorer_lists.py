"""Prepared seed lists for the explorer, named the way a person would say them.

Where a run expanded seed lists (``expansion/seed_lists.parquet``) the page offers exactly
those; otherwise it derives a few per size bucket with reco/expansion/list_definitions.py:
MovieLens "rated <title> 4 or more", Last.fm "listens to <artist>", synthetic "community N".
Lists derived here from a run's own interactions were NOT removed from the embedding's
training data (the evaluation protocol's lists were), so they are for looking, not for scoring.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from reco import artifacts
from reco.config import Config
from reco.data.formats import read_topic_names, resolve_source
from reco.errors import DataError
from reco.expansion.config import BUCKETS
from reco.expansion.list_definitions import TOPIC_LISTS, ListDefinitions, community_audiences, topic_audiences
from reco.run_dir import RunDir
from reco.vocab import Vocabulary

log = logging.getLogger("serve.explorer")

PER_BUCKET = 4  # lists per size bucket when the run has none of its own


@dataclass(frozen=True)
class PreparedList:
    list_id: str
    label: str
    bucket: str
    user_ids: list[str]  # raw ids
    source: str  # where the list comes from, in words

    def summary(self) -> dict:
        return {
            "id": self.list_id,
            "label": self.label,
            "bucket": self.bucket,
            "size": len(self.user_ids),
            "source": self.source,
        }


def list_label(list_id: str, topic_name: Callable[[str], str | None]) -> str:
    """'movie:50' -> 'rated "Star Wars (1977)" 4 or more'; 'community:3/small-1' -> 'community 3, sample small-1'."""
    kind, _, rest = list_id.partition(":")
    if kind == "movie" and rest:
        return f'rated "{topic_name(rest) or "movie " + rest}" 4 or more'
    if kind == "artist" and rest:
        return f"listens to {topic_name(rest) or 'artist ' + rest}"
    if kind == "community" and rest:
        community, _, sample = rest.partition("/")
        return f"community {community}, sample {sample}" if sample else f"community {community}, all members"
    return list_id


class TopicNames:
    """Topic display names: the run's vocabulary first, then the data set's names file (the
    protocol's lists name topics that ingest removed, so they are not in the vocabulary)."""

    def __init__(self, vocab: dict[str, str | None], cfg: Config):
        self.vocab, self.cfg, self._file = vocab, cfg, None

    def __call__(self, raw_id: str) -> str | None:
        name = self.vocab.get(raw_id)
        if name is None and self.cfg.data.format in TOPIC_LISTS:
            name = self._names_file().get(raw_id)
        return name

    def _names_file(self) -> dict[str, str]:
        if self._file is None:
            self._file = {}
            try:
                table = read_topic_names(resolve_source(self.cfg.data))
                if table is not None:
                    self._file = dict(zip(table.column("raw_id").to_pylist(), table.column("name").to_pylist()))
            except (DataError, OSError) as e:
                log.warning("no topic names beyond the vocabulary: %s", e)
        return self._file


def _from_run(run: RunDir) -> list[tuple[str, list[str], str]]:
    table = run.read_table(artifacts.SEED_LISTS, columns=["seed_list_id", "user_id"])
    source = run.artifact(artifacts.SEED_LISTS)["meta"].get("source") or "the run's seed lists"
    ids = table.column("seed_list_id").to_pylist()
    users = table.column("user_id").to_pylist()
    grouped: dict[str, list[str]] = {}
    for list_id, user in zip(ids, users):
        grouped.setdefault(list_id, []).append(user)
    return [(k, v, f"expanded by this run ({source})") for k, v in grouped.items()]


def _topic_lists(run: RunDir, cfg: Config, users: Vocabulary, topics: Vocabulary) -> ListDefinitions:
    prefix, min_weight = TOPIC_LISTS[cfg.data.format]
    inter = run.read_table(artifacts.INTERACTIONS, columns=["user_id", "topic_id", "weight"])
    raw = pa.table(
        {
            "user": users.raw_ids.take(inter.column("user_id").combine_chunks()),
            "topic": topics.raw_ids.take(inter.column("topic_id").combine_chunks()),
            "weight": pc.cast(inter.column("weight"), pa.float32()),
        }
    )
    ex = cfg.expansion
    return topic_audiences(raw, ex.buckets, PER_BUCKET, ex.synthetic_lists.min_size, prefix, min_weight)


def _derived(run: RunDir, cfg: Config, users: Vocabulary, topics: Vocabulary) -> list[tuple[str, list[str], str]]:
    if cfg.data.format in TOPIC_LISTS and run.has(artifacts.INTERACTIONS):
        defs = _topic_lists(run, cfg, users, topics)
        return [
            (k, [str(u) for u in v], "derived from the run's interactions (seen in training)")
            for k, v in defs.lists.items()
        ]
    if run.has(artifacts.USER_COMMUNITIES):
        synthetic = cfg.expansion.synthetic_lists.model_copy(update={"per_bucket": PER_BUCKET})
        defs = community_audiences(run.read_table(artifacts.USER_COMMUNITIES), cfg.expansion.buckets, synthetic)
        return [
            (k, users.decode(np.asarray(v, np.int64)), "the run's planted communities") for k, v in defs.lists.items()
        ]
    return []


def prepared_lists(
    run: RunDir, cfg: Config, users: Vocabulary, topics: Vocabulary, topic_name: Callable[[str], str | None]
) -> dict[str, PreparedList]:
    """Every prepared list by id, small lists first, each bucket sorted by label."""
    found = _from_run(run) if run.has(artifacts.SEED_LISTS) else []
    if not found:
        found = _derived(run, cfg, users, topics)
    lists = [
        PreparedList(list_id, list_label(list_id, topic_name), cfg.expansion.buckets.of(len(members)), members, source)
        for list_id, members, source in found
    ]
    lists.sort(key=lambda p: (BUCKETS.index(p.bucket), p.label))
    return {p.list_id: p for p in lists}
