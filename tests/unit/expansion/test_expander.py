"""AudienceExpander on a small hand-built run directory: raw ids in and out, seeds never back."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reco import artifacts
from reco.data.vectors import vector_table
from reco.embedding.config import IndexConfig
from reco.embedding.index import build_index, to_bytes
from reco.errors import DataError
from reco.expansion.config import ExpansionConfig
from reco.expansion.expander import METHODS, AudienceExpander
from reco.run_dir import RunDir


def build_run(path, n=600, dim=16, clusters=4, seed=0):
    """A run directory with what expansion reads: user embeddings, the user vocabulary, an index."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, clusters, n)
    x = rng.standard_normal((clusters, dim))[label] * 1.5 + rng.standard_normal((n, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    dense = np.arange(n, dtype=np.int64)
    run = RunDir(str(path))
    run.start({})
    tmp = run.staging(artifacts.USER_EMBEDDINGS)  # a folder of part files, as export_embeddings writes it
    table = vector_table("user_id", dense, x)
    for i, start in enumerate(range(0, n, n // 3)):
        pq.write_table(table.slice(start, n // 3), run.path(f"{tmp}/part-{i}.parquet"))
    run.commit_dir(tmp, artifacts.USER_EMBEDDINGS, step="test", rows=n)
    run.write_table(
        artifacts.USER_VOCAB,
        pa.table({"user_id": dense, "raw_id": [f"user-{i}" for i in dense], "count": rng.integers(1, 50, n)}),
        step="test",
    )
    run.write_table(artifacts.index_ids("users"), pa.table({"position": dense, "user_id": dense}), step="test")
    run.write_bytes(artifacts.index("users"), to_bytes(build_index(x, IndexConfig())), step="test")
    return run, x, label


@pytest.fixture(scope="module")
def expander(tmp_path_factory):
    run, x, label = build_run(tmp_path_factory.mktemp("run"))
    cfg = ExpansionConfig(audience_size=50)
    cfg.classifier.hidden = 8
    return AudienceExpander(run.uri, cfg), label


def test_blend_returns_k_raw_ids_ranked_without_seeds(expander):
    ex, label = expander
    members = [f"user-{i}" for i in np.flatnonzero(label == 2)]
    seeds = members[:30]
    out = ex.expand(seeds + ["nobody", seeds[0]], k=50)
    assert len(out.user_ids) == 50 and len(set(out.user_ids)) == 50
    assert not set(out.user_ids) & set(seeds)
    assert out.stats == {**out.stats, "given": 32, "duplicates": 1, "unknown": 1, "seeds": 30}
    assert set(out.sources) <= {"both", "density", "classifier"}
    assert np.mean([u in members for u in out.user_ids]) > 0.8  # the same cluster comes back
    table = out.to_table("s")
    assert table.column("rank").to_pylist() == list(range(1, 51))


@pytest.mark.parametrize("method", METHODS)
def test_every_method_expands(expander, method):
    ex, label = expander
    seeds = [f"user-{i}" for i in np.flatnonzero(label == 1)[:20]]
    out = ex.expand(seeds, k=40, method=method)
    assert len(out.user_ids) == 40 and not set(out.user_ids) & set(seeds)
    if method not in ("blend", "most_active", "random"):
        assert np.all(np.diff(out.scores) <= 0)


def test_bad_seed_lists_are_errors(expander):
    ex, _ = expander
    with pytest.raises(DataError, match="empty"):
        ex.expand([])
    with pytest.raises(DataError, match="1 known seed.*expansion.min_seeds=5"):
        ex.expand(["user-1", "ghost", "ghost2"])
    with pytest.raises(DataError, match="unknown expansion method"):
        ex.expand([f"user-{i}" for i in range(10)], method="magic")


@pytest.mark.parametrize("method", ["density", "voting"])
def test_region_scores_equal_the_dense_tables_mean(expander, method):
    """The served expander's region scores are the protocol's (the dense tables' mean over
    repetitions), bit for bit: the same sums in the same order."""
    from reco.expansion.region_density import density_table, score_users, smoothing, voting_table

    ex, label = expander
    seeds = np.flatnonzero(label == 1)[:40]
    d = ex.cfg.density
    if method == "density":
        alpha, beta = smoothing(d, len(seeds), ex.n_users)
        table = density_table(ex.codes[seeds], ex.region_users, alpha, beta, d.min_region_users)
    else:
        table = voting_table(ex.codes[seeds], ex.region_users, d.min_region_users)
    want = score_users(ex.codes, table)
    want[seeds] = -np.inf
    got = ex.scores(seeds, method, np.random.default_rng(0))
    assert np.array_equal(got, want)
    assert np.isfinite(got).sum() == ex.n_users - len(seeds) and len(np.unique(got[np.isfinite(got)])) > 10


@pytest.fixture(scope="module")
def multi_vector_expander(tmp_path_factory):
    """The same run plus a retriever's user table: every user in cluster 2 also has a cluster-0 interest."""
    from reco.data.vectors import vector_column

    run, x, label = build_run(tmp_path_factory.mktemp("multi"))
    rng = np.random.default_rng(5)
    centre0 = x[label == 0].mean(axis=0)
    extra = centre0 + 0.3 * rng.standard_normal((len(x), x.shape[1])).astype(np.float32)
    counts = np.where(label == 2, 2, 1)
    flat = np.concatenate([np.stack([x[i], extra[i]]) if counts[i] == 2 else x[i : i + 1] for i in range(len(x))])
    offsets = pa.array(np.r_[0, np.cumsum(counts)].astype(np.int32))
    run.write_table(
        "retrieval/multi_interest/users",
        pa.table(
            {
                "user_id": np.arange(len(x)),
                "vectors": pa.ListArray.from_arrays(offsets, vector_column(flat)),
                "vector_weights": pa.ListArray.from_arrays(offsets, pa.array(np.ones(len(flat), np.float32))),
            }
        ),
        step="test",
    )
    cfg = ExpansionConfig(audience_size=50, user_vectors="multi_interest")
    cfg.classifier.hidden = 8
    return AudienceExpander(run.uri, cfg), label


@pytest.mark.parametrize("method", ["blend", "density", "classifier", "centroid"])
def test_a_retrievers_vectors_find_users_by_any_interest(multi_vector_expander, method):
    ex, label = multi_vector_expander
    assert ex.sets.per_user == 2 and ex.sets.count() == len(label) + int((label == 2).sum())
    seeds = [f"user-{i}" for i in np.flatnonzero(label == 0)[:40]]
    out = ex.expand(seeds, k=200, method=method)  # more than cluster 0's other members
    found = label[[int(u.split("-")[1]) for u in out.user_ids]]
    assert len(out.user_ids) == 200 and not set(out.user_ids) & set(seeds)
    assert (
        np.isin(found, [0, 2]).mean() > 0.9 and (found == 2).sum() >= 50
    )  # cluster 2 comes through its cluster-0 interest
