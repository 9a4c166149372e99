"""multi_interest: every user's PinnerSage interests, computed with Ray Data into the run directory.

Takes the spine's topic vectors (``embeddings/topics.parquet``), saves the multi-interest
retriever's item side under ``retrieval/multi_interest/`` (meta, items, faiss index), then runs
``map_batches`` over the histories on an actor pool: each actor holds the retriever and turns a
batch of users into their Ward clusters' medoid vectors and time-decayed importances
(reco.retrieval.multi_interest). The result is ``retrieval/multi_interest/users``.

:func:`write_user_table` is the Ray Data step every retriever batch job shares: it (re)computes
a saved retriever's user table, and, when the retriever's model is unchanged since the last
run, only for users whose history changed (new engagements) or who are new.
"""

from __future__ import annotations

import logging

import ray

from ray_jobs.common import StepTimer, job_main, read_artifact, write_artifact
from reco import artifacts
from reco.config import Config
from reco.errors import ArtifactError
from reco.retrieval.base import USERS
from reco.retrieval.data import SEQUENCE_COLUMNS
from reco.retrieval.multi_interest import MultiInterestRetriever
from reco.retrieval.run_data import topic_vectors
from reco.retrieval.user_tables import UserTableBuilder, keep_users, users_to_embed
from reco.retrieval.vector import INDEX, ITEMS
from reco.run_dir import RunDir

log = logging.getLogger("ray_jobs.multi_interest")
STEP = "multi_interest"


def model_fingerprint(run: RunDir, name: str) -> str:
    """Checksums of what a retriever's user vectors depend on: its items, index and model."""
    parts = []
    for part in (ITEMS, INDEX, "model.pt"):
        rel = artifacts.retriever(name, part)
        if run.has(rel):
            parts.append(run.artifact(rel)["files"][""]["sha256"][:16])
    return "-".join(parts)


def write_user_table(run: RunDir, name: str, *, batch_size: int, actors: int, cpus_per_actor: float, step: str) -> dict:
    """Compute ``retrieval/<name>/users`` with Ray Data; incremental when the model is unchanged."""
    rel = artifacts.retriever(name, USERS)
    fingerprint = model_fingerprint(run, name)
    entry = run.entry(rel)
    previous = None
    if entry is not None and entry.get("meta", {}).get("model") == fingerprint:
        previous = run.read_table(rel, columns=["user_id", "topics", "ts"])
    current = run.read_table(artifacts.HISTORIES, columns=["user_id", "topics", "ts"])
    embed, drop = users_to_embed(previous, current)
    total = current.num_rows
    if previous is not None and len(drop) == 0:
        log.info("%s: no user engaged since the last run; %d user vectors unchanged", name, total)
        return {"users": total, "embedded": 0, "incremental": True}
    hist = read_artifact(run, artifacts.HISTORIES).select_columns(SEQUENCE_COLUMNS)
    if previous is not None:
        hist = hist.map_batches(keep_users, batch_format="pyarrow", fn_kwargs={"user_ids": embed})
    fresh = hist.map_batches(
        UserTableBuilder,
        fn_constructor_kwargs={"run_uri": run.uri, "name": name},
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=cpus_per_actor,
    )
    if previous is not None:
        kept = read_artifact(run, rel).map_batches(
            keep_users, batch_format="pyarrow", fn_kwargs={"user_ids": drop, "keep": False}
        )
        fresh = kept.union(fresh)
    rows = write_artifact(fresh, run, rel, step=step, meta={"model": fingerprint, "embedded": int(len(embed))})
    log.info(
        "%s: %d of %d users (re)embedded%s", name, len(embed), rows, " (incremental)" if previous is not None else ""
    )
    return {"users": rows, "embedded": int(len(embed)), "incremental": previous is not None}


def interest_counts(run: RunDir) -> dict:
    weights = run.read_table(
        artifacts.retriever(MultiInterestRetriever.name, USERS), columns=["vector_weights"]
    ).column("vector_weights")
    counts = weights.combine_chunks().value_lengths().to_numpy(zero_copy_only=False)
    return {
        "mean_interests": float(counts.mean()) if len(counts) else 0.0,
        "users_by_interests": {
            "1": int((counts <= 1).sum()),
            "2": int((counts == 2).sum()),
            "3+": int((counts >= 3).sum()),
        },
    }


def run(cfg: Config, run: RunDir) -> dict:
    mi = cfg.retrieval.multi_interest
    vectors = topic_vectors(run)
    if vectors is None:
        raise ArtifactError(
            f"{artifacts.TOPIC_EMBEDDINGS} is not in {run.uri}: run train_embeddings and export_embeddings first"
        )
    retriever = MultiInterestRetriever(cfg.retrieval)
    retriever.set_items(vectors)
    retriever.save_model(run, STEP)
    with StepTimer(f"interests of every user (Ray Data, {mi.actors} actor(s), batch {mi.batch_size})") as timer:
        users = write_user_table(
            run, retriever.name, batch_size=mi.batch_size, actors=mi.actors, cpus_per_actor=mi.cpus_per_actor, step=STEP
        )
    summary = {
        "step": STEP,
        **users,
        **interest_counts(run),
        "distance_threshold": mi.distance_threshold,
        "half_life_days": mi.half_life_days,
        "seconds": timer.seconds,
        "users_per_second": users["embedded"] / max(timer.seconds, 1e-9),
    }
    run.write_json(artifacts.metrics("multi_interest"), summary, step=STEP)
    return summary


main = job_main(run, __doc__.splitlines()[0])

if __name__ == "__main__":
    raise SystemExit(main())
