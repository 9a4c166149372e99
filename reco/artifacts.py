"""The catalogue of a run directory's artifacts: every path a step writes, named once.

A job writes, and a later job, a deployment or a benchmark reads, an artifact by its name here
(``artifacts.USER_VOCAB``), never by a string spelled out again, so a rename is one edit and a
reader finds every artifact of a run in one place. Paths are relative to the run directory
(``reco.run_dir.RunDir``); parametrised families (metrics, reports, indexes, retrievers) are
functions.
"""

from __future__ import annotations

MANIFEST = "manifest.json"

# ingest
USER_VOCAB = "vocab/users.parquet"  # dense user_id, raw_id, count, role
TOPIC_VOCAB = "vocab/topics.parquet"  # dense topic_id, raw_id, count, train_count, name
HISTORIES = "histories"  # one row per user, sharded: input topics and held-out targets
INTERACTIONS = "interactions"  # one row per interaction with its split, sharded
USER_COMMUNITIES = "truth/user_communities.parquet"  # synthetic data only: planted memberships
TOPIC_COMMUNITIES = "truth/topic_communities.parquet"

# train_embeddings, export_embeddings, build_index
TRAIN_STORAGE = "train"  # Ray Train checkpoints; a rerun resumes from the latest
STARSPACE_MODEL = "models/starspace.pt"
USER_EMBEDDINGS = "embeddings/users"
TOPIC_EMBEDDINGS = "embeddings/topics.parquet"
ALS_USER_VECTORS = "embeddings/als_users.parquet"  # implicit-feedback ALS user factors, unit length

# expand
EXPANSION_MODELS = "models/expansion.npz"  # every seed list's fitted density table and classifier
SEED_LISTS = "expansion/seed_lists.parquet"  # the lists a run expanded (known seeds, raw ids)
LIST_TRUTH = "expansion/list_truth.parquet"  # every true member of each list, where known
DENSITY_TABLES = "expansion/density_tables.parquet"
AUDIENCES = "audiences"  # seed_list_id, user_id, score, rank, source

# train_ranker
RANKER = "models/ranker.pt"
RANKING_PREDICTIONS = "predictions/ranking_test.parquet"

# evaluate
EXPANSION_ROWS = "metrics/expansion_rows.parquet"  # one row per (list, split, method, K) of the protocol


def index(name: str) -> str:
    """A faiss index (``users`` or ``topics``)."""
    return f"index/{name}.faiss"


def index_ids(name: str) -> str:
    """The dense id of each slot of :func:`index`."""
    return f"index/{name}_ids.parquet"


def metrics(name: str) -> str:
    """A step's figures as JSON (``metrics("training")``)."""
    return f"metrics/{name}.json"


def metrics_table(name: str) -> str:
    """A step's per-row figures as Parquet (``metrics_table("expansion_rows")``)."""
    return f"metrics/{name}.parquet"


def report(name: str) -> str:
    """A file of the human-readable report: Markdown or a PNG plot (``report("embeddings.md")``)."""
    return f"reports/{name}"


def retriever(name: str, part: str) -> str:
    """A saved retriever's part (``meta.json``, ``users``, its model file)."""
    return f"retrieval/{name}/{part}"
