import numpy as np
import pytest

from reco.embedding.config import IndexConfig
from reco.embedding.index import build_index, describe, from_bytes, recall_at_k, to_bytes


@pytest.fixture(scope="module")
def vectors():
    x = np.random.default_rng(0).normal(size=(5000, 16)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_is_exact(vectors):
    idx = build_index(vectors, IndexConfig(kind="flat"))
    assert describe(idx) == "Flat (exact)"
    assert recall_at_k(idx, vectors, vectors[:100]) == 1.0
    _, nn = idx.search(vectors[:5], 1)
    assert nn[:, 0].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_indexes_have_high_recall(vectors, kind):
    idx = build_index(vectors, IndexConfig(kind=kind, nprobe=32))
    assert describe(idx).startswith(kind.upper())
    r = recall_at_k(idx, vectors, vectors[:200])
    assert 0.8 < r <= 1.0


def test_low_nprobe_costs_recall(vectors):
    lo = recall_at_k(build_index(vectors, IndexConfig(kind="ivf", nprobe=1, nlist=64)), vectors, vectors[:200])
    hi = recall_at_k(build_index(vectors, IndexConfig(kind="ivf", nprobe=32, nlist=64)), vectors, vectors[:200])
    assert lo < hi


def test_serialise_round_trip(vectors):
    idx = build_index(vectors, IndexConfig(kind="hnsw"))
    again = from_bytes(to_bytes(idx))
    assert np.array_equal(idx.search(vectors[:10], 5)[1], again.search(vectors[:10], 5)[1])
