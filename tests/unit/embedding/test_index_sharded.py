"""IVF-PQ, and IVF / IVF-PQ built in shards (train on a sample, encode slices, merge), Ray-free.

The Ray fan-out of ray_jobs/build_index.py runs exactly these functions in tasks; here the
shards are encoded in this process, so the equality with a one-go build is checked on its own.
"""

import faiss
import numpy as np
import pytest

from reco.config import load_config
from reco.embedding.config import IndexConfig
from reco.embedding.index import (
    add_shard,
    build_index,
    describe,
    exact_top_k,
    from_bytes,
    merge_shards,
    merge_top_k,
    recall_at_k,
    sample_positions,
    to_bytes,
    train_index,
    train_size_for,
)
from reco.errors import ConfigError


@pytest.fixture(scope="module")
def clustered() -> np.ndarray:
    """4,000 unit vectors in 40 planted clusters (PQ on pure noise has nothing to find)."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 16))
    x = centres[rng.integers(0, 40, 4000)] + 0.35 * rng.normal(size=(4000, 16))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


PQ = IndexConfig(kind="ivfpq", pq_m=8, pq_nbits=6, nprobe=16)


def test_ivfpq_builds_small_codes_with_useful_recall(clustered):
    idx = build_index(clustered, PQ)
    assert isinstance(idx, faiss.IndexIVFPQ) and idx.ntotal == len(clustered)
    assert describe(idx).startswith("IVF") and "PQ8x6" in describe(idx)
    assert len(to_bytes(idx)) < clustered.nbytes / 2  # 6-byte codes + 8-byte ids against 64 bytes of floats
    assert recall_at_k(idx, clustered, clustered[:200]) > 0.5
    again = from_bytes(to_bytes(idx))
    assert np.array_equal(idx.search(clustered[:10], 5)[1], again.search(clustered[:10], 5)[1])


@pytest.mark.parametrize("cfg", [IndexConfig(kind="ivf", nlist=32), PQ], ids=["ivf", "ivfpq"])
def test_sharded_build_is_the_one_go_index(clustered, cfg):
    n = len(clustered)
    trained = train_index(clustered[sample_positions(n, train_size_for(n, cfg))], n, cfg)
    blob = to_bytes(trained)
    # uneven slices, one of 7 vectors (faiss searches fewer than 20 queries without BLAS)
    cuts = [0, 1500, 1507, 3000, n]
    shards = [(lo, add_shard(blob, clustered[lo:hi])) for lo, hi in zip(cuts, cuts[1:])]
    merged = merge_shards(from_bytes(blob), shards)
    assert merged.ntotal == n
    assert to_bytes(merged) == to_bytes(build_index(clustered, cfg))  # byte for byte, ids included


def test_merge_refuses_shards_out_of_order(clustered):
    trained = train_index(clustered, len(clustered), IndexConfig(kind="ivf", nlist=16))
    late = add_shard(trained, clustered[100:200])
    with pytest.raises(ValueError, match="does not follow"):
        merge_shards(faiss.clone_index(trained), [(100, late)])


def test_exact_top_k_merged_over_shards_is_exact(clustered):
    q = clustered[:50]
    whole = exact_top_k(clustered, q, 10)[1]
    parts = [exact_top_k(clustered[lo : lo + 1000], q, 10, offset=lo) for lo in range(0, len(clustered), 1000)]
    assert np.array_equal(merge_top_k(parts, 10)[1], whole)


def test_pq_m_must_divide_the_dimension(clustered):
    with pytest.raises(ConfigError) as e:
        build_index(clustered, IndexConfig(kind="ivfpq", pq_m=5))
    msg = str(e.value)
    assert "index.pq_m" in msg and "16" in msg and "\n" not in msg


def test_too_many_pq_centroids_for_the_sample(clustered):
    with pytest.raises(ConfigError, match="index.pq_nbits"):
        build_index(clustered[:1500], IndexConfig(kind="ivfpq", pq_m=4, pq_nbits=12))


def test_config_names_the_key_of_a_bad_combination(tmp_path):
    with pytest.raises(ConfigError, match="index.train_size") as e:
        load_config(None, ["index.kind=ivf", "index.nlist=512", "index.train_size=100"])
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="index.kind"):
        load_config(None, ["index.kind=pq"])
    assert load_config(None, ["index.kind=ivfpq"]).index.pq_m == 32


def test_small_inputs_fall_back_to_flat():
    x = np.eye(16, dtype=np.float32)
    assert describe(build_index(x, PQ)) == "Flat (exact)"
