"""export_embeddings: user and topic vectors from the trained model, scored with Ray Data.

Every user's history (train and test users alike: a user is the pool of its topics, so users
never seen in training embed the same way) goes through ``map_batches`` on an actor pool, each
actor holding one copy of the model loaded from the run directory. Writes
``embeddings/users`` (user_id, embedding) and ``embeddings/topics.parquet``.
"""

from __future__ import annotations

import logging

import ray

from ray_jobs.common import StepTimer, job_main, read_artifact, write_artifact
from reco import artifacts
from reco.config import Config
from reco.data.vectors import vector_table
from reco.embedding.export import UserEmbedder, load_model
from reco.run_dir import RunDir

log = logging.getLogger("ray_jobs.export_embeddings")
STEP = "export_embeddings"


def run(cfg: Config, run: RunDir) -> dict:
    ex = cfg.export
    model, meta = load_model(run.read_bytes(artifacts.STARSPACE_MODEL))
    with StepTimer(f"user embeddings ({ex.actors} actor(s), batch {ex.batch_size})") as timer:
        users = (
            read_artifact(run, artifacts.HISTORIES)
            .select_columns(["user_id", "topics", "weights"])
            .map_batches(
                UserEmbedder,
                fn_constructor_kwargs={"run_uri": run.uri},
                batch_size=ex.batch_size,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=ex.actors),
                num_cpus=ex.cpus_per_actor,
            )
        )
        n_users = write_artifact(users, run, artifacts.USER_EMBEDDINGS, step=STEP, meta={"dim": model.dim})
    topic_vecs = model.topic_vectors().numpy()
    run.write_table(
        artifacts.TOPIC_EMBEDDINGS,
        vector_table("topic_id", range(len(topic_vecs)), topic_vecs),
        step=STEP,
        meta={"dim": model.dim},
    )
    return {
        "step": STEP,
        "users": n_users,
        "topics": len(topic_vecs),
        "dim": model.dim,
        "seconds": timer.seconds,
        "users_per_second": n_users / max(timer.seconds, 1e-9),
        "model_best_epoch": meta.get("best_epoch"),
    }


main = job_main(run, __doc__.splitlines()[0])

if __name__ == "__main__":
    raise SystemExit(main())
