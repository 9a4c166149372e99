"""The blend's order on hand-made top lists: both first, then the rest interleaved by share."""

import numpy as np

from reco.expansion.blend import blend, density_share, position_scores
from reco.expansion.config import BlendConfig, BlendShares, SizeBuckets

DENSITY = np.array([10, 11, 12, 13, 14, 15])
CLASSIFIER = np.array([13, 20, 10, 21, 22, 23])


def test_users_in_both_lists_come_first_by_rank_sum():
    ids, src = blend(DENSITY, CLASSIFIER, k=6, share=0.5)
    # 10: ranks 0 + 2 = 2; 13: ranks 3 + 0 = 3
    assert ids[:2].tolist() == [10, 13]
    assert src[:2].tolist() == [0, 0]


def test_share_weights_the_rank_sum_of_users_in_both():
    d, c = np.array([1, 2, 3, 4]), np.array([4, 9, 8, 1])
    # 1: ranks (0, 3); 4: ranks (3, 0). Density-heavy puts 1 first, classifier-heavy puts 4 first.
    assert blend(d, c, k=2, share=0.8)[0].tolist() == [1, 4]
    assert blend(d, c, k=2, share=0.2)[0].tolist() == [4, 1]


def test_top_lists_longer_than_k_let_consensus_users_in_first():
    d, c = np.array([1, 2, 3, 4, 5, 6]), np.array([7, 8, 9, 3, 2, 10])
    assert blend(d[:3], c[:3], k=3, share=0.5)[0].tolist() == [1, 7, 2]  # depth 1: no user in both
    assert blend(d, c, k=3, share=0.5)[0].tolist() == [2, 3, 1]  # depth 2: 2 and 3 are in both lists (rank sums tie)


def test_the_rest_interleaves_starting_with_density_at_half_share():
    ids, src = blend(DENSITY, CLASSIFIER, k=6, share=0.5)
    assert ids.tolist() == [10, 13, 11, 20, 12, 21]
    assert src.tolist() == [0, 0, 1, 2, 1, 2]


def test_share_sets_the_mix_of_the_rest():
    ids, src = blend(DENSITY, CLASSIFIER, k=6, share=1.0)
    assert ids.tolist() == [10, 13, 11, 12, 14, 15]
    ids, src = blend(DENSITY, CLASSIFIER, k=6, share=0.0)
    assert ids.tolist() == [13, 10, 20, 21, 22, 23]  # both ordered by the classifier's ranks alone
    d = np.arange(100, 140)
    c = np.arange(200, 240)
    _, src = blend(d, c, k=40, share=0.25)
    assert (src == 1).sum() == 10 and (src == 2).sum() == 30


def test_one_side_running_out_is_filled_by_the_other():
    ids, src = blend(np.array([1, 2]), np.array([3, 4, 5, 6]), k=5, share=0.5)
    assert ids.tolist() == [1, 3, 2, 4, 5]
    assert src.tolist() == [1, 2, 1, 2, 2]


def test_no_duplicates_and_at_most_k():
    rng = np.random.default_rng(0)
    for _ in range(50):
        d = rng.choice(60, size=20, replace=False)
        c = rng.choice(60, size=20, replace=False)
        ids, _ = blend(d, c, k=20, share=rng.random())
        assert len(ids) == 20 and len(set(ids.tolist())) == 20
        assert set(ids.tolist()) <= set(d.tolist()) | set(c.tolist())
        both = set(d.tolist()) & set(c.tolist())
        assert set(ids[: len(both)].tolist()) == both


def test_share_follows_seed_list_size():
    cfg = BlendConfig(density_share=BlendShares(small=0.8, medium=0.5, large=0.2))
    buckets = SizeBuckets()
    assert [density_share(cfg, buckets, n) for n in (10, 49, 50, 200, 201)] == [0.8, 0.8, 0.5, 0.5, 0.2]


def test_position_scores_fall_with_rank():
    assert position_scores(3, 4).tolist() == [1.0, 0.75, 0.5]


def reference_blend(density_top, classifier_top, k, share):
    """The blend's definition written as a plain loop (what the array version must reproduce)."""
    import math

    d_rank = {int(u): r for r, u in enumerate(density_top)}
    c_rank = {int(u): r for r, u in enumerate(classifier_top)}
    both = sorted(
        (u for u in d_rank if u in c_rank),
        key=lambda u: (share * d_rank[u] + (1.0 - share) * c_rank[u], min(d_rank[u], c_rank[u]), u),
    )
    ids, src = both[:k], [0] * min(len(both), k)
    d_only = [int(u) for u in density_top if int(u) not in c_rank]
    c_only = [int(u) for u in classifier_top if int(u) not in d_rank]
    di = ci = i = 0
    while len(ids) < k and (di < len(d_only) or ci < len(c_only)):
        if (math.ceil((i + 1) * share - 1e-12) > math.ceil(i * share - 1e-12) and di < len(d_only)) or ci >= len(
            c_only
        ):
            ids.append(d_only[di]), src.append(1)
            di += 1
        else:
            ids.append(c_only[ci]), src.append(2)
            ci += 1
        i += 1
    return ids, src


def test_the_array_blend_equals_the_loop_on_random_lists():
    rng = np.random.default_rng(0)
    for trial in range(300):
        universe = int(rng.integers(5, 400))
        nd, nc = (int(x) for x in rng.integers(0, min(universe, 120) + 1, 2))
        d = rng.choice(universe, nd, replace=False)
        c = rng.choice(universe, nc, replace=False)
        k = int(rng.integers(1, 150))
        share = float(rng.choice([0.0, 0.3, 0.5, 0.7, 1.0, rng.random()]))
        ids, src = blend(d, c, k, share)
        want_ids, want_src = reference_blend(d, c, k, share)
        assert ids.tolist() == want_ids and src.tolist() == want_src, (trial, k, share)
