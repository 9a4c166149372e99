"""Several vectors per user in expansion: a user scores its best vector, padding changes nothing."""

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import roc_auc_score

from reco import artifacts
from reco.data.vectors import vector_column
from reco.errors import ArtifactError, ConfigError, DataError
from reco.expansion.config import ExpansionConfig
from reco.expansion.list_models import VectorLookup, fit_list_models
from reco.expansion.protocol import UserSpace, method_scores
from reco.expansion.region_density import Hyperplanes, region_counts
from reco.expansion.scoring import ListScorer, audiences_from_candidates, score_all_users
from reco.expansion.seed_lists import SeedList
from reco.expansion.user_vectors import POOLED, VectorSets, check_source

METHODS = ["density", "voting", "classifier", "logreg", "centroid"]


def ragged_table(counts, flat, weights):
    offsets = pa.array(np.r_[0, np.cumsum(counts)].astype(np.int32))
    return pa.table(
        {
            "user_id": np.arange(len(counts)),
            "vectors": pa.ListArray.from_arrays(offsets, vector_column(flat)),
            "vector_weights": pa.ListArray.from_arrays(offsets, pa.array(np.asarray(weights, np.float32))),
        }
    )


def test_a_ragged_table_becomes_padded_unit_vectors_with_a_mask():
    flat = np.array([[3, 4], [0, 2], [1, 0], [5, 5]], np.float32)
    sets = VectorSets.from_table(ragged_table([1, 3], flat, [1.0, 0.5, 0.0, 0.2]))
    assert sets.vectors.shape == (2, 3, 2)
    assert sets.mask.tolist() == [[True, False, False], [True, False, True]]  # weight 0: not an interest
    np.testing.assert_allclose(sets.vectors[0, 0], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(sets.vectors[1], axis=1), [1, 1, 1], rtol=1e-6)
    assert sets.valid().shape == (3, 2) and sets.count() == 3
    first = VectorSets.from_table(ragged_table([1, 3], flat, [1.0, 0.5, 0.0, 0.2]), limit=1)  # the most important only
    assert first.vectors.shape == (2, 1, 2) and first.count() == 2
    np.testing.assert_allclose(first.vectors[1, 0], [0.0, 1.0])


def test_a_pooled_embedding_table_is_one_vector_per_user():
    x = np.eye(3, dtype=np.float32)
    sets = VectorSets.from_table(pa.table({"user_id": np.arange(3), "embedding": vector_column(x)}))
    assert sets.vectors.shape == (3, 1, 3) and sets.mask.all()
    with pytest.raises(DataError, match="'embedding' or a 'vectors' column"):
        VectorSets.from_table(pa.table({"user_id": [1]}))


def test_best_is_the_max_over_real_vectors_and_ignores_padding():
    sets = VectorSets(np.zeros((2, 2, 4), np.float32), np.array([[True, False], [True, True]]))
    slot_scores = np.array([[0.1, 9.0, 0.2, 0.7], [1.0, 2.0, 3.0, -1.0]])  # (lists, users * m)
    np.testing.assert_array_equal(sets.best(slot_scores), [[0.1, 0.7], [1.0, 3.0]])


