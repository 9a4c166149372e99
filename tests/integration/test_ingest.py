"""ingest on the shared local Ray instance: synthetic, MovieLens and Last.fm, and bad input."""

import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from ray_jobs import ingest
from reco import artifacts
from reco.config import load_config
from reco.data.histories import shard_of
from reco.errors import DataError
from reco.run_dir import RunDir

pytestmark = pytest.mark.ray


def test_synthetic_ingest_writes_every_artifact(ray_session, tiny_config):
    run = RunDir(tiny_config.run_dir)
    s = ingest.run(tiny_config, run)
    assert s["users"] == 600 and s["topics"] == 60
    assert s["history_rows"] == 600
    assert sum(s["splits"].values()) == s["deduplicated_interactions"]
    assert s["splits"]["validation"] == sum(1 for r in run.read_table("histories").to_pylist() if r["targets"])
    manifest = run.manifest()["artifacts"]
    for rel in (
        artifacts.USER_VOCAB,
        artifacts.TOPIC_VOCAB,
        "histories",
        "interactions",
        artifacts.USER_COMMUNITIES,
        artifacts.TOPIC_COMMUNITIES,
        artifacts.metrics("ingest"),
    ):
        assert rel in manifest, rel
    # sharded by user hash: every user lives in the shard folder its hash names
    for shard in range(tiny_config.ingest.num_shards):
        folder = os.path.join(run.path("histories"), f"shard={shard}")
        users = np.concatenate(
            [pq.read_table(os.path.join(folder, f)).column("user_id").to_numpy() for f in os.listdir(folder)]
        )
        assert (shard_of(users, tiny_config.ingest.num_shards) == shard).all()
    topics = run.read_table(artifacts.TOPIC_VOCAB).to_pandas()
    assert topics.name.str.startswith(("community", "general")).all()
    assert topics.train_count.sum() == s["splits"]["train"]


def test_ingest_is_deterministic(ray_session, tiny_config, tmp_path):
    a, b = RunDir(str(tmp_path / "a")), RunDir(str(tmp_path / "b"))
    ingest.run(tiny_config, a)
    ingest.run(tiny_config, b)

    def key(t):
        return t.sort_by("user_id").to_pylist()

    assert key(a.read_table("histories")) == key(b.read_table("histories"))


def test_movielens_100k(ray_session, shared_data, tmp_path):
    cfg = load_config(
        "configs/ml-100k.yaml", [f"run_dir={tmp_path}", f"data.path={shared_data / 'ml-100k' / 'u.data'}"]
    )
    run = RunDir(cfg.run_dir)
    s = ingest.run(cfg, run)
    assert (s["interactions"], s["users"], s["topics"]) == (100_000, 943, 1682)
    assert s["splits"] == {"train": 100_000 - 943, "validation": 943}
    topics = run.read_table(artifacts.TOPIC_VOCAB).to_pandas().set_index("raw_id")
    assert topics.loc["50", "name"] == "Star Wars (1977)"
    # the latest rating of each user is its validation target
    rows = run.read_table("interactions").to_pandas()
    last = rows.groupby("user_id").ts.transform("max")
    val = rows[rows.split == "validation"]
    assert (val.ts == last[val.index]).all()


def test_excluded_topics_never_reach_the_data(ray_session, shared_data, tmp_path):
    cfg = load_config(
        "configs/lastfm.yaml",
        [
            f"run_dir={tmp_path}",
            f"data.path={shared_data / 'lastfm-2k' / 'user_artists.dat'}",
            "ingest.exclude_topics=['289']",
            "ingest.test_users=0",
        ],
    )
    run = RunDir(cfg.run_dir)
    s = ingest.run(cfg, run)
    assert s["users"] <= 1892 and s["interactions"] < 92_834
    assert "289" not in set(run.read_table(artifacts.TOPIC_VOCAB).column("raw_id").to_pylist())


def test_bad_values_inside_a_file_fail_with_one_line(ray_session, tmp_path, capsys):
    data = tmp_path / "events.csv"
    data.write_text("u,t,w\n" + "".join(f"{i},{i % 7},1\n" for i in range(500)) + "9,3,oops\n")
    rc = ingest.main(
        [
            "--config",
            "configs/tiny.yaml",
            "--set",
            f"run_dir={tmp_path / 'run'}",
            "--set",
            "data.format=generic",
            "--set",
            f"data.path={data}",
            "--set",
            "data.columns={user: u, topic: t, weight: w}",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2
    assert err.startswith("error: ") and "events.csv" in err and "'w' (weight) is not numeric" in err
    assert not (tmp_path / "run" / "histories").exists()


def test_missing_input_fails_before_any_work(ray_session, tmp_path):
    cfg = load_config("configs/ml-100k.yaml", [f"run_dir={tmp_path}", f"data.path={tmp_path / 'missing.data'}"])
    with pytest.raises(DataError, match="input not found"):
        ingest.run(cfg, RunDir(cfg.run_dir))
