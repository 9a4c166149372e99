"""Top-K per batch, the merge into a global top-K, and seed exclusion."""

import numpy as np

from reco.expansion.topk import batch_top_k, exclude_seeds, merge_top_k, top_k


def test_top_k_orders_by_score_then_id_and_drops_minus_inf():
    scores = np.array([0.5, 0.9, 0.5, -np.inf, 0.9, 0.1])
    ids = np.array([40, 30, 20, 10, 35, 5])
    assert top_k(scores, ids, 4).tolist() == [1, 4, 2, 0]
    assert top_k(scores, ids, 10).tolist() == [1, 4, 2, 0, 5]  # the -inf user is never returned


def test_seeds_are_excluded_per_list():
    scores = np.ones((2, 4))
    exclude_seeds(scores, np.array([7, 3, 9, 1]), seed_list=np.array([0, 1, 1, 0]), seed_user=np.array([3, 3, 1, 42]))
    assert np.isinf(scores).tolist() == [[False, True, False, False], [False, True, False, True]]
    lp, uid, _ = batch_top_k(scores, np.array([7, 3, 9, 1]), k=4)
    assert sorted(uid[lp == 0].tolist()) == [1, 7, 9] and sorted(uid[lp == 1].tolist()) == [7, 9]


def test_merged_batch_top_k_equals_the_global_top_k_with_ties():
    rng = np.random.default_rng(0)
    n, lists, k = 1000, 3, 25
    ids = rng.permutation(10 * n)[:n]
    scores = rng.integers(0, 20, size=(lists, n)).astype(np.float64)  # many ties
    scores[:, rng.choice(n, 50)] = -np.inf
    glob = [ids[top_k(scores[i], ids, k)] for i in range(lists)]
    for batch in (1, 7, 100, 333, 1000):
        parts = [batch_top_k(scores[:, s : s + batch], ids[s : s + batch], k) for s in range(0, n, batch)]
        lp, uid, sc = merge_top_k(*(np.concatenate(p) for p in zip(*parts)), k)
        for i in range(lists):
            assert uid[lp == i].tolist() == glob[i].tolist()
            assert (np.diff(sc[lp == i]) <= 0).all()
