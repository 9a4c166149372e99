"""Every retriever on a tiny run directory: the Ray batch jobs write them, load by name, answer.

A copy of the session's tiny run (its pipeline ingested, trained StarSpace and exported the
embeddings) is the starting point; the multi-interest job (Ray Data), the sequence tower and
two-tower and MF jobs (Ray Train, one or two epochs, then Ray Data inference) write their retrievers; each retriever
is loaded by name from the run directory as
serving will load it and asked for one user's candidates with recent topics, directly and over
HTTP through the Serve application's ``/v1/recommend`` on this run directory.
"""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_jobs import expand, multi_interest, train_mf, train_sequence, train_two_tower
from reco import artifacts
from reco.config import load_config
from reco.expansion.blend import top_depth
from reco.expansion.list_models import ARTIFACT, ListModels
from reco.expansion.scoring import score_all_users
from reco.expansion.user_vectors import VectorSets
from reco.retrieval.registry import load_retriever
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray

SETTINGS = [
    "retrieval.sequence.epochs=1",
    "retrieval.sequence.dim=16",
    "retrieval.sequence.max_len=16",
    "retrieval.sequence.layers=1",
    "retrieval.sequence.sequences_per_user=1",
    "retrieval.sequence.batch_size=128",
    "retrieval.sequence.negatives=64",
    "retrieval.two_tower.epochs=1",
    "retrieval.two_tower.num_workers=1",
    "retrieval.two_tower.dim=16",
    "retrieval.two_tower.hidden=32",
    "retrieval.two_tower.samples_per_user=2",
    "retrieval.mf.epochs=2",
    "retrieval.mf.dim=16",
    "retrieval.mf.num_workers=1",
]
NAMES = [
    *("popularity", "last_items_knn", "pooled", "multi_interest", "sequence_tower", "two_tower", "pixie", "mf"),
    "als",
]


@pytest.fixture(scope="module")
def built(copy_run):
    cfg = load_config("configs/tiny.yaml", [f"run_dir={copy_run('retrievers')}", *SETTINGS])
    run = RunDir(cfg.run_dir)
    summaries = {
        "multi_interest": multi_interest.run(cfg, run),
        "sequence": train_sequence.run(cfg, run),
        "two_tower": train_two_tower.run(cfg, run),
        "mf": train_mf.run(cfg, run),
    }
    return cfg, run, summaries


def test_batch_jobs_write_every_users_vectors(built):
    cfg, run, s = built
    for name, summary in s.items():
        assert summary["users"] == 600 and summary["embedded"] == 600, name
    assert s["sequence"]["trained"] and s["sequence"]["epochs_run"] == 1
    assert 0 <= s["two_tower"]["val_recall@50"] <= 1
    assert s["mf"]["trained"] and s["mf"]["epochs_run"] == 2 and 0 < s["mf"]["val_recall@50"] <= 1
    assert s["multi_interest"]["mean_interests"] >= 1
    users = run.read_table(artifacts.retriever("multi_interest", "users"))
    assert users.num_rows == 600 and set(users.column_names) >= {"user_id", "topics", "vectors", "vector_weights"}


@pytest.mark.parametrize("name", NAMES)
def test_each_retriever_loads_by_name_and_answers_one_user(built, name):
    cfg, run, _ = built
    retriever = load_retriever(name, run, cfg.retrieval)
    hist = run.read_table("histories", columns=["user_id", "topics"])
    user = int(hist.column("user_id")[0].as_py())
    seen = set(hist.column("topics")[0].as_py())
    recent = [t for t in range(60) if t not in seen][:3]
    got = retriever.candidates([user], k=10, recent=[recent])
    ids, scores = got.row(0)
    assert 0 < len(ids) <= 10
    assert not set(ids.tolist()) & (seen | set(recent))
    assert np.all(np.isfinite(scores))
    if retriever.has_vectors:
        uv = retriever.user_vectors([user])
        assert uv.vectors.ndim == 3 and uv.vectors.shape[0] == 1 and (uv.weights > 0).any()


def test_each_retriever_serves_the_recommend_route_over_http(built, serve_app, tmp_path):
    """The Serve application on this run directory: /v1/recommend with each retriever named by
    the request (with a key of the recommend scope), raw ids in and out, nothing the user has seen
    or named as recent."""
    import requests

    from serve.app import build_app
    from serve.auth import entry, new_key
    from serve.keys import write_entries

    _, run, _ = built
    users = run.read_table(artifacts.USER_VOCAB, columns=["user_id", "raw_id"]).to_pylist()
    topics = run.read_table(artifacts.TOPIC_VOCAB, columns=["topic_id", "raw_id"]).to_pylist()
    raw_topic = {t["topic_id"]: t["raw_id"] for t in topics}
    hist = run.read_table("histories", columns=["user_id", "topics"]).slice(0, 1).to_pylist()[0]
    raw_user = next(u["raw_id"] for u in users if u["user_id"] == hist["user_id"])
    seen = {raw_topic[t] for t in hist["topics"]}
    recent = [raw_topic[t] for t in range(len(topics)) if raw_topic[t] not in seen][:2]
    key = new_key()
    write_entries(tmp_path / "keys.yaml", [entry("retrievers-test", key, ["recommend"])])
    args = {
        "run_dir": run.uri,
        "layout": "compact",
        "keys_file": str(tmp_path / "keys.yaml"),
    }  # compact: one deployment
    with serve_app(build_app(args), "retrievers", "/retrievers") as base:
        for name in NAMES:
            r = requests.post(
                f"{base}/v1/recommend",
                json={"user_id": raw_user, "k": 5, "recent_item_ids": recent, "retriever": name},
                headers={"Authorization": f"Bearer {key}"},
                timeout=60,
            )
            assert r.status_code == 200, (name, r.text)
            body = r.json()
            got = [x["item_id"] for x in body["items"]]
            assert body["retriever"] == name and body["fallback"] is False and len(got) == 5, name
            assert not set(got) & (seen | set(recent)), name


