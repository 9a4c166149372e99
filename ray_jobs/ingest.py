"""ingest: raw interactions -> vocabularies, per-user histories and interactions in a run dir.

Ray Data reads the input (or generates the synthetic set, one task per chunk of users),
normalises and validates every batch, counts ids for the vocabularies, maps raw ids to dense
ids, groups users by hash shard and splits each user's history (reco.data.histories), then writes:

  vocab/users.parquet, vocab/topics.parquet   dense id, raw id, counts (and topic names)
  histories/                                  one row per user: input topics and held-out targets
  interactions/                               one row per interaction with its split
  truth/                                      synthetic only: planted user and topic communities
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import ray

from ray_jobs.common import StepTimer, job_main, read_artifact, write_artifact
from reco import artifacts
from reco.config import Config
from reco.data import synthetic
from reco.data.config import SyntheticConfig
from reco.data.formats import filter_batch, normalize_batch, read_topic_names, resolve_source
from reco.data.histories import build_histories, encode_batch, explode, pick_test_users, shard_of, topic_counts
from reco.errors import DataError
from reco.run_dir import RunDir
from reco.vocab import Vocabulary, count_ids, merge_counts

log = logging.getLogger("ray_jobs.ingest")
STEP = "ingest"


def _generate(batch: dict[str, np.ndarray], cfg: SyntheticConfig) -> pa.Table:
    world = synthetic.make_world(cfg)
    parts = [synthetic.generate_chunk(cfg, int(c), world) for c in batch["id"]]
    t = pa.concat_tables(parts)
    return pa.table(
        {
            "user": t.column("user_id").cast(pa.string()),
            "topic": t.column("topic_id").cast(pa.string()),
            "weight": t.column("weight"),
            "ts": t.column("ts"),
        }
    )


def read_raw(cfg: Config) -> tuple[ray.data.Dataset, str]:
    """The input as a Ray Dataset in the raw schema (reco.data.formats.RAW_SCHEMA), and its label."""
    if cfg.data.format == "synthetic":
        s = cfg.data.synthetic
        n = synthetic.n_chunks(s)
        ds = ray.data.range(n, override_num_blocks=n).map_batches(
            _generate, batch_size=1, batch_format="numpy", fn_kwargs={"cfg": s}
        )
        label = f"synthetic({s.n_users} users, {s.n_topics} topics, seed {s.seed})"
    else:
        src = resolve_source(cfg.data)
        if src.file_type == "parquet":
            ds = ray.data.read_parquet(src.paths, filesystem=src.filesystem, include_paths=True)
        else:
            ds = ray.data.read_csv(src.paths, filesystem=src.filesystem, include_paths=True, **src.csv_options())
        ds = ds.map_batches(
            normalize_batch, batch_format="pyarrow", fn_kwargs={"columns": src.columns, "label": src.label}
        )
        label = ", ".join(src.uris)
    ing = cfg.ingest
    if ing.min_weight is not None or ing.exclude_topics:
        ds = ds.map_batches(
            filter_batch,
            batch_format="pyarrow",
            fn_kwargs={"min_weight": ing.min_weight, "exclude_topics": ing.exclude_topics},
        )
    return ds, label


def _histories_of_shard(
    shard: pa.Table, holdout_per_user: int, holdout: str, test_ids: np.ndarray, seed: int
) -> pa.Table:
    hist = build_histories(shard, holdout_per_user, holdout, test_ids, seed)
    return hist.append_column(
        "shard", shard.column("shard")[: hist.num_rows] if hist.num_rows else pa.array([], pa.int64())
    )


def _explode_with_shard(histories: pa.Table, num_shards: int) -> pa.Table:
    rows = explode(histories)
    return rows.append_column("shard", pa.array(shard_of(rows.column("user_id").to_numpy(), num_shards)))


def _count_splits(batch: pa.Table) -> pa.Table:
    vc = batch.column("split").combine_chunks().value_counts()
    return pa.table({"split": vc.field("values"), "n": vc.field("counts")})


def _split_counts(interactions: ray.data.Dataset) -> dict[str, int]:
    df = interactions.select_columns(["split"]).map_batches(_count_splits, batch_format="pyarrow").to_pandas()
    return {k: int(v) for k, v in df.groupby("split")["n"].sum().items()}


def _topic_names(cfg: Config, topics: Vocabulary) -> pa.Array | None:
    if cfg.data.format == "synthetic":
        names = synthetic.topic_table(cfg.data.synthetic).to_pandas().set_index("topic_id")["name"]
        return pa.array(names.reindex(np.asarray(topics.raw_ids.to_pylist(), dtype=np.int64)).to_numpy(), pa.string())
    table = read_topic_names(resolve_source(cfg.data))
    if table is None:
        return None
    lookup = dict(zip(table.column("raw_id").to_pylist(), table.column("name").to_pylist()))
    return pa.array([lookup.get(r) for r in topics.raw_ids.to_pylist()], pa.string())


def _write_truth(cfg: Config, run: RunDir, users: Vocabulary, topics: Vocabulary) -> None:
    s = cfg.data.synthetic
    world = synthetic.make_world(s)
    m = pa.concat_tables([synthetic.memberships(s, c, world) for c in range(synthetic.n_chunks(s))])
    dense = users.encode(m.column("user_id").cast(pa.string()))
    keep = dense >= 0
    truth = pa.table(
        {
            "user_id": dense[keep],
            "community": m.column("community").to_numpy()[keep],
            "share": m.column("share").to_numpy()[keep],
        }
    )
    run.write_table(artifacts.USER_COMMUNITIES, truth, step=STEP)
    tt = synthetic.topic_table(s, world)
    tdense = topics.encode(tt.column("topic_id").cast(pa.string()))
    keep = tdense >= 0
    run.write_table(
        artifacts.TOPIC_COMMUNITIES,
        pa.table({"topic_id": tdense[keep], "community": tt.column("community").to_numpy()[keep]}),
        step=STEP,
    )


def run(cfg: Config, run: RunDir) -> dict:
    ing = cfg.ingest
    with StepTimer("read and validate"):
        raw, label = read_raw(cfg)
        raw = raw.materialize()
        n_rows = raw.count()
    if n_rows == 0:
        raise DataError(
            f"no interactions in {label}"
            + (" after ingest filters" if ing.min_weight is not None or ing.exclude_topics else "")
        )
    run.start(cfg.model_dump())  # only once the input is known good: a bad file leaves the run as it was
    log.info("%d interactions read from %s", n_rows, label)

    with StepTimer("vocabularies"):
        counts = raw.map_batches(count_ids, batch_format="pyarrow").to_pandas()
        users, topics = merge_counts(counts)
        test_ids = pick_test_users(len(users), ing.test_users, ing.seed)
    log.info("%d users, %d topics, %d test users", len(users), len(topics), len(test_ids))

    with StepTimer("histories (group by user shard, split)"):
        encoded = raw.map_batches(
            encode_batch,
            batch_format="pyarrow",
            fn_kwargs={"users": users, "topics": topics, "num_shards": ing.num_shards},
        )
        hist = encoded.groupby("shard", num_partitions=ing.num_shards).map_groups(
            _histories_of_shard,
            batch_format="pyarrow",
            fn_kwargs={
                "holdout_per_user": ing.holdout_per_user,
                "holdout": ing.holdout,
                "test_ids": test_ids,
                "seed": ing.seed,
            },
        )
        n_hist = write_artifact(
            hist,
            run,
            artifacts.HISTORIES,
            step=STEP,
            partition_cols=["shard"],
            meta={"holdout_per_user": ing.holdout_per_user, "holdout": ing.holdout, "num_shards": ing.num_shards},
        )
    with StepTimer("interactions"):
        histories = read_artifact(run, artifacts.HISTORIES)
        rows = histories.map_batches(
            _explode_with_shard, batch_format="pyarrow", fn_kwargs={"num_shards": ing.num_shards}
        )
        n_inter = write_artifact(rows, run, artifacts.INTERACTIONS, step=STEP, partition_cols=["shard"])
        split_counts = _split_counts(read_artifact(run, "interactions"))

    with StepTimer("vocabulary files"):
        train_counts = np.sum(
            np.stack(
                histories.map_batches(topic_counts, batch_format="pyarrow", fn_kwargs={"n_topics": len(topics)})
                .to_pandas()["counts"]
                .to_list()
            ),
            axis=0,
        )
        names = _topic_names(cfg, topics)
        extra = {"train_count": train_counts}
        if names is not None:
            extra["name"] = names
        run.write_table(artifacts.TOPIC_VOCAB, topics.to_table("topic_id", **extra), step=STEP)
        role = np.where(np.isin(np.arange(len(users)), test_ids), "test", "train")
        run.write_table(artifacts.USER_VOCAB, users.to_table("user_id", role=pa.array(role, pa.string())), step=STEP)
        if cfg.data.format == "synthetic":
            _write_truth(cfg, run, users, topics)

    summary = {
        "step": STEP,
        "source": label,
        "interactions": int(n_rows),
        "deduplicated_interactions": int(n_inter),
        "users": len(users),
        "topics": len(topics),
        "test_users": len(test_ids),
        "history_rows": int(n_hist),
        "splits": split_counts,
        "run_dir": run.uri,
    }
    run.write_json(artifacts.metrics("ingest"), summary, step=STEP)
    return summary


main = job_main(run, __doc__.splitlines()[0])

if __name__ == "__main__":
    raise SystemExit(main())
