import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reco import artifacts
from reco.errors import ArtifactError
from reco.run_dir import RunDir


def test_manifest_records_config_versions_rows_and_checksums(tmp_path):
    run = RunDir(str(tmp_path / "r"))
    run.start({"a": 1})
    run.write_table("vocab/x.parquet", pa.table({"v": [1, 2, 3]}), step="test")
    m = json.loads((tmp_path / "r" / artifacts.MANIFEST).read_text())
    assert m["config"] == {"a": 1}
    assert "ray" in m["versions"] and "torch" in m["versions"]
    entry = m["artifacts"]["vocab/x.parquet"]
    assert entry["rows"] == 3 and entry["step"] == "test" and len(entry["files"][""]["sha256"]) == 64
    assert run.entry("vocab/x.parquet") == entry and run.config() == {"a": 1}
    assert run.has("vocab/x.parquet") and not run.has("vocab/y.parquet") and run.names() == {"vocab/x.parquet"}
    assert run.read_table("vocab/x.parquet").column("v").to_pylist() == [1, 2, 3]


def test_truncated_file_fails_naming_the_artifact(tmp_path):
    run = RunDir(str(tmp_path))
    run.write_table(artifacts.TOPIC_EMBEDDINGS, pa.table({"v": np.arange(1000)}), step="t")
    p = tmp_path / "embeddings" / "topics.parquet"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(ArtifactError, match="embeddings/topics.parquet .* truncated"):
        run.read_table(artifacts.TOPIC_EMBEDDINGS)


def test_changed_file_fails_its_checksum(tmp_path):
    run = RunDir(str(tmp_path))
    run.write_bytes("models/m.pt", b"abcdef", step="t")
    (tmp_path / "models" / "m.pt").write_bytes(b"abcdeg")
    with pytest.raises(ArtifactError, match="models/m.pt .* checksum"):
        run.read_bytes("models/m.pt")


def test_missing_and_unrecorded_artifacts(tmp_path):
    run = RunDir(str(tmp_path))
    with pytest.raises(ArtifactError, match="histories is not in .*manifest.json"):
        run.read_table("histories")
    tmp = run.staging("histories")
    pq.write_table(pa.table({"v": [1]}), os.path.join(run.path(tmp), "part-0.parquet"))
    pq.write_table(pa.table({"v": [2]}), os.path.join(run.path(tmp), "part-1.parquet"))
    run.commit_dir(tmp, "histories", step="t", rows=2)
    assert sorted(run.read_table("histories").column("v").to_pylist()) == [1, 2]
    os.remove(tmp_path / "histories" / "part-1.parquet")
    with pytest.raises(ArtifactError, match="histories/part-1.parquet .* missing"):
        run.read_table("histories")


def test_commit_replaces_and_leaves_no_temporaries(tmp_path):
    run = RunDir(str(tmp_path))
    for value in (1, 2):
        tmp = run.staging("d")
        pq.write_table(pa.table({"v": [value]}), os.path.join(run.path(tmp), "p.parquet"))
        run.commit_dir(tmp, "d", step="t")
    assert run.read_table("d").column("v").to_pylist() == [2]
    assert sorted(os.listdir(tmp_path)) == ["d", artifacts.MANIFEST]


def test_uri_run_directory(tmp_path):
    run = RunDir(f"file://{tmp_path}/u")
    run.write_json(artifacts.metrics("a"), {"x": 1}, step="t")
    assert run.read_json(artifacts.metrics("a")) == {"x": 1}
    with pytest.raises(ArtifactError, match="cannot open run directory"):
        RunDir("nosuchscheme://bucket/x")


def test_a_relative_local_path_is_made_absolute(tmp_path, monkeypatch):
    """Ray Train workers run in their own directory: the URI they are handed must not be relative."""
    monkeypatch.chdir(tmp_path)
    run = RunDir("runs/relative")
    assert run.uri == str(tmp_path / "runs" / "relative")
    monkeypatch.chdir("/")
    assert RunDir(run.uri).path("x") == str(tmp_path / "runs" / "relative" / "x")
