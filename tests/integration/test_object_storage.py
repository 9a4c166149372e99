"""Every input and the run directory through a real S3 endpoint (moto's server, started by the session).

The same readers a job uses, pointed at ``s3://`` instead of a local path: the result is the
same table, a missing or empty object is one line naming the URI, and a run directory in the
bucket verifies its checksums on read-back and notices a changed object.
"""

from __future__ import annotations

import io
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from reco import artifacts
from reco.config import load_config
from reco.data.config import DataConfig
from reco.data.formats import read_local, resolve_source
from reco.errors import ArtifactError, ConfigError, RecoError
from reco.expansion.seed_lists import read_seed_table
from reco.rank.datasets import read_ratings
from reco.run_dir import RunDir
from reco.storage import locate

ROOT = Path(__file__).resolve().parents[2]
INTERACTIONS = pa.table({
    "user": ["alice", "alice", "bob", "carol"],
    "item": ["sku-42", "sku-7", "sku-42", "sku-9"],
    "clicks": [3.0, 1.0, 2.0, 5.0],
    "ts": [1_700_000_000, 1_700_003_600, 1_700_007_200, 1_700_010_800],
})  # fmt: skip


def put(uri: str, data: bytes) -> str:
    loc = locate(uri)
    with loc.fs.open_output_stream(loc.path) as f:
        f.write(data)
    return uri


def csv_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pacsv.write_csv(table, buf)
    return buf.getvalue()


def generic(path: str) -> DataConfig:
    return DataConfig(format="generic", path=path, columns={"user": "user", "topic": "item", "weight": "clicks"})


def test_interactions_read_from_s3_equal_the_local_read(s3, tmp_path):
    local = tmp_path / "clicks.csv"
    local.write_bytes(csv_bytes(INTERACTIONS))
    remote = put(s3.uri("storage/clicks.csv"), local.read_bytes())
    from_s3, from_disk = read_local(resolve_source(generic(remote))), read_local(resolve_source(generic(str(local))))
    assert from_s3.num_rows == 4
    assert from_s3.equals(from_disk)


def test_a_folder_of_objects_is_one_input(s3):
    for i in range(2):
        put(s3.uri(f"storage/events/part-{i}.csv"), csv_bytes(INTERACTIONS.slice(2 * i, 2)))
    table = read_local(resolve_source(generic(s3.uri("storage/events/"))))
    assert table.num_rows == 4


def test_a_missing_object_is_one_line_naming_the_uri(s3):
    missing = s3.uri("storage/no-such.csv")
    with pytest.raises(RecoError) as e:
        resolve_source(generic(missing))
    assert str(e.value) == f"input not found: {missing}"
    with pytest.raises(RecoError, match="seed lists not found: s3://reco-test/storage/no-lists.jsonl$"):
        read_seed_table(s3.uri("storage/no-lists.jsonl"))


def test_an_empty_object_is_one_line_naming_it(s3):
    empty = put(s3.uri("storage/empty.csv"), b"")
    with pytest.raises(RecoError) as e:
        read_local(resolve_source(generic(empty)))
    assert empty in str(e.value) and "\n" not in str(e.value)


def test_seed_lists_and_movielens_ratings_read_from_s3(s3, shared_data):
    lists = put(
        s3.uri("storage/lists.jsonl"), b'{"seed_list_id": "a", "user_id": 1}\n{"seed_list_id": "a", "user_id": 2}\n'
    )
    table = read_seed_table(lists)
    assert table.column("user_id").to_pylist() == ["1", "2"]
    put(s3.uri("storage/ml-100k/u.data"), (shared_data / "ml-100k" / "u.data").read_bytes())
    remote, local = read_ratings(s3.uri("storage/ml-100k")), read_ratings(str(shared_data / "ml-100k"))
    assert len(remote) == 100_000 and remote.equals(local)


def test_a_run_directory_in_s3_verifies_on_read_back_and_notices_a_changed_object(s3):
    run = RunDir(s3.uri("runs/storage-test"))
    run.start(load_config(ROOT / "configs" / "tiny.yaml").model_dump())
    run.write_table(artifacts.USER_VOCAB, pa.table({"raw_id": ["a", "b"], "count": [3, 1]}), step="test")
    run.write_json(artifacts.metrics("test"), {"auc": 0.75}, step="test")
    again = RunDir(s3.uri("runs/storage-test"))  # a fresh reader, as another node would be
    assert again.read_json(artifacts.metrics("test")) == {"auc": 0.75}
    assert again.read_table(artifacts.USER_VOCAB).column("raw_id").to_pylist() == ["a", "b"]
    put(s3.uri(f"runs/storage-test/{artifacts.metrics('test')}"), b'{"auc": 0.99}')
    with pytest.raises(ArtifactError):
        again.read_json(artifacts.metrics("test"))


def test_a_run_directory_in_a_missing_bucket_is_one_line_naming_it(s3):
    with pytest.raises(ConfigError) as e:
        RunDir("s3://no-such-bucket/runs/x").ensure()
    assert str(e.value).startswith("run_dir s3://no-such-bucket/runs/x cannot be created: ")
    assert "no-such-bucket" in str(e.value) and "\n" not in str(e.value)
