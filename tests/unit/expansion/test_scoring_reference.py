"""The fast batch scorer equals a straightforward reference, bit for bit, on random data."""

import numpy as np
import pytest

from reco.expansion.config import ExpansionConfig
from reco.expansion.fixed_point import user_grid
from reco.expansion.list_models import VectorLookup, fit_list_models
from reco.expansion.region_density import Hyperplanes, region_counts, region_weights, score_lists
from reco.expansion.scoring import ListScorer
from reco.expansion.seed_lists import SeedList
from reco.expansion.topk import batch_top_k, exclude_seeds, kth_largest, top_k


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(3)
    n, dim = 1500, 16
    x = rng.standard_normal((n, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    ids = rng.permutation(10_000)[:n].astype(np.int64)
    cfg = ExpansionConfig()
    cfg.classifier.hidden = 8
    cfg.classifier.max_epochs = 30
    cfg.density.planes = 5
    cfg.density.repetitions = 12
    lsh = Hyperplanes.for_users(dim, n, cfg.density, x.mean(axis=0))
    users = region_counts(lsh.codes(x), lsh.n_regions)
    lists = [
        SeedList(f"l{i}", np.sort(rng.choice(ids, size=s, replace=False)), s, 0, 0)
        for i, s in enumerate((5, 20, 80, 300))
    ]
    return fit_list_models(lists, VectorLookup.of(ids, x), ids, lsh, users, cfg), ids, x


def reference_codes(lsh: Hyperplanes, x: np.ndarray) -> np.ndarray:
    """Each repetition's bits summed as bit_j << j, user by user."""
    proj = user_grid(x) @ lsh.normals
    bits = (proj > lsh.offsets).reshape(len(x), lsh.repetitions, lsh.n_planes).astype(np.int64)
    return (bits << np.arange(lsh.n_planes)).sum(axis=2)


def reference_density(models, codes: np.ndarray) -> np.ndarray:
    """(alpha * sum w + sum seeds * w) / m per list and user, repetitions added in order, in plain loops."""
    m = codes.shape[1]
    out = np.empty((len(models.tables), len(codes)))
    for lst, t in enumerate(models.tables):
        w = region_weights(models.region_users, t.beta, models.min_region_users)
        seeded = {(int(r), int(g)): s * w[r, g] for r, g, s in zip(t.repetition, t.region, t.seeds)}
        for u, user_codes in enumerate(codes):
            shared, extra = 0.0, 0.0
            for rep, code in enumerate(user_codes):
                shared += w[rep, code]
                if (rep, int(code)) in seeded:
                    extra += seeded[(rep, int(code))]
            out[lst, u] = (t.alpha * shared + extra) / m
    return out


def test_codes_density_and_logits_equal_the_reference_bit_for_bit(fitted):
    models, ids, x = fitted
    codes = models.lsh.codes(x)
    assert np.array_equal(codes, reference_codes(models.lsh, x))
    scorer = ListScorer(models, chunk=97)  # chunks that do not divide the users
    dens, clf = scorer.scores(ids, x)
    want_dens = reference_density(models, codes)
    want_clf = scorer.classifiers.reference_logits(user_grid(x))
    for want in (want_dens, want_clf):
        exclude_seeds(want, ids, models.seed_list, models.seed_user)
    assert np.array_equal(dens, want_dens) and np.array_equal(clf, want_clf)
    # The sparse split equals the dense tables' scores up to rounding; the logits the float32 MLP's.
    dense = score_lists(codes, models.dense_tables())
    finite = np.isfinite(dens)
    assert np.allclose(dens[finite], dense[finite], rtol=1e-12, atol=0)
    assert np.isinf(dens).sum() == len(models.seed_user)


def test_scores_do_not_depend_on_the_chunk(fitted):
    models, ids, x = fitted
    whole = ListScorer(models, chunk=4096).scores(ids, x)
    for chunk in (1, 64, 333):
        assert all(np.array_equal(a, b) for a, b in zip(ListScorer(models, chunk=chunk).scores(ids, x), whole))


def reference_batch_top_k(scores, ids, k):
    rows = [top_k(scores[r], ids, k) for r in range(len(scores))]
    return (
        np.concatenate([np.full(len(p), r) for r, p in enumerate(rows)]),
        np.concatenate([ids[p] for p in rows]),
        np.concatenate([scores[r, p] for r, p in enumerate(rows)]),
    )


@pytest.mark.parametrize("n, k", [(50, 80), (400, 7), (5000, 20), (20_000, 300)])
def test_batch_top_k_equals_top_k_row_by_row_with_ties_and_seeds(n, k):
    rng = np.random.default_rng(n + k)
    scores = np.round(rng.standard_normal((6, n)), 1)  # many ties
    scores[0] = np.sort(scores[0])
    scores[5, ::8] += 100.0  # the sampled scores are the best: fewer than k reach the guess, the exact fallback
    scores[1, : n // 2] = -np.inf  # seeds
    scores[2, :] = -np.inf
    scores[3, rng.choice(n, size=min(n, k // 2 + 1), replace=False)] = 9.0  # ties at the top
    ids = rng.permutation(3 * n)[:n].astype(np.int64)
    got, want = batch_top_k(scores, ids, k), reference_batch_top_k(scores, ids, k)
    assert all(np.array_equal(a, b) for a, b in zip(got, want))


def test_the_sampled_kth_largest_is_exact():
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((5, 40_000))
    scores[4] = np.sort(scores[4])[::-1]
    scores[3, ::8] += 100.0  # every sampled score among the best: fewer than k reach the guess, the exact fallback
    for k in (1, 100, 2000):
        want = np.sort(scores, axis=1)[:, -k]
        assert np.array_equal(kth_largest(scores, k), want)