def planted(seed=0, n=300, dim=16):
    """Communities A, B, C (orthogonal directions); the first 40 users hold an A and a B interest."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:3] * 3
    label = np.r_[np.zeros(40, int) - 1, rng.integers(0, 3, n - 40)]
    first = np.where(label[:, None] >= 0, centres[np.maximum(label, 0)], centres[1]) + rng.standard_normal((n, dim))
    second = centres[0] + rng.standard_normal((n, dim))
    counts = np.where(label < 0, 2, 1)
    flat = np.concatenate([np.stack([first[i], second[i]]) if counts[i] == 2 else first[i : i + 1] for i in range(n)])
    return VectorSets.ragged(counts, flat), label


def test_a_user_is_found_by_any_one_of_its_interests():
    """Seeds from A: users with an A interest beside a B one rank with A, far above B and C."""
    sets, label = planted()
    cfg = ExpansionConfig()
    cfg.classifier.hidden = 8
    space = UserSpace.build(sets, np.ones(sets.n), cfg)
    seeds = np.flatnonzero(label == 0)[:30]
    scores = method_scores(space, seeds, METHODS, cfg, np.random.default_rng(0), seed=0)
    multi, others = np.flatnonzero(label < 0), np.flatnonzero(label > 0)
    for method, s in scores.items():
        auc = roc_auc_score(np.r_[np.ones(len(multi)), np.zeros(len(others))], s[np.r_[multi, others]])
        assert auc > 0.95, (method, auc)
    # The same users reduced to the mean of their two interests sit between A and B: found far less.
    pooled = np.stack([v[m].mean(axis=0) for v, m in zip(sets.vectors, sets.mask)])
    pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
    mean_space = UserSpace.build(pooled, np.ones(sets.n), cfg)
    mean_density = method_scores(mean_space, seeds, ["density"], cfg, np.random.default_rng(0), seed=0)["density"]
    a_users = np.setdiff1d(np.flatnonzero(label == 0), seeds)

    def rank_of(s):
        return np.argsort(np.argsort(-s))

    assert rank_of(scores["density"])[multi].mean() < rank_of(mean_density)[multi].mean()
    assert rank_of(scores["density"])[a_users].mean() < len(a_users) + len(multi)


def test_padding_slots_change_no_score():
    """One vector per user, stored with an extra masked slot, scores exactly as the plain vectors."""
    sets, label = planted(seed=1)
    x = sets.vectors[:, 0]
    padded = VectorSets(
        np.stack([x, np.roll(x, 1, axis=0)], axis=1), np.c_[np.ones(len(x), bool), np.zeros(len(x), bool)]
    )
    cfg = ExpansionConfig()
    cfg.classifier.hidden = 8
    seeds = np.flatnonzero(label == 2)[:20]
    plain = method_scores(
        UserSpace.build(x, np.ones(len(x)), cfg), seeds, METHODS, cfg, np.random.default_rng(3), seed=3
    )
    masked = method_scores(
        UserSpace.build(padded, np.ones(len(x)), cfg), seeds, METHODS, cfg, np.random.default_rng(3), seed=3
    )
    for method in METHODS:
        np.testing.assert_array_equal(plain[method], masked[method], err_msg=method)


@pytest.mark.parametrize("batch", [7, 64, 300])
def test_batched_job_scoring_of_vector_sets_equals_one_pass(batch):
    """The Ray Data job's per-batch step on several vectors per user merges to the one-pass result."""
    sets, label = planted(seed=2)
    ids = np.arange(sets.n, dtype=np.int64) * 3  # dense ids need not be 0..n-1
    cfg = ExpansionConfig()
    cfg.classifier.hidden = 8
    valid = sets.valid()
    lsh = Hyperplanes.for_users(sets.dim, len(valid), cfg.density, valid.mean(axis=0))
    users = region_counts(lsh.codes(valid), lsh.n_regions)
    lists = [SeedList(f"l{c}", ids[np.flatnonzero(label == c)[:25]], 25, 0, 0) for c in (0, 2)]
    models = fit_list_models(lists, VectorLookup.of(ids, sets), ids, lsh, users, cfg)
    reference = score_all_users(models, ids, sets, 30)
    scorer = ListScorer(models)
    cand = pa.concat_tables(
        [scorer.candidates(ids[s : s + batch], sets.take(slice(s, s + batch)), 30) for s in range(0, sets.n, batch)]
    )
    assert audiences_from_candidates(cand, models.shares, 30).equals(reference)
    got = reference.to_pandas()
    found_multi = got[got.list_pos == 0].user_id.isin(ids[label < 0]).sum()
    assert found_multi >= 10  # list l0 (A) reaches the users whose second interest is A


def test_the_source_is_checked_with_a_one_line_reason():
    recorded = {artifacts.USER_EMBEDDINGS, artifacts.retriever("multi_interest", "users")}
    assert check_source(POOLED, recorded) == artifacts.USER_EMBEDDINGS
    assert check_source("multi_interest", recorded) == "retrieval/multi_interest/users"
    with pytest.raises(ConfigError, match="no user vectors"):
        check_source("pixie", recorded)
    with pytest.raises(ConfigError, match="unknown retriever 'nope'"):
        check_source("nope", recorded)
    with pytest.raises(ArtifactError, match="run python -m ray_jobs.train_two_tower"):
        check_source("two_tower", recorded)
