"""The expand job on Ray Data agrees exactly with the single-process scorer; the protocol runs."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ray_jobs import evaluate, expand
from reco import artifacts
from reco.config import load_config
from reco.data.vectors import vector_table, vectors_of
from reco.embedding.config import IndexConfig
from reco.embedding.index import build_index, to_bytes
from reco.errors import DataError
from reco.expansion.list_models import ARTIFACT, ListModels
from reco.expansion.scoring import score_all_users
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray


def build_run(path, n=600, dim=16, clusters=4, seed=0):
    """A run directory with what expansion reads: user embeddings, the user vocabulary, an index."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, clusters, n)
    x = rng.standard_normal((clusters, dim))[label] * 1.5 + rng.standard_normal((n, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    dense = rng.permutation(n).astype(np.int64)  # embedding rows in no particular id order
    run = RunDir(str(path))
    run.start({})
    tmp = run.staging(artifacts.USER_EMBEDDINGS)  # a folder of part files, as export_embeddings writes it
    table = vector_table("user_id", dense, x)
    for i, start in enumerate(range(0, n, n // 3)):
        pq.write_table(table.slice(start, n // 3), run.path(f"{tmp}/part-{i}.parquet"))
    run.commit_dir(tmp, artifacts.USER_EMBEDDINGS, step="test", rows=n)
    run.write_table(
        artifacts.USER_VOCAB,
        pa.table({"user_id": np.arange(n), "raw_id": [f"user-{i}" for i in range(n)], "count": rng.integers(1, 50, n)}),
        step="test",
    )
    run.write_table(artifacts.index_ids("users"), pa.table({"position": np.arange(n), "user_id": dense}), step="test")
    run.write_bytes(artifacts.index("users"), to_bytes(build_index(x, IndexConfig())), step="test")
    return run, dense, label


@pytest.fixture(scope="module")
def expanded(ray_session, tmp_path_factory):
    root = tmp_path_factory.mktemp("expand")
    run, dense, label = build_run(root / "run")
    rows = []
    for c, size in ((0, 60), (1, 25), (2, 12)):
        members = dense[label == c][:size]
        rows += [{"seed_list_id": f"list-{c}", "user_id": f"user-{u}"} for u in members]
    rows += [
        {"seed_list_id": "list-0", "user_id": "ghost"},
        {"seed_list_id": "list-0", "user_id": "nobody"},
        {"seed_list_id": "list-1", "user_id": rows[70]["user_id"]},
    ]
    rows += [{"seed_list_id": "too-small", "user_id": f"user-{u}"} for u in dense[:3]]
    lists = root / "lists.jsonl"
    lists.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = load_config(
        "configs/tiny.yaml",
        [
            f"run_dir={run.uri}",
            f"expansion.seed_lists={lists}",
            "expansion.audience_size=40",
            "expansion.job.batch_size=64",
            "expansion.classifier.hidden=8",
            "expansion.classifier.max_epochs=60",
            "expansion.blend.depth=2",
            "expansion.protocol.splits=3",
            "expansion.protocol.actors=1",
        ],
    )
    summary = expand.run(cfg, run)
    return cfg, run, summary


def test_the_job_reports_unknown_ids_and_rejected_lists(expanded):
    _, run, summary = expanded
    assert summary["lists"] == 3 and summary["unknown_ids"] == 2
    assert "too-small" in summary["rejected"] and "fewer than expansion.min_seeds=5" in summary["rejected"]["too-small"]
    per_list = run.read_json(artifacts.metrics("expand"))["lists"]["per_list"]
    assert per_list["list-0"] == {"seeds": 60, "given": 62, "unknown": 2, "duplicates": 0}
    assert per_list["list-1"]["duplicates"] == 1


def test_ray_data_audiences_equal_the_single_process_scorer_exactly(expanded):
    cfg, run, _ = expanded
    got = run.read_table("audiences")
    models = ListModels.from_bytes(run.read_bytes(ARTIFACT))
    users = run.read_table(artifacts.USER_EMBEDDINGS)
    ref = score_all_users(models, users.column("user_id").to_numpy(), vectors_of(users), 40, 80)
    raw = np.array([f"user-{i}" for i in range(600)], dtype=object)
    want = pa.table(
        {
            "seed_list_id": pa.array(
                np.asarray(models.list_ids, dtype=object)[ref.column("list_pos").to_numpy()], pa.string()
            ),
            "user_id": pa.array(raw[ref.column("user_id").to_numpy()], pa.string()),
            "score": ref.column("score"),
            "rank": ref.column("rank"),
            "source": ref.column("source"),
        }
    )
    assert got.num_rows == 3 * 40
    assert got.select(want.column_names).equals(want)


def test_seeds_never_come_back(expanded):
    _, run, _ = expanded
    audiences = run.read_table("audiences").to_pandas()
    seeds = run.read_table(artifacts.SEED_LISTS).to_pandas()
    for name, group in audiences.groupby("seed_list_id"):
        assert not set(group.user_id) & set(seeds[seeds.seed_list_id == name].user_id)


def test_the_protocol_runs_on_the_run_and_writes_the_report(expanded):
    cfg, run, _ = expanded
    result = evaluate.expansion_evaluation(cfg, run)
    assert set(result["recall_at_holdout"]) == {"small", "medium"}
    assert set(result["recall_at_holdout"]["medium"]) == set(cfg.expansion.protocol.methods)
    assert result["recall_at_holdout"]["medium"]["blend"] > result["recall_at_holdout"]["medium"]["random"]
    assert run.read_bytes(artifacts.report("expansion_recall.png"))[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| blend |" in run.read_bytes(artifacts.report("expansion.md")).decode()


def test_a_file_with_no_usable_list_fails_clearly_and_changes_nothing(expanded, tmp_path):
    cfg, run, _ = expanded
    # An earlier expansion's truth must survive a failed one (it is dropped only for accepted new lists).
    run.write_table(artifacts.LIST_TRUTH, pa.table({"seed_list_id": ["list-0"], "user_id": ["user-0"]}), step="test")
    before = (run.path(artifacts.MANIFEST), open(run.path(artifacts.MANIFEST), "rb").read())
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"seed_list_id": "x", "user_id": "ghost"}\n')
    with pytest.raises(DataError, match="no seed list has at least"):
        expand.run(cfg.model_copy(update={"expansion": cfg.expansion.model_copy(update={"seed_lists": str(bad)})}), run)
    assert open(before[0], "rb").read() == before[1]