def test_the_expand_job_reads_a_retrievers_user_vectors(built):
    """expansion.user_vectors=multi_interest: the Ray Data job scores each user by its best
    vector, exactly as the single-process scorer does, and its audiences are mostly the lists'
    planted communities (single-vector sets are unit-tested in tests/unit/expansion/test_user_vectors.py)."""
    cfg, run, _ = built
    name = "multi_interest"
    ecfg = load_config("configs/tiny.yaml", [f"run_dir={run.uri}", *SETTINGS, f"expansion.user_vectors={name}"])
    summary = expand.run(ecfg, run)
    metrics = run.read_json(artifacts.metrics("expand"))
    table = run.read_table(artifacts.retriever(name, "users"), columns=["user_id", "vectors", "vector_weights"])
    sets = VectorSets.from_table(table, ecfg.expansion.max_vectors)  # each user's most important ones
    assert metrics["user_vectors"] == name and summary["users"] == 600 and metrics["vectors"] == sets.count()
    models = ListModels.from_bytes(run.read_bytes(ARTIFACT))
    k = ecfg.expansion.audience_size
    ref = score_all_users(
        models, table.column("user_id").to_numpy(), sets, k, top_depth(ecfg.expansion.blend, k)
    ).to_pandas()
    raw = dict(zip(*run.read_table(artifacts.USER_VOCAB, columns=["user_id", "raw_id"]).to_pydict().values()))
    got = run.read_table("audiences").to_pandas()
    want = [
        (models.list_ids[p], raw[u], r, s) for p, u, r, s in zip(ref.list_pos, ref.user_id, ref["rank"], ref.source)
    ]
    assert list(zip(got.seed_list_id, got.user_id, got["rank"], got.source)) == want
    # Lists with at least k true members left outside the seeds (a whole-community list has none).
    truth = run.read_table(artifacts.LIST_TRUTH).to_pandas().groupby("seed_list_id").user_id.agg(set)
    seeds = run.read_table(artifacts.SEED_LISTS).to_pandas().groupby("seed_list_id").user_id.agg(set)
    left = {lid: truth[lid] - seeds[lid] for lid in truth.index if len(truth[lid] - seeds[lid]) >= k}
    precision = np.mean([got[got.seed_list_id == lid].user_id.isin(members).mean() for lid, members in left.items()])
    chance = np.mean([len(members) / (600 - len(seeds[lid])) for lid, members in left.items()])
    assert len(left) >= 2 and precision > max(0.7, 2 * chance), (precision, chance)


def test_a_rerun_re_embeds_only_users_with_new_engagements(built):
    cfg, run, _ = built
    before = run.read_table(artifacts.retriever("sequence_tower", "users")).sort_by("user_id")
    hist = run.read_table("histories")
    changed = hist.column("user_id").to_numpy()[:3]
    topics = hist.column("topics").to_pylist()
    ts = hist.column("ts").to_pylist()
    weights = hist.column("weights").to_pylist()
    for i in range(3):  # one new engagement each, with a topic the user has not seen
        topics[i] = topics[i] + [next(t for t in range(60) if t not in topics[i])]
        ts[i] = ts[i] + [max(ts[i], default=0) + 3600]
        weights[i] = weights[i] + [1.0]
    new = hist.set_column(hist.column_names.index("topics"), "topics", pa.array(topics, pa.list_(pa.int64())))
    new = new.set_column(new.column_names.index("ts"), "ts", pa.array(ts, pa.list_(pa.int64())))
    new = new.set_column(new.column_names.index("weights"), "weights", pa.array(weights, pa.list_(pa.float32())))
    tmp = run.staging("histories")
    pq.write_table(new, run.path(f"{tmp}/part-0.parquet"), filesystem=run.fs)
    run.commit_dir(tmp, "histories", step="test")

    s = train_sequence.run(cfg, run)
    assert not s["trained"] and s["incremental"] and s["embedded"] == 3 and s["users"] == 600
    after = run.read_table(artifacts.retriever("sequence_tower", "users")).sort_by("user_id")
    moved = [
        u
        for u, a, b in zip(
            after.column("user_id").to_pylist(),
            after.column("vectors").to_pylist(),
            before.column("vectors").to_pylist(),
        )
        if not np.allclose(a, b)
    ]
    assert sorted(moved) == sorted(changed.tolist())
